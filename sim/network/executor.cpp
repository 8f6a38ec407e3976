#include "sim/network/executor.hpp"

#include <time.h>

#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>

#include "models/numerics/format.hpp"
#include "models/reference/fast_plan.hpp"
#include "sim/network/float_gemm.hpp"
#include "sim/network/kernels.hpp"

namespace accsim::net {

// --- statistics ----------------------------------------------------------------------

const char* to_string(Phase p) {
  switch (p) {
    case Phase::quantize:
      return "quantize";
    case Phase::lower:
      return "lower";
    case Phase::gemm:
      return "gemm";
    case Phase::statistics:
      return "statistics";
    case Phase::other:
      break;
  }
  return "other";
}

namespace {

// ErrorSums::add's lanes over the whole groups of kLanes pairs from the
// start: lane l sums pairs l, l + 8, l + 16, ... (each scaled) in order
// into ls[l] (want^2), lq[l] ((got - want)^2) and lm[l] (max |got - want|). Returns
// the pairs taken. The lanes sit in registers of Width doubles, 8 / Width
// of them; each instance does the same operations on each lane, so the
// bits do not depend on the CPU.
static_assert(ErrorSums::kLanes == 8);
// Vectors of Width lanes of T (a vector_size that depends on a template
// parameter must sit in a class template for GCC to keep it).
template <class T, std::size_t Width>
struct LaneVec {
  typedef T type __attribute__((vector_size(Width * sizeof(T))));
};
template <std::size_t Width, class Got, class Want>
inline __attribute__((always_inline)) std::size_t error_lanes(const Got* got, const Want* want, std::size_t n,
                                                               double scale, double* ls, double* lq, double* lm) {
  constexpr std::size_t kRegs = 8 / Width;
  using V = typename LaneVec<double, Width>::type;
  using I = typename LaneVec<std::int64_t, Width>::type;
  using G = typename LaneVec<Got, Width>::type;
  using W = typename LaneVec<Want, Width>::type;
  V sv[kRegs] = {}, qv[kRegs] = {}, mv[kRegs] = {};
  const I magnitude = I{} + std::numeric_limits<std::int64_t>::max();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t h = 0; h < kRegs; ++h) {
      G g;
      W w;
      std::memcpy(&g, got + i + Width * h, sizeof g);
      std::memcpy(&w, want + i + Width * h, sizeof w);
      const V wd = __builtin_convertvector(w, V) * scale;
      const V e = __builtin_convertvector(g, V) * scale - wd;
      sv[h] += wd * wd;
      qv[h] += e * e;
      const V a = (V)((I)e & magnitude);  // |e|
      mv[h] = a > mv[h] ? a : mv[h];      // a NaN is passed over
    }
  }
  std::memcpy(ls, sv, 8 * sizeof(double));
  std::memcpy(lq, qv, 8 * sizeof(double));
  std::memcpy(lm, mv, 8 * sizeof(double));
  return i;
}
// One AVX-512 register; four SSE2 registers, which every x86-64 has (a
// wider vector type, which the baseline build splits, goes through memory).
template <class Got, class Want>
__attribute__((target("avx512f"))) std::size_t error_lanes_avx512(const Got* got, const Want* want, std::size_t n,
                                                                   double scale, double* ls, double* lq, double* lm) {
  return error_lanes<8>(got, want, n, scale, ls, lq, lm);
}
template <class Got, class Want>
std::size_t error_lanes_baseline(const Got* got, const Want* want, std::size_t n, double scale, double* ls,
                                 double* lq, double* lm) {
  return error_lanes<2>(got, want, n, scale, ls, lq, lm);
}

}  // namespace

template <class Got, class Want>
void ErrorSums::add(const Got* got, const Want* want, std::size_t n, double scale) {
  double ls[kLanes], lq[kLanes], lm[kLanes];
  std::size_t i = ref::lane_isa() == ref::LaneIsa::avx512 ? error_lanes_avx512(got, want, n, scale, ls, lq, lm)
                                                          : error_lanes_baseline(got, want, n, scale, ls, lq, lm);
  for (std::size_t l = 0; i < n; ++i, ++l) {
    const double w = static_cast<double>(want[i]) * scale;
    const double e = static_cast<double>(got[i]) * scale - w;
    ls[l] += w * w;
    lq[l] += e * e;
    lm[l] = std::abs(e) > lm[l] ? std::abs(e) : lm[l];
  }
  auto tree = [](const double* v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); };
  signal += tree(ls);
  noise += tree(lq);
  for (const double m : lm) max_abs = std::max(max_abs, m);
  count += n;
}
template void ErrorSums::add(const double*, const double*, std::size_t, double);
template void ErrorSums::add(const float*, const double*, std::size_t, double);
template void ErrorSums::add(const float*, const float*, std::size_t, double);

double ErrorSums::snr_db() const {
  if (noise == 0) return std::numeric_limits<double>::infinity();
  if (signal == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

double ErrorSums::rel_error() const {
  if (noise == 0) return 0.0;
  if (signal == 0) return std::numeric_limits<double>::infinity();
  return std::sqrt(noise / signal);
}

LayerStats& LayerStats::operator+=(const LayerStats& o) {
  quantize += o.quantize;
  product += o.product;
  accumulate += o.accumulate;
  merge += o.merge;
  accumulation += o.accumulation;
  layer += o.layer;
  network += o.network;
  return *this;
}

bool operator==(const LayerArithmetic& x, const LayerArithmetic& y) {
  if (x.engine != y.engine) return false;
  if (x.engine == Engine::fp32) return true;
  const ref::GemmConfig& a = x.config;
  const ref::GemmConfig& b = y.config;
  return a.multiplier == b.multiplier && a.product == b.product && a.accumulator == b.accumulator &&
         a.order == b.order && a.scaling == b.scaling && a.allow_fast_path == b.allow_fast_path;
}

std::string describe(const LayerArithmetic& a) {
  if (a.engine == Engine::fp32) return "fp32";
  const ref::GemmConfig& c = a.config;
  std::string s = "mul " + num::to_string(c.multiplier) + " (scale " + std::string(ref::to_string(c.scaling)) +
                  "), prod " + (c.product ? num::to_string(*c.product) : std::string("exact")) + ", acc " +
                  num::to_string(c.accumulator) + ", " + ref::to_string(c.order);
  if (!c.order.sequential() && c.order.merge_format) s += " (merge " + num::to_string(*c.order.merge_format) + ")";
  return s;
}

// --- preparation ---------------------------------------------------------------------

namespace {

using ref::QuantizedOperand;
using ref::ScaleAxis;
using ref::Scaling;

// Weights keep the configured scaling; activations are never scaled per
// channel (a per-row scale of an activation matrix would be a per-pixel or
// per-token scale, which no accelerator applies).
Scaling operand_scaling(Scaling s, bool is_weight) {
  return (s == Scaling::channel && !is_weight) ? Scaling::tensor : s;
}

QuantizedOperand quantize_floats(const float* data, std::size_t rows, std::size_t cols, const num::Format& format,
                                 Scaling scaling, ScaleAxis axis, std::uint64_t sr_stream) {
  QuantizedOperand q;
  ref::quantize_operand(data, rows, cols, format, scaling, axis, sr_stream, q);
  return q;
}

bool stochastic(const num::Format& f) {
  const auto* ff = std::get_if<num::FloatFormat>(&f);
  return ff != nullptr && ff->rounding == num::Rounding::sr;
}

// Rows [r0, r1) of a row-major operand, with their scales.
QuantizedOperand slice_rows(const QuantizedOperand& q, std::size_t r0, std::size_t r1) {
  QuantizedOperand s;
  s.rows = r1 - r0;
  s.cols = q.cols;
  s.axis = q.axis;
  s.bits.assign(q.bits.begin() + static_cast<std::ptrdiff_t>(r0 * q.cols),
                q.bits.begin() + static_cast<std::ptrdiff_t>(r1 * q.cols));
  s.values.assign(q.values.begin() + static_cast<std::ptrdiff_t>(r0 * q.cols),
                  q.values.begin() + static_cast<std::ptrdiff_t>(r1 * q.cols));
  if (q.scale.size() == 1) {
    s.scale = q.scale;
  } else {
    assert(q.axis == ScaleAxis::rows);
    s.scale.assign(q.scale.begin() + static_cast<std::ptrdiff_t>(r0), q.scale.begin() + static_cast<std::ptrdiff_t>(r1));
  }
  return s;
}

// A' = A or A^T as [m x k]; B' = B or B^T as [k x n] (row-major floats).
void gather_a(const Node& node, const float* a, std::vector<float>& out) {
  const GemmShape& g = node.gemm;
  const auto m = static_cast<std::size_t>(g.m), k = static_cast<std::size_t>(g.k);
  out.resize(m * k);
  if (node.op == Op::Gemm && std::get<GemmAttrs>(node.attrs).trans_a) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t kk = 0; kk < k; ++kk) out[i * k + kk] = a[kk * m + i];
  } else {
    std::memcpy(out.data(), a, m * k * sizeof(float));
  }
}
void gather_b(const Node& node, const float* b, std::vector<float>& out) {
  const GemmShape& g = node.gemm;
  const auto k = static_cast<std::size_t>(g.k), n = static_cast<std::size_t>(g.n);
  out.resize(k * n);
  if (node.op == Op::Gemm && std::get<GemmAttrs>(node.attrs).trans_b) {
    for (std::size_t kk = 0; kk < k; ++kk)
      for (std::size_t j = 0; j < n; ++j) out[kk * n + j] = b[j * k + kk];
  } else {
    std::memcpy(out.data(), b, k * n * sizeof(float));
  }
}

// The same operand transposed: encodings, values and scales move with
// their elements, so the products and their rounding are unchanged.
QuantizedOperand transpose(const QuantizedOperand& q) {
  QuantizedOperand t;
  t.rows = q.cols;
  t.cols = q.rows;
  t.axis = q.axis == ScaleAxis::rows ? ScaleAxis::cols : ScaleAxis::rows;
  t.scale = q.scale;
  t.events = q.events;
  t.bits.resize(q.bits.size());
  t.values.resize(q.values.size());
  for (std::size_t r = 0; r < q.rows; ++r) {
    for (std::size_t c = 0; c < q.cols; ++c) {
      t.bits[c * q.rows + r] = q.bits[r * q.cols + c];
      t.values[c * q.rows + r] = q.values[r * q.cols + c];
    }
  }
  return t;
}

// Whether a Conv runs as C^T = im2row(X) * W^T instead of C = W * im2col(X).
// Each output still sums the same products in the same order, so the bits
// are the same; only stochastic rounding, whose draws are keyed on an
// output's (row, column), would see the difference, so it keeps the
// canonical orientation. Otherwise the orientation with fewer passes of the
// reference GEMM's kernel (ref::lane_passes) is faster: 64 output channels
// against a 7x7 output (49 columns) take one pass per position as C^T and
// one per channel as C.
bool conv_transposed(const ref::GemmConfig& c, std::size_t m, std::size_t n) {
  auto sr = [](const std::optional<num::Format>& f) { return f && stochastic(*f); };
  if (sr(c.product) || sr(c.accumulator) || sr(c.order.merge_format)) return false;
  return ref::transpose_takes_fewer_passes(c, m, n);
}

}  // namespace

namespace {

// A per-sample operand [rows x cols] in the multiplier format, into `q`
// (its buffers reused). Activations take one scale for the whole tensor.
void quantize_runtime(const float* data, std::size_t rows, std::size_t cols, const num::Format& format,
                      Scaling scaling, bool is_weight, ScaleAxis axis, std::uint64_t sr_stream, QuantizedOperand& q) {
  ref::quantize_operand(data, rows, cols, format, operand_scaling(scaling, is_weight), axis, sr_stream, q);
}
QuantizedOperand quantize_runtime(const float* data, std::size_t rows, std::size_t cols, const num::Format& format,
                                  Scaling scaling, bool is_weight, ScaleAxis axis, std::uint64_t sr_stream) {
  QuantizedOperand q;
  quantize_runtime(data, rows, cols, format, scaling, is_weight, axis, sr_stream, q);
  return q;
}

}  // namespace

// A constant GEMM operand, laid out as the GEMM reads it and, for the
// reference engine, rounded into the multiplier format (one piece per Conv
// group).
struct ConstantOperand {
  std::vector<float> f;
  std::vector<double> wide;  // f widened (exact), for the `layer` yardstick's A
  std::vector<QuantizedOperand> q;
  std::vector<QuantizedOperand> q_t;  // q's pieces transposed, where the layer runs transposed
  // A Conv's pieces as the float lanes read them (where plan_f32 takes
  // its formats): q's values [m x k] as floats, or, transposed, q_t's
  // [k x m] in their B layout (ref::F32Operands).
  std::vector<ref::F32Buffer> lanes;
};

struct Executor::Prepared {
  std::optional<ConstantOperand> a, b;
  bool a_is_weight = false, b_is_weight = false;
  // A Conv with constant weights whose reference GEMM runs as C^T (see
  // conv_transposed). An engine in the reference GEMM's place (the
  // cycle-accurate array) still takes C = W * im2col(X), as the hardware
  // computes it.
  bool transposed = false;
  num::EventCounts weight_events;  // rounding a and b, once
};

Executor::Executor(const Network& net, std::vector<LayerArithmetic> layers)
    : net_(net), arithmetic_(std::move(layers)) {
  assert(arithmetic_.size() == net_.gemm_layers.size());
  // Buffer slots by liveness: a node's output takes a free slot (never one
  // of its own inputs'), and an input whose last reader this node is frees
  // its slot afterwards.
  for (std::size_t keep = 0; keep < 2; ++keep) {
    constexpr std::size_t kNone = static_cast<std::size_t>(-1);
    std::vector<std::size_t> last_use(net_.values.size(), kNone);
    std::vector<bool> pinned(net_.values.size(), false);
    pinned[net_.input] = pinned[net_.output] = true;
    if (keep == 1) {
      for (std::size_t i : net_.gemm_layers) pinned[net_.nodes[i].output] = true;
    }
    for (std::size_t n = 0; n < net_.nodes.size(); ++n) {
      for (const auto& in : net_.nodes[n].inputs) {
        if (in) last_use[*in] = n;
      }
    }
    std::vector<std::size_t>& slot = slot_of_[keep];
    slot.assign(net_.values.size(), kNone);
    std::vector<std::size_t> free_slots;
    auto take = [&](ValueId v) {
      if (free_slots.empty()) {
        slot[v] = slots_[keep]++;
      } else {
        slot[v] = free_slots.back();
        free_slots.pop_back();
      }
    };
    take(net_.input);
    for (std::size_t n = 0; n < net_.nodes.size(); ++n) {
      const Node& node = net_.nodes[n];
      take(node.output);
      for (const auto& in : node.inputs) {
        if (!in || net_.values[*in].constant || pinned[*in] || last_use[*in] != n) continue;
        free_slots.push_back(slot[*in]);
        last_use[*in] = kNone;  // an input read twice by this node is freed once
      }
    }
  }
  auto constant = [&](const std::optional<ValueId>& v) -> const std::vector<float>* {
    if (!v || !net_.values[*v].constant) return nullptr;
    return &net_.constants[*net_.values[*v].constant];
  };
  for (std::size_t l = 0; l < arithmetic_.size(); ++l) {
    const Node& node = net_.nodes[net_.gemm_layers[l]];
    const LayerArithmetic& arith = arithmetic_[l];
    auto p = std::make_unique<Prepared>();
    // A Conv's A operand is its weights, input 1 (input 0 is the
    // activations, lowered per sample).
    const bool conv = node.op == Op::Conv;
    const std::vector<float>* a = constant(node.inputs[conv ? 1 : 0]);
    const std::vector<float>* b = conv ? nullptr : constant(node.inputs[1]);
    if (node.op == Op::MatMul && node.gemm.groups > 1) {
      // Batched (attention): operands rounded per sample, see run_batched_matmul.
      p->a_is_weight = a != nullptr;
      p->b_is_weight = b != nullptr;
      prepared_.push_back(std::move(p));
      continue;
    }
    if (conv) {
      p->a_is_weight = true;  // W, whether constant or not
    } else {
      p->b_is_weight = b != nullptr;
      p->a_is_weight = a != nullptr && b == nullptr;
    }
    const GemmShape& g = node.gemm;
    const num::Format& mul = arith.config.multiplier;
    const Scaling scaling = arith.config.scaling;
    if (a != nullptr) {
      ConstantOperand op;
      if (conv) {
        op.f = *a;  // [M, C/group, kH, kW] is row-major [M x k]
      } else {
        gather_a(node, a->data(), op.f);
      }
      if (arith.engine == Engine::reference) {
        op.wide.assign(op.f.begin(), op.f.end());
        const auto rows = static_cast<std::size_t>(g.m * g.groups), k = static_cast<std::size_t>(g.k);
        const QuantizedOperand whole =
            quantize_floats(op.f.data(), rows, k, mul, operand_scaling(scaling, p->a_is_weight), ScaleAxis::rows, 1);
        p->weight_events += whole.events;
        p->transposed = conv && conv_transposed(arith.config, static_cast<std::size_t>(g.m), static_cast<std::size_t>(g.n));
        const ref::GemmConfig& cfg = arith.config;
        const bool lanes = conv && ref::plan_f32(cfg, cfg.order.merge(cfg.accumulator), whole, whole).has_value();
        for (std::int64_t grp = 0; grp < g.groups; ++grp) {
          QuantizedOperand slice =
              slice_rows(whole, static_cast<std::size_t>(grp * g.m), static_cast<std::size_t>((grp + 1) * g.m));
          if (p->transposed) op.q_t.push_back(transpose(slice));
          // As floats (exact: plan_f32 checked the format): W [m x k], or
          // W^T [k x m] in the lanes' B layout.
          if (lanes && p->transposed) {
            const QuantizedOperand& q = op.q_t.back();
            ref::F32Buffer& f = op.lanes.emplace_back(ref::f32_b_size(q.rows, q.cols), 0.0f);
            for (std::size_t r = 0; r < q.rows; ++r) {
              for (std::size_t c = 0; c < q.cols; ++c) {
                f[ref::f32_b_index(q.rows, r, c)] = static_cast<float>(q.values[r * q.cols + c]);
              }
            }
          } else if (lanes) {
            op.lanes.emplace_back(slice.values.begin(), slice.values.end());
          }
          op.q.push_back(std::move(slice));
        }
      }
      p->a = std::move(op);
    }
    if (b != nullptr && node.op != Op::Conv) {
      ConstantOperand op;
      gather_b(node, b->data(), op.f);
      if (arith.engine == Engine::reference) {
        op.q.push_back(quantize_floats(op.f.data(), static_cast<std::size_t>(g.k), static_cast<std::size_t>(g.n), mul,
                                       operand_scaling(scaling, p->b_is_weight), ScaleAxis::cols, 2));
        p->weight_events += op.q[0].events;
      }
      p->b = std::move(op);
    }
    prepared_.push_back(std::move(p));
  }
}

Executor::~Executor() = default;

const num::EventCounts& Executor::weight_events(std::size_t layer) const { return prepared_.at(layer)->weight_events; }

std::unique_ptr<Executor::Workspace> Executor::make_workspace(bool keep_layer_outputs) const {
  auto ws = std::make_unique<Workspace>();
  ws->keep_layer_outputs = keep_layer_outputs;
  ws->values.resize(slots_[keep_layer_outputs ? 1 : 0]);
  ws->layer.resize(arithmetic_.size());
  return ws;
}

namespace {

// Attributes a thread's CPU time to phases: enter() charges the time since
// the last call to the phase then running. Free when `times` is null (one
// clock read costs a system call, so only --timing pays for them).
class PhaseClock {
 public:
  explicit PhaseClock(PhaseTimes* times) : times_(times) {
    if (times_ != nullptr) last_ = now();
  }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;
  ~PhaseClock() { enter(Phase::other); }
  void enter(Phase phase) {
    if (times_ == nullptr || phase == current_) return;
    const double t = now();
    times_->seconds[static_cast<std::size_t>(current_)] += t - last_;
    last_ = t;
    current_ = phase;
  }

 private:
  static double now() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  PhaseTimes* times_;
  Phase current_ = Phase::other;
  double last_ = 0;
};

// The GEMM of one layer (one group): fills c[m x n] with A'B' (scales
// undone) and adds the layer's statistics. `a_f`, `b_f` are the unrounded
// operands (for the `layer` yardstick). `qa`, `qb` are the rounded ones
// (reference engine only): A' [m x k] and B' [k x n], or, when `transposed`,
// B'^T [n x k] and A'^T [k x m], whose product is C^T.
struct GemmCall {
  std::size_t layer;
  const LayerArithmetic& arith;
  std::size_t m, k, n;
  const float* a_f;
  const float* b_f;
  const double* a_wide = nullptr;  // a_f widened, where prepared
  const QuantizedOperand* qa = nullptr;
  const QuantizedOperand* qb = nullptr;
  bool transposed = false;
  // With `lanes_plan`, the accumulation runs on these floats in the float
  // lanes' layout (ref::F32Operands), which hold qa's and qb's values; qa
  // and qb then give only shapes and scales.
  const ref::F32Plan* lanes_plan = nullptr;
  ref::F32Operands lanes{};
};

// `r` holds the accumulation's result (its storage reused from call to
// call), `scratch` the yardsticks.
void run_gemm(const GemmCall& call, float* c, ref::GemmResult& r, std::vector<double>& scratch, LayerStats* stats,
              const Executor::GemmEngine& engine, PhaseClock& clock) {
  const std::size_t m = call.m, k = call.k, n = call.n;
  clock.enter(Phase::gemm);
  if (call.arith.engine == Engine::fp32) {
    gemm_fp32_sequential(call.a_f, call.b_f, c, m, k, n);
    if (stats) {
      clock.enter(Phase::statistics);
      if (scratch.size() < m * n) scratch.resize(m * n);
      gemm_f64(call.a_f, call.b_f, scratch.data(), m, k, n);
      ErrorSums errors;  // the same for both: fp32 operands are not rounded
      errors.add(c, scratch.data(), m * n);
      stats->accumulation += errors;
      stats->layer += errors;
    }
    return;
  }
  ref::GemmConfig config = call.arith.config;
  config.threads = 1;  // the caller parallelizes over samples
  if (engine) {
    r = engine(call.layer, *call.qa, *call.qb, config);
  } else if (call.lanes_plan != nullptr) {
    ref::accumulate_f32(*call.lanes_plan, call.lanes, config, r);
  } else {
    ref::accumulate_products(*call.qa, *call.qb, config, r, /*encodings=*/false);  // only values are read here
  }
  clock.enter(Phase::other);
  const bool t = call.transposed;
  // Element (i, j) of C: its index in r.c and the scale it carries.
  auto at = [&](std::size_t i, std::size_t j) { return t ? j * m + i : i * n + j; };
  auto scale = [&](std::size_t i, std::size_t j) {
    return t ? call.qa->scale_at(j, 0) * call.qb->scale_at(0, i) : call.qa->scale_at(i, 0) * call.qb->scale_at(0, j);
  };
  // x / scale(i, j). With one scale for the whole GEMM that is a power of
  // two (no scaling, pow2), dividing by it is multiplying by its reciprocal,
  // which is exact: the same bits, without a division per element.
  const bool one_scale = call.qa->scale.size() == 1 && call.qb->scale.size() == 1;
  const double scale0 = one_scale ? call.qa->scale[0] * call.qb->scale[0] : 0.0;
  int exponent = 0;
  const bool pow2 = one_scale && std::frexp(scale0, &exponent) == 0.5 && std::isnormal(1.0 / scale0);
  const double inverse0 = pow2 ? 1.0 / scale0 : 0.0;
  auto unscale = [&](double x, std::size_t i, std::size_t j) {
    if (pow2) return x * inverse0;
    return x / (one_scale ? scale0 : scale(i, j));
  };
  // Undo the scales: exact for pow2 and no scaling (the accumulator's values
  // fit a float); absmax scales are divided out in double, then rounded to
  // float. This is dequantization, outside the emulated datapath. With
  // statistics, the same loop below adds the errors.
  if (!stats) {
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) c[i * n + j] = static_cast<float>(unscale(r.c.data[at(i, j)], i, j));
    }
    return;
  }
  clock.enter(Phase::statistics);
  stats->product += r.stats.product;
  stats->accumulate += r.stats.accumulate;
  stats->merge += r.stats.merge;
  // The two yardsticks: `exact` in r.c's layout, `wide` in c's; then C
  // unscaled, and the errors of C against `exact` (in c's order: other
  // layouts and scales unscale both into `value` and `exact_c` first).
  if (scratch.size() < 4 * m * n) scratch.resize(4 * m * n);
  double* const exact = scratch.data();
  double* const wide = exact + m * n;
  double* const value = wide + m * n;
  double* const exact_c = value + m * n;
  const num::Format& mul = call.arith.config.multiplier;
  if (call.lanes_plan != nullptr) {  // the run checked sums_exact_in_double
    gemm_exact_sums(mul, call.lanes, exact);
  } else if (sums_exact_in_double(mul, k)) {
    gemm_exact_sums(mul, call.qa->values.data(), call.qb->values.data(), exact, call.qa->rows, k, call.qb->cols);
  } else {
    gemm_f64(call.qa->values.data(), call.qb->values.data(), exact, call.qa->rows, k, call.qb->cols,
             products_exact_in_double(mul));
  }
  if (call.a_wide != nullptr) {
    gemm_f64(call.a_wide, call.b_f, wide, m, k, n);
  } else {
    gemm_f64(call.a_f, call.b_f, wide, m, k, n);
  }
  if (!t && pow2) {  // the common case: the sums unscale as they go
    for (std::size_t e = 0; e < m * n; ++e) c[e] = static_cast<float>(r.c.data[e] * inverse0);
    stats->accumulation.add(r.c.data.data(), exact, m * n, inverse0);
  } else {
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        value[i * n + j] = unscale(r.c.data[at(i, j)], i, j);
        c[i * n + j] = static_cast<float>(value[i * n + j]);
        exact_c[i * n + j] = unscale(exact[at(i, j)], i, j);
      }
    }
    stats->accumulation.add(value, exact_c, m * n);
  }
  stats->layer.add(c, wide, m * n);
}

// Rows [r0, r0 + rows) of an operand rounded as one tensor, as a [rows x
// cols] operand of its own with `axis`: the scale is the tensor's (or the
// rows' own, for a per-row scaled operand).
QuantizedOperand operand_slice(const QuantizedOperand& whole, std::size_t offset, std::size_t rows, std::size_t cols,
                               ScaleAxis axis) {
  QuantizedOperand s;
  s.rows = rows;
  s.cols = cols;
  s.axis = axis;
  const auto begin = static_cast<std::ptrdiff_t>(offset), end = static_cast<std::ptrdiff_t>(offset + rows * cols);
  s.bits.assign(whole.bits.begin() + begin, whole.bits.begin() + end);
  s.values.assign(whole.values.begin() + begin, whole.values.begin() + end);
  if (whole.scale.size() == 1) {
    s.scale = whole.scale;
  } else {
    const std::size_t r0 = offset / whole.cols;
    s.scale.assign(whole.scale.begin() + static_cast<std::ptrdiff_t>(r0),
                   whole.scale.begin() + static_cast<std::ptrdiff_t>(r0 + rows));
  }
  return s;
}

// A batched MatMul ([..., M, K] x [..., K, N], attention's Q·Kᵀ and
// softmax·V): one GEMM per batch matrix. Each operand is rounded into the
// multiplier format once, as a whole tensor with one scale (the layer's
// scaling; per-channel scaling applies only to a constant operand, per row
// of A or per column of each matrix of B), so every head's products use
// the same scale, as one quantizer in front of the array would.
void run_batched_matmul(const Node& node, std::size_t layer, const LayerArithmetic& arith, const Network& net,
                        const float* a, const float* b, bool a_is_weight, bool b_is_weight, float* out,
                        ref::GemmResult& result, std::vector<double>& scratch, LayerStats* st,
                        const Executor::GemmEngine& engine, PhaseClock& clock) {
  const GemmShape& g = node.gemm;
  const auto m = static_cast<std::size_t>(g.m), k = static_cast<std::size_t>(g.k), n = static_cast<std::size_t>(g.n);
  const auto a_count = static_cast<std::size_t>(element_count(net.values[*node.inputs[0]].shape));
  const auto b_count = static_cast<std::size_t>(element_count(net.values[*node.inputs[1]].shape));
  const bool reference = arith.engine == Engine::reference;
  QuantizedOperand qa, qb;
  std::vector<QuantizedOperand> qb_mats;  // B per matrix, when its columns carry their own scales
  const num::Format& mul = arith.config.multiplier;
  const Scaling scaling = arith.config.scaling;
  const bool b_per_matrix = reference && b_is_weight && scaling == Scaling::channel;
  if (reference) {
    clock.enter(Phase::quantize);
    qa = quantize_runtime(a, a_count / k, k, mul, scaling, a_is_weight, ScaleAxis::rows, 1);
    if (st) st->quantize += qa.events;
    if (b_per_matrix) {
      for (std::size_t i = 0; i < b_count / (k * n); ++i) {
        qb_mats.push_back(quantize_runtime(b + i * k * n, k, n, mul, scaling, true, ScaleAxis::cols, 2));
        if (st) st->quantize += qb_mats.back().events;
      }
    } else {
      qb = quantize_runtime(b, b_count / n, n, mul, scaling, false, ScaleAxis::rows, 2);
      if (st) st->quantize += qb.events;
    }
  }
  for (std::size_t grp = 0; grp < static_cast<std::size_t>(g.groups); ++grp) {
    const std::size_t a_off = static_cast<std::size_t>(node.batch_a[grp]) * m * k;
    const std::size_t b_mat = static_cast<std::size_t>(node.batch_b[grp]);
    GemmCall call{layer, arith, m, k, n, a + a_off, b + b_mat * k * n};
    QuantizedOperand qa_g, qb_g;
    if (reference) {
      clock.enter(Phase::lower);  // slicing the batch: the attention GEMM's lowering
      qa_g = operand_slice(qa, a_off, m, k, ScaleAxis::rows);
      qb_g = b_per_matrix ? qb_mats[b_mat] : operand_slice(qb, b_mat * k * n, k, n, ScaleAxis::cols);
      call.qa = &qa_g;
      call.qb = &qb_g;
    }
    run_gemm(call, out + grp * m * n, result, scratch, st, engine, clock);
  }
}

}  // namespace

std::span<const float> Executor::run(std::span<const float> input, Workspace& ws, std::span<LayerStats> stats,
                                     const std::vector<std::vector<float>>* fp32_outputs,
                                     std::vector<std::vector<float>>* record_layers) const {
  const std::vector<std::size_t>& slot_of = slot_of_[ws.keep_layer_outputs ? 1 : 0];
  auto data_of = [&](ValueId v) -> const float* {
    const Value& value = net_.values[v];
    return value.constant ? net_.constants[*value.constant].data() : ws.values[slot_of[v]].data();
  };
  assert(input.size() == static_cast<std::size_t>(element_count(net_.input_shape())));
  ws.values[slot_of[net_.input]].assign(input.begin(), input.end());
  PhaseClock clock(ws.phase_times);
  std::size_t rounded_used = 0;  // ws.rounded's entries of this run (the rest keep their buffers)
  std::size_t layer = 0;
  for (const Node& node : net_.nodes) {
    clock.enter(Phase::other);
    std::vector<float>& out = ws.values[slot_of[node.output]];
    out.resize(static_cast<std::size_t>(element_count(net_.values[node.output].shape)));
    ws.inputs.clear();
    for (const auto& in : node.inputs) ws.inputs.push_back(in ? data_of(*in) : nullptr);
    if (!is_gemm_op(node.op)) {
      run_float_op(net_, node, ws.inputs, out.data());
      continue;
    }
    LayerStats* st = stats.empty() ? nullptr : &stats[layer];
    const LayerArithmetic& arith = arithmetic_[layer];
    const Prepared& prep = *prepared_[layer];
    const GemmShape& g = node.gemm;
    const auto m = static_cast<std::size_t>(g.m), k = static_cast<std::size_t>(g.k), n = static_cast<std::size_t>(g.n);
    const bool reference = arith.engine == Engine::reference;
    const num::Format& mul = arith.config.multiplier;
    const Scaling scaling = arith.config.scaling;

    if (node.op == Op::Conv) {
      const ConvAttrs& conv = std::get<ConvAttrs>(node.attrs);
      const Shape& xs = net_.values[*node.inputs[0]].shape;
      const Shape& os = net_.values[node.output].shape;
      const std::int64_t cg = xs[1] / g.groups, plane = xs[2] * xs[3];
      const float* x = ws.inputs[0];
      const float* w = prep.a ? prep.a->f.data() : ws.inputs[1];
      // Activations (and weights that are not constant) rounded whole.
      Workspace::RoundedValue* qx_rounded = nullptr;
      const bool t = reference && prep.transposed && !ws.engine;  // C^T = im2row(X) * W^T
      QuantizedOperand qw_whole;
      std::vector<QuantizedOperand> qw_groups;
      const std::vector<QuantizedOperand>* qw = nullptr;
      if (reference) {
        clock.enter(Phase::quantize);
        const ValueId xv = *node.inputs[0];
        const Scaling xs_scaling = operand_scaling(scaling, false);
        for (std::size_t i = 0; i < rounded_used; ++i) {
          const Workspace::RoundedValue& r = ws.rounded[i];
          if (r.value == xv && r.format == mul && r.scaling == xs_scaling) qx_rounded = &ws.rounded[i];
        }
        if (qx_rounded == nullptr) {
          if (rounded_used == ws.rounded.size()) ws.rounded.emplace_back();
          Workspace::RoundedValue& r = ws.rounded[rounded_used++];
          r.value = xv;
          r.format = mul;
          r.scaling = xs_scaling;
          quantize_runtime(x, 1, static_cast<std::size_t>(xs[1] * plane), mul, xs_scaling, false, ScaleAxis::rows, 2, r.q);
          r.f_ready = false;
          qx_rounded = &r;
        }
        if (st) st->quantize += qx_rounded->q.events;
        if (prep.a) {
          qw = t ? &prep.a->q_t : &prep.a->q;
        } else {
          qw_whole = quantize_runtime(w, m * static_cast<std::size_t>(g.groups), k, mul, scaling, true, ScaleAxis::rows, 1);
          if (st) st->quantize += qw_whole.events;
          for (std::int64_t grp = 0; grp < g.groups; ++grp) {
            qw_groups.push_back(slice_rows(qw_whole, static_cast<std::size_t>(grp) * m, static_cast<std::size_t>(grp + 1) * m));
          }
          qw = &qw_groups;
        }
      }
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        clock.enter(Phase::lower);
        const float* w_group = w + static_cast<std::size_t>(grp) * m * k;
        GemmCall call{layer, arith, m, k, n, w_group, nullptr};
        if (prep.a && !prep.a->wide.empty()) call.a_wide = prep.a->wide.data() + static_cast<std::size_t>(grp) * m * k;
        std::optional<ref::F32Plan> lanes_plan;
        if (!reference || st) {
          // The unrounded activations: the fp32 engine's operand, or the
          // `layer` yardstick's.
          if (ws.f_cols.size() < k * n) ws.f_cols.resize(k * n);
          im2col(x + grp * cg * plane, cg, xs[2], xs[3], conv.window, os[2], os[3], 0.0f, ws.f_cols.data());
          call.b_f = ws.f_cols.data();
        }
        if (reference) {
          // The lowered activations, rounded: [k x n], or [n x k] transposed.
          QuantizedOperand& qc = ws.layer[layer].q_cols;
          qc.rows = t ? n : k;
          qc.cols = t ? k : n;
          qc.axis = t ? ScaleAxis::rows : ScaleAxis::cols;
          const QuantizedOperand& qx = qx_rounded->q;
          qc.scale = qx.scale;
          const QuantizedOperand& weights = (*qw)[static_cast<std::size_t>(grp)];
          const std::size_t offset = static_cast<std::size_t>(grp * cg * plane);
          const auto lower = [&](const auto* src, auto pad, auto* dst) {
            if (t) {
              im2row(src + offset, cg, xs[2], xs[3], conv.window, os[2], os[3], pad, dst);
            } else {
              im2col(src + offset, cg, xs[2], xs[3], conv.window, os[2], os[3], pad, dst);
            }
          };
          // The float lanes, where they take the GEMM (as in
          // ref::accumulate_products) and its exact sums fit double (the
          // `acc` yardstick reads the same floats): the rounded activations
          // are lowered as floats straight into the lanes' layout, beside
          // the weights prepared in it, instead of into doubles that the
          // lanes convert and pack on every call.
          const ref::GemmConfig& cfg = arith.config;
          const num::Format c_format = cfg.order.merge(cfg.accumulator);
          if (!ws.engine && prep.a && !prep.a->lanes.empty() && cfg.allow_f32_lanes &&
              sums_exact_in_double(mul, k)) {
            lanes_plan = ref::plan_f32(cfg, c_format, weights, qx);
            if (lanes_plan && !ref::use_f32_lanes(*lanes_plan)) lanes_plan.reset();
          }
          if (lanes_plan) {
            if (!qx_rounded->f_ready) {
              qx_rounded->f.assign(qx.values.begin(), qx.values.end());  // exact: plan_f32 checked the format
              qx_rounded->f_ready = true;
            }
            ref::F32Buffer& lowered = ws.layer[layer].lanes_cols;
            const float* const xf = qx_rounded->f.data() + offset;
            if (t) {  // A: im2row(X) [n x k], row-major
              lowered.resize(n * k);
              im2row(xf, cg, xs[2], xs[3], conv.window, os[2], os[3], 0.0f, lowered.data());
            } else {  // B: im2col(X) [k x n] in the lanes' layout
              const std::size_t size = ref::f32_b_size(k, n);
              if (lowered.size() != size) lowered.assign(size, 0.0f);  // the padding, once for the layer
              constexpr auto kPanel = static_cast<std::int64_t>(ref::kF32PanelCols);
              im2col(xf, cg, xs[2], xs[3], conv.window, os[2], os[3], 0.0f, lowered.data(), kPanel, kPanel,
                     static_cast<std::int64_t>(k) * kPanel);
            }
            const ref::F32Buffer& w_lanes = prep.a->lanes[static_cast<std::size_t>(grp)];
            call.lanes = t ? ref::F32Operands{lowered.data(), w_lanes.data(), n, k, m}
                           : ref::F32Operands{w_lanes.data(), lowered.data(), m, k, n};
            call.lanes_plan = &*lanes_plan;
            qc.values.clear();
            qc.bits.clear();
          } else {
            // The double lanes read only values: the encodings are lowered
            // when another path will read them (the general path, or an
            // engine in place of the reference GEMM). The lanes' plan
            // depends on the formats and on the values being finite, which
            // lowering (padding with zeros) does not change.
            const bool need_bits = ws.engine || !ref::plan_fast(cfg, c_format, weights, qx);
            qc.values.resize(k * n);
            if (need_bits) {
              qc.bits.resize(k * n);
            } else {
              qc.bits.clear();
            }
            if (need_bits) lower(qx.bits.data(), std::uint64_t{0}, qc.bits.data());
            lower(qx.values.data(), 0.0, qc.values.data());
          }
          call.qa = t ? &qc : &weights;
          call.qb = t ? &weights : &qc;
          call.transposed = t;
        }
        run_gemm(call, out.data() + static_cast<std::size_t>(grp) * m * n, ws.layer[layer].result, ws.d_c, st, ws.engine, clock);
      }
      clock.enter(Phase::other);
      if (node.inputs.size() > 2) {
        const float* bias = ws.inputs[2];
        const std::size_t channels = m * static_cast<std::size_t>(g.groups);
        for (std::size_t ch = 0; ch < channels; ++ch) {
          for (std::size_t j = 0; j < n; ++j) out[ch * n + j] += bias[ch];
        }
      }
    } else if (node.op == Op::MatMul && g.groups > 1) {
      run_batched_matmul(node, layer, arith, net_, ws.inputs[0], ws.inputs[1], prep.a_is_weight, prep.b_is_weight,
                         out.data(), ws.layer[layer].result, ws.d_c, st, ws.engine, clock);
    } else {  // Gemm, MatMul
      const float* a = prep.a ? prep.a->f.data() : (gather_a(node, ws.inputs[0], ws.f_a), ws.f_a.data());
      const float* b = prep.b ? prep.b->f.data() : (gather_b(node, ws.inputs[1], ws.f_b), ws.f_b.data());
      GemmCall call{layer, arith, m, k, n, a, b};
      if (prep.a && !prep.a->wide.empty()) call.a_wide = prep.a->wide.data();
      QuantizedOperand qa, qb;
      if (reference) {
        clock.enter(Phase::quantize);
        if (prep.a) {
          call.qa = &prep.a->q[0];
        } else {
          qa = quantize_runtime(a, m, k, mul, scaling, prep.a_is_weight, ScaleAxis::rows, 1);
          if (st) st->quantize += qa.events;
          call.qa = &qa;
        }
        if (prep.b) {
          call.qb = &prep.b->q[0];
        } else {
          qb = quantize_runtime(b, k, n, mul, scaling, prep.b_is_weight, ScaleAxis::cols, 2);
          if (st) st->quantize += qb.events;
          call.qb = &qb;
        }
      }
      run_gemm(call, out.data(), ws.layer[layer].result, ws.d_c, st, ws.engine, clock);
      clock.enter(Phase::other);
      if (node.op == Op::Gemm) {
        const GemmAttrs& ga = std::get<GemmAttrs>(node.attrs);
        if (ga.alpha != 1.0f) {
          for (float& v : out) v = ga.alpha * v;
        }
        if (node.inputs.size() > 2 && ga.beta != 0.0f) {
          // C broadcast to [m, n] (right-aligned, each dim 1 or full).
          const Shape& cs = net_.values[*node.inputs[2]].shape;
          const bool per_row = cs.size() == 2 && cs[0] != 1;
          const bool per_col = !cs.empty() && cs.back() != 1;
          const float* cdata = ws.inputs[2];
          for (std::size_t i = 0; i < m; ++i) {
            for (std::size_t j = 0; j < n; ++j) {
              const float cv = cdata[(per_row ? i * (per_col ? n : 1) : 0) + (per_col ? j : 0)];
              out[i * n + j] += ga.beta == 1.0f ? cv : ga.beta * cv;
            }
          }
        }
      }
    }
    if (st && fp32_outputs) {
      clock.enter(Phase::statistics);
      const std::vector<float>& want = (*fp32_outputs)[layer];
      st->network.add(out.data(), want.data(), out.size());
    }
    if (record_layers) (*record_layers)[layer].assign(out.begin(), out.end());
    ++layer;
  }
  return {data_of(net_.output), static_cast<std::size_t>(element_count(net_.output_shape()))};
}

std::span<const float> Executor::layer_output(const Workspace& ws, std::size_t layer) const {
  const ValueId v = net_.nodes[net_.gemm_layers[layer]].output;
  assert(ws.keep_layer_outputs);
  return ws.values[slot_of_[1][v]];
}

}  // namespace accsim::net
