#include "sim/sweep_command.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "models/cost/cost.hpp"
#include "models/numerics/identity.hpp"
#include "models/reference/order.hpp"
#include "models/reference/parallel.hpp"
#include "sim/cost_command.hpp"
#include "sim/errors.hpp"
#include "sim/run_command.hpp"
#include "sim/sweep_spec.hpp"
#include "sim/sweep_store.hpp"

namespace accsim::sim {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string duration_text(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return fmt::format("{}h{:02}m", static_cast<int>(s) / 3600, (static_cast<int>(s) / 60) % 60);
}

// The terminal (stderr, unless quiet) and DIR/sweep.log.
std::shared_ptr<spdlog::logger> make_logger(const std::string& level_text, bool quiet, std::ostream& err,
                                            const std::filesystem::path& log_file) {
  static const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), level_text) == kLevels.end()) {
    throw InputError("--log-level", "'" + level_text + "' is not one of trace, debug, info, warn, error, off");
  }
  std::vector<spdlog::sink_ptr> sinks;
  auto term = std::make_shared<spdlog::sinks::ostream_sink_mt>(err, true);
  term->set_pattern("accsim: %v");
  term->set_level(quiet ? spdlog::level::off : spdlog::level::from_str(level_text));
  sinks.push_back(term);
  if (!log_file.empty()) {
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file.string(), false);
      file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
      file->set_level(spdlog::level::debug);
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      throw InputError(log_file.string(), std::string("cannot write the log: ") + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("sweep", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::debug);
  return logger;
}

// fn(thread, item) for items 0..n-1 on `threads` threads; the first
// exception is rethrown after every thread has stopped.
template <class Fn>
void parallel_for(std::size_t n, unsigned threads, Fn&& fn) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        try {
          for (std::size_t i = next++; i < n && !failed; i = next++) fn(t, i);
        } catch (...) {
          std::lock_guard lock(error_mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
      });
    }
  }
  if (error) std::rethrow_exception(error);
}

unsigned worker_count(unsigned threads, std::size_t items) {
  return static_cast<unsigned>(std::clamp<std::size_t>(ref::resolve_threads(threads), 1, std::max<std::size_t>(items, 1)));
}

// The FP32 baseline's prediction for every sample: once per trace.
std::vector<std::uint32_t> fp32_predictions(const net::Trace& trace, unsigned threads) {
  const net::Executor fp32(trace.network,
                           std::vector<net::LayerArithmetic>(trace.network.gemm_layers.size(), net::LayerArithmetic{}));
  std::vector<std::uint32_t> pred(trace.samples);
  const unsigned n = worker_count(threads, trace.samples);
  std::vector<std::unique_ptr<net::Executor::Workspace>> ws;
  for (unsigned t = 0; t < n; ++t) ws.push_back(fp32.make_workspace(/*keep_layer_outputs=*/false));
  parallel_for(trace.samples, n, [&](unsigned t, std::size_t i) {
    const auto out = fp32.run(std::span<const float>(trace.inputs).subspan(i * trace.sample_size, trace.sample_size), *ws[t]);
    pred[i] = static_cast<std::uint32_t>(net::argmax(out.data(), out.size()));
  });
  return pred;
}

struct LayerEvents {
  num::EventCounts product, accumulator;  // accumulator: chunk sums and merges
};

// One numerics setting over every sample: predictions and event counts
// (integers, so their sum does not depend on which thread ran what).
struct Accuracy {
  std::vector<std::uint32_t> pred;
  std::vector<LayerEvents> layers;
};

Accuracy run_accuracy(const net::Trace& trace, const net::Executor& lowbit, unsigned threads) {
  const std::size_t n_layers = trace.network.gemm_layers.size();
  Accuracy acc;
  acc.pred.resize(trace.samples);
  const unsigned n = worker_count(threads, trace.samples);
  std::vector<std::vector<LayerEvents>> events(n, std::vector<LayerEvents>(n_layers));
  std::vector<std::unique_ptr<net::Executor::Workspace>> ws;
  for (unsigned t = 0; t < n; ++t) {
    ws.push_back(lowbit.make_workspace(/*keep_layer_outputs=*/false));
    ws.back()->engine = [&ev = events[t]](std::size_t layer, const ref::QuantizedOperand& a,
                                          const ref::QuantizedOperand& b, const ref::GemmConfig& c) {
      ref::GemmResult r = ref::accumulate_products(a, b, c);
      ev[layer].product += r.stats.product;
      ev[layer].accumulator += r.stats.accumulate;
      ev[layer].accumulator += r.stats.merge;
      return r;
    };
  }
  parallel_for(trace.samples, n, [&](unsigned t, std::size_t i) {
    const auto out = lowbit.run(std::span<const float>(trace.inputs).subspan(i * trace.sample_size, trace.sample_size), *ws[t]);
    acc.pred[i] = static_cast<std::uint32_t>(net::argmax(out.data(), out.size()));
  });
  acc.layers.assign(n_layers, LayerEvents{});
  for (const auto& per_thread : events) {
    for (std::size_t l = 0; l < n_layers; ++l) {
      acc.layers[l].product += per_thread[l].product;
      acc.layers[l].accumulator += per_thread[l].accumulator;
    }
  }
  return acc;
}

ordered_json rate(std::uint64_t count, std::uint64_t ops) {
  return ops == 0 ? ordered_json(nullptr) : ordered_json(static_cast<double>(count) / static_cast<double>(ops));
}

ordered_json base_record(const SweepPlan& plan, const SweepPoint& p, const std::string& error = {}) {
  const SweepTrace& t = plan.traces[p.trace];
  ordered_json r;
  r["key"] = p.key;
  r["status"] = error.empty() ? "ok" : "failed";
  if (!error.empty()) r["error"] = one_line(error);
  r["trace"] = {{"path", t.path}, {"hash", t.hash}};
  r["numerics_identity"] = num::kNumericsIdentity;
  r["samples"] = t.trace->samples;
  r["config"] = p.config;
  return r;
}

ordered_json failed_record(const SweepPlan& plan, const SweepPoint& p, const std::string& why) {
  ordered_json r = base_record(plan, p, why.empty() ? std::string("failed") : why);
  r["pareto"] = nullptr;
  return r;
}

std::vector<net::LayerArithmetic> point_layers(const net::Trace& trace, const SweepPoint& p) {
  std::vector<net::LayerArithmetic> layers = net::resolve_layers(trace.network, p.base, p.overrides);
  for (net::LayerArithmetic& a : layers) {
    if (a.engine == net::Engine::reference && is_exactly_fp32(a)) a.engine = net::Engine::fp32;  // same bits, faster
  }
  return layers;
}

class SweepRunner {
 public:
  SweepRunner(const SweepPlan& plan, const SweepOptions& o, spdlog::logger& log, PointLog& out)
      : plan_(plan), o_(o), log_(log), out_(out) {}

  void run(const std::vector<const SweepPoint*>& pending, std::size_t skipped) {
    total_ = pending.size();
    skipped_ = skipped;
    start_ = Clock::now();
    // Groups of one trace and numerics setting, in numerics-key order.
    std::map<std::pair<std::size_t, std::string>, std::vector<const SweepPoint*>> groups;
    for (const SweepPoint* p : pending) groups[{p->trace, p->numerics_key}].push_back(p);
    std::map<std::size_t, std::vector<std::uint32_t>> fp32;
    for (const auto& [id, points] : groups) {
      const SweepTrace& st = plan_.traces[id.first];
      const net::Trace& trace = *st.trace;
      if (!fp32.contains(id.first)) {
        const auto t0 = Clock::now();
        log_.info("FP32 pass over {} samples of {} (once for every point of this trace)", trace.samples, st.path);
        fp32[id.first] = fp32_predictions(trace, o_.threads);
        fp32_seconds_ += seconds_since(t0);
        ++fp32_passes_;
      }
      run_group(st, fp32[id.first], points);
    }
  }

  std::size_t failed() const { return failed_; }

  void summary() const {
    const std::size_t computed = done_;
    log_.info("{} points computed in {} ({} already in the folder), {} failed", computed, duration_text(seconds_since(start_)),
              skipped_, failed_);
    if (computed == 0) return;
    // What one `accsim run` per point would have repeated: the FP32 pass and
    // the accuracy run of every point beyond the first of its group.
    const double saved = accuracy_saved_seconds_ + fp32_seconds_ / static_cast<double>(std::max<std::size_t>(fp32_passes_, 1)) *
                                                       static_cast<double>(computed - fp32_passes_);
    const double spent = accuracy_seconds_ + fp32_seconds_ + array_seconds_;
    log_.info("reuse: {} points from {} accuracy runs and {} FP32 passes; accuracy {:.1f}s, FP32 {:.1f}s, "
              "cycles/energy/area {:.1f}s; one run per point would repeat ~{:.0f}s of that ({:.0f}% saved)",
              computed, accuracy_runs_, fp32_passes_, accuracy_seconds_, fp32_seconds_, array_seconds_, saved,
              100.0 * saved / (saved + spent));
    log_.info("array: {} GEMMs run on the cycle-accurate array, {} of them in an order other than the point's "
              "accuracy order (checked against the reference path in the array's order)",
              gemms_, reordered_);
  }

 private:
  void run_group(const SweepTrace& st, const std::vector<std::uint32_t>& fp32_pred,
                 const std::vector<const SweepPoint*>& points) {
    const net::Trace& trace = *st.trace;
    const SweepPoint& first = *points.front();
    std::unique_ptr<net::Executor> lowbit;
    Accuracy acc;
    try {
      lowbit = std::make_unique<net::Executor>(trace.network, point_layers(trace, first));
      const auto t0 = Clock::now();
      log_.debug("accuracy run: {} {} {} {} {} ({} points share it)", first.config["mul"].get<std::string>(),
                 first.config["prod"].get<std::string>(), first.config["acc"].get<std::string>(),
                 first.config["order"].get<std::string>(), first.config["scale"].get<std::string>(), points.size());
      acc = run_accuracy(trace, *lowbit, o_.threads);
      const double s = seconds_since(t0);
      accuracy_seconds_ += s;
      accuracy_saved_seconds_ += s * static_cast<double>(points.size() - 1);
      ++accuracy_runs_;
    } catch (const std::exception& e) {
      for (const SweepPoint* p : points) finish(failed_record(plan_, *p, std::string("accuracy run: ") + e.what()));
      return;
    }
    std::size_t correct = 0, fp32_correct = 0, agree = 0;
    for (std::size_t i = 0; i < trace.samples; ++i) {
      const auto label = static_cast<std::uint32_t>(trace.labels[i]);
      correct += acc.pred[i] == label;
      fp32_correct += fp32_pred[i] == label;
      agree += acc.pred[i] == fp32_pred[i];
    }
    const double n = static_cast<double>(std::max<std::size_t>(trace.samples, 1));
    ordered_json layers = ordered_json::array();
    for (std::size_t l = 0; l < trace.network.gemm_layers.size(); ++l) {
      const LayerEvents& e = acc.layers[l];
      layers.push_back({{"name", trace.network.nodes[trace.network.gemm_layers[l]].name},
                        {"overflow", rate(e.accumulator.overflow, e.accumulator.ops)},
                        {"underflow", rate(e.accumulator.underflow, e.accumulator.ops)},
                        {"swamp", rate(e.accumulator.swamp, e.accumulator.ops)},
                        {"product_underflow", rate(e.product.underflow, e.product.ops)}});
    }
    for (const SweepPoint* p : points) {
      ordered_json r = base_record(plan_, *p);
      r["top1"] = static_cast<double>(correct) / n;
      r["top1_fp32"] = static_cast<double>(fp32_correct) / n;
      r["agreement"] = static_cast<double>(agree) / n;
      r["layers"] = layers;
      const auto t0 = Clock::now();
      try {
        add_costs(r, trace, *lowbit, *p);
      } catch (const std::exception& e) {
        r = failed_record(plan_, *p, e.what());
      }
      array_seconds_ += seconds_since(t0);
      finish(r);
    }
  }

  // Cycles and energy on the point's array, area from the cost model.
  void add_costs(ordered_json& r, const net::Trace& trace, const net::Executor& lowbit, const SweepPoint& p) {
    if (!model_ && model_error_.empty()) {
      try {
        model_.emplace(cost::CostModel::Options{});
      } catch (const cost::CostError& e) {
        model_error_ = e.what();
      }
    }
    if (!model_) throw std::runtime_error("area: " + model_error_);
    const cost::Node node = model_->node(p.node_nm);
    double pe = 0, array = 0;
    try {
      pe = model_->pe_area(pe_formats(p.base.config), node).total();
      array = pe * static_cast<double>(p.array.rows * p.array.cols) + model_->sram_area(p.ibuf, node) +
              model_->sram_area(p.wbuf, node) + model_->sram_area(p.obuf, node);
    } catch (const cost::CostError& e) {
      throw std::runtime_error(std::string("area: ") + e.what());
    }
    auto& meter = meters_[p.node_nm];
    if (!meter) meter = std::make_unique<EnergyMeter>(p.node_nm);
    const Energy en = measure_energy(trace, lowbit, plan_.energy_samples, *meter,
                                     [&](const ref::GemmConfig&) { return p.array; });
    gemms_ += en.gemms;
    reordered_ += en.reordered_gemms;
    if (en.gemms == 0) throw std::runtime_error("cycles: no layer runs on the array (every layer computes in fp32)");
    for (std::size_t l = 0; l < en.layers.size(); ++l) {
      if (en.costed[l] && !en.layers[l].energy) {
        throw std::runtime_error("energy of " + trace.network.nodes[trace.network.gemm_layers[l]].name + ": " +
                                 en.layers[l].unavailable);
      }
    }
    std::uint64_t cycles = 0;
    for (std::size_t l = 0; l < en.cycles.size(); ++l) cycles += en.cycles[l];
    const EnergyReport per = en.total.per(en.samples);
    r["cycles_per_inference"] = cycles / std::max<std::size_t>(en.samples, 1);
    r["area_um2"] = {{"pe", pe}, {"array", array}};
    r["energy_uj_per_inference"] = per.energy->total() * 1e-6;
    r["array_order"] = ref::to_string(p.array.order());
    r["order_matches_array"] = p.array.order() == p.base.config.order;
    r["pareto"] = nullptr;  // filled in when the sweep ends
  }

  void finish(const ordered_json& r) {
    out_.append(r);
    ++done_;
    if (r["status"] != "ok") {
      ++failed_;
      log_.warn("point {} failed: {}", r["key"].get<std::string>(), r["error"].get<std::string>());
    }
    const double elapsed = seconds_since(start_);
    const double per_minute = elapsed > 0 ? 60.0 * static_cast<double>(done_) / elapsed : 0;
    const double left = per_minute > 0 ? 60.0 * static_cast<double>(total_ - done_) / per_minute : 0;
    log_.info("{}/{} points, {:.1f} points/min, about {} left{}", done_, total_, per_minute, duration_text(left),
              failed_ ? fmt::format(", {} failed", failed_) : std::string());
  }

  const SweepPlan& plan_;
  const SweepOptions& o_;
  spdlog::logger& log_;
  PointLog& out_;
  std::optional<cost::CostModel> model_;
  std::string model_error_;
  std::map<int, std::unique_ptr<EnergyMeter>> meters_;
  Clock::time_point start_;
  std::size_t total_ = 0, skipped_ = 0, done_ = 0, failed_ = 0;
  std::size_t accuracy_runs_ = 0, fp32_passes_ = 0;
  std::uint64_t gemms_ = 0, reordered_ = 0;
  double accuracy_seconds_ = 0, accuracy_saved_seconds_ = 0, fp32_seconds_ = 0, array_seconds_ = 0;
};

std::pair<std::size_t, std::size_t> parse_shard(const std::string& text) {
  const std::size_t slash = text.find('/');
  auto number = [&](std::string_view s, std::size_t& v) {
    if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string_view::npos) return false;
    v = std::stoul(std::string(s));
    return true;
  };
  std::size_t i = 0, n = 0;
  if (slash == std::string::npos || !number(std::string_view(text).substr(0, slash), i) ||
      !number(std::string_view(text).substr(slash + 1), n) || n == 0 || i >= n) {
    throw InputError("--shard", "'" + text + "' must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4)");
  }
  return {i, n};
}

std::string point_line(const SweepPlan& plan, const SweepPoint& p) {
  const ordered_json& c = p.config;
  std::string s = fmt::format("{}  {}  mul {}  prod {}  acc {}  order {}  scale {}  {} {}  {} nm", p.key,
                              plan.traces[p.trace].path, c["mul"].get<std::string>(), c["prod"].get<std::string>(),
                              c["acc"].get<std::string>(), c["order"].get<std::string>(), c["scale"].get<std::string>(),
                              c["array"].get<std::string>(), c["dataflow"].get<std::string>(), c["node"].get<int>());
  if (c["ibuf"] != 1u << 20 || c["wbuf"] != 1u << 20 || c["obuf"] != 1u << 20) {
    s += fmt::format("  buffers {}/{}/{} B", c["ibuf"].get<std::uint64_t>(), c["wbuf"].get<std::uint64_t>(),
                     c["obuf"].get<std::uint64_t>());
  }
  for (const auto& o : c["overrides"]) {
    s += fmt::format("  {}:{}={}", o["layer"].get<std::string>(), o["key"].get<std::string>(), o["value"].get<std::string>());
  }
  return s;
}

void make_out_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw InputError(dir.string(), "cannot create the output folder" + (ec ? ": " + ec.message() : std::string()));
  }
}

// Holds DIR/.lock (flock) while a sweep writes to DIR, so that two runs on
// one folder cannot interleave; the kernel drops it when the process dies.
class FolderLock {
 public:
  explicit FolderLock(const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw InputError(path.string(), "cannot create the folder's lock file");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw InputError(dir.string(), "another accsim sweep is writing to this folder");
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// Every record of a folder must come from one definition of the formats
// (models/numerics/identity.hpp): `expected`, or the first record's where
// `expected` is empty. Records older than the field carry none and pass.
// Returns the identity the records share ("" when none records one).
std::string require_one_numerics(const PointRecords& records, std::string expected, const std::filesystem::path& file) {
  for (const auto& [key, r] : records) {
    if (!r.contains("numerics_identity") || !r["numerics_identity"].is_string()) continue;
    const std::string identity = r["numerics_identity"].get<std::string>();
    if (expected.empty()) expected = identity;
    if (identity != expected) {
      throw InputError(file.string(), fmt::format("point {} was computed with numerics identity '{}', not '{}': formats "
                                                  "mean different arithmetic there; sweep into a new folder",
                                                  key, one_line(identity), one_line(expected)));
    }
  }
  return expected;
}

int sweep_or_throw(const SweepOptions& o, std::ostream& out, std::ostream& err) {
  std::pair<std::size_t, std::size_t> shard{0, 1};
  if (!o.shard.empty()) shard = parse_shard(o.shard);
  if (!o.dry_run && o.out_dir.empty()) throw InputError("--out", "is required (the folder the points go to)");
  (void)make_logger(o.log_level, true, err, {});  // checks --log-level before the spec loads

  const SweepPlan plan = load_sweep_spec(o.spec_path);
  const std::vector<SweepPoint> points = shard_points(plan, shard.first, shard.second);
  std::size_t groups = 0;
  {
    std::vector<std::string> keys;
    for (const SweepPoint& p : points) keys.push_back(p.numerics_key);
    std::sort(keys.begin(), keys.end());
    groups = static_cast<std::size_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
  }
  const std::string share = o.shard.empty() ? std::string() : fmt::format(" (shard {}/{} of {})", shard.first, shard.second, plan.points.size());
  if (o.dry_run) {
    for (const SweepPoint& p : points) out << point_line(plan, p) << '\n';
    out << fmt::format("{} points{}: {} accuracy runs, {} trace{}, {} samples each\n", points.size(), share, groups,
                       plan.traces.size(), plan.traces.size() == 1 ? "" : "s", plan.traces.front().trace->samples);
    return kExitOk;
  }

  const std::filesystem::path dir(o.out_dir);
  make_out_dir(dir);
  const FolderLock lock(dir);
  const auto log = make_logger(o.log_level, o.quiet, err, dir / "sweep.log");
  LogRead previous = read_point_log(dir, true);
  (void)require_one_numerics(previous.records, num::kNumericsIdentity, dir / "points.jsonl");
  if (previous.torn_bytes > 0) {
    log->warn("{}: cut off a torn last line ({} bytes) left by an interrupted run", (dir / "points.jsonl").string(),
              previous.torn_bytes);
  }
  std::vector<const SweepPoint*> pending;
  for (const SweepPoint& p : points) {
    auto it = previous.records.find(p.key);
    if (it == previous.records.end() || it->second["status"] != "ok") pending.push_back(&p);  // failed: try again
  }
  log->info("{}: {} points{}, {} accuracy runs, {} already in {}, {} to run on {} threads", o.spec_path, points.size(),
            share, groups, points.size() - pending.size(), dir.string(), pending.size(),
            ref::resolve_threads(o.threads));
  std::size_t failed = 0;
  {
    PointLog point_log(dir);
    SweepRunner runner(plan, o, *log, point_log);
    runner.run(pending, points.size() - pending.size());
    runner.summary();
  }
  PointRecords records = read_point_log(dir, true).records;
  write_final(dir, records);
  std::size_t ok = 0;
  for (const auto& [key, r] : records) (r["status"] == "ok" ? ok : failed) += 1;
  log->info("wrote {} and {}: {} points, {} ok, {} failed", (dir / "points.jsonl").string(),
            (dir / "points.csv").string(), records.size(), ok, failed);
  if (failed > 0) {
    err << fmt::format("accsim: sweep: {} of {} points failed (see 'error' in {})\n", failed, records.size(),
                       (dir / "points.jsonl").string());
    return 1;
  }
  return kExitOk;
}

int merge_or_throw(const SweepMergeOptions& o, std::ostream& err) {
  if (o.dirs.empty()) throw InputError("sweep-merge", "name the shard folders to merge");
  (void)make_logger(o.log_level, true, err, {});
  PointRecords merged;
  std::vector<LogRead> inputs;
  std::string identity;  // the numerics identity every shard's points share
  for (const std::string& d : o.dirs) {
    if (!std::filesystem::is_directory(d)) throw InputError(d, "is not a sweep folder");
    if (!std::filesystem::exists(std::filesystem::path(d) / "points.jsonl")) throw InputError(d, "has no points.jsonl");
    inputs.push_back(read_point_log(d, false));
    identity = require_one_numerics(inputs.back().records, identity, std::filesystem::path(d) / "points.jsonl");
  }
  const std::filesystem::path dir(o.out_dir);
  make_out_dir(dir);
  const FolderLock lock(dir);
  const auto log = make_logger(o.log_level, o.quiet, err, dir / "sweep.log");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].torn_bytes > 0) log->warn("{}: left out a torn last line ({} bytes)", o.dirs[i], inputs[i].torn_bytes);
    for (auto& [key, r] : inputs[i].records) {
      auto it = merged.find(key);
      // One record a key: an ok one over a failed one, else the first given.
      if (it == merged.end() || (it->second["status"] != "ok" && r["status"] == "ok")) merged[key] = r;
    }
  }
  write_final(dir, merged);
  std::size_t failed = 0;
  for (const auto& [key, r] : merged) failed += r["status"] != "ok";
  log->info("merged {} folders into {}: {} points, {} failed", o.dirs.size(), dir.string(), merged.size(), failed);
  if (failed > 0) {
    err << fmt::format("accsim: sweep-merge: {} of {} points failed\n", failed, merged.size());
    return 1;
  }
  return kExitOk;
}

}  // namespace

CLI::App* setup_sweep(CLI::App& parent, SweepOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "sweep",
      "Run every design point of a YAML sweep spec (docs/sweep.md): accuracy, cycles, area and energy per point, "
      "appended to DIR/points.jsonl as each finishes; resumable; Pareto fronts when it ends");
  cmd->add_option("spec", o.spec_path, "the sweep spec")->required()->type_name("SPEC.yaml");
  cmd->add_option("--out", o.out_dir, "folder for points.jsonl, points.csv and sweep.log (created)")->type_name("DIR");
  cmd->add_option("--threads", o.threads, "worker threads; 0: every hardware thread (results never depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 4096u));
  cmd->add_flag("--dry-run", o.dry_run, "print the points and their count, run nothing");
  cmd->add_option("--shard", o.shard, "run share I of N (0 <= I < N) of the points; merge with sweep-merge")
      ->type_name("I/N");
  cmd->add_flag("--quiet", o.quiet, "print nothing but errors (DIR/sweep.log keeps the progress)");
  cmd->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  return cmd;
}

CLI::App* setup_sweep_merge(CLI::App& parent, SweepMergeOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "sweep-merge", "Combine the folders of sweep shards into one result set, byte-identical to a one-machine run");
  cmd->add_option("dirs", o.dirs, "shard folders")->required()->type_name("DIR...");
  cmd->add_option("--out", o.out_dir, "the merged folder (created)")->required()->type_name("DIR");
  cmd->add_flag("--quiet", o.quiet, "print nothing but errors");
  cmd->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  return cmd;
}

int run_sweep(const SweepOptions& options, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] { return sweep_or_throw(options, out, err); });
}
int run_sweep(const SweepOptions& options) { return run_sweep(options, std::cout, std::cerr); }

int run_sweep_merge(const SweepMergeOptions& options, std::ostream& out, std::ostream& err) {
  (void)out;
  return guarded(err, [&] { return merge_or_throw(options, err); });
}
int run_sweep_merge(const SweepMergeOptions& options) { return run_sweep_merge(options, std::cout, std::cerr); }

}  // namespace accsim::sim
