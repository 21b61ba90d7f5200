// maas/checkpoint.hpp: models, weights and training checkpoints in HDF5, in
// Keras' legacy .h5 layout, so h5dump, h5py and Keras open them.
//
// Example:
//   maas::save_model(model, "mnist.h5");                  // architecture + weights
//   auto same = maas::load_model("mnist.h5");             // no model code needed
//   maas::save_weights(model, "w.h5");                    // weights only (Keras' save_weights)
//   maas::load_weights(other, "w.h5");                    // into a model built alike
//
//   // Resumable training: after epoch k, then later in a fresh process.
//   maas::save_checkpoint("ckpt.h5", model, adam, maas::training_state(trainer, &sched));
//   maas::TrainingState s = maas::load_checkpoint("ckpt.h5", model, adam, &sched);
//   trainer.set_global_step(s.global_step);
//   options.initial_epoch = s.epoch;                      // bit-identical to an uninterrupted fit
//   trainer.fit(train, options);
//
// File layout (Keras' save_model_to_hdf5 / save_weights_to_hdf5_group):
//   /                       attributes keras_version, backend, model_config (JSON)
//   /model_weights          attributes layer_names, backend, keras_version
//     <layer>/              attribute weight_names = ["<layer>/kernel:0", "<layer>/bias:0"]
//       <layer>/kernel:0    dataset, float32, Keras' shape
//   /optimizer_weights      (checkpoints) optimizer.state() as datasets "0/exp_avg", ...,
//                           attributes weight_names, optimizer, step_count, lr
//   /training_state         (checkpoints) epoch, global_step, the scheduler's state, and
//                           the generators (default_generator(), each Dropout's) in rng/
// save_weights writes the layer groups and their attributes at the root, as
// Keras' model.save_weights("w.h5") does.
//
// maas is NCHW; Keras on CPU is NHWC ("channels_last"). The files are
// written as Keras sees the model, so the same weights predict the same
// values in both:
//   - model_config says channels_last, with the input shape (H, W, C);
//   - Conv2D kernels are stored (kh, kw, in, out) (maas: [out, in, kh, kw]);
//   - the Dense after a Flatten of (C, H, W) has its kernel rows permuted
//     from maas' C,H,W flattening order to Keras' H,W,C order (likewise a
//     BatchNorm between them);
//   - Dense kernels are (in, out) in both; BatchNorm is gamma, beta,
//     moving_mean, moving_variance, with Keras' momentum = 1 - maas' momentum;
//   - explicit padding of Conv2D / AvgPool2D is written as a ZeroPadding2D
//     layer before a "valid" one (and read back so).
// Loading a Keras file does the inverse. A model whose last layer outputs
// images gives NCHW in maas and NHWC in Keras. Optimizer state stays in
// maas' layout (Keras does not read it: the files hold no training_config).
//
// Functional models (nn::Model) are written as Keras 2 writes them:
// model_config class "Functional", each layer with its inbound_nodes
// ([[["conv2d", 0, 0, {}], ...]], one list per call of the layer),
// input_layers and output_layers, an InputLayer entry per input; weights as
// for a Sequential. Reading takes Keras 2's spelling and Keras 3's
// ({"args": [{"class_name": "__keras_tensor__", "config": {"keras_history":
// [layer, node, tensor]}}], "kwargs": {}}), class "Functional" or "Model";
// a functional file's weights go to the layers of the same names.
//
// Reading accepts files written by Keras 2 and 3 for Sequential and
// functional models of Conv2D, Dense, MaxPooling2D, AveragePooling2D,
// GlobalAveragePooling2D, Flatten, Dropout, BatchNormalization, Activation,
// ReLU, LeakyReLU, Softmax, Add, Concatenate (axis -1), Embedding (of (None,)
// or (None, T) indices, no mask_zero), Rescaling and
// Normalization (axis -1: mean, variance and count as weights, or mean and
// variance in model_config, as Keras writes them) (string
// attributes fixed- or variable-length). Keras' trainable flags, regularizers
// and constraints are ignored; initializers maas lacks read as the defaults.
// Each layer's mapping (class names, config, weights and their layouts) is
// its codec, beside the layer in src/nn/; maas/nn/module.hpp shows how a
// layer and its codec are written.
//
// Quantized models (maas::quantize, maas/quantize.hpp) save and load the same
// way. Their QuantizedConv2D / QuantizedDense layers have Conv2D's / Dense's
// config under those class names (Keras cannot load them) and the weights
//   kernel:0            int8, Keras' kernel shape (codes in [-127, 127])
//   bias:0              float32
//   kernel_scale:0      float32 (out,): weight = kernel_scale[o] * code
//   input_scale:0       float32 scalar   } q = clamp(round(x / input_scale)
//   input_zero_point:0  int32 scalar     }     + input_zero_point, 0, 255)
// (about a quarter of the fp32 file). Loading checks every code, scale and
// zero point, and throws naming the file and layer when one is out of range.
//
// Writing never loses the previous file: the file is built in memory,
// written to "<name>.tmp.<pid>" in the same folder (the name shortened and
// hashed when it would exceed NAME_MAX), fsync'ed, then renamed over `path`;
// on failure (a full disk included) the temporary file is removed and `path`
// is untouched. A symlink `path` is written through: the file it points to
// is replaced, the link stays. Temporary files of the same target left by
// saves whose process is gone (killed) are removed.
//
// Checksums: the first 512 bytes of the file (HDF5's user block, which
// h5py, Keras and h5dump skip) are maas' header with the CRC-32 of the rest,
// checked before anything else is read: a changed or missing byte anywhere
// fails to load ("the file is corrupted: checksum mismatch"). Weights also
// carry HDF5's Fletcher32 checksums, which still guard them in a file whose
// header was removed.
//
// Reading: only regular files of at most 2 GiB (a named pipe fails at once,
// never blocks). libhdf5 crashes or loops forever on some damaged files, so
// it parses the file in a child process, killed after 10 s plus 1 s per
// 20 MB; a crash or hang there is a maas::Error. External links, external
// storage and virtual datasets (reading other files) are refused, and so are
// datasets declaring far more data than the file stores. Every failure
// (missing, truncated, corrupted, non-HDF5 or hostile file, a file of
// another architecture) throws maas::Error naming the file and the problem;
// nothing is printed, by HDF5 or at exit.
//
// What this file is not: no custom layers without a registered codec, no
// nested models, no ZeroPadding2D in functional files, no Keras
// training_config (losses, metrics), no TensorFlow SavedModel.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "maas/callbacks.hpp"
#include "maas/optim/scheduler.hpp"

namespace maas {

class Trainer;
namespace nn {
class Network;
}
namespace optim {
class Optimizer;
}

// Architecture (model_config) and weights, as keras.Model.save("model.h5").
// `model` is an nn::Sequential or a functional nn::Model.
// requires: the model is built (it was given its input shape, or has run).
void save_model(const nn::Network& model, const std::string& path);

// Rebuilds the model from the file's model_config (layer names, options,
// input shape; for a functional file the graph) and loads its weights: an
// nn::Sequential or an nn::Model (dynamic_cast for what only one has).
// Throws maas::Error naming unsupported layers: "load_model: m.h5: layer 'lstm' of class LSTM is not supported
// (maas has Conv2D, Dense, ...)".
std::unique_ptr<nn::Network> load_model(const std::string& path);

// Weights only, as keras.Model.save_weights("w.h5").
void save_weights(const nn::Network& model, const std::string& path);

struct LoadWeightsOptions {
  // false: the i-th layer with weights in the file goes to the i-th layer
  // with weights in the model (Keras' default), and the counts must agree.
  // true: layers go to the model's layers of the same name; model layers the
  // file does not name keep their weights (at least one must match).
  bool by_name = false;
};

// Loads weights from a file of save_weights, save_model, save_checkpoint or
// Keras into `model` (built). Checks everything before changing anything:
// on a mismatch it throws maas::Error listing each layer that does not fit
// (name, expected vs found shape) and leaves the model as it was.
void load_weights(nn::Network& model, const std::string& path, const LoadWeightsOptions& options = {});

// Where a training run stands, besides the model and optimizer. Checkpoints
// hold 0 <= epoch < 2^31 and 0 <= global_step <= 2^53 (and the optimizer's
// step count within the same bound); save_checkpoint and load_checkpoint
// refuse others.
struct TrainingState {
  int64_t epoch = 0;          // epochs completed: FitOptions::initial_epoch to resume with
  int64_t global_step = 0;    // Trainer::global_step()
  std::string scheduler_name;        // LRScheduler::name(); empty when there is none
  optim::NamedNumbers scheduler;     // LRScheduler::state(); empty when there is none
};

// The state of `trainer` (during or after fit: epochs completed, global
// step) and of `scheduler` (may be null).
TrainingState training_state(const Trainer& trainer, const optim::LRScheduler* scheduler = nullptr);

// Everything save_model writes, plus the optimizer's state and step count
// and lr, `state`, and the random generators: default_generator() and each
// Dropout layer's. requires: `optimizer` updates `model`'s parameters.
void save_checkpoint(const std::string& path, const nn::Network& model, const optim::Optimizer& optimizer,
                     const TrainingState& state = {});

// Restores model weights, optimizer state (buffers, step count, lr) and the
// generators (default_generator() and each Dropout layer's), and returns the
// TrainingState to apply: scheduler.load_state(s.scheduler),
// trainer.set_global_step(s.global_step), FitOptions::initial_epoch = s.epoch.
// The model must have the checkpoint's architecture (same layer names,
// classes and weight shapes) and the optimizer its kind; else maas::Error,
// with model and optimizer unchanged.
// The checkpoint's Dropout layers must have the model's rates.
TrainingState load_checkpoint(const std::string& path, nn::Network& model, optim::Optimizer& optimizer);

// The same, for a run with `scheduler` (null: a run without one): the
// checkpoint must have been written with a scheduler of the same name() (or
// none), and its state is loaded into it, so a resumed run cannot pick up a
// StepLR's position in a CosineAnnealingLR. Resume with this form.
TrainingState load_checkpoint(const std::string& path, nn::Network& model, optim::Optimizer& optimizer,
                              optim::LRScheduler* scheduler);

// Writers for ModelCheckpoint. checkpoint_writer saves the trainer's model
// (a Sequential or Model), optimizer and training_state(trainer, scheduler); list the
// LRSchedulerCallback before the ModelCheckpoint so that the scheduler has
// stepped when it writes. model_writer calls save_model.
// Both keep references: trainer, scheduler and model must outlive the writer.
CheckpointWriter checkpoint_writer(const Trainer& trainer, const optim::LRScheduler* scheduler = nullptr);
CheckpointWriter model_writer(const nn::Network& model);

namespace detail {
// For tests: called while writing with the stage reached ("created": the
// temporary file exists; "written": all data are in it, not yet flushed);
// throwing from it simulates a crash at that point. Empty: none.
void set_checkpoint_write_hook(std::function<void(const std::string& stage)> hook);
// For tests: how long the process that reads a file may take, in seconds
// (see "Reading" above); 0 restores the default, 10 s plus 1 s per 20 MB.
void set_hdf5_read_timeout(double seconds);
}  // namespace detail

}  // namespace maas
