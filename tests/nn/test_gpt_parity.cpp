// A whole GPT against PyTorch, as llm.c checks its GPT-2: examples/gpt.cpp's
// model (2 layers, 2 heads, embedding 32, block 16, vocabulary 65) from the
// closed-form weights of tests/nn/gpt_reference.py, on one batch, in fp32,
// against that script's float64 values: with an untied output projection
// (a Dense; tests/nn/gpt_reference.hpp) and with build_gpt's own, tied to the
// token embedding (EmbeddingTranspose; tests/nn/gpt_reference_tied.hpp),
// whose table's gradient then sums both of its uses. The tolerances:
//   logits and loss     |maas - torch| <= 1e-5 * |torch| (the logits: of
//                       their largest magnitude, so that logits near zero
//                       are not held to more digits than fp32 has)
//   every gradient      |maas - torch| <= 1e-4 * max |torch| + 1e-8, the
//                       largest magnitude in that parameter's gradient (the
//                       1e-8: the key biases' gradient is zero, as softmax
//                       ignores a shift shared by all keys, and fp32 leaves
//                       ~1e-11 there)
//   10 AdamW losses     |maas - torch| <= 1e-5 * |torch| each
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "nn/gpt_model.hpp"
#include "nn/gpt_reference.hpp"
#include "nn/gpt_reference_tied.hpp"

using namespace maas;
using namespace maas::nn;
namespace ref = maas::test::gpt_reference;

namespace {

// One of the script's outputs: the parameters' closed forms and gradients,
// the logits, the loss and the 10 AdamW losses.
struct Reference {
  const ref::Param* params;
  size_t num_params;
  const float* logits;
  double loss;
  const double* adamw_losses;  // std::size(ref::kAdamWLosses) of them
  bool tied;                   // the output projection is the token embedding's table
};

const Reference kUntied{ref::kGptParams, std::size(ref::kGptParams), ref::kLogits, ref::kLoss, ref::kAdamWLosses,
                        false};
const Reference kTied{ref::tied::kGptParams, std::size(ref::tied::kGptParams), ref::tied::kLogits, ref::tied::kLoss,
                      ref::tied::kAdamWLosses, true};

// The reference's model: examples/gpt.cpp's, tied or not.
Model build_gpt(bool tied) {
  return maas::test::build_gpt(ref::kVocab, ref::kBlock, ref::kLayers, ref::kHeads, ref::kEmbd, tied);
}

// Writes the reference's closed-form weights into the model's parameters,
// after checking that they are the reference's parameters, in its order.
void set_reference_weights(const Model& model, const Reference& r) {
  const NamedTensors params = model.named_parameters();
  REQUIRE(params.size() == r.num_params);
  for (size_t k = 0; k < params.size(); ++k) {
    const ref::Param& p = r.params[k];
    Tensor t = params[k].second;  // a handle on the parameter's storage
    REQUIRE(params[k].first == p.name);
    REQUIRE(t.shape() == (p.cols == 0 ? Shape{p.rows} : Shape{p.rows, p.cols}));
    for (int64_t i = 0; i < t.numel(); ++i)
      t.data()[i] = static_cast<float>(p.offset + p.amplitude * std::sin(p.a * static_cast<double>(i) + p.b));
  }
}

// The batch: tokens [B, T] and their next tokens.
void reference_batch(Tensor& x, Tensor& y) {
  x = Tensor::empty({ref::kBatch, ref::kBlock});
  y = Tensor::empty({ref::kBatch, ref::kBlock});
  for (int64_t s = 0; s < ref::kBatch; ++s)
    for (int64_t t = 0; t < ref::kBlock; ++t) {
      x.data()[s * ref::kBlock + t] = static_cast<float>(ref::token(s * ref::kBlock + t));
      y.data()[s * ref::kBlock + t] = static_cast<float>(ref::token(s * ref::kBlock + t + 1));
    }
}

// The largest |got - want| over n values, and the largest |want|.
struct Gap {
  double error = 0.0, scale = 0.0;
};

Gap gap(const float* got, const float* want, int64_t n) {
  Gap g;
  for (int64_t i = 0; i < n; ++i) {
    g.error = std::max(g.error, std::abs(static_cast<double>(got[i]) - want[i]));
    g.scale = std::max(g.scale, std::abs(static_cast<double>(want[i])));
  }
  return g;
}

// The logits, the loss and every parameter's gradient against r.
void check_logits_loss_gradients(const Reference& r) {
  Model gpt = build_gpt(r.tied);
  set_reference_weights(gpt, r);
  Tensor x, y;
  reference_batch(x, y);
  const Tensor logits = gpt(x);
  REQUIRE(logits.shape() == Shape{ref::kBatch, ref::kBlock, ref::kVocab});
  const Gap lg = gap(logits.data(), r.logits, logits.numel());
  INFO("logits: largest error " << lg.error << " of largest magnitude " << lg.scale);
  CHECK(lg.error <= 1e-5 * lg.scale);

  Tensor loss = cross_entropy(logits, y);
  CHECK(std::abs(static_cast<double>(loss.item()) - r.loss) <= 1e-5 * r.loss);
  loss.backward();
  const ref::Param* const end = r.params + r.num_params;
  for (const auto& [name, p] : gpt.named_parameters()) {
    const auto* it = std::find_if(r.params, end, [&](const ref::Param& q) { return name == q.name; });
    REQUIRE(it != end);
    REQUIRE(p.grad().defined());
    const Gap g = gap(p.grad().data(), it->grad, p.numel());
    INFO("d loss / d " << name << ": largest error " << g.error << " of largest magnitude " << g.scale);
    CHECK(g.error <= 1e-4 * g.scale + 1e-8);
  }
}

// The losses of 10 AdamW steps on the batch against r's.
void check_adamw_losses(const Reference& r) {
  Model gpt = build_gpt(r.tied);
  set_reference_weights(gpt, r);
  Tensor x, y;
  reference_batch(x, y);
  optim::AdamWOptions o;
  o.lr = 1e-3f;
  o.beta2 = 0.99f;
  optim::AdamW opt(optim::decay_groups(gpt.parameters(), 0.1f), o);
  // The reference decays the embeddings, positions and kernels, and neither
  // the biases nor LayerNorm's gamma and beta: the >= 2-D parameters.
  for (size_t i = 0; i < opt.params().size(); ++i)
    REQUIRE(opt.weight_decay(i) == (opt.params()[i].dim() >= 2 ? 0.1f : 0.f));
  for (size_t step = 0; step < std::size(ref::kAdamWLosses); ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(gpt(x), y);
    const double want = r.adamw_losses[step];
    INFO("step " << step << ": loss " << loss.item() << ", PyTorch's " << want);
    CHECK(std::abs(static_cast<double>(loss.item()) - want) <= 1e-5 * want);
    loss.backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("a GPT's logits, loss and gradients equal PyTorch's", "[gpt_parity]") {
  check_logits_loss_gradients(kUntied);
}

TEST_CASE("a GPT's first 10 AdamW losses equal PyTorch's", "[gpt_parity]") { check_adamw_losses(kUntied); }

TEST_CASE("a GPT with its output tied to the token embedding: logits, loss and gradients equal PyTorch's",
          "[gpt_parity]") {
  // The table is one parameter, listed once, whose gradient sums the lookup's
  // and the output projection's: the model has the untied one's parameters
  // less the Dense's kernel and bias.
  REQUIRE(std::size(ref::tied::kGptParams) + 2 == std::size(ref::kGptParams));
  check_logits_loss_gradients(kTied);
}

TEST_CASE("a GPT with its output tied to the token embedding: first 10 AdamW losses equal PyTorch's",
          "[gpt_parity]") {
  check_adamw_losses(kTied);
}
