// The plain API of the Flask design: POST /predict with {"x_input": [...]}
// (NHWC, one sample or a batch) or an image/* body, answered with
// {"prediction": [...]}, by the first model given.
#include "serve/api.hpp"

namespace maas::serve {

namespace {

void predict_route(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const auto m = find_model(ctx, ctx.repo.default_name(), "");
  Tensor input;
  if (req.get_header_value("Content-Type").rfind("image/", 0) == 0) {
    input = image_input(*m, req.body);
  } else {
    const simdjson::dom::element doc = parse_json(req.body);
    simdjson::dom::element x;
    if (doc.type() != simdjson::dom::element_type::OBJECT || doc["x_input"].get(x))
      throw HttpError(400, "the body must be a JSON object with \"x_input\" (samples as nested lists, " +
                               batch_shape(m->keras_input) + ")");
    input = to_model_input(*m, nested_numbers(x, "x_input", req.body.size()));
  }
  const Tensor y = to_keras_output(*m, predict(*m, input));
  JsonOut out;
  out.raw("{\"prediction\":").nested(y.data(), y.shape()).raw("}");
  reply_json(res, std::move(out.s));
}

}  // namespace

Api plain_api() {
  Api a;
  a.label = "predict";
  a.endpoint = "/predict";
  a.help = "POST /predict";
  a.paths = "/predict";
  a.routes = {{Method::Post, "/predict", predict_route}};
  return a;
}

}  // namespace maas::serve
