// load_checkpoint's semantic checks: every declared shape before any read,
// the training position, the run's Dropout rates and scheduler, and the
// generators' saved states. The files are maas' own checkpoints, copied as
// h5py would write them (copy_file) and then edited.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/scheduler.hpp"

using namespace maas;
using maas::test::copy_file;
using maas::test::TempDir;

namespace {

std::shared_ptr<nn::Sequential> small_model(float rate = 0.25f) {
  manual_seed(3);
  auto m = std::make_shared<nn::Sequential>(Shape{4});
  m->add(nn::Dense(3)).add(nn::Dropout(rate)).add(nn::Dense(2));
  return m;
}

// One Adam step, so that the optimizer has state to save.
void step(nn::Sequential& m, optim::Optimizer& opt) {
  sum(m(Tensor::ones({2, 4}))).backward();
  opt.step();
}

// A checkpoint of small_model() after one step, copied to `copy` for editing.
void write_checkpoint(const std::string& path, const std::string& copy, int64_t epoch = 2, int64_t global_step = 10) {
  auto m = small_model();
  optim::Adam adam(m->parameters());
  optim::StepLR sched(adam, 1, 0.5);
  step(*m, adam);
  TrainingState s;
  s.epoch = epoch;
  s.global_step = global_step;
  s.scheduler_name = sched.name();
  s.scheduler = sched.state();
  save_checkpoint(path, *m, adam, s);
  copy_file(path, copy);
}

std::string resume_error(const std::string& path, float rate = 0.25f) {
  auto m = small_model(rate);
  optim::Adam adam(m->parameters());
  try {
    load_checkpoint(path, *m, adam);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("load_checkpoint checks the optimizer's declared shapes before reading them", "[io]") {
  TempDir dir("ckpt_state");
  const std::string path = dir / "c.h5", copy = dir / "copy.h5";
  write_checkpoint(path, copy);
  CHECK(resume_error(copy) == "(no error)");  // the copy itself loads
  // (20000, 20000) declared for Adam's first moment of the (4, 3) kernel:
  // 1.6 GB that used to be read before load_state() refused it. The file
  // stores none of it, which reading the file refuses first.
  maas::test::redeclare_dataset(copy, "optimizer_weights/0/exp_avg", {20000, 20000});
  CHECK(resume_error(copy) == "load_checkpoint: " + copy +
                                  ": dataset /optimizer_weights/0/exp_avg declares (20000, 20000) numbers of 4 bytes "
                                  "but the file stores 0 bytes of it: the file is damaged or was made to exhaust "
                                  "memory");
  // A small shape that does not fit: refused by its shape, before load_state.
  copy_file(path, copy);
  maas::test::redeclare_dataset(copy, "optimizer_weights/0/exp_avg", {5, 3});
  CHECK(resume_error(copy) == "load_checkpoint: " + copy +
                                  ": optimizer state '0/exp_avg' has shape (5, 3) but parameter 0 has shape "
                                  "(4, 3) (a scalar is also accepted)");
}

TEST_CASE("load_checkpoint refuses an epoch, global_step or step count out of range", "[io]") {
  TempDir dir("ckpt_state");
  const std::string path = dir / "c.h5", copy = dir / "copy.h5";
  const std::string where = "load_checkpoint: " + copy + ": ";
  using maas::test::rewrite_int;
  write_checkpoint(path, copy);
  rewrite_int(copy, "/training_state", "epoch", -5);
  CHECK(resume_error(copy) == where + "epoch -5 is out of range [0, 2147483647]");
  copy_file(path, copy);
  rewrite_int(copy, "/training_state", "epoch", int64_t{1} << 62);
  CHECK(resume_error(copy) == where + "epoch 4611686018427387904 is out of range [0, 2147483647]");
  copy_file(path, copy);
  rewrite_int(copy, "/training_state", "global_step", -1);
  CHECK(resume_error(copy) == where + "global_step -1 is out of range [0, 9007199254740992]");
  copy_file(path, copy);
  rewrite_int(copy, "/optimizer_weights", "step_count", int64_t{1} << 62);
  CHECK(resume_error(copy) ==
        where + "the optimizer's step_count 4611686018427387904 is out of range [0, 9007199254740992]");
  // save_checkpoint refuses what load_checkpoint would.
  CHECK_THROWS_WITH(write_checkpoint(path, copy, int64_t{1} << 62),
                    Catch::Contains("epoch 4611686018427387904 is out of range"));
}

TEST_CASE("load_checkpoint refuses another Dropout rate or scheduler than the checkpointed run's", "[io]") {
  TempDir dir("ckpt_state");
  const std::string path = dir / "c.h5", copy = dir / "copy.h5";
  write_checkpoint(path, copy);
  CHECK(resume_error(path, 0.5f) == "load_checkpoint: " + path +
                                        ": the checkpoint holds a different architecture:\n"
                                        "  layer 1 'dropout' (Dropout) has rate 0.5 but the checkpoint's has 0.25");
  auto m = small_model();
  optim::Adam adam(m->parameters());
  optim::CosineAnnealingLR cosine(adam, 10);
  CHECK_THROWS_WITH(load_checkpoint(path, *m, adam, &cosine),
                    "load_checkpoint: " + path +
                        ": the checkpoint was written by a run with a StepLR, this run has a CosineAnnealingLR");
  CHECK_THROWS_WITH(load_checkpoint(path, *m, adam, nullptr),
                    "load_checkpoint: " + path +
                        ": the checkpoint was written by a run with a StepLR, this run has no scheduler");
  CHECK(adam.step_count() == 0);  // nothing applied
  // The matching scheduler gets the saved position: StepLR(1, 0.5) after one step.
  optim::StepLR step_lr(adam, 1, 0.5);
  const TrainingState s = load_checkpoint(path, *m, adam, &step_lr);
  CHECK(s.epoch == 2);
  CHECK(adam.step_count() == 1);
  CHECK(step_lr.state() == s.scheduler);
}

TEST_CASE("load_checkpoint reads generator states strictly", "[io]") {
  TempDir dir("ckpt_state");
  const std::string path = dir / "c.h5", copy = dir / "copy.h5";
  write_checkpoint(path, copy);
  const std::string good = maas::test::read_string_attr(copy, "/training_state/rng", "dropout");
  const std::string where = "load_checkpoint: " + copy + ": the saved state of Dropout 'dropout' is not a std::mt19937_64 state";
  auto with_state = [&](const std::string& text) {
    copy_file(path, copy);
    maas::test::rewrite_string(copy, "/training_state/rng", "dropout", text);
    return resume_error(copy);
  };
  CHECK(with_state(good) == "(no error)");
  const size_t last_space = good.rfind(' ');
  const std::string words = good.substr(0, last_space);  // 312 words
  CHECK(with_state(good + " ") == where + " (token 313 is '', not a decimal number; expected 312 words and a position)");
  CHECK(with_state(good + " 7") == where + " (more than 312 words and a position)");
  CHECK(with_state(good + "x") == where + " (token 312 is '" + good.substr(last_space + 1) +
                                      "x', not a decimal number; expected 312 words and a position)");
  CHECK(with_state(words) == where + " (312 numbers, expected 312 words and a position)");
  CHECK(with_state(words + " 313") == where + " (position 313 exceeds 312)");
  CHECK(with_state(words + " 00" + good.substr(last_space + 1)) == where + " (it does not read back as written)");
  CHECK(with_state("2" + std::string(19, '0') + good.substr(good.find(' '))) == where + " (token 0 exceeds 64 bits)");
  std::string zeros;
  for (int i = 0; i < 312; ++i) zeros += "0 ";
  CHECK(with_state(zeros + "312") == where + " (every word is zero)");
  CHECK(with_state("-" + good) == where + " (token 0 is '-" + good.substr(0, good.find(' ')) +
                                      "', not a decimal number; expected 312 words and a position)");
}
