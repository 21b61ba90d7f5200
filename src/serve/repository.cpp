// ModelRepository: loading models from files and folders, and swapping
// versions while requests are served.
#include "serve/repository.hpp"

#include <algorithm>
#include <filesystem>

#include "maas/autograd.hpp"
#include "maas/checkpoint.hpp"
#include "maas/data/text.hpp"
#include "maas/error.hpp"
#include "maas/nn/decode.hpp"

namespace maas::serve {

namespace fs = std::filesystem;

namespace {

// [C, H, W] (maas) is [H, W, C] in Keras; other shapes are the same.
Shape to_keras(const Shape& s) {
  if (s.size() == 3) return {s[1], s[2], s[0]};
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::pair<uintmax_t, int64_t> file_stamp(const fs::path& p) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  const auto t = fs::last_write_time(p, ec);
  return {ec ? 0 : size, ec ? 0 : static_cast<int64_t>(t.time_since_epoch().count())};
}

// Whether nn::Decoder runs `model` step by step (a causal language model).
bool decodable(nn::Network& model) {
  try {
    nn::Decoder decoder(model);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

ModelRepository::ModelRepository(BatchOptions batch, Metrics& metrics, const Log& log, GenerationOptions generation)
    : batch_(batch), generation_(generation), metrics_(metrics), log_(log) {}

ModelRepository::~ModelRepository() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::shared_ptr<ServedModel> ModelRepository::load(const std::string& name, int64_t version, const std::string& path) {
  auto m = std::make_shared<ServedModel>();
  m->name = name;
  m->version = version;
  m->path = path;
  m->model = std::shared_ptr<nn::Network>(load_model(path).release());
  m->model->eval();
  const std::vector<Shape> inputs = m->model->input_shapes(), outputs = m->model->output_shapes();
  MAAS_CHECK(inputs.size() == 1 && outputs.size() == 1,
             path << ": the model has " << inputs.size() << " inputs and " << outputs.size()
                  << " outputs; maas-serve serves models of one input and one output");
  m->input = inputs[0];
  MAAS_CHECK(!m->input.empty() && m->model->size() > 0,
             path << ": the model has no input shape or no layers, so it cannot be served");
  m->output = outputs[0];
  m->keras_input = to_keras(m->input);
  m->keras_output = to_keras(m->output);
  const auto tokenizer = m->model->metadata().find("tokenizer");
  if (tokenizer != m->model->metadata().end() && decodable(*m->model)) {
    m->generation = std::make_unique<GenerationEngine>(m->model, data::CharTokenizer::from_json(tokenizer->second),
                                                       generation_, metrics_, name);
    return m;
  }
  {  // one sample through the model: a file that loads but cannot run is refused here
    NoGradGuard no_grad;
    Shape s = m->input;
    s.insert(s.begin(), 1);
    (void)(*m->model)(Tensor::zeros(s));
  }
  std::shared_ptr<nn::Network> net = m->model;
  m->batcher = std::make_unique<Batcher>([net](const Tensor& x) { return (*net)(x); }, batch_, metrics_, name);
  return m;
}

void ModelRepository::add_file(const std::string& name, const std::string& path) {
  MAAS_CHECK(!name.empty(), "--model " << name << "=" << path << ": the model needs a name");
  MAAS_CHECK(!has(name), "model '" << name << "' is given twice");
  auto m = load(name, 1, path);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    models_[name][1] = std::move(m);
    order_.push_back(name);
  }
  metrics_.add("maas_model_loads_total", labels({{"model", name}, {"event", "load"}}));
  metrics_.set("maas_model_versions", labels({{"model", name}}), 1);
  log_.event("info", "loaded model '" + name + "' version 1 from " + path,
             "\"model\":" + json_string(name) + ",\"version\":1");
}

void ModelRepository::add_dir(const std::string& dir, int64_t poll_ms) {
  std::error_code ec;
  MAAS_CHECK(fs::is_directory(dir, ec), "--model-dir " << dir << ": not a folder");
  dir_ = dir;
  poll();
  MAAS_CHECK(!names().empty(), "--model-dir " << dir << ": no model loaded (expected " << dir
                                              << "/NAME/VERSION/model.h5, VERSION a number)");
  if (poll_ms > 0) {
    poller_ = std::thread([this, poll_ms] {
      std::unique_lock<std::mutex> lock(stop_mutex_);
      while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(poll_ms), [&] { return stopping_; })) {
        lock.unlock();
        try {
          poll();
        } catch (const std::exception& e) {
          log_.event("error", std::string("model folder poll failed: ") + e.what());
        }
        lock.lock();
      }
    });
  }
}

void ModelRepository::poll() {
  std::lock_guard<std::mutex> poll_lock(poll_mutex_);
  if (dir_.empty()) return;
  // What is on disk now: name -> version -> file.
  std::map<std::string, std::map<int64_t, fs::path>> disk;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec2;
    for (fs::directory_iterator v(it->path(), ec2), vend; !ec2 && v != vend; v.increment(ec2)) {
      const std::string ver = v->path().filename().string();
      if (!all_digits(ver) || !v->is_directory(ec2)) continue;
      const fs::path file = v->path() / "model.h5";
      if (fs::is_regular_file(file, ec2)) disk[name][std::stoll(ver)] = file;
    }
  }
  for (const auto& [name, versions] : disk) {
    for (const auto& [version, file] : versions) {
      const auto stamp = file_stamp(file);
      const std::string key = file.string();
      const auto seen = seen_.find(key);
      if (seen != seen_.end() && seen->second == stamp) continue;  // tried as it is now
      seen_[key] = stamp;
      const bool existed = find(name, version) != nullptr;
      const std::string fields = "\"model\":" + json_string(name) + ",\"version\":" + std::to_string(version);
      try {
        auto m = load(name, version, file.string());
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (models_.find(name) == models_.end()) order_.push_back(name);
          models_[name][version] = std::move(m);
          metrics_.set("maas_model_versions", labels({{"model", name}}), static_cast<double>(models_[name].size()));
        }
        metrics_.add("maas_model_loads_total", labels({{"model", name}, {"event", existed ? "reload" : "load"}}));
        log_.event("info", "loaded model '" + name + "' version " + std::to_string(version) + " from " + key, fields);
      } catch (const std::exception& e) {
        metrics_.add("maas_model_loads_total", labels({{"model", name}, {"event", "load_failed"}}));
        log_.event("error",
                   "model '" + name + "' version " + std::to_string(version) + " did not load (" +
                       (existed ? "the loaded copy keeps serving" : "not served") + "): " + e.what(),
                   fields);
      }
    }
  }
  // Versions whose folder is gone.
  std::vector<std::shared_ptr<ServedModel>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [name, versions] : models_) {
      for (auto it = versions.begin(); it != versions.end();) {
        const auto d = disk.find(name);
        if (d == disk.end() || d->second.count(it->first) == 0) {
          seen_.erase(it->second->path);
          dropped.push_back(std::move(it->second));
          it = versions.erase(it);
        } else {
          ++it;
        }
      }
      metrics_.set("maas_model_versions", labels({{"model", name}}), static_cast<double>(versions.size()));
    }
    for (auto it = models_.begin(); it != models_.end();) {
      if (it->second.empty()) {
        order_.erase(std::remove(order_.begin(), order_.end(), it->first), order_.end());
        it = models_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& m : dropped) {
    metrics_.add("maas_model_loads_total", labels({{"model", m->name}, {"event", "unload"}}));
    log_.event("info", "unloaded model '" + m->name + "' version " + std::to_string(m->version) + " (folder removed)",
               "\"model\":" + json_string(m->name) + ",\"version\":" + std::to_string(m->version));
  }
  // `dropped` goes out of scope here; requests still holding a version keep it alive.
}

std::shared_ptr<ServedModel> ModelRepository::find(const std::string& name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) return nullptr;
  if (version <= 0) return it->second.rbegin()->second;
  const auto v = it->second.find(version);
  return v == it->second.end() ? nullptr : v->second;
}

bool ModelRepository::has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return models_.count(name) != 0;
}

std::vector<int64_t> ModelRepository::versions(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> out;
  const auto it = models_.find(name);
  if (it != models_.end())
    for (const auto& [v, m] : it->second) out.push_back(v);
  return out;
}

std::vector<std::string> ModelRepository::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return order_;
}

std::string ModelRepository::default_name() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return order_.empty() ? std::string() : order_.front();
}

}  // namespace maas::serve
