// quantize_operand: operands rounded into the multiplier format.
//
// Every element is round_pack of the exact x * scale (num::quantize). Where
// that product is exact in double (a power-of-two scale, inside double's
// normal range) and fast::Rounder::make_any accepts the format, the double
// is rounded with fast::round_lanes, four elements at a time: the same
// routine the GEMM lanes use, which tests hold to round_pack bit for bit.
// A group of four with any element the lanes may not take (a double
// subnormal, a scale that left double's range, a value round_lanes would
// not round exactly: see Rounder::exact_for) is done one element at a time,
// each through the general routine or the one-lane rounder, so an element's
// result never depends on its neighbours.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"

namespace accsim::ref {

using num::Format;
using num::Rounding;
namespace fast = num::fast;

namespace {

using L4 = fast::Lanes<4>;

// Largest finite magnitude of a format, and the exponent of its top binade.
double max_value(const Format& f) {
  if (const auto* ff = std::get_if<num::FloatFormat>(&f)) return num::to_double(num::max_finite_bits(*ff, false), f);
  return std::ldexp(1.0, std::get<num::IntFormat>(f).bits - 1) - 1;
}
int top_binade(const Format& f) {
  if (const auto* ff = std::get_if<num::FloatFormat>(&f)) return ff->emax();
  return std::get<num::IntFormat>(f).bits - 2;
}

double scale_for(double absmax, const Format& f, Scaling s) {
  if (absmax == 0 || s == Scaling::none) return 1.0;
  if (s == Scaling::pow2) return std::ldexp(1.0, top_binade(f) - std::ilogb(absmax));
  return max_value(f) / absmax;
}

// The largest |x| of n elements, NaNs ignored (as std::max ignores them
// when they come second). Written over 16-byte vectors, which every x86-64
// has (a float max reduction does not vectorize without leave to
// reassociate); `v > m ? v : m` is one max instruction.
template <class T>
double absmax_of(const T* data, std::size_t n) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr std::size_t kLanes = 16 / sizeof(T);
  typedef T V __attribute__((vector_size(16)));
  typedef U VU __attribute__((vector_size(16)));
  constexpr U kMagnitude = ~U{0} >> 1;
  V m[4] = {};
  std::size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    for (std::size_t j = 0; j < 4; ++j) {
      VU u;
      std::memcpy(&u, data + i + j * kLanes, sizeof u);
      const V v = (V)(u & kMagnitude);
      m[j] = v > m[j] ? v : m[j];
    }
  }
  T r = 0;
  for (std::size_t j = 0; j < 4; ++j) {
    for (std::size_t l = 0; l < kLanes; ++l) r = m[j][l] > r ? m[j][l] : r;
  }
  for (; i < n; ++i) {
    const T a = std::fabs(data[i]);
    r = a > r ? a : r;
  }
  return static_cast<double>(r);
}

// The largest |x| per scale group.
template <class T>
void absmax_of(const T* data, std::size_t rows, std::size_t cols, bool per_channel, ScaleAxis axis,
               std::vector<double>& absmax) {
  if (!per_channel) {
    absmax[0] = absmax_of(data, rows * cols);
  } else if (axis == ScaleAxis::rows) {
    for (std::size_t r = 0; r < rows; ++r) absmax[r] = absmax_of(data + r * cols, cols);
  } else {
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        const double a = std::fabs(static_cast<double>(data[r * cols + c]));
        absmax[c] = a > absmax[c] ? a : absmax[c];
      }
    }
  }
}

// What the rounding loops share: the operand being filled, its source and
// the per-element routines that the lanes fall back to.
template <class T>
struct Quantizer {
  const T* data;
  const Format& format;
  std::uint64_t sr_stream;
  QuantizedOperand& q;

  // x * scale formed exactly and rounded once: round_pack itself.
  void general(std::size_t idx, double scale) const {
    const num::Exact scaled =
        num::exact_product(num::exact_from_double(static_cast<double>(data[idx])), num::exact_from_double(scale));
    const num::Result res = num::quantize(scaled, format, (sr_stream << 48) ^ idx);
    q.bits[idx] = res.bits;
    q.values[idx] = num::to_double(res.bits, format);
    q.events.record(res.events);
  }
};

// Counts of the lanes' events, kept per lane until the end.
struct LaneEvents {
  L4::I overflow{}, underflow{}, exact{};
  std::uint64_t ops = 0;
};

// Four consecutive elements as doubles (exact: a float converts exactly).
ACCSIM_INLINE L4::D load4(const double* p) {
  L4::D v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
ACCSIM_INLINE L4::D load4(const float* p) {
  typedef float F4 __attribute__((vector_size(16)));
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, L4::D);
}

// fast::Encoder over four lanes (the same arithmetic: normal values re-bias
// the exponent field, a subnormal x becomes the fraction field of x +
// 2^emin), for rounded doubles on the format's grid.
class LaneEncoder {
 public:
  explicit LaneEncoder(const num::FloatFormat& f)
      : min_normal_bits_(static_cast<std::uint64_t>(f.emin() + 1023) << 52),
        normal_offset_(static_cast<std::uint64_t>(1023 - f.bias) << 52),
        sign_(std::uint64_t{1} << (f.exp_bits + f.man_bits)),
        drop_(52 - f.man_bits) {}

  ACCSIM_INLINE L4::U operator()(L4::D x) const {
    const L4::U u = (L4::U)(x);
    const L4::U a = u & ~(std::uint64_t{1} << 63);
    const L4::U normal = (a - normal_offset_) >> drop_;
    const L4::D shifted = (L4::D)(a) + std::bit_cast<double>(min_normal_bits_);  // zero gives 2^emin: 0 below
    const L4::U subnormal = ((L4::U)(shifted)-min_normal_bits_) >> drop_;
    const L4::U magnitude = (a >= min_normal_bits_) ? normal : subnormal;
    return magnitude | (L4::U((L4::I)(u) < 0) & sign_);
  }

 private:
  std::uint64_t min_normal_bits_, normal_offset_, sign_;
  int drop_;
};

// One element through the one-lane rounder, or the general routine where
// the lanes may not take it.
template <Rounding Mode, fast::Ftz F, class T>
ACCSIM_INLINE void round_one(const Quantizer<T>& qz, const fast::Rounder& rounder, const fast::Encoder& encode,
                             std::size_t idx, double scale, num::EventCounts& scalar) {
  const double src = static_cast<double>(qz.data[idx]);
  const double x = src * scale;
  if (!rounder.exact_for(x) || (x == 0 && src != 0)) {
    qz.general(idx, scale);
    return;
  }
  const fast::Rounded<1> out = fast::round_lanes<Mode, 1, F>(rounder, fast::Lanes<1>::D{x});
  const double v = out.value[0];
  qz.q.bits[idx] = encode(v);
  qz.q.values[idx] = v;
  ++scalar.ops;
  scalar.overflow += out.overflow[0] != 0;
  scalar.underflow += out.underflow[0] != 0;
  scalar.inexact += out.exact[0] == 0;
}

// Elements [begin, end) of one row, whose scales are scale[0] (one scale for
// the row) or scale[c] for column c (per-column scales, `per_col`).
template <Rounding Mode, fast::Ftz F, class T>
ACCSIM_INLINE void round_row(const Quantizer<T>& qz, const fast::Rounder& rounder, const fast::Encoder& encode,
                             const LaneEncoder& encode4,
                             std::size_t row_start, std::size_t cols, const double* scale, bool per_col,
                             LaneEvents& ev, num::EventCounts& scalar) {
  constexpr std::uint64_t kAbs = ~(std::uint64_t{1} << 63);
  // exact_for's bounds as bit patterns of |x|: below 2^960, and zero or at
  // least 2^-1022 (or, in the directed modes with subnormals, 2^emin).
  const std::uint64_t top = std::bit_cast<std::uint64_t>(0x1p960);
  const bool any_normal = rounder.mode == Rounding::rne || rounder.ftz;
  const std::uint64_t low = any_normal ? std::bit_cast<std::uint64_t>(0x1p-1022) : rounder.min_normal_bits;
  std::size_t c = 0;
  for (; c + 4 <= cols; c += 4) {
    const std::size_t idx = row_start + c;
    const L4::D src = load4(qz.data + idx);
    const L4::D s = per_col ? load4(scale + c) : L4::D{} + scale[0];
    const L4::D x = src * s;
    const L4::U a = (L4::U)(x)&kAbs;
    // Lanes the vector may round: |x| in range, and x zero only where the
    // source is (a non-zero source whose product left double's range is not).
    const L4::I zero = a == 0;
    const L4::I ok = (a < top) & ((a >= low) | (zero & (src == 0.0)));
    if ((ok[0] & ok[1] & ok[2] & ok[3]) == 0) {
      for (std::size_t l = 0; l < 4; ++l) {
        round_one<Mode, F>(qz, rounder, encode, idx + l, per_col ? scale[c + l] : scale[0], scalar);
      }
      continue;
    }
    const fast::Rounded<4> out = fast::round_lanes<Mode, 4, F>(rounder, x);
    const L4::U bits = encode4(out.value);
    std::memcpy(&qz.q.values[idx], &out.value, sizeof out.value);
    std::memcpy(&qz.q.bits[idx], &bits, sizeof bits);
    ev.overflow -= out.overflow;  // masks are -1 where true
    ev.underflow -= out.underflow;
    ev.exact -= out.exact;
    ev.ops += 4;
  }
  for (; c < cols; ++c) round_one<Mode, F>(qz, rounder, encode, row_start + c, per_col ? scale[c] : scale[0], scalar);
}

template <Rounding Mode, fast::Ftz F, class T>
ACCSIM_INLINE void round_all(const Quantizer<T>& qz, const fast::Rounder& rounder, std::size_t rows, std::size_t cols,
                             bool per_row, bool per_col) {
  const fast::Encoder encode(std::get<num::FloatFormat>(qz.format));
  const LaneEncoder encode4(std::get<num::FloatFormat>(qz.format));
  LaneEvents ev;
  num::EventCounts scalar;
  const std::vector<double>& scale = qz.q.scale;
  if (!per_row && !per_col) {
    // One scale: the whole operand is one row.
    round_row<Mode, F>(qz, rounder, encode, encode4, 0, rows * cols, scale.data(), false, ev, scalar);
  } else {
    for (std::size_t r = 0; r < rows; ++r) {
      round_row<Mode, F>(qz, rounder, encode, encode4, r * cols, cols, per_row ? &scale[r] : scale.data(), per_col, ev, scalar);
    }
  }
  num::EventCounts& e = qz.q.events;
  e.ops += ev.ops + scalar.ops;
  e.overflow += scalar.overflow;
  e.underflow += scalar.underflow;
  e.inexact += scalar.inexact + ev.ops;
  for (int l = 0; l < 4; ++l) {
    e.overflow += static_cast<std::uint64_t>(ev.overflow[l]);
    e.underflow += static_cast<std::uint64_t>(ev.underflow[l]);
    e.inexact -= static_cast<std::uint64_t>(ev.exact[l]);
  }
}

// The rounding loop per ISA and mode, chosen at run time; the arithmetic,
// and so every bit, is the same in each. (The mode and flush-to-zero are
// template arguments of these functions themselves: code in a lambda called
// from a target("avx2") function would be built without AVX2.)
template <class T>
using RoundAllFn = void (*)(const Quantizer<T>&, const fast::Rounder&, std::size_t, std::size_t, bool, bool);

template <class T, Rounding Mode, fast::Ftz F>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void round_all_avx512(
    const Quantizer<T>& qz, const fast::Rounder& rounder, std::size_t rows, std::size_t cols, bool per_row,
    bool per_col) {
  round_all<Mode, F>(qz, rounder, rows, cols, per_row, per_col);
}
template <class T, Rounding Mode, fast::Ftz F>
__attribute__((target("avx2"))) void round_all_avx2(const Quantizer<T>& qz, const fast::Rounder& rounder,
                                                    std::size_t rows, std::size_t cols, bool per_row, bool per_col) {
  round_all<Mode, F>(qz, rounder, rows, cols, per_row, per_col);
}
template <class T, Rounding Mode, fast::Ftz F>
void round_all_baseline(const Quantizer<T>& qz, const fast::Rounder& rounder, std::size_t rows, std::size_t cols,
                        bool per_row, bool per_col) {
  round_all<Mode, F>(qz, rounder, rows, cols, per_row, per_col);
}

template <class T>
RoundAllFn<T> select_round_all(const fast::Rounder& rounder) {
  const LaneIsa isa = lane_isa();  // as every lane kernel (lanes_f32.hpp)
  return fast::dispatch_mode(rounder.mode, [&]<Rounding Mode>() {
    return fast::dispatch_ftz(rounder.ftz, [&]<fast::Ftz F>() -> RoundAllFn<T> {
      if (isa == LaneIsa::avx512) return &round_all_avx512<T, Mode, F>;
      return isa == LaneIsa::avx2 ? &round_all_avx2<T, Mode, F> : &round_all_baseline<T, Mode, F>;
    });
  });
}

template <class T>
void quantize_into(const T* data, std::size_t rows, std::size_t cols, const Format& format, Scaling scaling,
                   ScaleAxis axis, std::uint64_t sr_stream, QuantizedOperand& q) {
  q.rows = rows;
  q.cols = cols;
  q.axis = axis;
  q.events = {};
  const bool per_channel = scaling == Scaling::channel;
  const std::size_t groups = per_channel ? (axis == ScaleAxis::rows ? rows : cols) : 1;
  std::vector<double> absmax(groups, 0.0);
  if (scaling != Scaling::none) absmax_of(data, rows, cols, per_channel, axis, absmax);
  q.scale.resize(groups);
  for (std::size_t g = 0; g < groups; ++g) q.scale[g] = scale_for(absmax[g], format, scaling);

  q.bits.resize(rows * cols);
  q.values.resize(rows * cols);
  const Quantizer<T> qz{data, format, sr_stream, q};
  const auto* ff = std::get_if<num::FloatFormat>(&format);
  const std::optional<fast::Rounder> rounder = ff != nullptr ? fast::Rounder::make_any(*ff) : std::nullopt;
  const bool pow2_scales = std::all_of(q.scale.begin(), q.scale.end(), [](double s) {
    int e = 0;
    return std::frexp(s, &e) == 0.5;
  });
  if (!rounder || !pow2_scales) {
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) qz.general(r * cols + c, q.scale_at(r, c));
    }
    return;
  }
  const bool per_row = q.scale.size() > 1 && axis == ScaleAxis::rows;
  const bool per_col = q.scale.size() > 1 && axis == ScaleAxis::cols;
  select_round_all<T>(*rounder)(qz, *rounder, rows, cols, per_row, per_col);
}

}  // namespace

QuantizedOperand quantize_operand(const Matrix& m, const Format& format, Scaling scaling, ScaleAxis axis,
                                  std::uint64_t sr_stream) {
  QuantizedOperand q;
  quantize_into(m.data.data(), m.rows, m.cols, format, scaling, axis, sr_stream, q);
  return q;
}

void quantize_operand(const float* data, std::size_t rows, std::size_t cols, const Format& format, Scaling scaling,
                      ScaleAxis axis, std::uint64_t sr_stream, QuantizedOperand& out) {
  quantize_into(data, rows, cols, format, scaling, axis, sr_stream, out);
}

}  // namespace accsim::ref
