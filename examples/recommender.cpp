// recommender: matrix factorisation of a ratings table, as Simon Funk's
// "SVD" for the Netflix Prize (biased MF, Koren, Bell and Volinsky 2009):
//
//   r(u, i) ~ mu + b_u + b_i + p_u . q_i
//
// with mu the training ratings' mean (a constant), and user factors p_u,
// item factors q_i, user biases b_u and item biases b_i learnt as four
// Embeddings. The loss is Funk's: the squared error of each rating plus
// --l2 times the squared norms of the rows it uses (|p_u|^2 + |q_i|^2 + b_u^2
// + b_i^2), so each user and item is regularised in proportion to its
// ratings; SGD with momentum 0.9 by default, or --optimizer adam. (A weight
// decay of the whole tables instead, the optimizers' weight_decay, shrinks
// the rows a batch does not touch as well: on generated MovieLens-like
// data, 100,000 ratings of rank 8 plus noise, it overfit from epoch 12 on
// and ended at test RMSE 0.936 where Funk's ends at 0.906.)
//
// It reads a ratings file in MovieLens' u.data format (--data: the file, or
// a directory holding u.data), holds out a seeded random fraction of the
// ratings (--test-fraction, 0.2), and reports the RMSE on them after each
// epoch and, at the end, against three baselines:
//   global mean  every rating predicted mu;
//   bias         mu + b_u + b_i, the biases regularised as Koren's baseline
//                estimates (b_i with lambda 25, then b_u with lambda 10);
//   PureSVD      the bias baseline plus the rank-k truncated SVD (Eigen's
//                BDCSVD) of the training matrix centred on it, missing
//                ratings 0 (Cremonesi, Koren and Turrin 2010, centred).
//
//   build/examples/recommender --data data/ml-100k        # MovieLens 100k's u.data
//   build/examples/recommender --data ratings.tsv --factors 50 --l2 0.05 --optimizer adam --lr 3e-3
//   build/examples/recommender --json                     # one JSON object per epoch, then the results
//
// u.data: one rating per line, "user<TAB>item<TAB>rating<TAB>timestamp",
// ids whole numbers (any, mapped to consecutive indices), ratings in
// [--min-rating, --max-rating] (MovieLens' stars: 0.5 to 5 by default). The
// file is read whole, so it is bounded (256 MiB), as are the ids, the
// numbers of users and items (2^24 each, an Embedding's limit), and
// duplicate (user, item) pairs are refused; every error names the file and
// the line.
//
// The model is a Module of its own, MatrixFactorization, taking [N, 2] rows
// of (user, item) indices: a Trainer fits and evaluates it like any model.
// save_model and checkpoints write Sequential models in Keras' layout, which
// has no place for such a module, so --save, --resume and --report are
// refused here.
//
// What this is not: no implicit feedback, no top-N ranking metrics, no
// time dynamics (the timestamps are read and ignored).
#include <Eigen/Dense>
#include <Eigen/SVD>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "common.hpp"

using namespace maas;

namespace {

constexpr int64_t kMaxFileBytes = int64_t{256} << 20;
constexpr int64_t kMaxId = INT32_MAX;
// PureSVD's dense users x items matrix: MovieLens 1M's 6,040 x 3,706 fits.
constexpr int64_t kMaxDenseEntries = int64_t{25} << 20;

struct Ratings {
  std::vector<int64_t> user, item;  // consecutive indices
  std::vector<float> rating;
  int64_t users = 0, items = 0;
  size_t size() const { return rating.size(); }
};

// The u.data file: --data itself, or DIR/u.data.
std::string ratings_path(const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string path = fs::is_directory(data, ec) ? (fs::path(data) / "u.data").string() : data;
  MAAS_CHECK(fs::is_regular_file(path, ec),
             path << ": no such file (MovieLens 100k's u.data: see the README for where to get it)");
  return path;
}

// A whole number in [0, kMaxId] ("", "+1", "1.0" and "1e3" are not).
bool parse_id(const std::string& s, int64_t& out) { return examples::parse_integer(s, 0, kMaxId, out); }

Ratings read_ratings(const std::string& path, double min_rating, double max_rating) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto bytes = static_cast<int64_t>(fs::file_size(path, ec));
  MAAS_CHECK(!ec, path << ": cannot read its size: " << ec.message());
  MAAS_CHECK(bytes <= kMaxFileBytes, path << ": " << bytes << " bytes is more than the " << kMaxFileBytes
                                          << " a ratings file may have here (MovieLens 100k's u.data has 1,979,173)");
  std::ifstream in(path, std::ios::binary);
  MAAS_CHECK(in, path << ": cannot open");
  std::string text(static_cast<size_t>(bytes), '\0');
  in.read(text.data(), bytes);
  MAAS_CHECK(in.gcount() == bytes, path << ": read " << in.gcount() << " of " << bytes << " bytes");

  Ratings r;
  std::unordered_map<int64_t, int64_t> users, items;  // id -> index
  auto index_of = [&](std::unordered_map<int64_t, int64_t>& ids, int64_t id, const char* what, int64_t line) {
    const auto it = ids.find(id);
    if (it != ids.end()) return it->second;
    MAAS_CHECK(static_cast<int64_t>(ids.size()) < kMaxEmbeddingRows,
               path << ":" << line << ": more than " << kMaxEmbeddingRows << " " << what << "s");
    const auto k = static_cast<int64_t>(ids.size());
    ids.emplace(id, k);
    return k;
  };
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string row = text.substr(pos, end - pos);
    pos = end + 1;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    MAAS_CHECK(!row.empty(), path << ":" << line << ": an empty line; u.data has one rating per line");
    std::vector<std::string> f;
    for (size_t a = 0;;) {
      const size_t b = row.find('\t', a);
      f.push_back(row.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos || f.size() > 4) break;
      a = b + 1;
    }
    MAAS_CHECK(f.size() == 4, path << ":" << line << ": " << (f.size() > 4 ? "more than 4" : std::to_string(f.size()))
                                   << " tab-separated fields; u.data's are user, item, rating, timestamp");
    int64_t user = 0, item = 0, stamp = 0;
    MAAS_CHECK(parse_id(f[0], user), path << ":" << line << ": user id '" << f[0].substr(0, 40)
                                          << "' is not a whole number in [0, " << kMaxId << "]");
    MAAS_CHECK(parse_id(f[1], item), path << ":" << line << ": item id '" << f[1].substr(0, 40)
                                          << "' is not a whole number in [0, " << kMaxId << "]");
    double rating = 0;
    MAAS_CHECK(examples::parse_real(f[2], min_rating, max_rating, rating),
               path << ":" << line << ": rating '" << f[2].substr(0, 40) << "' is not a number in [" << min_rating
                    << ", " << max_rating << "] (--min-rating, --max-rating)");
    MAAS_CHECK(examples::parse_integer(f[3], 0, INT64_MAX, stamp),
               path << ":" << line << ": timestamp '" << f[3].substr(0, 40) << "' is not a whole number >= 0");
    r.user.push_back(index_of(users, user, "user", line));
    r.item.push_back(index_of(items, item, "item", line));
    r.rating.push_back(static_cast<float>(rating));
  }
  r.users = static_cast<int64_t>(users.size());
  r.items = static_cast<int64_t>(items.size());
  // Each (user, item) pair once: sort the pairs and look at neighbours.
  std::vector<std::pair<int64_t, int64_t>> pairs(r.size());  // (user * items + item, line)
  for (size_t k = 0; k < r.size(); ++k)
    pairs[k] = {r.user[k] * r.items + r.item[k], static_cast<int64_t>(k) + 1};
  std::sort(pairs.begin(), pairs.end());
  for (size_t k = 1; k < pairs.size(); ++k)
    MAAS_CHECK(pairs[k].first != pairs[k - 1].first, path << ":" << pairs[k].second << ": the user rates the same item "
                                                          << "again (first at line " << pairs[k - 1].second << ")");
  MAAS_CHECK(r.size() >= 10, path << ": " << r.size() << " ratings; at least 10 are needed to train and test");
  return r;
}

// The model: r(u, i) = mu + b_u + b_i + p_u . q_i for rows (u, i) of x [N, 2].
class MatrixFactorization : public nn::Module {
 public:
  MatrixFactorization(int64_t users, int64_t items, int64_t factors, float global_mean)
      : user_factors_(std::make_shared<nn::Embedding>(users, factors)),
        item_factors_(std::make_shared<nn::Embedding>(items, factors)),
        user_bias_(std::make_shared<nn::Embedding>(users, 1)),
        item_bias_(std::make_shared<nn::Embedding>(items, 1)),
        mu_(global_mean) {
    register_module("user_factors", user_factors_);
    register_module("item_factors", item_factors_);
    register_module("user_bias", user_bias_);
    register_module("item_bias", item_bias_);
  }

  Shape compute_output_shape(const Shape& input_shape) const override {
    MAAS_CHECK(input_shape == Shape{2}, "MatrixFactorization: input " << nn::batch_shape_string(input_shape)
                                                                      << " must be (None, 2) rows of (user, item)");
    return {1};
  }
  Shape build(const Shape& input_shape) override {
    Shape out = compute_output_shape(input_shape);
    if (!built()) {
      for (auto& [name, child] : children()) child->build({});
      // Factors N(0, 0.1^2), biases 0, as Funk's: Embedding's U(-0.05, 0.05)
      // starts the factors so near the saddle at 0 that they take many
      // epochs to leave it.
      Generator& gen = default_generator();
      for (const auto* table : {&user_factors_, &item_factors_}) {
        Tensor t = (*table)->embeddings();
        for (int64_t k = 0; k < t.numel(); ++k) t.data()[k] = 0.1f * gen.normal();
      }
      for (const auto* table : {&user_bias_, &item_bias_}) {
        Tensor t = (*table)->embeddings();
        for (int64_t k = 0; k < t.numel(); ++k) t.data()[k] = 0.f;
      }
    }
    mark_built(input_shape);
    return out;
  }
  Tensor forward(const Tensor& x) override {
    MAAS_CHECK(x.defined() && x.dim() == 2 && x.size(1) == 2,
               "MatrixFactorization: input " << (x.defined() ? maas::to_string(x.shape()) : "(undefined)")
                                             << " must be [N, 2] rows of (user, item)");
    if (!built()) build({2});
    const int64_t n = x.size(0);
    Tensor users = Tensor::empty({n}), items = Tensor::empty({n});
    for (int64_t k = 0; k < n; ++k) {
      users.data()[k] = x.data()[2 * k];
      items.data()[k] = x.data()[2 * k + 1];
    }
    const Tensor p = (*user_factors_)(users), q = (*item_factors_)(items);  // [N, k]
    const Tensor bu = (*user_bias_)(users), bi = (*item_bias_)(items);      // [N, 1]
    penalty_ = is_training() && grad_enabled() ? mean(sum(p * p + q * q, 1, true) + bu * bu + bi * bi) : Tensor();
    return sum(p * q, 1, true) + bu + bi + mu_;
  }
  // After a forward pass in training mode: the mean over the batch of
  // |p_u|^2 + |q_i|^2 + b_u^2 + b_i^2, the rows the batch used (part of the
  // graph); undefined after one in evaluation mode.
  const Tensor& penalty() const { return penalty_; }
  std::string type_name() const override { return "MatrixFactorization"; }
  bool samples_independent() const override { return true; }

 private:
  std::shared_ptr<nn::Embedding> user_factors_, item_factors_, user_bias_, item_bias_;
  float mu_;
  Tensor penalty_;
};

// Funk's objective: the squared error plus l2 times the squared norms of the
// rows each rating uses, so a user or item is regularised in proportion to
// its ratings (a weight decay of the whole tables would shrink the rows a
// batch does not touch too). Both are means over the batch; in evaluation
// the loss is the MSE alone.
class RegularisedMSE : public Loss {
 public:
  RegularisedMSE(const MatrixFactorization& model, float l2) : model_(model), l2_(l2) {}
  Tensor operator()(const Tensor& pred, const Tensor& target) const override {
    const Tensor se = mse_loss(pred, target);
    const Tensor& penalty = model_.penalty();
    return l2_ > 0 && penalty.defined() ? se + penalty * l2_ : se;
  }
  std::string name() const override { return "mse_loss"; }

 private:
  const MatrixFactorization& model_;
  float l2_;
};

// Ratings rows `rows` as x [N, 2] (user, item) and y [N, 1].
data::TensorDataset as_dataset(const Ratings& r, const std::vector<int64_t>& rows) {
  const auto n = static_cast<int64_t>(rows.size());
  Tensor x = Tensor::empty({n, 2}), y = Tensor::empty({n, 1});
  for (int64_t k = 0; k < n; ++k) {
    const auto i = static_cast<size_t>(rows[static_cast<size_t>(k)]);
    x.data()[2 * k] = static_cast<float>(r.user[i]);
    x.data()[2 * k + 1] = static_cast<float>(r.item[i]);
    y.data()[k] = r.rating[i];
  }
  return data::TensorDataset(x, y);
}

double rmse(const std::vector<double>& pred, const Ratings& r, const std::vector<int64_t>& rows) {
  double se = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const double e = pred[k] - r.rating[static_cast<size_t>(rows[k])];
    se += e * e;
  }
  return std::sqrt(se / static_cast<double>(rows.size()));
}

// Koren's baseline estimates on the training rows: b_i = sum(r - mu) / (25 +
// n_i), then b_u = sum(r - mu - b_i) / (10 + n_u).
struct Baseline {
  double mu = 0;
  std::vector<double> bu, bi;
  double operator()(int64_t u, int64_t i) const { return mu + bu[static_cast<size_t>(u)] + bi[static_cast<size_t>(i)]; }
};

Baseline bias_baseline(const Ratings& r, const std::vector<int64_t>& train, double mu) {
  Baseline b;
  b.mu = mu;
  b.bu.assign(static_cast<size_t>(r.users), 0.0);
  b.bi.assign(static_cast<size_t>(r.items), 0.0);
  std::vector<double> sum_i(static_cast<size_t>(r.items), 0.0), sum_u(static_cast<size_t>(r.users), 0.0);
  std::vector<int64_t> n_i(static_cast<size_t>(r.items), 0), n_u(static_cast<size_t>(r.users), 0);
  for (int64_t k : train) {
    const auto s = static_cast<size_t>(k);
    sum_i[static_cast<size_t>(r.item[s])] += r.rating[s] - mu;
    ++n_i[static_cast<size_t>(r.item[s])];
  }
  for (size_t i = 0; i < b.bi.size(); ++i) b.bi[i] = sum_i[i] / (25.0 + static_cast<double>(n_i[i]));
  for (int64_t k : train) {
    const auto s = static_cast<size_t>(k);
    sum_u[static_cast<size_t>(r.user[s])] += r.rating[s] - mu - b.bi[static_cast<size_t>(r.item[s])];
    ++n_u[static_cast<size_t>(r.user[s])];
  }
  for (size_t u = 0; u < b.bu.size(); ++u) b.bu[u] = sum_u[u] / (10.0 + static_cast<double>(n_u[u]));
  return b;
}

// PureSVD, centred: the baseline plus the best rank-k approximation of the
// training residuals (r - baseline where rated, 0 elsewhere). Empty when the
// dense matrix would be too large.
std::vector<double> pure_svd(const Ratings& r, const std::vector<int64_t>& train, const std::vector<int64_t>& test,
                             const Baseline& base, int64_t rank) {
  if (r.users * r.items > kMaxDenseEntries) return {};
  Eigen::MatrixXd residual = Eigen::MatrixXd::Zero(r.users, r.items);
  for (int64_t k : train) {
    const auto s = static_cast<size_t>(k);
    residual(r.user[s], r.item[s]) = r.rating[s] - base(r.user[s], r.item[s]);
  }
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(residual, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::Index k = std::min<Eigen::Index>(rank, svd.singularValues().size());
  const Eigen::MatrixXd us = svd.matrixU().leftCols(k) * svd.singularValues().head(k).asDiagonal();
  const Eigen::MatrixXd v = svd.matrixV().leftCols(k);
  std::vector<double> pred;
  for (int64_t t : test) {
    const auto s = static_cast<size_t>(t);
    pred.push_back(base(r.user[s], r.item[s]) + us.row(r.user[s]).dot(v.row(r.item[s])));
  }
  return pred;
}

// After each epoch: the held-out RMSE, as a line or one JSON object.
class RmseReport : public Callback {
 public:
  RmseReport(const data::Dataset& train, const data::Dataset& test, bool json)
      : train_(train), test_(test), json_(json) {}
  void on_epoch_end(int64_t epoch, const Logs& logs) override {
    const EvalResult r = trainer().evaluate(test_, 4096);
    const double train_rmse = std::sqrt(trainer().evaluate(train_, 4096).loss);
    last_rmse = std::sqrt(r.loss);
    char buf[400];
    if (json_)
      std::snprintf(buf, sizeof buf,
                    "{\"epoch\":%lld,\"train_loss\":%.6f,\"train_rmse\":%.6f,\"test_loss\":%.6f,\"test_rmse\":%.6f,"
                    "\"lr\":%.9g,\"time_s\":%.3f}",
                    static_cast<long long>(epoch + 1), logs.at("loss"), train_rmse, r.loss, last_rmse,
                    logs.get("lr").value_or(0.0), logs.get("time_s").value_or(0.0));
    else
      std::snprintf(buf, sizeof buf, "  train RMSE %.4f - test RMSE %.4f", train_rmse, last_rmse);
    std::cout << buf << std::endl;
  }
  double last_rmse = 0;

 private:
  const data::Dataset &train_, &test_;
  bool json_;
};

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("recommender", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/ml-100k";
    defaults.epochs = 30;
    defaults.batch = 64;
    defaults.lr = 0.1;
    const examples::Args args =
        parse_args(argc, argv, defaults,
                   " [--factors K] [--optimizer NAME] [--l2 X] [--test-fraction F] [--split-seed S]"
                   " [--min-rating R] [--max-rating R]");
    for (const std::string* flag : {&args.save, &args.resume, &args.report})
      if (!flag->empty()) {
        std::fprintf(stderr, "%s: --save, --resume and --report write Sequential models in Keras' layout; the "
                     "recommender's MatrixFactorization is a module of its own, which they cannot hold\n",
                     args.program.c_str());
        return examples::kExitUsage;
      }
    const int64_t factors = args.integer("factors", 32, 1, 4096);
    const std::string optimizer = args.value("optimizer", "sgd");
    if (optimizer != "adam" && optimizer != "sgd") {
      std::fprintf(stderr, "%s: --optimizer expects adam or sgd, got '%s'\n", args.program.c_str(), optimizer.c_str());
      return examples::kExitUsage;
    }
    const double l2 = args.number("l2", 0.1, 0.0, 1e3);
    const double test_fraction = args.number("test-fraction", 0.2, 0.01, 0.99);
    const uint64_t split_seed = args.unsigned_integer("split-seed", 0);
    const double min_rating = args.number("min-rating", 0.5, -1e6, 1e6);
    const double max_rating = args.number("max-rating", 5.0, min_rating, 1e6);

    const std::string path = ratings_path(args.data);
    const Ratings ratings = read_ratings(path, min_rating, max_rating);
    // A seeded random hold-out of the ratings.
    const auto n = static_cast<int64_t>(ratings.size());
    const std::vector<int64_t> order = data::epoch_order(n, true, split_seed, 0);
    const auto n_test = std::max<int64_t>(1, std::llround(test_fraction * static_cast<double>(n)));
    std::vector<int64_t> test_rows(order.begin(), order.begin() + n_test);
    std::vector<int64_t> train_rows(order.begin() + n_test, order.end());
    std::sort(test_rows.begin(), test_rows.end());
    std::sort(train_rows.begin(), train_rows.end());
    double mu = 0;
    for (int64_t k : train_rows) mu += ratings.rating[static_cast<size_t>(k)];
    mu /= static_cast<double>(train_rows.size());
    if (!args.json)
      std::printf("%s: %lld ratings of %lld items by %lld users; %zu train, %zu test; mean rating %.4f\n",
                  path.c_str(), static_cast<long long>(n), static_cast<long long>(ratings.items),
                  static_cast<long long>(ratings.users), train_rows.size(), test_rows.size(), mu);

    manual_seed(args.seed);
    MatrixFactorization model(ratings.users, ratings.items, factors, static_cast<float>(mu));
    model.build({2});
    std::unique_ptr<optim::Optimizer> opt;
    if (optimizer == "sgd") {
      optim::SGDOptions so;
      so.lr = static_cast<float>(args.lr);
      so.momentum = 0.9f;
      opt = std::make_unique<optim::SGD>(model.parameters(), so);
    } else {
      optim::AdamOptions ao;
      ao.lr = static_cast<float>(args.lr);
      opt = std::make_unique<optim::Adam>(model.parameters(), ao);
    }
    RegularisedMSE loss(model, static_cast<float>(l2));
    Trainer trainer(model, loss, *opt);
    const data::TensorDataset train = as_dataset(ratings, train_rows), test = as_dataset(ratings, test_rows);
    auto report = std::make_shared<RmseReport>(train, test, args.json);
    FitOptions fit;
    fit.epochs = args.epochs;
    fit.batch_size = args.batch;
    fit.seed = args.seed;
    fit.distributed = args.distributed;
    fit.callbacks.push_back(report);
    fit.verbose = args.json ? Verbose::Silent : Verbose::Auto;
    trainer.fit(train, fit);

    // The baselines, on the same split.
    std::vector<double> pred;
    for (size_t k = 0; k < test_rows.size(); ++k) pred.push_back(mu);
    const double rmse_mean = rmse(pred, ratings, test_rows);
    const Baseline base = bias_baseline(ratings, train_rows, mu);
    pred.clear();
    for (int64_t t : test_rows)
      pred.push_back(base(ratings.user[static_cast<size_t>(t)], ratings.item[static_cast<size_t>(t)]));
    const double rmse_bias = rmse(pred, ratings, test_rows);
    const auto t0 = std::chrono::steady_clock::now();
    pred = pure_svd(ratings, train_rows, test_rows, base, factors);
    const double svd_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rmse_svd = pred.empty() ? NAN : rmse(pred, ratings, test_rows);

    if (args.json) {
      std::printf("{\"test_rmse\":%.6f,\"global_mean_rmse\":%.6f,\"bias_rmse\":%.6f,\"pure_svd_rmse\":%.6f,"
                  "\"factors\":%lld,\"l2\":%g}\n",
                  report->last_rmse, rmse_mean, rmse_bias, pred.empty() ? -1.0 : rmse_svd,
                  static_cast<long long>(factors), l2);
    } else {
      std::printf("\ntest RMSE (%zu held-out ratings):\n", test_rows.size());
      std::printf("  global mean                  %.4f\n", rmse_mean);
      std::printf("  user/item biases             %.4f\n", rmse_bias);
      if (pred.empty())
        std::printf("  PureSVD                      not run: %lld x %lld is too large a dense matrix\n",
                    static_cast<long long>(ratings.users), static_cast<long long>(ratings.items));
      else
        std::printf("  PureSVD, rank %-4lld           %.4f (%.2f s)\n", static_cast<long long>(factors), rmse_svd,
                    svd_s);
      std::printf("  matrix factorisation, k %-4lld %.4f\n", static_cast<long long>(factors), report->last_rmse);
    }
    return examples::kExitOk;
  });
}
