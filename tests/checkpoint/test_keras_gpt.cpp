// A GPT as examples/gpt.cpp builds and saves it (--save), for
// tests/h5py_gpt_check.py (ctest h5py_gpt_check), which reads the file with
// h5py: the Keras layout of its layers, the tokenizer in its maas_metadata,
// and the logits recomputed in numpy from the file alone.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/data/text.hpp"
#include "maas/maas.hpp"
#include "nn/gpt_model.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::build_gpt;
using maas::test::TempDir;

// Not a test: writes $MAAS_H5PY_GPT_DIR/gpt.h5, a 2-layer GPT (2 heads,
// embedding 16, block 8) over the characters of a line of text, saved with
// its tokenizer as examples/gpt.cpp --save saves it, and gpt.h5.expect (JSON:
// the model's sizes, a prompt, its token ids and maas' logits for them, [T, V]).
TEST_CASE("write a GPT for h5py_gpt_check.py", "[.h5py-gpt-sample]") {
  TempDir dir("gpt_h5py");  // where it writes when run without $MAAS_H5PY_GPT_DIR (e.g. by a "~[slow]" filter)
  const char* env = std::getenv("MAAS_H5PY_GPT_DIR");
  const std::string path = (env != nullptr ? std::string(env) + "/gpt.h5" : dir / "gpt.h5");
  const data::CharTokenizer tokenizer =
      data::CharTokenizer::from_text("First Citizen:\nBefore we proceed any further, hear me speak.\n");
  const int64_t vocab = tokenizer.vocab_size(), block = 8, layers = 2, heads = 2, embd = 16;
  manual_seed(41);
  Model model = build_gpt(vocab, block, layers, heads, embd, /*tied=*/true);
  // Biases are zero and LayerNorm's gamma one at first: move every parameter
  // off its initial value, so that each one the file holds counts.
  Generator gen(42);
  for (Tensor p : model.parameters()) {
    const Tensor noise = Tensor::randn(p.shape(), gen);
    for (int64_t i = 0; i < p.numel(); ++i) p.data()[i] += 0.1f * noise.data()[i];
  }
  model.metadata()["tokenizer"] = tokenizer.to_json();
  save_model(model, path);

  const std::string prompt = "hear me ";
  const std::vector<int32_t> ids = tokenizer.encode(prompt);
  REQUIRE(static_cast<int64_t>(ids.size()) == block);
  Tensor x = Tensor::empty({1, block});
  for (int64_t t = 0; t < block; ++t) x.data()[t] = static_cast<float>(ids[static_cast<size_t>(t)]);
  model.eval();
  NoGradGuard ng;
  const Tensor logits = model(x);
  REQUIRE(logits.shape() == Shape{1, block, vocab});
  nlohmann::json expect = {{"vocab", vocab}, {"block", block}, {"layers", layers}, {"heads", heads}, {"embd", embd}};
  expect["prompt"] = prompt;
  expect["tokens"] = ids;
  std::vector<std::vector<float>> rows;
  for (int64_t t = 0; t < block; ++t)
    rows.emplace_back(logits.data() + t * vocab, logits.data() + (t + 1) * vocab);
  expect["logits"] = rows;
  std::ofstream(path + ".expect") << expect.dump();
}
