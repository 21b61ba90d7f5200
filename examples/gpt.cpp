// gpt: a character-level GPT trained from scratch on tiny-shakespeare, then
// sampled. Pre-LayerNorm blocks (LayerNorm -> causal MultiHeadAttention ->
// residual, LayerNorm -> Dense 4C -> GELU -> Dense C -> residual), learned
// positions, a final LayerNorm and logits over the characters from the
// token embedding's own table (tied, as GPT-2's).
//
//   build/examples/gpt                          # nanoGPT's shakespeare_char small-CPU recipe
//   build/examples/gpt --iters 200 --json       # one JSON object per evaluation, then a summary
//   build/examples/gpt --generate 300 --prompt "ROMEO:" --temperature 0.8 --top-k 40
//   build/examples/gpt --save gpt.h5            # the trained model and its tokenizer (load_model reads it)
//   build/examples/gpt --iters 1000 --save 'ck-{iter}.h5'       # a checkpoint at every evaluation
//   build/examples/gpt --resume ck-500.h5 --iters 1000         # trains on as if it had never stopped
//   build/examples/gpt --load gpt.h5 --generate 500 --prompt "JULIET:"   # sample a saved model, no training
//
// Defaults (nanoGPT's config/train_shakespeare_char.py, its small-CPU
// settings): 4 layers, 4 heads, embedding 128, block 64, batch 12, 2,000
// iterations, dropout 0; AdamW lr 1e-3, betas 0.9/0.99, weight decay 0.1 on
// the >= 2-D weights, 100 warm-up steps then cosine to 1e-4, gradient
// clipping at 1.0; a 90/10 split of the text by position. Every --eval-every
// iterations (and at the end) the validation loss is the mean over a fixed
// set of --eval-windows windows of the validation text.
//
// --warmup N sets the warm-up steps (the cosine runs from there to --iters).
// --data is the text file (plain or gzip): data/tinyshakespeare/input.txt.gz.
// --save PATH writes a training checkpoint at every evaluation: the model
// with its tokenizer (load_model and --load read it), the AdamW state, the
// schedule's position and the generator the training windows are drawn
// from. PATH may hold "{iter}" (and "{train_loss}", "{val_loss}", with
// printf specs, as Keras' ModelCheckpoint): 'ck-{iter:05d}.h5' keeps each.
// --resume PATH trains on from such a checkpoint to --iters, the final
// iteration: with the same seed and --threads, the losses are those of the
// uninterrupted run, bit for bit. The schedule is this run's (a larger
// --iters stretches the cosine from there on); the checkpoint must be of
// the same model options and text.
// Sampling keeps each layer's keys and values (nn::Decoder): the prompt is
// one pass, then each token one position; when the block is full, decoding
// starts again from its last half. --temperature 0 is greedy.
// Not yet here (refused with exit code 2): --report, --distributed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "common.hpp"
#include "maas/data/text.hpp"
#include "maas/openmp.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/clip.hpp"
#include "maas/optim/scheduler.hpp"

using namespace maas;

namespace {

struct Config {
  int64_t vocab, block, layers, heads, embd;
  float dropout;
};

nn::Model build_gpt(const Config& c) {
  using namespace nn;
  Node tokens = Input({c.block});
  auto embedding = layer(Embedding(c.vocab, c.embd));
  Node x = embedding(tokens);
  x = layer(Add())({x, layer(PositionEmbedding(c.block))(x)});
  MultiHeadAttentionOptions attention;
  attention.use_causal_mask = true;
  attention.dropout = c.dropout;
  DenseOptions gelu;
  gelu.activation = Activation::Gelu;
  const auto drop = [&](Node n) { return c.dropout > 0.f ? layer(Dropout(c.dropout))(n) : n; };
  for (int64_t i = 0; i < c.layers; ++i) {
    Node h = layer(LayerNormalization())(x);
    x = layer(Add())({x, drop(layer(MultiHeadAttention(c.heads, c.embd / c.heads, attention))({h, h}))});
    h = layer(Dense(4 * c.embd, gelu))(layer(LayerNormalization())(x));
    x = layer(Add())({x, drop(layer(Dense(c.embd))(h))});
  }
  // The logits reuse the token embedding's table, transposed (weight tying).
  return Model(tokens, layer(EmbeddingTranspose(embedding.get()))(layer(LayerNormalization())(x)));
}

// --resume: the model, the optimizer, the schedule and default_generator()
// (the training windows') as the checkpoint holds them, the schedule then
// following this run's --iters; returns the iterations the checkpoint had
// trained. The checkpoint must be of this model and text, and stop before
// `iters`.
int64_t resume_training(const examples::Args& args, nn::Model& model, optim::AdamW& opt,
                        optim::WarmupCosineLR& schedule, const data::CharTokenizer& tokenizer, int64_t iters) {
  // The tokenizer first: building the model load_model returns draws from
  // default_generator(), which load_checkpoint then restores.
  const std::map<std::string, std::string> saved = load_model(args.resume)->metadata();
  const auto found = saved.find("tokenizer");
  MAAS_CHECK(found != saved.end(), args.resume << " holds no tokenizer: it is not a checkpoint of examples/gpt");
  MAAS_CHECK(found->second == tokenizer.to_json(),
             args.resume << " was trained on another text: its vocabulary of "
                         << data::CharTokenizer::from_json(found->second).vocab_size()
                         << " characters is not the one of --data " << args.data);
  const TrainingState state = load_checkpoint(args.resume, model, opt, &schedule);
  MAAS_CHECK(state.global_step < iters, args.resume << " holds iteration " << state.global_step << " and --iters "
                                                    << iters << " is the final iteration: nothing to train; pass "
                                                    << "--iters " << state.global_step + 1 << " or more");
  examples::continue_schedule(schedule, args.program, "iteration", "--iters");
  if (!args.json)
    std::printf("resumed from %s after iteration %lld\n", args.resume.c_str(),
                static_cast<long long>(state.global_step));
  return state.global_step;
}

// --save PATH: a training checkpoint after iteration `it`, to PATH with its
// placeholders filled from `logs` (ModelCheckpoint's format).
void save_training(const std::string& path, const Logs& logs, int64_t it, const nn::Model& model,
                   const optim::AdamW& opt, const optim::WarmupCosineLR& schedule) {
  TrainingState state;
  state.global_step = it;
  state.scheduler_name = schedule.name();
  state.scheduler = schedule.state();
  save_checkpoint(ModelCheckpoint(path, "val_loss", false).format_path(it - 1, logs), model, opt, state);
}

// The mean loss over fixed windows (offsets evenly spread over the text).
double evaluate(nn::Model& model, const data::TokenWindows& windows, int64_t count, int64_t batch) {
  model.eval();
  NoGradGuard ng;
  const int64_t n = std::min(count, windows.size());
  double total = 0.0;
  for (int64_t start = 0; start < n; start += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(n, start + batch); ++i) idx.push_back(i * windows.size() / n);
    Tensor x, y;
    windows.get_batch(idx, x, y);
    total += static_cast<double>(cross_entropy(model(x), y).item()) * static_cast<double>(idx.size());
  }
  model.train();
  return total / static_cast<double>(n);
}

// `n` tokens sampled after `prompt` (at most block tokens), batch 1, with a
// key/value cache (maas/nn/decode.hpp); the tokens per second go to *tok_s.
std::vector<int32_t> generate_tokens(nn::Network& model, const std::vector<int32_t>& prompt, int64_t n,
                                     const nn::SamplingOptions& sampling, uint64_t seed, double* tok_s) {
  nn::Decoder decoder(model);
  Generator sampler(seed);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = prompt;
  const std::vector<int32_t> more = decoder.generate(prompt, n, sampling, sampler);
  *tok_s = n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ids.insert(ids.end(), more.begin(), more.end());
  return ids;
}

// The prompt's tokens: every character in the vocabulary, at most `block`.
std::vector<int32_t> encode_prompt(const data::CharTokenizer& tokenizer, const std::string& text, int64_t block) {
  const std::vector<int32_t> prompt = tokenizer.encode(text);
  MAAS_CHECK(!prompt.empty(), "--prompt is empty");
  MAAS_CHECK(static_cast<int64_t>(prompt.size()) <= block,
             "the prompt's " << prompt.size() << " characters are longer than the model's context of " << block);
  return prompt;
}

// --load PATH: a saved GPT (with its tokenizer) sampled, no training.
int generate_from_file(const examples::Args& args, const nn::SamplingOptions& sampling, int64_t n) {
  std::unique_ptr<nn::Network> model = load_model(args.value("load"));
  const auto found = model->metadata().find("tokenizer");
  MAAS_CHECK(found != model->metadata().end(),
             args.value("load") << " holds no tokenizer (save the model with examples/gpt --save)");
  const data::CharTokenizer tokenizer = data::CharTokenizer::from_json(found->second);
  const std::vector<Shape> in = model->input_shapes();
  MAAS_CHECK(in.size() == 1 && in[0].size() == 1,
             args.value("load") << " is not a language model of token sequences (its input is "
                     << (in.empty() ? "none" : nn::batch_shape_string(in[0])) << ")");
  const int64_t block = in[0][0];
  double tok_s = 0.0;
  const std::vector<int32_t> prompt = encode_prompt(tokenizer, args.value("prompt", "\n"), block);
  const std::vector<int32_t> ids = generate_tokens(*model, prompt, n, sampling, args.seed + 1, &tok_s);
  if (args.json)
    std::printf("{\"gen_tok_s\": %.1f, \"params\": %lld}\n", tok_s, static_cast<long long>(model->num_parameters()));
  else
    std::printf("%s\n", tokenizer.decode(ids).c_str());
  return examples::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // Its training step runs hundreds of short parallel regions: waiting
  // threads sleep rather than spin (maas/openmp.hpp).
  ensure_passive_openmp_wait(argv);
  return examples::run_main("gpt", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/tinyshakespeare/input.txt.gz";
    defaults.batch = 12;
    defaults.lr = 1e-3;
    const examples::Args args =
        parse_args(argc, argv, defaults,
                   " [--iters N] [--warmup N] [--layers L] [--heads H] [--embd C] [--block T] [--dropout P]"
                   " [--eval-every N] [--eval-windows N] [--generate N] [--prompt TEXT] [--temperature T]"
                   " [--top-k K] [--top-p P] [--load PATH.h5]");
    // Common flags this example does not take yet are refused, not ignored.
    const char* unsupported = !args.report.empty()   ? "--report is not supported yet"
                              : args.distributed     ? "--distributed is not supported yet"
                              : args.epochs != 0     ? "--epochs does not apply: it trains for --iters iterations"
                                                     : nullptr;
    if (unsupported) {
      std::fprintf(stderr, "gpt: %s\n", unsupported);
      return examples::kExitUsage;
    }
    const int64_t iters = args.integer("iters", 2000, 1, 100000000);
    const int64_t warmup = args.integer("warmup", 100, 0, 100000000);
    Config c;
    c.layers = args.integer("layers", 4, 1, 1024);
    c.heads = args.integer("heads", 4, 1, 1024);
    c.embd = args.integer("embd", 128, 1, 65536);
    c.block = args.integer("block", 64, 1, 1 << 20);
    c.dropout = static_cast<float>(args.number("dropout", 0.0, 0.0, 0.99));
    const int64_t eval_every = args.integer("eval-every", 250, 1, 100000000);
    const int64_t eval_windows = args.integer("eval-windows", 200 * args.batch, 1, 100000000);
    const int64_t generate = args.integer("generate", 0, 0, 100000000);
    nn::SamplingOptions sampling;
    sampling.temperature = static_cast<float>(args.number("temperature", 1.0, 0.0, 100.0));  // 0: greedy
    sampling.top_k = args.integer("top-k", 0, 0, 1 << 24);
    sampling.top_p = static_cast<float>(args.number("top-p", 1.0, 1e-6, 1.0));
    if (args.flag("load")) return generate_from_file(args, sampling, generate > 0 ? generate : 200);
    MAAS_CHECK(c.embd % c.heads == 0, "--embd " << c.embd << " is not a multiple of --heads " << c.heads
                                                     << " (each head takes embd / heads features)");

    const std::string text = data::read_text_file(args.data);
    const data::CharTokenizer tokenizer = data::CharTokenizer::from_text(text);
    const data::TokenSplit split = data::split_tokens(tokenizer.encode(text), 0.9);
    const data::TokenWindows train(split.train, c.block), val(split.validation, c.block);
    c.vocab = tokenizer.vocab_size();
    // The prompt is checked before training: a character outside the
    // vocabulary, or more characters than the model's context, is an error.
    const std::vector<int32_t> prompt = encode_prompt(tokenizer, args.value("prompt", "\n"), c.block);

    manual_seed(args.seed);
    nn::Model model = build_gpt(c);
    model.train();
    model.metadata()["tokenizer"] = tokenizer.to_json();  // in every file --save writes: --load reads it
    if (!args.json) std::cout << model.summary();

    optim::AdamWOptions ao;
    ao.lr = static_cast<float>(args.lr);
    ao.beta2 = 0.99f;
    optim::AdamW opt(optim::decay_groups(model.parameters(), 0.1f), ao);
    optim::WarmupCosineLR schedule(opt, std::min(warmup, iters), iters, args.lr / 10);
    // The training windows are drawn from default_generator(), seeded again
    // once the weights are drawn: the checkpoints keep its position.
    Generator& gen = default_generator();
    gen.seed(args.seed);
    const int64_t done = args.resume.empty() ? 0 : resume_training(args, model, opt, schedule, tokenizer, iters);
    double train_seconds = 0.0, val_loss = 0.0;
    for (int64_t it = done + 1; it <= iters; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor x, y;
      train.sample_batch(args.batch, gen, x, y);
      opt.zero_grad();
      Tensor loss = cross_entropy(model(x), y);
      const float l = loss.item();
      MAAS_CHECK(std::isfinite(l), "the loss is " << l << " at iteration " << it);
      loss.backward();
      optim::clip_grad_norm(model.parameters(), 1.f);
      opt.step();
      schedule.step();
      train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (it % eval_every != 0 && it != iters) continue;
      val_loss = evaluate(model, val, eval_windows, 4 * args.batch);
      const double tok_s = static_cast<double>((it - done) * args.batch * c.block) / train_seconds;
      if (args.json)
        std::printf("{\"iter\": %lld, \"train_loss\": %.4f, \"val_loss\": %.4f, \"lr\": %.6g, \"train_tok_s\": %.0f}\n",
                    static_cast<long long>(it), l, val_loss, static_cast<double>(opt.lr()), tok_s);
      else
        std::printf("iter %lld: train loss %.4f, val loss %.4f, %.0f tokens/s\n", static_cast<long long>(it), l,
                    val_loss, tok_s);
      std::fflush(stdout);
      if (!args.save.empty())
        save_training(args.save, {{"iter", static_cast<double>(it)}, {"train_loss", l}, {"val_loss", val_loss}}, it,
                      model, opt, schedule);
    }

    // Sampling: 200 tokens (or --generate N) from the prompt, batch 1.
    double gen_tok_s = 0.0;
    const std::vector<int32_t> ids =
        generate_tokens(model, prompt, generate > 0 ? generate : 200, sampling, args.seed + 1, &gen_tok_s);
    const double train_tok_s = static_cast<double>((iters - done) * args.batch * c.block) / train_seconds;
    if (args.json) {
      std::printf("{\"val_loss\": %.4f, \"train_tok_s\": %.0f, \"gen_tok_s\": %.1f, \"params\": %lld}\n", val_loss,
                  train_tok_s, gen_tok_s, static_cast<long long>(model.num_parameters()));
    } else {
      std::printf("val loss %.4f; training %.0f tokens/s; sampling %.1f tokens/s; %lld parameters\n", val_loss,
                  train_tok_s, gen_tok_s, static_cast<long long>(model.num_parameters()));
      if (generate > 0) std::printf("%s\n", tokenizer.decode(ids).c_str());
    }
    return examples::kExitOk;
  });
}
