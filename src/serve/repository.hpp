// ModelRepository: which models and versions are loaded, and their loading,
// reloading and unloading. It knows models, files and batchers; no HTTP.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "maas/nn/network.hpp"
#include "serve/batcher.hpp"
#include "serve/generation.hpp"
#include "serve/log.hpp"
#include "serve/metrics.hpp"

namespace maas::serve {

// One loaded model version: the network, its signature in Keras' terms and
// its batcher, or for a language model its generation engine. Shared by the requests that use it: it stays alive until the
// last of them is answered, even after it is replaced.
struct ServedModel {
  std::string name;
  int64_t version = 1;
  std::string path;
  std::shared_ptr<nn::Network> model;  // a Sequential or functional Model
  Shape input;             // per-sample, maas layout ([C, H, W] or [D])
  Shape output;            // per-sample, maas layout
  Shape keras_input;       // per-sample, Keras layout ([H, W, C] for images)
  Shape keras_output;
  std::unique_ptr<Batcher> batcher;              // null for a language model
  std::unique_ptr<GenerationEngine> generation;  // a language model's; null otherwise
};

class ModelRepository {
 public:
  // A model whose metadata holds a "tokenizer" (data::CharTokenizer JSON,
  // as examples/gpt --save writes) and that nn::Decoder can run step by step
  // is served as a language model, with `generation`'s engine; any other
  // through a batcher.
  ModelRepository(BatchOptions batch, Metrics& metrics, const Log& log, GenerationOptions generation = {});
  ~ModelRepository();  // stops polling; batchers finish what is queued

  // Loads `path` as version 1 of `name`; throws maas::Error if it fails.
  void add_file(const std::string& name, const std::string& path);
  // Loads DIR/NAME/VERSION/model.h5 (every version); throws maas::Error if
  // the folder is missing or nothing loads. Then polls it every poll_ms.
  void add_dir(const std::string& dir, int64_t poll_ms);
  // One look at the model folder: loads new versions (and changed files),
  // unloads removed ones. Called by the polling thread; public for tests.
  void poll();

  // The version asked for, or the highest when version <= 0; null if none.
  std::shared_ptr<ServedModel> find(const std::string& name, int64_t version = 0) const;
  bool has(const std::string& name) const;
  std::vector<int64_t> versions(const std::string& name) const;
  std::vector<std::string> names() const;
  // The first model given (--model) or the first name in the folder.
  std::string default_name() const;

 private:
  std::shared_ptr<ServedModel> load(const std::string& name, int64_t version, const std::string& path);

  BatchOptions batch_;
  GenerationOptions generation_;
  Metrics& metrics_;
  const Log& log_;
  mutable std::mutex mutex_;
  std::map<std::string, std::map<int64_t, std::shared_ptr<ServedModel>>> models_;
  std::vector<std::string> order_;
  // model_dir: what each file looked like when last tried (size, mtime).
  std::string dir_;
  std::map<std::string, std::pair<uintmax_t, int64_t>> seen_;
  std::mutex poll_mutex_;
  std::thread poller_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace maas::serve
