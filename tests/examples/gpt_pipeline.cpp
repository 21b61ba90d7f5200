// gpt_pipeline: examples/gpt end to end on a slice of tiny-shakespeare
// (ctest "gpt_pipeline").
//
//   gpt_pipeline EXAMPLE WORKDIR
//
// What it checks:
//   1. a 2-layer GPT (embedding 64, block 32) trained 200 iterations on the
//      first 200,000 characters: exit 0, one JSON object per evaluation and a
//      final one with val_loss, train_tok_s, gen_tok_s and params; the
//      validation loss falls from ~4.2 (uniform over 64 characters) below
//      3.0 (the characters' own frequencies give ~3.3); the model file is written;
//      --load samples the saved model from a prompt, with the vocabulary the
//      file holds; a prompt longer than the context names both lengths;
//   2. the same run on 2 threads gives the same losses, bit for bit;
//   3. errors, exit 1 with a message naming the problem: a prompt character
//      outside the vocabulary, --embd not a multiple of --heads, an empty
//      text file, a file that is not UTF-8; exit 2: --iters 0, --epochs;
//   4. --resume: a tiny GPT (embedding 32, block 16) trained 40 iterations
//      with --save 'ck-{iter}.h5' and a dropout, then resumed from its
//      iteration-20 checkpoint, gives the same evaluations and summary and
//      writes byte-identical checkpoints (weights, AdamW state, schedule,
//      generators); a missing, a truncated checkpoint and one of the last
//      iteration already are errors naming the file and the problem.
#include <cstdio>

#include "run_example.hpp"

using namespace example_test;

namespace {

// The first `bytes` bytes of a gzip file, by gzip itself.
std::string read_gzip_slice(const std::string& path, size_t bytes) {
  FILE* p = popen(("gzip -dc " + quoted(path)).c_str(), "r");
  if (!p) throw std::runtime_error("cannot run gzip -dc " + path);
  std::string text(bytes, '\0');
  text.resize(std::fread(text.data(), 1, bytes, p));
  pclose(p);
  if (text.size() != bytes) throw std::runtime_error("short read from " + path);
  return text;
}

int pipeline(const std::string& example, const fs::path& work) {
  fs::create_directories(work);
  const std::string text = read_gzip_slice(MAAS_SOURCE_DIR "/data/tinyshakespeare/input.txt.gz", 200000);
  write_bytes(work / "slice.txt", text);
  write_bytes(work / "empty.txt", "");
  write_bytes(work / "latin1.txt", "caf\xe9 au lait\n");
  fs::remove(work / "gpt.h5");
  const std::string data = "--data " + quoted((work / "slice.txt").string());
  const std::string args = data +
                           " --iters 200 --warmup 10 --lr 0.004 --layers 2 --heads 2 --embd 64 --block 32 --batch 8"
                           " --eval-every 100 --eval-windows 64 --seed 1 --json";

  // 1. Training, evaluation, the summary and the saved model.
  const Run one = run(example, args + " --threads 1 --save " + quoted((work / "gpt.h5").string()), work, "one");
  check(one.status == 0, "the run exits 0");
  check(one.epochs.size() == 3, "it prints two evaluations and a summary");
  if (one.epochs.size() == 3) {
    const nlohmann::json& last = one.epochs.back();
    for (const char* key : {"val_loss", "train_tok_s", "gen_tok_s", "params"})
      check(last.contains(key) && last[key].is_number(), std::string("the summary has ") + key);
    const double first = one.epochs[0].value("val_loss", 99.0), final_loss = last.value("val_loss", 99.0);
    check(final_loss < 3.0, "the validation loss falls below 3.0 (" + std::to_string(final_loss) + ")");
    check(final_loss <= first, "and does not rise from the first evaluation");
    check(last.value("params", 0) == 106112, "the model has 106,112 parameters (a vocabulary of 64, tied)");
  }
  check(fs::exists(work / "gpt.h5"), "--save wrote the model");

  // The saved model samples on its own: no text file, its tokenizer inside.
  const std::string load = "--load " + quoted((work / "gpt.h5").string()) + " --threads 1";
  const Run sample = run(example, load + " --prompt ROMEO: --generate 40 --top-k 5", work, "sample");
  check(sample.status == 0 && sample.out.rfind("ROMEO:", 0) == 0 && sample.out.size() >= 46,
        "--load samples 40 characters after the prompt");
  const Run too_long = run(example, load + " --prompt " + quoted(std::string(40, 'a')), work, "too_long");
  check(too_long.status == 1 && contains(too_long.err, "40 characters are longer than the model's context of 32"),
        "a prompt longer than the model's context names both lengths");

  // 2. Two threads, the same bits.
  const Run two = run(example, args + " --threads 2", work, "two");
  check(two.status == 0 && two.epochs.size() == one.epochs.size(), "the 2-thread run exits 0 with as many objects");
  for (size_t k = 0; k + 1 < std::min(one.epochs.size(), two.epochs.size()); ++k)
    check(one.epochs[k]["train_loss"] == two.epochs[k]["train_loss"] &&
              one.epochs[k]["val_loss"] == two.epochs[k]["val_loss"],
          "evaluation " + std::to_string(k + 1) + " gives the same losses on 2 threads");

  // 3. Bad input.
  const std::string small = " --iters 1 --layers 1 --heads 1 --embd 8 --block 8 --batch 2 --threads 1";
  const Run prompt = run(example, data + small + " --prompt " + quoted("caf\xc3\xa9"), work, "prompt");
  check(prompt.status == 1 && contains(prompt.err, "U+00E9"), "a prompt character outside the vocabulary is named");
  const Run heads = run(example, data + " --iters 1 --embd 10 --heads 4", work, "heads");
  check(heads.status == 1 && contains(heads.err, "--embd 10 is not a multiple of --heads 4"),
        "--embd must be a multiple of --heads");
  const Run empty = run(example, "--data " + quoted((work / "empty.txt").string()) + small, work, "empty");
  check(empty.status == 1 && contains(empty.err, "empty.txt") && contains(empty.err, "empty"),
        "an empty text file is named");
  const Run latin = run(example, "--data " + quoted((work / "latin1.txt").string()) + small, work, "latin");
  check(latin.status == 1 && contains(latin.err, "latin1.txt") && contains(latin.err, "UTF-8"),
        "a file that is not UTF-8 is named");
  const Run zero = run(example, data + " --iters 0", work, "zero");
  check(zero.status == 2, "--iters 0 is a usage error");
  const Run epochs = run(example, data + " --epochs 3", work, "epochs");
  check(epochs.status == 2 && contains(epochs.err, "--epochs does not apply"), "--epochs is refused, not ignored");

  // 4. Resuming: iterations 21..40 from the checkpoint of iteration 20 are
  // those of the uninterrupted run, bit for bit.
  const std::string tiny = data +
                           " --iters 40 --warmup 5 --lr 0.004 --layers 2 --heads 2 --embd 32 --block 16 --batch 4"
                           " --dropout 0.1 --eval-every 10 --eval-windows 16 --seed 3 --threads 2 --json --save ";
  const Run full = run(example, tiny + quoted((work / "ck-{iter}.h5").string()), work, "full");
  check(full.status == 0 && full.epochs.size() == 5, "the 40-iteration run exits 0 with four evaluations");
  const fs::path ck20 = work / "ck-20.h5";
  check(fs::exists(ck20) && fs::exists(work / "ck-40.h5"), "--save 'ck-{iter}.h5' wrote a checkpoint per evaluation");
  const std::string resume = " --resume " + quoted(ck20.string());
  const Run resumed = run(example, tiny + quoted((work / "re-{iter}.h5").string()) + resume, work, "resumed");
  check(resumed.status == 0 && resumed.epochs.size() == 3, "the resumed run evaluates iterations 30 and 40 only");
  if (full.epochs.size() == 5 && resumed.epochs.size() == 3) {
    for (size_t k = 0; k < 2; ++k)
      check(resumed.epochs[k]["iter"] == full.epochs[k + 2]["iter"] &&
                resumed.epochs[k]["train_loss"] == full.epochs[k + 2]["train_loss"] &&
                resumed.epochs[k]["val_loss"] == full.epochs[k + 2]["val_loss"] &&
                resumed.epochs[k]["lr"] == full.epochs[k + 2]["lr"],
            "resumed iteration " + full.epochs[k + 2]["iter"].dump() + " repeats the uninterrupted run");
    check(resumed.epochs[2]["val_loss"] == full.epochs[4]["val_loss"], "and so does the final validation loss");
  }
  check(fs::exists(work / "re-40.h5") &&
            read_text(work / "re-40.h5") == read_text(work / "ck-40.h5"),
        "the resumed run's last checkpoint is the uninterrupted run's, byte for byte");
  const std::string after = tiny + quoted((work / "after.h5").string());
  const Run missing = run(example, after + " --resume " + quoted((work / "nowhere.h5").string()), work, "missing");
  check(missing.status == 1 && contains(missing.err, "nowhere.h5") && contains(missing.err, "no such file"),
        "a missing checkpoint is named");
  write_bytes(work / "truncated.h5", read_text(ck20).substr(0, 1000));
  const Run truncated = run(example, after + " --resume " + quoted((work / "truncated.h5").string()), work,
                            "truncated");
  check(truncated.status == 1 && contains(truncated.err, "truncated.h5") && contains(truncated.err, "truncated"),
        "a truncated checkpoint is named");
  const Run done = run(example, after + resume + " --iters 20", work, "done");
  check(done.status == 1 && contains(done.err, "holds iteration 20 and --iters 20") &&
            contains(done.err, "nothing to train"),
        "resuming a checkpoint of the final iteration trains nothing, and says so");
  return verdict("gpt");
}

}  // namespace

int main(int argc, char** argv) { return pipeline_main(argc, argv, "gpt", pipeline); }
