// The endpoint table (src/serve/api.hpp) feeds --help, the 404 text and the
// metrics label: every API it lists must be named in each. An API added to
// the table is checked here with no new test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/serve.hpp"
#include "serve/api.hpp"
#include "serve/prometheus.hpp"

using namespace maas;
using json = nlohmann::json;
using maas::test::metric;

TEST_CASE("serve: --help names every API of the endpoint table", "[serve]") {
  std::string help = serve::usage();
  std::replace(help.begin(), help.end(), '\n', ' ');  // a phrase may be wrapped
  REQUIRE(!serve::apis().empty());
  for (const serve::Api& api : serve::apis()) {
    INFO("api " << api.label);
    CHECK(!api.routes.empty());
    CHECK(api.help.find(api.endpoint) != std::string::npos);
    CHECK(help.find(api.help) != std::string::npos);
  }
}

TEST_CASE("serve: a path no route serves is answered with every endpoint and counted under its API", "[serve]") {
  test::TempDir dir("serve_endpoints");
  manual_seed(3);
  nn::Sequential m({4});
  m.add(nn::Dense(2));
  save_model(m, dir / "m.h5");
  serve::ServeOptions o;
  o.port = 0;
  o.quiet = true;
  o.models.push_back({"m", dir / "m.h5"});
  serve::Server server(o);
  server.start();
  httplib::Client c("127.0.0.1", server.port());

  auto r = c.Get("/no/such/endpoint");
  REQUIRE(r);
  CHECK(r->status == 404);
  const std::string error = json::parse(r->body).at("error").get<std::string>();
  CHECK(error == "no such endpoint: the API is " + serve::endpoint_list());
  for (const serve::Api& api : serve::apis()) CHECK(error.find(api.endpoint) != std::string::npos);

  // Per API, a request that no route answers on the paths it owns: a path
  // under its prefix, or its exact path by a method none of its routes takes.
  std::vector<std::string> owned;
  for (const serve::Api& api : serve::apis()) {
    if (api.paths.empty()) continue;
    INFO("api " << api.label);
    std::string path = api.paths;
    bool by_post = false;
    if (path.back() == '/') {
      path += "no/such/route";
    } else {
      bool get = false, post = false;
      for (const serve::Route& route : api.routes) {
        if (route.pattern != path) continue;
        (route.method == serve::Method::Get ? get : post) = true;
      }
      if (get && post) continue;
      by_post = get;
    }
    auto res = by_post ? c.Post(path.c_str(), "{}", "application/json") : c.Get(path.c_str());
    REQUIRE(res);
    CHECK(res->status == 404);
    owned.push_back(api.label);
  }
  const std::string text = c.Get("/metrics")->body;
  for (const std::string& label : owned)
    CHECK(metric(text, "maas_requests_total{model=\"\",api=\"" + label + "\",code=\"404\"}") == 1);
  CHECK(metric(text, R"(maas_requests_total{model="",api="other",code="404"})") == 1);
  server.stop();
}
