#include "models/hw/array_model.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <optional>
#include <utility>

#include "models/hw/units.hpp"
#include "models/hw/vcd.hpp"
#include "models/reference/fast_plan.hpp"
#include "models/numerics/fast.hpp"

namespace accsim::hw {

using num::Rounding;
namespace fast = num::fast;

namespace {

// What the kernels need to know about the run, fixed for its length.
struct Geometry {
  std::ptrdiff_t R = 0, C = 0, M = 0, K = 0, N = 0;
  std::ptrdiff_t Lm = 0, La = 0;
  bool ws = true;
  bool merge = false;     // WS: chunk results merged in the output buffer
  bool feedback = false;  // WS: previous partial sum fed in at the top
  std::ptrdiff_t L = 0;   // WS: stream step of output vector 0
  std::ptrdiff_t D = 0;   // WS: de-skew delay line depth, in vectors
  std::ptrdiff_t os_drain = 0;
  std::size_t sr_steps = 0;  // `steps` of ref::sr_key: K + number of chunks
};

}  // namespace

class ArrayModel::Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void begin_tile(const Tile& tile) = 0;
  virtual void load_step(std::uint64_t j, std::uint64_t now) = 0;
  virtual void stream_step(std::uint64_t s, std::uint64_t now) = 0;
  virtual void collect(ref::GemmResult& out) const = 0;

  ToggleCounts toggles;
  VcdRecorder* vcd = nullptr;
  bool fast = false;
  RegisterWidths widths;
};

namespace {

// --- one row segment of MACs ----------------------------------------------------------
//
// In every step the PEs of a row that take an operand form one run of
// columns. The operand layouts make each run contiguous: WS keeps A by k with
// m reversed (PE c of the run holds m = base - c), OS keeps each row of A with
// k reversed and B along its anti-diagonals (PE c holds k = base - c), so a
// run is a plain loop, four PEs per vector where the strides are one.

template <class ProductBits>
struct RowJob {
  std::ptrdiff_t n = 0;                                // PEs in the run
  std::ptrdiff_t a_step = 1, b_step = 1, c_step = 1;   // element strides of the operands and of the PE arrays
  const double* a_val = nullptr;                       // activation values (fast path)
  const std::uint64_t* a_bits = nullptr;
  const double* b_val = nullptr;                       // weight values (fast path)
  const std::uint64_t* b_bits = nullptr;
  const double* in_val = nullptr;                      // partial sum in (WS) or accumulator (OS)
  const std::uint64_t* in_bits = nullptr;
  double* out_val = nullptr;                           // the new sum (OS: in place of in_*)
  std::uint64_t* out_bits = nullptr;
  ProductBits* product_last = nullptr;                 // null: no product register (mul_latency 0)
  std::uint64_t* sum_last = nullptr;                   // of the adder stages before the last (null: none)
  bool acc_toggles = false;                            // OS: the last stage is the accumulator (in_bits)
  std::uint64_t key0 = 0, key_step = 0;                // SR key of PE i of the run: key0 + i*key_step
};

// Toggles of the registers a run loads (the forwarding registers are
// counted per tile: forwarding_toggles()).
struct RowToggles {
  std::uint64_t product = 0, stages = 0, accumulator = 0;
};

template <int W>
ACCSIM_INLINE std::uint64_t popcount_lanes(typename fast::Lanes<W>::U x) {
  std::uint64_t n = 0;
  for (int l = 0; l < W; ++l) n += static_cast<std::uint64_t>(std::popcount(static_cast<std::uint64_t>(x[l])));
  return n;
}

// Loads W consecutive elements (W == 4, stride one) or one strided element.
template <int W, class V, class T>
ACCSIM_INLINE V load(const T* p, std::ptrdiff_t i, std::ptrdiff_t step) {
  if constexpr (W == 1) {
    return V{p[i * step]};
  } else {
    V v;
    std::memcpy(&v, p + i, sizeof v);
    return v;
  }
}
template <int W, class V, class T>
ACCSIM_INLINE void store(T* p, std::ptrdiff_t i, std::ptrdiff_t step, V v) {
  if constexpr (W == 1) {
    p[i * step] = v[0];
  } else {
    std::memcpy(p + i, &v, sizeof v);
  }
}

// --- the fast path --------------------------------------------------------------

using ref::FastPlan;

// The reference path's own test (ref::plan_fast), so both paths take the same
// route; the fused product register must also fit the lanes' 64 bits.
std::optional<FastPlan> plan_lanes(const ref::GemmConfig& cfg, const num::Format& c_format,
                                   const ref::QuantizedOperand& a, const ref::QuantizedOperand& b) {
  if (!cfg.product && !FusedProductBits(cfg.multiplier).fits64()) return std::nullopt;
  return ref::plan_fast(cfg, c_format, a, b);
}

struct FastTally {
  std::uint64_t overflow = 0, underflow = 0, inexact = 0, swamp = 0;
  [[nodiscard]] num::EventCounts counts(std::uint64_t ops) const {
    num::EventCounts c;
    c.ops = ops;
    c.overflow = overflow;
    c.underflow = underflow;
    c.inexact = inexact;
    c.swamp = swamp;
    return c;
  }
};

// Per-lane tallies inside a run; a mask lane is -1 when set.
template <int W>
struct LaneTally {
  typename fast::Lanes<W>::I overflow{}, underflow{}, exact{}, swamp{};
  ACCSIM_INLINE void add(const fast::Rounded<W>& r) {
    overflow -= r.overflow;
    underflow -= r.underflow;
    exact -= r.exact;
  }
  ACCSIM_INLINE void drain(FastTally& t, std::uint64_t ops) const {
    std::uint64_t exact_ops = 0;
    for (int l = 0; l < W; ++l) {
      t.overflow += static_cast<std::uint64_t>(overflow[l]);
      t.underflow += static_cast<std::uint64_t>(underflow[l]);
      t.swamp += static_cast<std::uint64_t>(swamp[l]);
      exact_ops += static_cast<std::uint64_t>(exact[l]);
    }
    t.inexact += ops - exact_ops;
  }
};

template <Rounding AccMode, Rounding ProdMode, bool kHasProduct>
class FastArith {
 public:
  static constexpr bool kValues = true;  // registers keep exact values beside their bits
  static constexpr bool kGeneral = false;
  using ProductBits = std::uint64_t;

  FastArith(const FastPlan& plan, const ref::GemmConfig& cfg, const num::Format& c_format)
      : plan_(plan), acc_encoder_(std::get<num::FloatFormat>(cfg.accumulator)), fused_(cfg.multiplier) {
    if (cfg.product) product_encoder_ = FloatEncoder(std::get<num::FloatFormat>(*cfg.product));
    if (plan.merge) merge_encoder_ = FloatEncoder(std::get<num::FloatFormat>(c_format));
  }

  struct Units {
    fast::Rounder accumulate, product;
    FloatEncoder acc_encoder, product_encoder;
    FusedProductBits fused;
  };

  // One array step's constants and event tallies, in vector lanes; the
  // tallies are drained once per step. Local copies: stores into the
  // register arrays could alias members as far as the compiler knows, which
  // would reload every constant per PE.
  struct StepTally {
    Units units;
    LaneTally<4> product4, acc4;
    LaneTally<1> product1, acc1;
    std::uint64_t ops = 0;
  };
  [[nodiscard]] StepTally begin_step() const {
    return StepTally{Units{plan_.accumulate, kHasProduct ? *plan_.product : fast::Rounder{}, acc_encoder_,
                           product_encoder_, fused_},
                     {}, {}, {}, {}, 0};
  }

  // Runs job.n MACs; returns their register toggles.
  ACCSIM_INLINE RowToggles mac_row(const RowJob<ProductBits>& job, StepTally& tally) {
    const Units& units = tally.units;
    RowToggles t;
    std::ptrdiff_t i = 0;
    if (job.a_step == 1 && job.b_step == 1 && job.c_step == 1) {
      for (; i + 4 <= job.n; i += 4) lanes<4>(units, job, i, t, tally.product4, tally.acc4);
    }
    for (; i < job.n; ++i) lanes<1>(units, job, i, t, tally.product1, tally.acc1);
    tally.ops += static_cast<std::uint64_t>(job.n);
    return t;
  }

  void end_step(const StepTally& tally) {
    if constexpr (kHasProduct) {
      tally.product4.drain(product_tally_, 0);
      tally.product1.drain(product_tally_, tally.ops);
    }
    tally.acc4.drain(acc_tally_, 0);
    tally.acc1.drain(acc_tally_, tally.ops);
  }

  // running[i] = running[i] + chunk[i] in the merge format, for n outputs.
  // Inlined (with its mode as a constant) into the ISA-specific step.
  ACCSIM_INLINE void merge_row(double* running, std::uint64_t* running_bits, const double* chunk,
                               const std::uint64_t* /*chunk_bits*/, std::ptrdiff_t n, std::uint64_t /*key0*/,
                               std::uint64_t /*key_step*/) {
    switch (plan_.merge->mode) {
      case Rounding::rne: merge_lanes<Rounding::rne>(running, running_bits, chunk, n); break;
      case Rounding::rna: merge_lanes<Rounding::rna>(running, running_bits, chunk, n); break;
      case Rounding::rtz: merge_lanes<Rounding::rtz>(running, running_bits, chunk, n); break;
      case Rounding::rd: merge_lanes<Rounding::rd>(running, running_bits, chunk, n); break;
      case Rounding::ru: merge_lanes<Rounding::ru>(running, running_bits, chunk, n); break;
      case Rounding::sr: break;  // never: Rounder::make refuses sr
    }
    merges_ += static_cast<std::uint64_t>(n);
  }

  void collect(ref::GemmResult& out, std::uint64_t macs) const {
    if constexpr (kHasProduct) out.stats.product = product_tally_.counts(macs);
    out.stats.accumulate = acc_tally_.counts(macs);
    out.stats.merge = merge_tally_.counts(merges_);
    out.stats.fast_path = true;
  }

 private:
  template <int W>
  ACCSIM_INLINE static void lanes(const Units& u, const RowJob<ProductBits>& job, std::ptrdiff_t i, RowToggles& t,
                                  LaneTally<W>& product_tally, LaneTally<W>& acc_tally) {
    using D = typename fast::Lanes<W>::D;
    using U = typename fast::Lanes<W>::U;
    using I = typename fast::Lanes<W>::I;
    const D a = load<W, D>(job.a_val, i, job.a_step);
    const D b = load<W, D>(job.b_val, i, job.b_step);
    const U a_bits = load<W, U>(job.a_bits, i, job.a_step);
    D p = a * b;  // exact: plan_fast checked the product's span
    U p_bits{};
    if constexpr (kHasProduct) {
      const fast::Rounded<W> r = fast::round_lanes<ProdMode, W>(u.product, p);
      p = r.value;
      product_tally.add(r);
      if (job.product_last != nullptr) p_bits = u.product_encoder.template lanes<W>(p);
    } else {
      if (job.product_last != nullptr) p_bits = u.fused.template lanes<W>(a_bits, load<W, U>(job.b_bits, i, job.b_step));
    }
    const D in = load<W, D>(job.in_val, i, job.c_step);
    I swamp;
    const fast::Rounded<W> s = fast::accumulate_lanes<AccMode, W>(u.accumulate, in, p, &swamp);
    acc_tally.add(s);
    acc_tally.swamp -= swamp;
    const U s_bits = u.acc_encoder.template lanes<W>(s.value);
    if (job.acc_toggles) t.accumulator += popcount_lanes<W>(s_bits ^ load<W, U>(job.in_bits, i, job.c_step));
    store<W>(job.out_val, i, job.c_step, s.value);
    store<W>(job.out_bits, i, job.c_step, s_bits);
    if (job.product_last != nullptr) {
      t.product += popcount_lanes<W>(p_bits ^ load<W, U>(job.product_last, i, job.c_step));
      store<W>(job.product_last, i, job.c_step, p_bits);
    }
    if (job.sum_last != nullptr) {
      t.stages += popcount_lanes<W>(s_bits ^ load<W, U>(job.sum_last, i, job.c_step));
      store<W>(job.sum_last, i, job.c_step, s_bits);
    }
  }

  template <Rounding Mode>
  ACCSIM_INLINE void merge_lanes(double* running, std::uint64_t* running_bits, const double* chunk, std::ptrdiff_t n) {
    using L4 = fast::Lanes<4>;
    using L1 = fast::Lanes<1>;
    const fast::Rounder r = *plan_.merge;
    const FloatEncoder encode = merge_encoder_;
    LaneTally<4> t4;
    LaneTally<1> t1;
    std::ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4) {
      L4::I swamp;
      const fast::Rounded<4> m =
          fast::accumulate_lanes<Mode, 4>(r, load<4, L4::D>(running, i, 1), load<4, L4::D>(chunk, i, 1), &swamp);
      t4.add(m);
      t4.swamp -= swamp;
      store<4>(running, i, 1, m.value);
      store<4>(running_bits, i, 1, encode.lanes<4>(m.value));
    }
    for (; i < n; ++i) {
      L1::I swamp;
      const fast::Rounded<1> m = fast::accumulate_lanes<Mode, 1>(r, L1::D{running[i]}, L1::D{chunk[i]}, &swamp);
      t1.add(m);
      t1.swamp -= swamp;
      running[i] = m.value[0];
      running_bits[i] = encode(m.value[0]);
    }
    t4.drain(merge_tally_, 0);
    t1.drain(merge_tally_, static_cast<std::uint64_t>(n));
  }

  FastPlan plan_;
  FloatEncoder acc_encoder_, product_encoder_, merge_encoder_;
  FusedProductBits fused_;
  FastTally product_tally_, acc_tally_, merge_tally_;
  std::uint64_t merges_ = 0;
};

// --- the general path: Multiplier and Accumulator (num::multiply, num::accumulate) ---

class GeneralArith {
 public:
  static constexpr bool kValues = false;
  static constexpr bool kGeneral = true;
  using ProductBits = u128;

  GeneralArith(const ref::GemmConfig& cfg, const num::Format& c_format, unsigned mul_latency, unsigned add_latency)
      : multiplier_(cfg.multiplier, cfg.product, mul_latency),
        accumulator_(cfg.accumulator, add_latency),
        c_format_(c_format) {}

  struct StepTally {};
  [[nodiscard]] StepTally begin_step() const { return {}; }
  void end_step(const StepTally& /*tally*/) {}

  RowToggles mac_row(const RowJob<ProductBits>& job, StepTally& /*tally*/) {
    RowToggles t;
    for (std::ptrdiff_t i = 0; i < job.n; ++i) {
      const std::uint64_t a = job.a_bits[i * job.a_step];
      const std::uint64_t b = job.b_bits[i * job.b_step];
      const std::uint64_t key = job.key0 + static_cast<std::uint64_t>(i) * job.key_step;
      const Multiplier::Output p = multiplier_(a, b, key);
      if (multiplier_.product_format()) product_.record(p.events);
      const std::ptrdiff_t c = i * job.c_step;
      const std::uint64_t in = job.in_bits[c];
      const num::Result s = accumulator_(in, p.addend, key);
      accumulate_.record(s.events);
      if (job.acc_toggles) t.accumulator += static_cast<std::uint64_t>(std::popcount(s.bits ^ in));
      job.out_bits[c] = s.bits;
      if (job.product_last != nullptr) {
        t.product += static_cast<std::uint64_t>(popcount128(p.register_bits ^ job.product_last[c]));
        job.product_last[c] = p.register_bits;
      }
      if (job.sum_last != nullptr) {
        t.stages += static_cast<std::uint64_t>(std::popcount(s.bits ^ job.sum_last[c]));
        job.sum_last[c] = s.bits;
      }
    }
    return t;
  }

  void merge_row(double* /*running*/, std::uint64_t* running_bits, const double* /*chunk*/,
                 const std::uint64_t* chunk_bits, std::ptrdiff_t n, std::uint64_t key0, std::uint64_t key_step) {
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const num::Result r = num::add(running_bits[i], c_format_, chunk_bits[i], accumulator_.format(),
                                     key0 + static_cast<std::uint64_t>(i) * key_step);
      merge_.record(r.events);
      running_bits[i] = r.bits;
    }
  }

  void collect(ref::GemmResult& out, std::uint64_t /*macs*/) const {
    out.stats.product = product_;
    out.stats.accumulate = accumulate_;
    out.stats.merge = merge_;
    out.stats.fast_path = false;
  }

 private:
  Multiplier multiplier_;
  Accumulator accumulator_;
  num::Format c_format_;
  num::EventCounts product_, accumulate_, merge_;
};

// Registers of one kind across the array, structure of arrays: exact values
// (fast path only) and encodings.
struct RegisterFile {
  std::vector<double> value;
  std::vector<std::uint64_t> bits;
  void resize(std::size_t n, bool values) {
    bits.assign(n, 0);
    if (values) value.assign(n, 0.0);
  }
  [[nodiscard]] double* v(std::size_t i) { return value.empty() ? nullptr : value.data() + i; }
  [[nodiscard]] const double* v(std::size_t i) const { return value.empty() ? nullptr : value.data() + i; }
  [[nodiscard]] std::uint64_t* b(std::size_t i) { return bits.data() + i; }
  [[nodiscard]] const std::uint64_t* b(std::size_t i) const { return bits.data() + i; }
};

// --- the kernel: one array step at a time ------------------------------------------

template <class Arith>
class KernelImpl final : public ArrayModel::Kernel {
  using ProductBits = typename Arith::ProductBits;
  static constexpr bool kValues = Arith::kValues;

 public:
  KernelImpl(Arith arith, const Geometry& g, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
             num::Format c_format)
      : arith_(std::move(arith)), g_(g), c_format_(std::move(c_format)) {
    const auto M = static_cast<std::size_t>(g.M), K = static_cast<std::size_t>(g.K), N = static_cast<std::size_t>(g.N);
    const auto R = static_cast<std::size_t>(g.R), C = static_cast<std::size_t>(g.C);
    // A: WS by k with m reversed, OS by m with k reversed.
    a_.resize(M * K, kValues);
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t k = 0; k < K; ++k) {
        const std::size_t dst = g.ws ? k * M + (M - 1 - m) : m * K + (K - 1 - k);
        a_.bits[dst] = a.bits[m * K + k];
        if constexpr (kValues) a_.value[dst] = a.values[m * K + k];
      }
    }
    b_.resize(K * N, kValues);
    b_.bits = b.bits;
    if constexpr (kValues) b_.value = b.values;
    const auto cells = R * C;
    if (g.ws) {
      weight_.resize(cells, kValues);
      ring_.resize(cells * static_cast<std::size_t>(g.La), kValues);
      deskew_.resize(static_cast<std::size_t>(g.D) * C, kValues);
      top_.resize(C, kValues);
      bottom_.resize(C, kValues);
      prefix_.resize(C);
    } else {
      acc_.resize(cells, kValues);
      weight_last_.assign(cells, 0);
      if (g.La > 1) sum_last_.assign(cells, 0);
      // B along anti-diagonals per column tile: element (k, c) at (k + c)*C + c,
      // so the PEs a step reaches in one row read consecutive words (with
      // La > 1 a run strides through B as it is).
      const std::size_t n_tiles = g.La == 1 ? (N + C - 1) / C : 0;
      skew_.resize(n_tiles * (K + C) * C, kValues);
      for (std::size_t t = 0; t < n_tiles; ++t) {
        for (std::size_t k = 0; k < K; ++k) {
          for (std::size_t c = 0; c < C && t * C + c < N; ++c) {
            const std::size_t dst = (t * (K + C) + k + c) * C + c;
            skew_.bits[dst] = b.bits[k * N + t * C + c];
            if constexpr (kValues) skew_.value[dst] = b.values[k * N + t * C + c];
          }
        }
      }
    }
    if (g.ws) sum_last_.assign(cells, 0);
    act_last_.assign(cells, 0);
    if (g.Lm > 0) product_last_.assign(cells, 0);
    result_.resize(M * N, kValues);
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    step_ = avx2 ? &KernelImpl::stream_avx2 : &KernelImpl::stream_baseline;
    tile_toggles_ = avx2 ? &KernelImpl::forwarding_toggles_avx2 : &KernelImpl::forwarding_toggles_baseline;
  }

  void begin_tile(const Tile& tile) override {
    tile_ = tile;
    std::fill(prefix_.begin(), prefix_.end(), 0);
    (this->*tile_toggles_)();
  }
  void load_step(std::uint64_t j, std::uint64_t now) override;
  void stream_step(std::uint64_t s, std::uint64_t now) override { (this->*step_)(s, now); }

  void collect(ref::GemmResult& out) const override {
    out.c_format = c_format_;
    out.c = ref::Matrix(static_cast<std::size_t>(g_.M), static_cast<std::size_t>(g_.N));
    out.c_bits = result_.bits;
    for (std::size_t i = 0; i < out.c.data.size(); ++i) {
      out.c.data[i] = kValues ? result_.value[i] : num::to_double(result_.bits[i], c_format_);
    }
    arith_.collect(out, macs_);
  }

 private:
  // The same step compiled for the baseline ISA and for AVX2 with POPCNT,
  // picked once for the CPU at hand (the default build targets any x86-64).
  __attribute__((target("avx2,popcnt"))) void stream_avx2(std::uint64_t s, std::uint64_t now) { stream(s, now); }
  void stream_baseline(std::uint64_t s, std::uint64_t now) { stream(s, now); }
  __attribute__((target("avx2,popcnt"))) void forwarding_toggles_avx2() { forwarding_toggles(); }
  void forwarding_toggles_baseline() { forwarding_toggles(); }
  ACCSIM_INLINE void stream(std::uint64_t s, std::uint64_t now) {
    if (g_.ws) {
      ws_stream(static_cast<std::ptrdiff_t>(s), now);
    } else {
      os_stream(static_cast<std::ptrdiff_t>(s), now);
    }
  }
  ACCSIM_INLINE void ws_stream(std::ptrdiff_t s, std::uint64_t now);
  ACCSIM_INLINE void os_stream(std::ptrdiff_t s, std::uint64_t now);
  void os_drain(std::ptrdiff_t d, std::uint64_t now);
  ACCSIM_INLINE void forwarding_toggles();
  void trace_row(const RowJob<ProductBits>& job, std::size_t r, std::ptrdiff_t c_lo, std::uint64_t now, bool os);

  [[nodiscard]] std::uint64_t key(std::ptrdiff_t i, std::ptrdiff_t j, std::ptrdiff_t step) const {
    return ref::sr_key(static_cast<std::size_t>(i), static_cast<std::size_t>(j), static_cast<std::size_t>(step),
                       static_cast<std::size_t>(g_.N), g_.sr_steps);
  }
  // key(i + di, j + dj, step + dstep) - key(i, j, step), modulo 2^64.
  [[nodiscard]] std::uint64_t key_delta(std::ptrdiff_t di, std::ptrdiff_t dj, std::ptrdiff_t dstep) const {
    return (static_cast<std::uint64_t>(di) * static_cast<std::uint64_t>(g_.N) + static_cast<std::uint64_t>(dj)) *
               static_cast<std::uint64_t>(g_.sr_steps) +
           static_cast<std::uint64_t>(dstep);
  }

  Arith arith_;
  Geometry g_;
  num::Format c_format_;
  Tile tile_;
  RegisterFile a_, b_;     // operands as the buffers deliver them (A reordered, see above)
  RegisterFile skew_;      // OS: B along anti-diagonals
  RegisterFile weight_;    // WS: the stationary weight registers, R x C
  RegisterFile ring_;      // WS: each PE's adder output, by (row, step mod La, column)
  RegisterFile deskew_;    // WS: bottom-row sums on their way to the output buffer, by (m mod D, column)
  RegisterFile top_, bottom_;  // WS: the top feed and the bottom row's sums of one step
  RegisterFile acc_;       // OS: the accumulator registers, R x C
  RegisterFile result_;    // the output buffer's contents, M x N
  // The last value each register loaded, for toggles.
  std::vector<std::uint64_t> act_last_, weight_last_, sum_last_;
  std::vector<ProductBits> product_last_;
  std::vector<std::uint64_t> prefix_;  // WS weight load: per column, toggles of the rows shifted so far
  std::uint64_t macs_ = 0;
  void (KernelImpl::*step_)(std::uint64_t, std::uint64_t) = nullptr;
  void (KernelImpl::*tile_toggles_)() = nullptr;
};

// WS weight load, step j: the column shift chains take push(j), the tile's
// row kr-1-j, while rows 0..j shift down one place; after kr steps row r holds
// W[k0 + r]. Row r < j changes from push(j-1-r) to push(j-r), row j from its
// old weight to push(0): the toggles of step j are sum_{i=1..j}
// popcount(push(i) ^ push(i-1)) + popcount(push(0) ^ old[j]), kept as a
// running prefix per column, so nothing is copied until the last step.
template <class Arith>
void KernelImpl<Arith>::load_step(std::uint64_t j_, std::uint64_t now) {
  const auto j = static_cast<std::ptrdiff_t>(j_);
  const std::ptrdiff_t C = g_.C, N = g_.N;
  const auto k0 = static_cast<std::ptrdiff_t>(tile_.k0), kr = static_cast<std::ptrdiff_t>(tile_.kr);
  const auto n0 = static_cast<std::ptrdiff_t>(tile_.n0), nc = static_cast<std::ptrdiff_t>(tile_.nc);
  const auto w = [&](std::ptrdiff_t k, std::ptrdiff_t c) { return b_.bits[static_cast<std::size_t>(k * N + n0 + c)]; };
  std::uint64_t t = 0;
  for (std::ptrdiff_t c = 0; c < nc; ++c) {
    if (j > 0) prefix_[c] += static_cast<std::uint64_t>(std::popcount(w(k0 + kr - 1 - j, c) ^ w(k0 + kr - j, c)));
    t += prefix_[c] +
         static_cast<std::uint64_t>(std::popcount(w(k0 + kr - 1, c) ^ weight_.bits[static_cast<std::size_t>(j * C + c)]));
    if (vcd != nullptr && vcd->col_traced(static_cast<std::size_t>(c))) [[unlikely]] {
      for (std::ptrdiff_t r = 0; r <= j; ++r) {
        if (vcd->row_traced(static_cast<std::size_t>(r))) {
          vcd->pe(PeSignal::weight, static_cast<std::size_t>(r), static_cast<std::size_t>(c), now + 1,
                  w(k0 + kr - 1 - (j - r), c));
        }
      }
    }
  }
  toggles.weight += t;
  if (j + 1 == kr) {
    for (std::ptrdiff_t r = 0; r < kr; ++r) {
      for (std::ptrdiff_t c = 0; c < nc; ++c) {
        const auto src = static_cast<std::size_t>((k0 + r) * N + n0 + c), dst = static_cast<std::size_t>(r * C + c);
        weight_.bits[dst] = b_.bits[src];
        if constexpr (kValues) weight_.value[dst] = b_.value[src];
      }
    }
  }
}

// The activation forwarding registers of a row all load the same sequence
// (WS: A[m][k0 + r] for m = 0..M-1; OS: A[m0 + r][k] for k = 0..K-1), and in
// OS the weight forwarding registers of a column all load B[k][n0 + c]: each
// register's toggles are its first load against what it held before, plus
// the sequence's own toggles, which are counted once per row (column) of the
// tile instead of once per PE and step.
//
// Register (i, j) is last[i * row_stride + j * col_stride]; the t-th value
// register row i loads is seq[i * seq_row + t * seq_step].
ACCSIM_INLINE std::uint64_t sequence_toggles(std::uint64_t* last, std::size_t rows, std::size_t cols, std::size_t len,
                                             std::size_t row_stride, std::size_t col_stride, const std::uint64_t* seq,
                                             std::ptrdiff_t seq_row, std::ptrdiff_t seq_step) {
  std::uint64_t t = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const std::uint64_t* s = seq + static_cast<std::ptrdiff_t>(i) * seq_row;
    std::uint64_t run = 0;
    for (std::size_t step = 1; step < len; ++step) {
      const auto at = static_cast<std::ptrdiff_t>(step) * seq_step;
      run += static_cast<std::uint64_t>(std::popcount(s[at] ^ s[at - seq_step]));
    }
    t += run * cols;
    const std::uint64_t first = s[0], final = s[static_cast<std::ptrdiff_t>(len - 1) * seq_step];
    for (std::size_t j = 0; j < cols; ++j) {
      std::uint64_t& reg = last[i * row_stride + j * col_stride];
      t += static_cast<std::uint64_t>(std::popcount(first ^ reg));
      reg = final;
    }
  }
  return t;
}

template <class Arith>
ACCSIM_INLINE void KernelImpl<Arith>::forwarding_toggles() {
  const auto C = static_cast<std::size_t>(g_.C), M = static_cast<std::size_t>(g_.M), K = static_cast<std::size_t>(g_.K);
  const std::size_t nc = tile_.nc;
  if (g_.ws) {
    // a_ holds A by k with m reversed.
    toggles.activation += sequence_toggles(act_last_.data(), tile_.kr, nc, M, C, 1, &a_.bits[tile_.k0 * M + (M - 1)],
                                           g_.M, -1);
  } else {
    // a_ holds A by m with k reversed; B is row-major.
    toggles.activation += sequence_toggles(act_last_.data(), tile_.mr, nc, K, C, 1, &a_.bits[tile_.m0 * K + (K - 1)],
                                           g_.K, -1);
    toggles.weight += sequence_toggles(weight_last_.data(), nc, tile_.mr, K, 1, C, &b_.bits[tile_.n0], 1, g_.N);
  }
}

template <class Arith>
void KernelImpl<Arith>::trace_row(const RowJob<ProductBits>& job, std::size_t r, std::ptrdiff_t c_lo,
                                  std::uint64_t now, bool os) {
  const auto La = static_cast<std::uint64_t>(g_.La), Lm = static_cast<std::uint64_t>(g_.Lm);
  for (std::ptrdiff_t i = 0; i < job.n; ++i) {
    const auto c = static_cast<std::size_t>(c_lo + i * job.c_step);
    if (!vcd->col_traced(c)) continue;
    const std::ptrdiff_t e = i * job.c_step;
    vcd->pe(PeSignal::activation, r, c, now + 1 - Lm, job.a_bits[i * job.a_step]);
    if (os) vcd->pe(PeSignal::weight, r, c, now + 1 - Lm, job.b_bits[i * job.b_step]);
    if (job.product_last != nullptr) vcd->pe(PeSignal::product, r, c, now, job.product_last[e]);
    vcd->pe(PeSignal::sum, r, c, now + La, job.out_bits[e]);
  }
}

// One WS stream step. Vector m reaches PE(r, c)'s adder at m + r*La + c + Lm.
// Rows go bottom-up so that each PE reads the partial sum its upper
// neighbour produced La steps ago before the neighbour overwrites that
// delay-line slot in this step.
template <class Arith>
void KernelImpl<Arith>::ws_stream(std::ptrdiff_t s, std::uint64_t now) {
  const std::ptrdiff_t R = g_.R, C = g_.C, M = g_.M, N = g_.N, La = g_.La, Lm = g_.Lm, D = g_.D;
  const auto kr = static_cast<std::ptrdiff_t>(tile_.kr), nc = static_cast<std::ptrdiff_t>(tile_.nc);
  const auto k0 = static_cast<std::ptrdiff_t>(tile_.k0), n0 = static_cast<std::ptrdiff_t>(tile_.n0);
  const std::ptrdiff_t slot = s % La;
  const auto range = [&](std::ptrdiff_t base) {
    return std::pair{std::max<std::ptrdiff_t>(0, base - (M - 1)), std::min<std::ptrdiff_t>(nc - 1, base)};
  };
  // The top feed of this step: +0 (every chunk starts from zero), or the
  // previous k-tile's partial sums from the output buffer (feedback).
  if (const std::ptrdiff_t base = s - Lm; base >= 0) {
    const auto [c_lo, c_hi] = range(base);
    const bool from_buffer = g_.feedback && !tile_.first_k;
    for (std::ptrdiff_t c = c_lo; c <= c_hi; ++c) {
      const auto src = static_cast<std::size_t>((base - c) * N + n0 + c);
      top_.bits[c] = from_buffer ? result_.bits[src] : 0;
      if constexpr (kValues) top_.value[c] = from_buffer ? result_.value[src] : 0.0;
    }
  }
  RowToggles t;
  typename Arith::StepTally tally = arith_.begin_step();
  std::uint64_t t_pass = 0;
  for (std::ptrdiff_t r = R - 1; r >= 0; --r) {
    const std::ptrdiff_t base = s - r * La - Lm;  // vector index m at column 0
    if (base < 0) continue;
    const auto [c_lo, c_hi] = range(base);
    if (c_lo > c_hi) continue;
    RegisterFile& in = r > 0 ? ring_ : top_;
    const std::size_t in_at = r > 0 ? static_cast<std::size_t>(((r - 1) * La + slot) * C + c_lo) : static_cast<std::size_t>(c_lo);
    RegisterFile& out = r + 1 < R ? ring_ : bottom_;
    const std::size_t out_at = r + 1 < R ? static_cast<std::size_t>((r * La + slot) * C + c_lo) : static_cast<std::size_t>(c_lo);
    const auto pe = static_cast<std::size_t>(r * C + c_lo);
    const std::ptrdiff_t n = c_hi - c_lo + 1;
    if (r < kr) {
      RowJob<ProductBits> job;
      job.n = n;
      const auto a_at = static_cast<std::size_t>((k0 + r) * M + (M - 1 - base) + c_lo);
      job.a_val = a_.v(a_at);
      job.a_bits = a_.b(a_at);
      job.b_val = weight_.v(pe);
      job.b_bits = weight_.b(pe);
      job.in_val = in.v(in_at);
      job.in_bits = in.b(in_at);
      job.out_val = out.v(out_at);
      job.out_bits = out.b(out_at);
      job.product_last = Lm > 0 ? &product_last_[pe] : nullptr;
      job.sum_last = &sum_last_[pe];
      if constexpr (Arith::kGeneral) {
        job.key0 = key(base - c_lo, n0 + c_lo, k0 + r);
        job.key_step = key_delta(-1, 1, 0);
      }
      const RowToggles rt = arith_.mac_row(job, tally);
      t.product += rt.product;
      t.stages += rt.stages;
      macs_ += static_cast<std::uint64_t>(n);
      if (vcd != nullptr && vcd->row_traced(static_cast<std::size_t>(r))) [[unlikely]] {
        trace_row(job, static_cast<std::size_t>(r), c_lo, now, false);
      }
    } else {
      // Below the tile's last weight row the adders pass partial sums on.
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        const std::uint64_t bits = in.bits[in_at + i];
        out.bits[out_at + i] = bits;
        if constexpr (kValues) out.value[out_at + i] = in.value[in_at + i];
        t_pass += static_cast<std::uint64_t>(std::popcount(bits ^ sum_last_[pe + i]));
        sum_last_[pe + i] = bits;
        if (vcd != nullptr && vcd->traced(static_cast<std::size_t>(r), static_cast<std::size_t>(c_lo + i))) [[unlikely]] {
          vcd->pe(PeSignal::sum, static_cast<std::size_t>(r), static_cast<std::size_t>(c_lo + i),
                  now + static_cast<std::uint64_t>(La), bits);
        }
      }
    }
    if (r + 1 == R) {  // into the de-skew delay lines, by vector index
      for (std::ptrdiff_t c = c_lo; c <= c_hi; ++c) {
        const auto dst = static_cast<std::size_t>(((base - c) % D) * C + c);
        deskew_.bits[dst] = bottom_.bits[c];
        if constexpr (kValues) deskew_.value[dst] = bottom_.value[c];
      }
    }
  }
  arith_.end_step(tally);
  toggles.product += t.product * static_cast<std::uint64_t>(Lm);
  toggles.sum += (t.stages + t_pass) * static_cast<std::uint64_t>(La);

  // The output buffer takes de-skewed vector m_w: merged into the running
  // sums (merge) or stored as the new running sums (feedback).
  if (s >= g_.L) {
    const std::ptrdiff_t m_w = s - g_.L;
    const auto row = static_cast<std::size_t>((m_w % D) * C);
    const auto res = static_cast<std::size_t>(m_w * N + n0);
    if (g_.merge) {
      const auto chunk = static_cast<std::ptrdiff_t>(tile_.kt);
      arith_.merge_row(result_.v(res), result_.b(res), deskew_.v(row), deskew_.b(row), nc, key(m_w, n0, g_.K + chunk),
                       key_delta(0, 1, 0));
    } else {
      for (std::ptrdiff_t c = 0; c < nc; ++c) {
        result_.bits[res + c] = deskew_.bits[row + c];
        if constexpr (kValues) result_.value[res + c] = deskew_.value[row + c];
      }
    }
  }
}

// One OS stream step: PE(r, c) adds the product of step k when
// k*La + r + c + Lm == s. Rows at or beyond the tile's mr hold no outputs.
template <class Arith>
void KernelImpl<Arith>::os_stream(std::ptrdiff_t s, std::uint64_t now) {
  const std::ptrdiff_t C = g_.C, K = g_.K, N = g_.N, La = g_.La, Lm = g_.Lm;
  const auto mr = static_cast<std::ptrdiff_t>(tile_.mr), nc = static_cast<std::ptrdiff_t>(tile_.nc);
  const auto m0 = static_cast<std::ptrdiff_t>(tile_.m0), n0 = static_cast<std::ptrdiff_t>(tile_.n0);
  const auto skew_tile = static_cast<std::size_t>(tile_.nt) * static_cast<std::size_t>(K + C) * static_cast<std::size_t>(C);
  RowToggles t;
  typename Arith::StepTally tally = arith_.begin_step();
  for (std::ptrdiff_t r = 0; r < mr; ++r) {
    const std::ptrdiff_t base = s - r - Lm;  // k*La + c
    if (base < 0) break;                     // later rows start later still
    std::ptrdiff_t c_lo = std::max<std::ptrdiff_t>(0, base - (K - 1) * La);
    const std::ptrdiff_t c_hi = std::min<std::ptrdiff_t>(nc - 1, base);
    c_lo += (base - c_lo) % La;  // only the columns whose step is due now
    if (c_lo > c_hi) continue;
    const std::ptrdiff_t k_first = (base - c_lo) / La;  // k falls by one per PE of the run
    const auto pe = static_cast<std::size_t>(r * C + c_lo);
    RowJob<ProductBits> job;
    job.n = (c_hi - c_lo) / La + 1;
    job.c_step = La;
    const auto a_at = static_cast<std::size_t>((m0 + r) * K + (K - 1 - k_first));
    job.a_val = a_.v(a_at);
    job.a_bits = a_.b(a_at);
    if (La == 1) {
      const std::size_t b_at = skew_tile + static_cast<std::size_t>((k_first + c_lo) * C + c_lo);
      job.b_val = skew_.v(b_at);
      job.b_bits = skew_.b(b_at);
    } else {
      const auto b_at = static_cast<std::size_t>(k_first * N + n0 + c_lo);
      job.b_val = b_.v(b_at);
      job.b_bits = b_.b(b_at);
      job.b_step = La - N;
    }
    job.in_val = job.out_val = acc_.v(pe);
    job.in_bits = job.out_bits = acc_.b(pe);
    job.acc_toggles = true;
    job.product_last = Lm > 0 ? &product_last_[pe] : nullptr;
    job.sum_last = La > 1 ? &sum_last_[pe] : nullptr;
    if constexpr (Arith::kGeneral) {
      job.key0 = key(m0 + r, n0 + c_lo, k_first);
      job.key_step = key_delta(0, La, -1);
    }
    const RowToggles rt = arith_.mac_row(job, tally);
    t.product += rt.product;
    t.stages += rt.stages;
    t.accumulator += rt.accumulator;
    macs_ += static_cast<std::uint64_t>(job.n);
    if (vcd != nullptr && vcd->row_traced(static_cast<std::size_t>(r))) [[unlikely]] {
      trace_row(job, static_cast<std::size_t>(r), c_lo, now, true);
    }
  }
  arith_.end_step(tally);
  toggles.product += t.product * static_cast<std::uint64_t>(Lm);
  // The adder's first La-1 stages see every sum; the last is the
  // accumulator, which the drain also shifts.
  toggles.sum += t.stages * static_cast<std::uint64_t>(La - 1) + t.accumulator;
  if (s >= g_.os_drain) os_drain(s - g_.os_drain, now);
}

// OS drain step d: the bottom row's accumulators go to the output buffer
// (they hold output row R-1-d), then every accumulator takes the one above
// and +0 enters the top row, which also clears the array for the next tile.
template <class Arith>
void KernelImpl<Arith>::os_drain(std::ptrdiff_t d, std::uint64_t now) {
  const std::ptrdiff_t R = g_.R, C = g_.C, N = g_.N;
  const auto mr = static_cast<std::ptrdiff_t>(tile_.mr), nc = static_cast<std::ptrdiff_t>(tile_.nc);
  const auto m0 = static_cast<std::ptrdiff_t>(tile_.m0), n0 = static_cast<std::ptrdiff_t>(tile_.n0);
  const std::ptrdiff_t out_row = R - 1 - d;
  if (out_row < mr) {
    for (std::ptrdiff_t c = 0; c < nc; ++c) {
      const auto dst = static_cast<std::size_t>((m0 + out_row) * N + n0 + c);
      const auto src = static_cast<std::size_t>((R - 1) * C + c);
      result_.bits[dst] = acc_.bits[src];
      if constexpr (kValues) result_.value[dst] = acc_.value[src];
    }
  }
  // After d shifts rows 0..d-1 already hold +0, so only rows d..R-1 change.
  std::uint64_t t = 0;
  for (std::ptrdiff_t r = R - 1; r >= d; --r) {
    const bool traced_row = vcd != nullptr && vcd->row_traced(static_cast<std::size_t>(r));
    for (std::ptrdiff_t c = 0; c < nc; ++c) {
      const auto dst = static_cast<std::size_t>(r * C + c);
      const std::uint64_t bits = r > 0 ? acc_.bits[dst - static_cast<std::size_t>(C)] : 0;
      t += static_cast<std::uint64_t>(std::popcount(acc_.bits[dst] ^ bits));
      acc_.bits[dst] = bits;
      if constexpr (kValues) acc_.value[dst] = r > 0 ? acc_.value[dst - static_cast<std::size_t>(C)] : 0.0;
      if (traced_row && vcd->col_traced(static_cast<std::size_t>(c))) [[unlikely]] {
        vcd->pe(PeSignal::sum, static_cast<std::size_t>(r), static_cast<std::size_t>(c), now + 1, bits);
      }
    }
  }
  toggles.sum += t;
}

template <Rounding A, Rounding P, bool kHasProduct>
std::unique_ptr<ArrayModel::Kernel> make_fast(const FastPlan& plan, const ref::GemmConfig& cfg,
                                              const num::Format& c_format, const Geometry& g,
                                              const ref::QuantizedOperand& a, const ref::QuantizedOperand& b) {
  return std::make_unique<KernelImpl<FastArith<A, P, kHasProduct>>>(FastArith<A, P, kHasProduct>(plan, cfg, c_format),
                                                                    g, a, b, c_format);
}

}  // namespace

ArrayModel::ArrayModel(const ArrayConfig& array, const Schedule& schedule, const ref::QuantizedOperand& a,
                       const ref::QuantizedOperand& b, const ref::GemmConfig& gemm) {
  const GemmShape& shape = schedule.shape();
  Geometry g;
  g.R = static_cast<std::ptrdiff_t>(array.rows);
  g.C = static_cast<std::ptrdiff_t>(array.cols);
  g.M = static_cast<std::ptrdiff_t>(shape.m);
  g.K = static_cast<std::ptrdiff_t>(shape.k);
  g.N = static_cast<std::ptrdiff_t>(shape.n);
  g.Lm = array.mul_latency;
  g.La = array.add_latency;
  g.ws = schedule.weight_stationary();
  const ref::AccumulationOrder order = array.order();
  g.merge = g.ws && !order.sequential();
  g.feedback = g.ws && order.sequential();
  g.L = static_cast<std::ptrdiff_t>(schedule.ws_output_latency());
  g.D = g.La + g.C;
  g.os_drain = static_cast<std::ptrdiff_t>(schedule.os_drain_start());
  const std::size_t chunks = order.sequential() ? 1 : schedule.k_tiles();
  g.sr_steps = shape.k + chunks;
  const num::Format c_format = order.merge(gemm.accumulator);

  if (const std::optional<FastPlan> plan = plan_lanes(gemm, c_format, a, b)) {
    kernel_ = fast::dispatch_mode(plan->accumulate.mode, [&]<Rounding A>() {
      if (!plan->product) return make_fast<A, A, false>(*plan, gemm, c_format, g, a, b);
      return fast::dispatch_mode(plan->product->mode,
                                 [&]<Rounding P>() { return make_fast<A, P, true>(*plan, gemm, c_format, g, a, b); });
    });
    kernel_->fast = true;
  } else {
    kernel_ = std::make_unique<KernelImpl<GeneralArith>>(GeneralArith(gemm, c_format, array.mul_latency, array.add_latency),
                                                         g, a, b, c_format);
  }
  const Multiplier multiplier(gemm.multiplier, gemm.product, array.mul_latency);
  kernel_->widths = {num::width(gemm.multiplier), num::width(gemm.multiplier), multiplier.register_width(),
                     num::width(gemm.accumulator)};
}

ArrayModel::~ArrayModel() = default;

void ArrayModel::begin_tile(const Tile& tile) { kernel_->begin_tile(tile); }
void ArrayModel::load_step(std::uint64_t j, std::uint64_t now) { kernel_->load_step(j, now); }
void ArrayModel::stream_step(std::uint64_t s, std::uint64_t now) { kernel_->stream_step(s, now); }
void ArrayModel::attach(VcdRecorder* vcd) { kernel_->vcd = vcd; }
bool ArrayModel::fast_path() const { return kernel_->fast; }
RegisterWidths ArrayModel::register_widths() const { return kernel_->widths; }
ToggleCounts ArrayModel::toggles() const { return kernel_->toggles; }
void ArrayModel::collect(ref::GemmResult& out) const { kernel_->collect(out); }

}  // namespace accsim::hw
