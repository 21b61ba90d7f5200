// save_model / load_model, save_weights / load_weights, training checkpoints,
// each written through write_file_atomically, which keeps the previous file safe.
#include "maas/checkpoint.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <locale>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include "checkpoint/h5.hpp"
#include "checkpoint/keras.hpp"
#include "core/atomic_file.hpp"
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "maas/nn/model.hpp"
#include "maas/nn/quantized.hpp"
#include "maas/nn/sequential.hpp"
#include "maas/optim/optimizer.hpp"
#include "maas/trainer.hpp"

namespace maas {

namespace h5 = detail::h5;
namespace keras = detail::keras;

namespace {

// Debian's libhdf5 (the serial build) is not thread-safe: one call at a time.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

// ---- Writing safely ---------------------------------------------------------

// Builds the file in memory through `fill`, then replaces `path` with it
// through write_file_atomically (core/atomic_file.hpp): on any failure
// `path` is left as it was.
void write_atomically(const std::string& path, const std::string& who,
                      const std::function<void(const h5::Group& root)>& fill) {
  MAAS_CHECK(!path.empty(), who << ": the path is empty");
  std::string image;
  {
    h5::File file = h5::File::create({who, path});
    fill(file.root());
    image = file.image();
  }
  detail::write_file_atomically(path, image, who);
}

// ---- Model weights ------------------------------------------------------------

std::string where(const h5::Group& g) { return g.context().who + ": " + g.context().path; }

// Each layer's Module::weights_loaded(), once the weights are read: a
// quantized layer packs them, so that a file holding what its kernels cannot
// take fails here, naming the layer.
void finish_loading(const nn::Network& model, const std::string& here) {
  for (const auto& l : model.layers()) {
    try {
      l->weights_loaded();
    } catch (const Error& e) {
      MAAS_FAIL(here << ": " << e.what());
    }
  }
}

std::vector<std::string> weight_names(const keras::Layer& L) {
  std::vector<std::string> names;
  for (const keras::Weight& w : L.weights) names.push_back(L.name + "/" + w.name + ":0");
  return names;
}

// Keras' save_weights_to_hdf5_group: the layer list and one group per layer.
void write_layers(const h5::Group& g, const std::vector<keras::Layer>& layers) {
  g.write_string("backend", keras::kBackend);
  g.write_string("keras_version", keras::kKerasVersion);
  std::vector<std::string> names;
  for (const keras::Layer& L : layers) names.push_back(L.name);
  g.write_string_list("layer_names", names);
  for (const keras::Layer& L : layers) {
    const h5::Group lg = g.create_group(L.name);
    const std::vector<std::string> wn = weight_names(L);
    lg.write_string_list("weight_names", wn);
    for (size_t k = 0; k < L.weights.size(); ++k) {
      const keras::Weight& w = L.weights[k];
      const std::vector<float> values = keras::to_keras(w);
      if (w.dtype == keras::Dtype::F32) {
        lg.write_floats(wn[k], w.file_shape, values.data());
        continue;
      }
      // A quantized layer's codes: integers in the dataset type's range.
      const bool i8 = w.dtype == keras::Dtype::I8;
      const float lo = i8 ? -128.f : 0.f, hi = i8 ? 127.f : 255.f;
      for (float v : values)
        MAAS_CHECK(v >= lo && v <= hi && v == std::nearbyint(v),
                   where(g) << ": layer '" << L.name << "': " << w.name << " holds " << v << ", not an integer in ["
                            << lo << ", " << hi << "]");
      if (i8) {
        const std::vector<int8_t> codes(values.begin(), values.end());
        lg.write_int8s(wn[k], w.file_shape, codes.data());
      } else {
        const std::vector<int32_t> codes(values.begin(), values.end());
        lg.write_int32s(wn[k], w.file_shape, codes.data());
      }
    }
  }
}

// Keras' save_model_to_hdf5 without the optimizer, and the model's metadata.
void write_model(const h5::Group& root, const nn::Network& model, const std::vector<keras::Layer>& layers,
                 const std::string& config) {
  root.write_string("keras_version", keras::kKerasVersion);
  root.write_string("backend", keras::kBackend);
  root.write_string("model_config", config);
  if (!model.metadata().empty()) root.write_string("maas_metadata", keras::json(model.metadata()).dump());
  write_layers(root.create_group("model_weights"), layers);
}

// The metadata a file's root holds (none when it has no "maas_metadata").
std::map<std::string, std::string> read_metadata(const h5::Group& root) {
  if (!root.has_attribute("maas_metadata")) return {};
  const std::string text = root.read_string("maas_metadata");
  keras::json j;
  try {
    j = keras::json::parse(text);
  } catch (const keras::json::exception& e) {
    MAAS_FAIL(where(root) << ": maas_metadata is not JSON: " << e.what());
  }
  MAAS_CHECK(j.is_object(), where(root) << ": maas_metadata is not a JSON object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    MAAS_CHECK(value.is_string(), where(root) << ": maas_metadata's '" << keras::brief(key) << "' is not a string");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// The group holding layer_names: the root for save_weights files, else /model_weights.
h5::Group weights_group(const h5::Group& root) {
  if (root.has_attribute("layer_names") || root.has_attribute("layer_names0")) return root;
  if (root.has_group("model_weights")) return root.group("model_weights");
  MAAS_FAIL(where(root) << ": holds no model weights (no layer_names attribute, no model_weights group): not a file "
                           "of save_model, save_weights, save_checkpoint or Keras");
}

struct FileLayer {
  std::string name;
  std::vector<std::string> weight_names;
};

std::vector<FileLayer> file_layers(const h5::Group& g) {
  std::vector<FileLayer> out;
  for (const std::string& name : g.read_string_list("layer_names")) {
    MAAS_CHECK(g.has_group(name), where(g) << ": layer_names lists '" << name << "' but " << g.path()
                                           << " has no group of that name");
    const h5::Group lg = g.group(name);
    FileLayer f;
    f.name = name;
    if (lg.has_attribute("weight_names") || lg.has_attribute("weight_names0"))
      f.weight_names = lg.read_string_list("weight_names");
    out.push_back(std::move(f));
  }
  return out;
}

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// Weights read from a file, checked against the model, not yet assigned.
struct PendingWeights {
  std::vector<std::pair<const keras::Weight*, std::vector<float>>> values;
  void commit() const {
    for (const auto& [w, v] : values) keras::from_keras(*w, v);
  }
};

// The file's layers matched to the model's, with every shape checked and no
// data read yet: pairs of (index into the model's layer list, index into file).
struct MatchedWeights {
  h5::Group g;
  std::vector<FileLayer> file;
  std::vector<std::pair<size_t, size_t>> pairs;
};

// Matches the file's layers to the model's (`layers` may come from
// planned_layers: only names and file shapes are used) and checks every
// shape (and the class, when the file has a model_config) from the
// datasets' headers. Throws listing every mismatch; reads no weight.
// How a file's layers are paired with the model's: the i-th with weights to
// the i-th (Keras' default); by name, model layers the file lacks keeping
// their weights; or by name, every layer with weights on both sides paired.
enum class Match { ByOrder, ByName, AllByName };

MatchedWeights match_weights(const h5::Group& root, const std::vector<keras::Layer>& layers, Match mode) {
  const bool by_name = mode != Match::ByOrder;
  MatchedWeights matched;
  matched.g = weights_group(root);
  const h5::Group& g = matched.g;
  matched.file = file_layers(g);
  const std::vector<FileLayer>& file = matched.file;
  std::map<std::string, std::string> file_class;
  if (root.has_attribute("model_config")) {
    try {
      for (const keras::ConfigLayer& L : keras::config_layers(root.read_string("model_config"), where(root)))
        file_class[L.name] = L.class_name;
    } catch (const Error&) {
      // Weights can load without the architecture; load_model reports a bad config.
    }
  }

  std::vector<const keras::Layer*> model_w;
  std::vector<const FileLayer*> file_w;
  for (const keras::Layer& L : layers)
    if (!L.weights.empty()) model_w.push_back(&L);
  for (const FileLayer& f : file)
    if (!f.weight_names.empty()) file_w.push_back(&f);

  std::vector<std::pair<const keras::Layer*, const FileLayer*>> pairs;
  if (by_name) {
    std::map<std::string, const FileLayer*> by;
    for (const FileLayer& f : file) by.emplace(f.name, &f);
    for (const keras::Layer* L : model_w) {
      const auto it = by.find(L->name);
      if (it != by.end()) pairs.emplace_back(L, it->second);
    }
    if (mode == Match::AllByName) {
      std::set<std::string> model_names;
      std::vector<std::string> missing, extra;
      for (const keras::Layer* L : model_w) {
        model_names.insert(L->name);
        if (by.count(L->name) == 0) missing.push_back(L->name + " (" + L->class_name + ")");
      }
      for (const FileLayer* f : file_w)
        if (model_names.count(f->name) == 0) extra.push_back(f->name);
      MAAS_CHECK(missing.empty() && extra.empty(),
                 where(root) << ": the weights do not match the model_config's layers"
                             << (missing.empty() ? "" : "; no weights for " + join_names(missing))
                             << (extra.empty() ? "" : "; weights of layers the model lacks: " + join_names(extra)));
    }
    if (pairs.empty() && mode == Match::ByName) {
      std::vector<std::string> mn, fnames;
      for (const keras::Layer* L : model_w) mn.push_back(L->name);
      for (const FileLayer* f : file_w) fnames.push_back(f->name);
      MAAS_FAIL(where(root) << ": no layer with weights has a name found in the file (model: " << join_names(mn)
                            << "; file: " << join_names(fnames) << ")");
    }
  } else {
    if (model_w.size() != file_w.size()) {
      std::vector<std::string> mn, fnames;
      for (const keras::Layer* L : model_w) mn.push_back(L->name + " (" + L->class_name + ")");
      for (const FileLayer* f : file_w) fnames.push_back(f->name);
      MAAS_FAIL(where(root) << ": the file has " << file_w.size() << " layers with weights (" << join_names(fnames)
                            << ") but the model has " << model_w.size() << " (" << join_names(mn)
                            << "): a different architecture");
    }
    for (size_t i = 0; i < model_w.size(); ++i) pairs.emplace_back(model_w[i], file_w[i]);
  }

  std::vector<std::string> problems;
  for (const auto& [L, f] : pairs) {
    const std::string layer = "layer '" + L->name + "' (" + L->class_name + ")";
    const std::string in_file = f->name == L->name ? "" : " (the file's '" + f->name + "')";
    const auto cls = file_class.find(f->name);
    if (cls != file_class.end() && cls->second != L->class_name) {
      problems.push_back(layer + ": the file's '" + f->name + "' is a " + cls->second);
      continue;
    }
    if (f->weight_names.size() != L->weights.size()) {
      std::vector<std::string> expected;
      for (const keras::Weight& w : L->weights) expected.push_back(w.name);
      problems.push_back(layer + ": expected " + std::to_string(L->weights.size()) + " weights (" +
                         join_names(expected) + "), the file has " + std::to_string(f->weight_names.size()) + " (" +
                         join_names(f->weight_names) + ")" + in_file);
      continue;
    }
    const h5::Group lg = g.group(f->name);
    for (size_t k = 0; k < L->weights.size(); ++k) {
      const keras::Weight& w = L->weights[k];
      const Shape found = lg.dataset_shape(f->weight_names[k]);
      if (found != w.file_shape)
        problems.push_back(layer + ": " + w.name + " expected " + keras::shape_text(w.file_shape) + ", found " +
                           keras::shape_text(found) + " in '" + f->weight_names[k] + "'" + in_file);
    }
  }
  if (!problems.empty()) {
    std::string msg = where(root) + ": the weights do not fit the model:";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }

  for (const auto& [L, f] : pairs)
    matched.pairs.emplace_back(static_cast<size_t>(L - layers.data()), static_cast<size_t>(f - file.data()));
  return matched;
}

// Reads the matched weights for `layers`, the built model's list (parallel
// to the one matched).
PendingWeights read_matched(const MatchedWeights& m, const std::vector<keras::Layer>& layers) {
  PendingWeights pending;
  for (const auto& [li, fi] : m.pairs) {
    const keras::Layer& L = layers.at(li);
    const FileLayer& f = m.file.at(fi);
    const h5::Group lg = m.g.group(f.name);
    for (size_t k = 0; k < L.weights.size(); ++k)
      pending.values.emplace_back(&L.weights[k], lg.read_floats(f.weight_names[k]));
  }
  return pending;
}

PendingWeights read_weights(const h5::Group& root, const std::vector<keras::Layer>& layers, bool by_name) {
  return read_matched(match_weights(root, layers, by_name ? Match::ByName : Match::ByOrder), layers);
}

// ---- Training position ---------------------------------------------------------

// Bounds of what a checkpoint may say: no run has 2^31 epochs, and steps
// past 2^53 are not exact in the doubles schedulers compute with.
constexpr int64_t kMaxEpoch = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxStep = int64_t{1} << 53;

// Throws unless 0 <= value <= max, naming `what`.
void check_count(int64_t value, int64_t max, const char* what, const std::string& where_) {
  MAAS_CHECK(value >= 0 && value <= max, where_ << ": " << what << " " << value << " is out of range [0, " << max << "]");
}

// ---- Optimizer state ---------------------------------------------------------

// No maas optimizer keeps more than 4 buffers per parameter (Adam with
// amsgrad); the bound leaves room and caps what a file can make us read.
constexpr size_t kMaxBuffersPerParameter = 8;

// Checks, from the datasets' headers alone, that every optimizer dataset is
// named "<i>/<buffer>" for a parameter i of `optimizer`, appears once and
// has parameter i's shape or is a scalar: what Optimizer::load_state()
// accepts, so nothing larger than the model's own state is ever read.
void check_optimizer_shapes(const h5::Group& og, const std::vector<std::string>& names,
                            const optim::Optimizer& optimizer, const std::string& here) {
  const std::vector<Tensor>& params = optimizer.params();
  MAAS_CHECK(names.size() <= kMaxBuffersPerParameter * params.size(),
             here << ": the checkpoint holds " << names.size() << " optimizer buffers for " << params.size()
                  << " parameters (at most " << kMaxBuffersPerParameter << " each)");
  std::set<std::string> seen;
  for (const std::string& name : names) {
    const std::string shown = "optimizer state '" + keras::brief(name) + "'";
    const size_t slash = name.find('/');
    size_t index = 0;
    bool numeric = slash != std::string::npos && slash > 0 && slash <= 9;
    for (size_t c = 0; numeric && c < slash; ++c) {
      numeric = name[c] >= '0' && name[c] <= '9';
      index = index * 10 + static_cast<size_t>(name[c] - '0');
    }
    MAAS_CHECK(numeric, here << ": " << shown << " is not of the form '<parameter index>/<buffer>'");
    MAAS_CHECK(index < params.size(), here << ": " << shown << " names parameter " << index << " but the "
                                           << optimizer.name() << " has " << params.size() << " parameters");
    MAAS_CHECK(seen.insert(name).second, here << ": " << shown << " appears twice");
    const Shape found = og.dataset_shape(name);
    MAAS_CHECK(found.empty() || found == params[index].shape(),
               here << ": " << shown << " has shape " << keras::shape_text(found) << " but parameter " << index
                    << " has shape " << keras::shape_text(params[index].shape()) << " (a scalar is also accepted)");
  }
}

// ---- Generators ---------------------------------------------------------------

std::string engine_text(const std::mt19937_64& e) {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << e;
  return os.str();
}

// Reads a state engine_text() wrote, strictly: exactly 312 words and the
// position, in decimal, single spaces, nothing else; the words not all zero
// (a generator that only gives zeros); the text exactly what the engine
// writes back. Anything else is damage, and resuming with it would
// silently change the run.
std::mt19937_64 engine_from(const std::string& text, const std::string& whose, const std::string& where_) {
  const std::string bad = where_ + ": the saved state of " + whose + " is not a std::mt19937_64 state";
  constexpr size_t kWords = std::mt19937_64::state_size;
  size_t tokens = 0, start = 0;
  bool all_zero = true;
  unsigned long long position = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string token = text.substr(start, end - start);
    MAAS_CHECK(!token.empty() && token.size() <= 20 && token.find_first_not_of("0123456789") == std::string::npos,
               bad << " (token " << tokens << " is '" << keras::brief(token, 24)
                   << "', not a decimal number; expected " << kWords << " words and a position)");
    errno = 0;
    const unsigned long long v = std::strtoull(token.c_str(), nullptr, 10);
    MAAS_CHECK(errno != ERANGE, bad << " (token " << tokens << " exceeds 64 bits)");
    if (tokens < kWords && v != 0) all_zero = false;
    if (tokens == kWords) position = v;
    ++tokens;
    MAAS_CHECK(tokens <= kWords + 1, bad << " (more than " << kWords << " words and a position)");
    start = end + 1;
  }
  MAAS_CHECK(tokens == kWords + 1, bad << " (" << tokens << " numbers, expected " << kWords << " words and a position)");
  MAAS_CHECK(position <= kWords, bad << " (position " << position << " exceeds " << kWords << ")");
  MAAS_CHECK(!all_zero, bad << " (every word is zero)");
  std::istringstream is(text);
  is.imbue(std::locale::classic());
  std::mt19937_64 e;
  is >> e;
  MAAS_CHECK(!is.fail() && engine_text(e) == text, bad << " (it does not read back as written)");
  return e;
}

}  // namespace

// ---- Public API -------------------------------------------------------------------

void save_model(const nn::Network& model, const std::string& path) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const std::string who = "save_model";
  const std::vector<keras::Layer> layers = keras::layers_of(model, who + ": " + path);
  const std::string config = keras::model_config(model, layers, who + ": " + path);
  write_atomically(path, who, [&](const h5::Group& root) { write_model(root, model, layers, config); });
}

void save_weights(const nn::Network& model, const std::string& path) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const std::string who = "save_weights";
  const std::vector<keras::Layer> layers = keras::layers_of(model, who + ": " + path);
  write_atomically(path, who, [&](const h5::Group& root) { write_layers(root, layers); });
}

std::unique_ptr<nn::Network> load_model(const std::string& path) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const h5::File file = h5::File::open(path, {"load_model", path});
  const h5::Group root = file.root();
  MAAS_CHECK(root.has_attribute("model_config"),
             "load_model: " << path
                            << ": has no model_config: it holds weights only (save_weights); build the model and "
                               "call load_weights");
  // Every declared shape is checked against the file before a weight is
  // allocated: a config asking for a huge layer fails here, cheaply.
  keras::ConfigModel c = keras::model_from_config(root.read_string("model_config"), where(root));
  // A functional model's layers are the file's by name (Keras may list them
  // in another order); a Sequential's by position, as Keras reads them.
  const MatchedWeights matched = match_weights(root, keras::planned_layers(*c.model, c.input_shapes, where(root)),
                                               c.functional ? Match::AllByName : Match::ByOrder);
  {
    const nn::SkipInitialization skip;  // every weight is read from the file next
    c.model->build_many(c.input_shapes);
  }
  const std::vector<keras::Layer> layers = keras::layers_of(*c.model, where(root));
  read_matched(matched, layers).commit();
  finish_loading(*c.model, where(root));
  c.model->metadata() = read_metadata(root);
  return std::move(c.model);
}

void load_weights(nn::Network& model, const std::string& path, const LoadWeightsOptions& options) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const std::string who = "load_weights";
  const std::vector<keras::Layer> layers = keras::layers_of(model, who + ": " + path);
  const h5::File file = h5::File::open(path, {who, path});
  read_weights(file.root(), layers, options.by_name).commit();
  finish_loading(model, where(file.root()));
}

TrainingState training_state(const Trainer& trainer, const optim::LRScheduler* scheduler) {
  TrainingState s;
  s.epoch = trainer.epochs() == 0 ? 0 : trainer.epoch() + 1;
  s.global_step = trainer.global_step();
  if (scheduler != nullptr) {
    s.scheduler_name = scheduler->name();
    s.scheduler = scheduler->state();
  }
  return s;
}

void save_checkpoint(const std::string& path, const nn::Network& model, const optim::Optimizer& optimizer,
                     const TrainingState& state) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const std::string who = "save_checkpoint";
  const std::vector<keras::Layer> layers = keras::layers_of(model, who + ": " + path);
  const std::string config = keras::model_config(model, layers, who + ": " + path);
  std::set<const detail::Storage*> storages;  // the model's parameters, by storage (a set: linear in the layers)
  for (const Tensor& p : model.parameters()) storages.insert(p.impl()->storage.get());
  for (size_t i = 0; i < optimizer.params().size(); ++i)
    MAAS_CHECK(storages.count(optimizer.params()[i].impl()->storage.get()) != 0,
               who << ": " << path << ": the optimizer's parameter " << i << " is not a parameter of the model");
  check_count(state.epoch, kMaxEpoch, "epoch", who + ": " + path);
  check_count(state.global_step, kMaxStep, "global_step", who + ": " + path);
  const optim::NamedTensors opt_state = optimizer.state();

  write_atomically(path, who, [&](const h5::Group& root) {
    write_model(root, model, layers, config);

    const h5::Group og = root.create_group("optimizer_weights");
    og.write_string("optimizer", optimizer.name());
    og.write_int("step_count", optimizer.step_count());
    og.write_double("lr", static_cast<double>(optimizer.lr()));
    std::vector<std::string> names;
    for (const auto& [name, t] : opt_state) names.push_back(name);
    og.write_string_list("weight_names", names);
    for (const auto& [name, t] : opt_state) og.write_floats(name, t.shape(), t.data());

    const h5::Group ts = root.create_group("training_state");
    ts.write_int("epoch", state.epoch);
    ts.write_int("global_step", state.global_step);
    ts.write_string("scheduler", state.scheduler_name);
    std::vector<std::string> keys;
    std::vector<double> values;
    for (const auto& [k, v] : state.scheduler) {
      keys.push_back(k);
      values.push_back(v);
    }
    ts.write_string_list("scheduler_names", keys);
    ts.write_doubles("scheduler_values", values);

    const h5::Group rng = ts.create_group("rng");
    rng.write_string("default_generator", engine_text(default_generator().engine()));
    for (const auto& l : model.layers())
      if (Generator* g = l->random_state()) rng.write_string(l->name(), engine_text(g->engine()));
  });
}

namespace {

// The "rate" a layer's own Keras config holds (a Dropout's), or -1 when it
// has none or its config cannot be written.
double config_rate(const keras::Layer& layer, const std::string& who) {
  try {
    const auto c = keras::layer_config(layer, who);
    const auto it = c.find("rate");
    return it != c.end() && it->is_number() ? it->template get<double>() : -1.0;
  } catch (const std::exception&) {
    return -1.0;
  }
}

// load_checkpoint; with `check_scheduler`, `scheduler` (null: the run has
// none) must be the checkpoint's and gets its state.
TrainingState load_checkpoint_impl(const std::string& path, nn::Network& model, optim::Optimizer& optimizer,
                                   bool check_scheduler, optim::LRScheduler* scheduler) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  const std::string who = "load_checkpoint";
  const std::vector<keras::Layer> layers = keras::layers_of(model, who + ": " + path);
  const h5::File file = h5::File::open(path, {who, path});
  const h5::Group root = file.root();
  const std::string here = where(root);
  MAAS_CHECK(root.has_attribute("model_config") && root.has_group("optimizer_weights") &&
                 root.has_group("training_state"),
             here << ": not a training checkpoint (it lacks "
                  << (!root.has_attribute("model_config") ? "model_config"
                      : !root.has_group("optimizer_weights") ? "optimizer_weights"
                                                               : "training_state")
                  << "); files of save_model or save_weights load with load_model or load_weights");

  // The architecture: the same layers (names and classes) in the same order.
  const auto saved = keras::config_layers(root.read_string("model_config"), here);
  std::vector<std::string> problems;
  for (size_t i = 0; i < std::max(saved.size(), layers.size()) && problems.size() < 20; ++i) {
    const std::string in_file = i < saved.size() ? "'" + keras::brief(saved[i].name) + "' (" +
                                                       keras::brief(saved[i].class_name) + ")"
                                                 : "nothing";
    const std::string in_model =
        i < layers.size() ? "'" + keras::brief(layers[i].name) + "' (" + layers[i].class_name + ")" : "nothing";
    if (in_file != in_model) {
      problems.push_back("layer " + std::to_string(i) + " is " + in_file + " in the checkpoint but " + in_model +
                         " in the model");
      continue;
    }
    // The run must drop what the checkpointed run dropped: a changed rate
    // would silently change the training that resumes.
    const double rate = config_rate(layers[i], here);
    if (rate >= 0 && static_cast<float>(saved[i].rate) != static_cast<float>(rate)) {
      std::ostringstream os;
      os << "layer " << i << " " << in_model << " has rate " << static_cast<float>(rate)
         << " but the checkpoint's has " << saved[i].rate;
      problems.push_back(os.str());
    }
  }
  if (!problems.empty()) {
    std::string msg = here + ": the checkpoint holds a different architecture:";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  const PendingWeights weights = read_weights(root, layers, false);

  // Optimizer.
  const h5::Group og = root.group("optimizer_weights");
  const std::string opt_name = og.read_string("optimizer");
  MAAS_CHECK(opt_name == optimizer.name(),
             here << ": the checkpoint holds the state of a " << opt_name << " optimizer, not of " << optimizer.name());
  const std::vector<std::string> opt_names = og.read_string_list("weight_names");
  check_optimizer_shapes(og, opt_names, optimizer, here);
  optim::NamedTensors opt_state;
  for (const std::string& name : opt_names) {
    Shape shape;
    const std::vector<float> v = og.read_floats(name, &shape);
    opt_state.emplace_back(name, Tensor::from_vector(v, shape));
  }
  const int64_t step_count = og.read_int("step_count");
  const double lr = og.read_double("lr");
  MAAS_CHECK(std::isfinite(lr) && lr >= 0.0 && lr <= std::numeric_limits<float>::max(),
             here << ": the optimizer's lr " << lr << " is invalid");
  check_count(step_count, kMaxStep, "the optimizer's step_count", here);

  // Training position and generators.
  const h5::Group ts = root.group("training_state");
  TrainingState state;
  state.epoch = ts.read_int("epoch");
  state.global_step = ts.read_int("global_step");
  check_count(state.epoch, kMaxEpoch, "epoch", here);
  check_count(state.global_step, kMaxStep, "global_step", here);
  state.scheduler_name = ts.read_string("scheduler");
  const std::vector<std::string> keys = ts.read_string_list("scheduler_names");
  const std::vector<double> values = ts.read_doubles("scheduler_values");
  MAAS_CHECK(keys.size() == values.size(), here << ": the scheduler state has " << keys.size() << " names but "
                                                << values.size() << " values");
  for (size_t i = 0; i < keys.size(); ++i) state.scheduler.emplace_back(keys[i], values[i]);
  if (check_scheduler) {
    const std::string mine = scheduler != nullptr ? scheduler->name() : "";
    auto shown = [](const std::string& n) { return n.empty() ? std::string("no scheduler") : "a " + keras::brief(n); };
    MAAS_CHECK(state.scheduler_name == mine, here << ": the checkpoint was written by a run with "
                                                  << shown(state.scheduler_name) << ", this run has " << shown(mine));
  }

  const h5::Group rng = ts.group("rng");
  const std::mt19937_64 default_engine =
      engine_from(rng.read_string("default_generator"), "default_generator()", here);
  std::vector<std::pair<Generator*, std::mt19937_64>> layer_engines;
  for (const auto& l : model.layers())
    if (Generator* g = l->random_state()) {
      const std::string whose = l->type_name() + " '" + l->name() + "'";
      MAAS_CHECK(rng.has_attribute(l->name()), here << ": no generator state for " << whose);
      layer_engines.emplace_back(g, engine_from(rng.read_string(l->name()), whose, here));
    }

  // Everything is read and checked: apply. The scheduler and the optimizer
  // first (each checks its state and changes nothing when it throws; the
  // scheduler is put back if the optimizer refuses), then the rest.
  const float lr_before = optimizer.lr();
  optim::NamedNumbers scheduler_before;
  if (check_scheduler && scheduler != nullptr) {
    scheduler_before = scheduler->state();
    try {
      scheduler->load_state(state.scheduler);
    } catch (const Error& e) {
      MAAS_FAIL(here << ": the scheduler state does not fit: " << e.what());
    }
  }
  try {
    optimizer.load_state(opt_state, step_count);
    optimizer.set_lr(static_cast<float>(lr));
  } catch (const Error& e) {
    if (check_scheduler && scheduler != nullptr) scheduler->load_state(scheduler_before);
    optimizer.set_lr(lr_before);
    MAAS_FAIL(here << ": the optimizer state does not fit: " << e.what());
  }
  weights.commit();
  default_generator().engine() = default_engine;
  for (auto& [g, e] : layer_engines) g->engine() = e;
  return state;
}

}  // namespace

TrainingState load_checkpoint(const std::string& path, nn::Network& model, optim::Optimizer& optimizer) {
  return load_checkpoint_impl(path, model, optimizer, false, nullptr);
}

TrainingState load_checkpoint(const std::string& path, nn::Network& model, optim::Optimizer& optimizer,
                              optim::LRScheduler* scheduler) {
  return load_checkpoint_impl(path, model, optimizer, true, scheduler);
}

CheckpointWriter checkpoint_writer(const Trainer& trainer, const optim::LRScheduler* scheduler) {
  return [&trainer, scheduler](const std::string& path) {
    const auto* model = dynamic_cast<const nn::Network*>(&trainer.model());
    MAAS_CHECK(model != nullptr, "checkpoint_writer: the trainer's model is a " << trainer.model().type_name()
                                                                                << ", not a Sequential or Model");
    save_checkpoint(path, *model, trainer.optimizer(), training_state(trainer, scheduler));
  };
}

CheckpointWriter model_writer(const nn::Network& model) {
  return [&model](const std::string& path) { save_model(model, path); };
}

namespace detail {
void set_checkpoint_write_hook(std::function<void(const std::string& stage)> hook) {
  set_atomic_write_hook(std::move(hook));
}
void set_hdf5_read_timeout(double seconds) {
  const std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::set_read_timeout(seconds);
}
}  // namespace detail

}  // namespace maas
