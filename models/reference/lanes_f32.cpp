#include "models/reference/lanes_f32.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "models/numerics/events.hpp"
#include "models/numerics/fast.hpp"
#include "models/reference/fast_plan.hpp"
#include "models/reference/lanes_f32_kernel.hpp"
#include "models/reference/parallel.hpp"

namespace accsim::ref {

namespace fast = num::fast;
using num::Rounding;

// --- Which ISA ------------------------------------------------------------------

std::string_view to_string(LaneIsa isa) {
  switch (isa) {
    case LaneIsa::baseline: return "baseline";
    case LaneIsa::avx2: return "avx2";
    case LaneIsa::avx512: return "avx512";
  }
  return "?";
}

std::optional<LaneIsa> parse_lane_isa(std::string_view text) {
  for (LaneIsa isa : {LaneIsa::baseline, LaneIsa::avx2, LaneIsa::avx512}) {
    if (text == to_string(isa)) return isa;
  }
  return std::nullopt;
}

LaneIsa cpu_lane_isa() {
  static const LaneIsa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
      return LaneIsa::avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return LaneIsa::avx2;
    return LaneIsa::baseline;
  }();
  return best;
}

namespace {

std::atomic<int> g_isa_override{-1};

std::optional<LaneIsa> env_lane_isa() {
  static const std::optional<LaneIsa> isa = []() -> std::optional<LaneIsa> {
    const char* text = std::getenv("ACCSIM_ISA");
    if (text == nullptr || *text == '\0') return std::nullopt;
    const std::optional<LaneIsa> parsed = parse_lane_isa(text);
    if (!parsed) {
      std::fprintf(stderr, "accsim: warning: ACCSIM_ISA=%s: not one of avx512, avx2, baseline; using the CPU's best\n",
                   text);
    }
    return parsed;
  }();
  return isa;
}

}  // namespace

LaneIsa lane_isa() {
  const LaneIsa best = cpu_lane_isa();
  const int forced = g_isa_override.load(std::memory_order_relaxed);
  const std::optional<LaneIsa> wanted = forced >= 0 ? std::optional(static_cast<LaneIsa>(forced)) : env_lane_isa();
  return wanted && *wanted < best ? *wanted : best;
}

void set_lane_isa(std::optional<LaneIsa> isa) {
  g_isa_override.store(isa ? static_cast<int>(*isa) : -1, std::memory_order_relaxed);
}

bool use_f32_lanes(const F32Plan& plan) {
  if (lane_isa() == LaneIsa::avx512 || g_isa_override.load(std::memory_order_relaxed) >= 0) return true;
  return !plan.accumulate.odd_sum && !(plan.merge && plan.merge->odd_sum);
}

// --- The plan --------------------------------------------------------------------

namespace {

// The values of a format (or of exact products): binades up to msb, every
// non-zero value a multiple of 2^lsb, `man` fraction bits.
struct Grid {
  int msb = 0, lsb = 0, man = 0;
};
Grid grid_of(const num::FloatFormat& f) { return {f.emax(), f.emin() - f.man_bits, f.man_bits}; }
// Non-zero values normal floats, sums of two of them finite.
bool in_float_range(const Grid& g) { return g.lsb >= -126 && g.msb <= 125; }

// How x + y (x of grid X, y of grid Y) is formed in float: exactly, by
// Fast2Sum and round-to-odd, or not at all (see plan_f32).
enum class SumKind { none, exact, odd };
SumKind sum_kind(const Grid& x, const Grid& y) {
  const int carry = x.man + y.man + 2;   // binades within x's fraction: one more bit on a carry
  const int x_above = x.msb - y.lsb + 1;  // x's binade above y's
  const int y_above = y.msb - x.lsb + 1;  // y's binade above x's
  if (std::max({carry, x_above, y_above}) <= 24) return SumKind::exact;
  if (std::max(carry, y_above) <= 24) return SumKind::odd;
  return SumKind::none;
}

// A float rounder into f, or nullopt (see plan_f32).
std::optional<F32Rounder> make_rounder(const num::Format& format) {
  const auto* f = std::get_if<num::FloatFormat>(&format);
  if (f == nullptr) return std::nullopt;
  if (f->rounding != Rounding::rne && f->rounding != Rounding::rtz) return std::nullopt;
  if (f->man_bits < 1 || f->man_bits > 21 || !in_float_range(grid_of(*f))) return std::nullopt;
  // round_subnormal's 2^23 q must be a float.
  if (f->subnormals && f->emin() - f->man_bits + 23 > 127) return std::nullopt;
  F32Rounder r;
  r.mode = f->rounding;
  r.ftz = !f->subnormals;
  r.drop = 23 - f->man_bits;
  r.keep = ~((std::uint32_t{1} << r.drop) - 1);
  r.half_less_one = (std::uint32_t{1} << (r.drop - 1)) - 1;
  r.min_normal_bits = static_cast<std::uint32_t>(f->emin() + 127) << 23;
  const auto max_fraction = static_cast<std::uint32_t>(f->max_significand() - (std::uint64_t{1} << f->man_bits));
  r.max_bits = (static_cast<std::uint32_t>(f->emax() + 127) << 23) | (max_fraction << r.drop);
  r.subnormal_q_bits = static_cast<std::uint32_t>(f->emin() - f->man_bits + 127) << 23;
  r.subnormal_magic_bits = static_cast<std::uint32_t>(f->emin() - f->man_bits + 23 + 127) << 23;
  return r;
}

}  // namespace

std::optional<F32Plan> plan_f32(const GemmConfig& cfg, const num::Format& c_format, const QuantizedOperand& a,
                                const QuantizedOperand& b) {
  std::optional<FastPlan> fast_plan = plan_fast(cfg, c_format, a, b);
  if (!fast_plan) return std::nullopt;
  const auto* mul = std::get_if<num::FloatFormat>(&cfg.multiplier);
  if (mul == nullptr || 2 * (mul->man_bits + 1) > 24) return std::nullopt;
  const Grid mul_grid = grid_of(*mul);
  Grid addend{2 * mul_grid.msb + 1, 2 * mul_grid.lsb, 2 * mul->man_bits + 1};  // exact products
  if (!in_float_range(addend)) return std::nullopt;
  F32Plan plan;
  plan.fast = *fast_plan;
  if (cfg.product) {
    plan.product = make_rounder(*cfg.product);
    if (!plan.product) return std::nullopt;
    addend = grid_of(std::get<num::FloatFormat>(*cfg.product));
  }
  const std::optional<F32Rounder> accumulate = make_rounder(cfg.accumulator);
  if (!accumulate) return std::nullopt;
  plan.accumulate = *accumulate;
  const Grid acc_grid = grid_of(std::get<num::FloatFormat>(cfg.accumulator));
  const SumKind acc_sum = sum_kind(acc_grid, addend);
  if (acc_sum == SumKind::none) return std::nullopt;
  plan.accumulate.odd_sum = acc_sum == SumKind::odd;
  if (!cfg.order.sequential()) {
    plan.merge = make_rounder(c_format);
    if (!plan.merge) return std::nullopt;
    const SumKind merge_sum = sum_kind(grid_of(std::get<num::FloatFormat>(c_format)), acc_grid);
    if (merge_sum == SumKind::none) return std::nullopt;
    plan.merge->odd_sum = merge_sum == SumKind::odd;
  }
  return plan;
}

// --- The fallback ------------------------------------------------------------------

namespace f32 {
namespace {
void count(Tally& t, num::Events e) {
  t.exact += (e & num::kInexact) == 0;
  t.swamp += (e & num::kSwamp) != 0;
  t.overflow += (e & num::kOverflow) != 0;
  t.underflow += (e & num::kUnderflow) != 0;
}
}  // namespace

void slow_step(const F32Plan& plan, float* acc, const float* products, bool rounded, int lanes, Tally* tallies) {
  for (int l = 0; l < lanes; ++l) {
    double addend = products[l];
    if (plan.fast.product && !rounded) {
      const fast::ScalarResult p = fast::round(*plan.fast.product, addend);
      count(tallies[0], p.events);
      addend = p.value;
    }
    const fast::ScalarResult s = fast::accumulate(plan.fast.accumulate, acc[l], addend);
    count(tallies[1], s.events);
    acc[l] = static_cast<float>(s.value);  // on the accumulator's grid: exact
  }
}

void slow_merge(const F32Plan& plan, float* merged, const float* sums, int lanes, Tally* tallies) {
  for (int l = 0; l < lanes; ++l) {
    const fast::ScalarResult s = fast::accumulate(*plan.fast.merge, merged[l], sums[l]);
    count(tallies[2], s.events);
    merged[l] = static_cast<float>(s.value);
  }
}
}  // namespace f32

// --- The GEMM ----------------------------------------------------------------------

namespace {

// Adds a panel's `valid` real columns, each of which ran ops_per_col
// roundings, into `counts`; the padding columns' roundings were all exact.
void drain(const f32::Tally& t, std::size_t width, std::size_t valid, std::uint64_t ops_per_col,
           num::EventCounts& counts) {
  const std::uint64_t ops = valid * ops_per_col;
  const std::uint64_t padding_ops = (width - valid) * ops_per_col;
  counts.ops += ops;
  counts.overflow += t.overflow;
  counts.underflow += t.underflow;
  counts.swamp += t.swamp;
  counts.inexact += ops - (t.exact - padding_ops);
}

f32::Kernel select_kernel(const F32Plan& plan, LaneIsa isa, bool narrow = false) {
  switch (isa) {
    case LaneIsa::avx512: return f32::select_avx512(plan, narrow);
    case LaneIsa::avx2: return f32::select_avx2(plan, narrow);
    case LaneIsa::baseline: break;
  }
  return f32::select_baseline(plan, narrow);
}

// The panels of n columns: full panels on the ISA's kernel; a last, narrower
// panel on the narrowest kernel that holds it (64 lanes for 4 columns would
// be mostly padding): one vector (of this ISA or, within 8 columns, of
// AVX2's) taken four rows at a time, or on AVX-512 AVX2's full panel of 32.
struct Panels {
  f32::Kernel kernel, tail_kernel;
  std::size_t full = 0, tail_cols = 0;
  [[nodiscard]] std::size_t count() const { return full + (tail_cols != 0 ? 1 : 0); }
  [[nodiscard]] const f32::Kernel& kernel_of(std::size_t p) const { return p < full ? kernel : tail_kernel; }
};
Panels panels_of(const F32Plan& plan, std::size_t n) {
  const LaneIsa isa = lane_isa();
  Panels p;
  p.kernel = p.tail_kernel = select_kernel(plan, isa);
  p.full = n / p.kernel.width;
  p.tail_cols = n % p.kernel.width;
  if (p.tail_cols == 0) return p;
  const auto take_if_it_fits = [&](const f32::Kernel& k) {
    if (p.tail_cols > k.width) return false;
    p.tail_kernel = k;
    return true;
  };
  const bool avx512 = isa == LaneIsa::avx512;
  if (avx512 && take_if_it_fits(select_kernel(plan, LaneIsa::avx2, /*narrow=*/true))) return p;
  if (take_if_it_fits(select_kernel(plan, isa, /*narrow=*/true))) return p;
  if (avx512) take_if_it_fits(select_kernel(plan, LaneIsa::avx2));
  return p;
}

}  // namespace

std::size_t f32_panels(const F32Plan& plan, std::size_t n) { return panels_of(plan, n).count(); }

namespace {

// ops into result (c sized m x n, c_format set; c_bits too with
// `encodings`), adding the product/accumulate/merge counts. Every kernel's
// panel lies inside one of B's: their widths divide kF32PanelCols, and
// each starts at a multiple of its own.
void run_panels(const F32Plan& plan, const F32Operands& ops, const GemmConfig& config, GemmResult& result,
                bool encodings) {
  const std::size_t m = ops.m, k = ops.k, n = ops.n;
  const Panels layout = panels_of(plan, n);
  assert(kF32PanelCols % layout.kernel.width == 0 && kF32PanelCols % layout.tail_kernel.width == 0);
  const std::size_t chunk = config.order.sequential() ? k : static_cast<std::size_t>(config.order.chunk);
  const std::size_t chunks = (k + chunk - 1) / chunk;
  const std::size_t panels = layout.count();
  const fast::Encoder encode(std::get<num::FloatFormat>(result.c_format));
  struct Counts {
    num::EventCounts product, accumulate, merge;
  };
  std::vector<Counts> task_counts;
  // Tasks of a block of rows against one panel: the kernel's tallies are
  // drained once per block (which short K, as a network's first layer has,
  // would otherwise pay per row), as long as the blocks still feed every
  // thread and their chunk sums stay within about a megabyte.
  const std::size_t threads = resolve_threads(config.threads);
  const std::size_t row_bytes = (chunks + 1) * layout.kernel.width * sizeof(float);
  std::size_t block = 8;
  while (block > 1 && ((m + block - 1) / block * panels < 4 * threads || block * row_bytes > (std::size_t{1} << 20))) {
    block /= 2;
  }
  const std::size_t blocks = (m + block - 1) / block;
  task_counts.resize(blocks * panels);
  parallel_for(blocks * panels, config.threads, [&](std::size_t task) {
    const std::size_t i0 = task / panels * block, p = task % panels;
    const std::size_t rows = std::min(block, m - i0);
    const f32::Kernel& kern = layout.kernel_of(p);
    const std::size_t width = kern.width;
    const std::size_t first_col = p * layout.kernel.width;
    const std::size_t cols = std::min(width, n - first_col);
    thread_local std::vector<float> scratch;
    if (scratch.size() < rows * (chunks + 1) * width) scratch.resize(rows * (chunks + 1) * width);
    f32::Tally tallies[3];
    float* const out = scratch.data() + rows * chunks * width;
    const f32::Job job{&ops.a[i0 * k], rows,  &ops.b[f32_b_index(k, 0, first_col)], k, chunk, &plan, scratch.data(),
                       out,            tallies};
    kern.panel(job);
    if (kern.merge != nullptr) kern.merge(job);
    Counts& counts = task_counts[task];
    if (config.product) drain(tallies[0], width, cols, rows * k, counts.product);
    drain(tallies[1], width, cols, rows * k, counts.accumulate);
    if (kern.merge != nullptr) drain(tallies[2], width, cols, rows * chunks, counts.merge);
    for (std::size_t r = 0; r < rows; ++r) {
      // Sequential: the row's one chunk's sums; chunked: their merge.
      const float* results = kern.merge != nullptr ? out + r * width : scratch.data() + r * chunks * width;
      double* const values = &result.c(i0 + r, first_col);
      for (std::size_t j = 0; j < cols; ++j) values[j] = results[j];  // one vector loop
      if (encodings) {
        for (std::size_t j = 0; j < cols; ++j) {
          result.c_bits[(i0 + r) * n + first_col + j] = encode(values[j]);  // on the format's grid
        }
      }
    }
  });
  for (const Counts& c : task_counts) {
    result.stats.product += c.product;
    result.stats.accumulate += c.accumulate;
    result.stats.merge += c.merge;
  }
}

}  // namespace

void accumulate_f32(const F32Plan& plan, const QuantizedOperand& a, const QuantizedOperand& b,
                    const GemmConfig& config, GemmResult& result, bool encodings) {
  const std::size_t m = a.rows, k = a.cols, n = b.cols;
  // The operands as floats (exact: plan_f32 checked the multiplier format),
  // B in F32Operands' panels. The buffers are the calling thread's, kept
  // from call to call (a network's layers call this once per sample and
  // group) and grown, never shrunk (a vector shrunk and grown again clears
  // the difference); every element read is written here, the padding
  // columns included. The workers reach them by pointer (by name, a
  // thread_local is each thread's own).
  thread_local std::vector<float> a_values;
  thread_local F32Buffer b_panels;
  a_values.assign(a.values.begin(), a.values.end());
  const std::size_t padded = f32_padded_cols(n);
  if (b_panels.size() < k * padded) b_panels.resize(k * padded);
  for (std::size_t j0 = 0; j0 < padded; j0 += kF32PanelCols) {
    const std::size_t cols = std::min(kF32PanelCols, n - std::min(n, j0));
    for (std::size_t kk = 0; kk < k; ++kk) {
      const double* const row = b.values.data() + kk * n + j0;
      float* const dst = b_panels.data() + f32_b_index(k, kk, j0);
      for (std::size_t j = 0; j < cols; ++j) dst[j] = static_cast<float>(row[j]);
      std::fill(dst + cols, dst + kF32PanelCols, 0.0f);
    }
  }
  run_panels(plan, F32Operands{a_values.data(), b_panels.data(), m, k, n}, config, result, encodings);
}

void accumulate_f32(const F32Plan& plan, const F32Operands& ops, const GemmConfig& config, GemmResult& result) {
  assert(ops.k > 0);
  result.stats = {};
  result.stats.fast_path = true;
  result.stats.f32_lanes = true;
  result.c_format = config.order.merge(config.accumulator);
  result.c.rows = ops.m;
  result.c.cols = ops.n;
  result.c.data.resize(ops.m * ops.n);
  result.c_bits.clear();
  run_panels(plan, ops, config, result, /*encodings=*/false);
}

}  // namespace accsim::ref
