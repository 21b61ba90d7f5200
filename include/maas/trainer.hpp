// maas/trainer.hpp: fit, evaluate and predict, as Keras' Model.fit.
//
// Example:
//   maas::nn::Sequential model({2});
//   model.add(maas::nn::Dense(64)).add(maas::nn::ReLU()).add(maas::nn::Dense(3));
//   maas::CrossEntropyLoss loss;
//   maas::optim::Adam adam(model.parameters());
//   maas::Trainer trainer(model, loss, adam);
//
//   maas::data::TensorDataset train(x, y);   // x [N,2], y [N] class labels
//   maas::FitOptions options;
//   options.epochs = 20;
//   options.validation_split = 0.2;          // the last 20% validate
//   maas::History history = trainer.fit(train, options);
//   maas::EvalResult result = trainer.evaluate(test);
//   std::cout << result.str() << "\n" << result.report();
//   maas::Tensor probs = trainer.predict(x_new);   // softmax of the logits
//
// Each training step: model.train(); optimizer.zero_grad(); out = model(x);
// l = loss(out, y); l.backward(); optional gradient clipping; optimizer.step().
// Evaluation and prediction run in model.eval() under NoGradGuard, and put
// the model back in the mode it was in.
//
// Output (FitOptions::verbose), on FitOptions::out:
//   ProgressBar  Keras' bar, one line redrawn with '\r':
//                  Epoch 3/10
//                   512/938 [=========>....] - ETA: 4s - loss: 0.3121 - accuracy: 0.8874 - 2150 img/s
//                finishing with the epoch's time and the validation metrics;
//   Lines        one line per epoch (for logs and pipes);
//   Json         one JSON object per epoch: {"epoch":1,"train_loss":..,
//                "train_acc":..,"val_loss":..,"val_acc":..,"lr":..,"train_s":..,
//                "train_img_s":..} (accuracy and validation keys when computed;
//                train_s excludes validation; NaN/Inf print as null);
//   Auto         ProgressBar when the stream is std::cout on a terminal (or
//                std::cerr on one), else Lines;
//   Silent       nothing.
//
// Determinism: the order of the samples in epoch e is a Fisher-Yates shuffle
// drawn from a Generator seeded with shuffle_seed(options.seed, e), and the
// losses are summed in a fixed order, so two fits of identically seeded
// models with the same seed and thread count give bit-identical histories,
// and a fit resumed with initial_epoch = e repeats the shuffles of the
// uninterrupted one.
//
// Data-parallel training (FitOptions::distributed, see communicator.hpp and
// dist.hpp): every rank runs the same fit. At its start the model's
// parameters and buffers and the optimizer's state are broadcast from rank 0.
// Each epoch's order is the same on every rank and position p of it belongs
// to rank p % size (shard sizes differ by at most one; every sample is read
// once per epoch). Each rank's batch holds batch_size of its positions, so a
// global batch holds up to size * batch_size samples: the batch of one
// process with batch_size * size, in another summation order. After
// backward, the gradients are averaged over ranks weighted by the ranks'
// batch sizes (a rank whose shard has run out contributes an empty batch),
// before clipping and the optimizer's step, so the parameters stay identical
// on every rank. BatchNorm normalises with each rank's own batch statistics
// (not SyncBatchNorm); its running statistics are averaged over ranks at each
// epoch's end. The epoch's metrics and the validation (and any evaluate()
// during the fit, e.g. from a callback) are reduced over ranks: each rank
// evaluates a contiguous 1/size of the data. Rank 0 alone prints; callbacks
// run on every rank, and ModelCheckpoint and CSVLogger write on rank 0 only.
// Checkpoints hold no per-rank state, so a fit resumes on any number of ranks.
//
// What a Trainer is not: no multi-output models, no sample weights. Mixed
// precision is bf16 products only (FitOptions::precision): weights,
// gradients and optimizer state stay fp32, and there is no loss scaling.
#pragma once

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "maas/callbacks.hpp"
#include "maas/communicator.hpp"
#include "maas/data/dataset.hpp"
#include "maas/metrics.hpp"
#include "maas/precision.hpp"
#include "maas/tensor.hpp"

namespace maas {

class Loss;
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}

enum class Verbose { Auto, ProgressBar, Lines, Json, Silent };

struct FitOptions {
  int64_t epochs = 1;
  int64_t batch_size = 32;
  bool shuffle = true;             // reshuffle the training samples every epoch
  uint64_t seed = 0;               // seeds the shuffles
  // In [0, 1): the last fraction of the training data (before shuffling)
  // validates instead of training, as Keras. Excludes validation_data.
  double validation_split = 0.0;
  // Validated on after every epoch; must outlive fit().
  const data::Dataset* validation_data = nullptr;
  int64_t validation_batch_size = 0;  // 0: batch_size
  std::vector<std::shared_ptr<Callback>> callbacks;
  Verbose verbose = Verbose::Auto;
  std::ostream* out = &std::cout;
  float clip_grad_norm = 0.f;      // > 0: clip the gradients' global L2 norm to this
  bool drop_last = false;          // skip a last batch smaller than batch_size
  // Throw at the first NaN/Inf batch loss, before it reaches the weights.
  bool nan_guard = true;
  // Epochs before this one count as done (to resume); runs epochs
  // initial_epoch .. epochs-1, as Keras.
  int64_t initial_epoch = 0;
  // Data-parallel over the ranks of default_communicator() (installed by a
  // maas::dist::Session; see the top), or of `communicator` when set.
  bool distributed = false;
  Communicator* communicator = nullptr;
  // The precision of the fit's matrix products (maas/precision.hpp), the
  // callbacks' evaluations included; the previous setting is restored when
  // fit returns or throws. Unset: the process-wide set_matmul_precision().
  std::optional<Precision> precision;
};

// Keras' History: one value per epoch for each metric of the epoch logs
// (loss, accuracy, val_loss, val_accuracy, lr, time_s, img_s).
struct History {
  std::vector<int64_t> epoch;                         // 0-based indices run
  std::vector<std::string> keys;                      // in the logs' order
  std::map<std::string, std::vector<double>> history;

  // Throws maas::Error naming the metrics present when `name` is missing.
  const std::vector<double>& operator[](const std::string& name) const;
  bool contains(const std::string& name) const { return history.count(name) != 0; }
  size_t size() const { return epoch.size(); }
  void append(int64_t epoch_index, const Logs& logs);
};

struct EvalResult {
  double loss = 0.0;                // mean over samples (batch means weighted by batch size)
  double accuracy = 0.0;            // meaningful when has_accuracy
  bool has_accuracy = false;
  int64_t samples = 0;
  double seconds = 0.0;
  // Predictions vs labels, for classifiers with [N, C] or single outputs.
  metrics::ConfusionMatrix confusion;

  // "loss: 0.3121 - accuracy: 0.8874"
  std::string str() const;
  // sklearn's classification report of `confusion`.
  std::string report(const std::vector<std::string>& class_names = {}, int digits = 2) const {
    return confusion.report(class_names, digits);
  }
};

class Trainer {
 public:
  // The trainer keeps references: model, loss and optimizer must outlive it.
  Trainer(nn::Module& model, const Loss& loss, optim::Optimizer& optimizer);

  // Trains on `train` (see FitOptions); returns the per-epoch metrics.
  // Throws maas::Error for bad options (naming the option and its value),
  // from the NaN guard, and from callbacks.
  History fit(const data::Dataset& train, const FitOptions& options = {});

  // Loss (and accuracy, confusion matrix) over `data`.
  EvalResult evaluate(const data::Dataset& data, int64_t batch_size = 256, Verbose verbose = Verbose::Silent,
                      std::ostream& out = std::cout);

  // The model's outputs for x [N, ...] as probabilities: softmax over the
  // classes for CrossEntropyLoss, sigmoid for BinaryCrossEntropyWithLogitsLoss,
  // the raw outputs for other losses.
  Tensor predict(const Tensor& x, int64_t batch_size = 256);
  Tensor predict(const data::Dataset& data, int64_t batch_size = 256);
  // The raw outputs (logits), batched, in evaluation mode.
  Tensor predict_raw(const Tensor& x, int64_t batch_size = 256);

  // Asks fit() to stop: after the current batch (from on_batch_end) or after
  // the current epoch (from on_epoch_end). fit() clears the request on entry.
  void stop_training() { stop_ = true; }
  bool stop_requested() const { return stop_; }

  // Accuracy is computed by default for cross_entropy (argmax vs labels),
  // binary_cross_entropy_with_logits and hinge_loss (element-wise, at
  // decision_threshold()), not for other losses; this overrides.
  void set_accuracy(bool on) { accuracy_ = on; }
  bool computes_accuracy() const { return accuracy_; }
  // Single-output decision threshold: 0 for logits/margins, 0.5 otherwise.
  float decision_threshold() const { return threshold_; }

  nn::Module& model() const { return model_; }
  const Loss& loss() const { return loss_; }
  optim::Optimizer& optimizer() const { return optimizer_; }
  // The running fit's output stream (std::cout outside a fit; a stream that
  // discards on ranks other than 0).
  std::ostream& out() const { return *out_; }
  // The running fit's communicator (null outside a distributed fit), and
  // whether this process is the one that prints and writes files.
  Communicator* communicator() const { return comm_; }
  bool is_root() const { return comm_ == nullptr || comm_->is_root(); }

  // Position, for callbacks and checkpoints. epoch() and step() are 0-based
  // (the epoch and batch running, or last run); global_step() counts the
  // training batches run by this trainer (during on_batch_end, the 1-based
  // number of the current batch).
  int64_t epoch() const { return epoch_; }
  int64_t epochs() const { return epochs_; }
  int64_t step() const { return step_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t global_step() const { return global_step_; }
  void set_global_step(int64_t step);
  // The running epoch's training so far, for the callbacks that print it
  // (progress.hpp): the samples and steps trained on this rank (after the
  // epoch's last step, the samples of all ranks), and the seconds since its
  // first step began, validation excluded.
  struct EpochProgress {
    int64_t samples = 0;
    int64_t steps = 0;
    double train_seconds = 0.0;
  };
  const EpochProgress& epoch_progress() const { return progress_; }
  // The generator of the current epoch's shuffle.
  const Generator& shuffle_generator() const { return shuffle_gen_; }
  // The seed of epoch `epoch`'s shuffle (a SplitMix64 mix of both).
  static uint64_t shuffle_seed(uint64_t seed, int64_t epoch);

 private:
  EvalResult run_evaluation(const data::Dataset& data, int64_t batch_size, Verbose verbose, std::ostream& out,
                            const char* who);
  Tensor run_predict(const data::Dataset* data, const Tensor* x, int64_t batch_size, bool probabilities,
                     const char* who);
  void check_scalar_loss(const Tensor& loss, const Tensor& out, const Tensor& y, const char* who) const;
  void count_accuracy(const Tensor& out, const Tensor& y, int64_t& correct, int64_t& judged) const;
  // Sums an evaluation's counts over the ranks of comm_.
  void reduce_evaluation(double& loss_sum, int64_t& correct, int64_t& judged,
                         metrics::ConfusionMatrix& confusion) const;

  nn::Module& model_;
  const Loss& loss_;
  optim::Optimizer& optimizer_;
  std::ostream* out_ = &std::cout;
  bool accuracy_ = false;
  bool binary_ = false;  // element-wise binary accuracy (BCE, hinge) rather than per-sample classes
  float threshold_ = 0.5f;
  enum class Output { Raw, Softmax, Sigmoid } output_ = Output::Raw;
  bool stop_ = false;
  Communicator* comm_ = nullptr;
  int64_t epoch_ = 0, epochs_ = 0, step_ = 0, steps_per_epoch_ = 0, global_step_ = 0;
  EpochProgress progress_;
  Generator shuffle_gen_;
};

}  // namespace maas
