// The PE's arithmetic units. Every value is computed by models/numerics: the
// general path calls num::multiply then num::accumulate (num::mac in its two
// halves, so the product register's bits are visible between them); the hot
// loops of the array use num::fast's lanes when fast::Rounder::make says
// they are exact, exactly as the reference path does.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/sr.hpp"

namespace accsim::hw {

using u128 = unsigned __int128;

[[nodiscard]] inline int popcount128(u128 x) {
  return std::popcount(static_cast<std::uint64_t>(x)) + std::popcount(static_cast<std::uint64_t>(x >> 64));
}

// The encoding of a finite double that lies on a float format's grid (zero,
// subnormal or normal): the inverse of num::to_double on the values the fast
// path produces. Normal values only re-bias the exponent field, which is one
// subtraction on the double's bit pattern; a subnormal x becomes the fraction
// field of x + 2^emin, which is exact.
class FloatEncoder {
 public:
  FloatEncoder() = default;
  explicit FloatEncoder(const num::FloatFormat& f)
      : min_normal_bits_(static_cast<std::uint64_t>(f.emin() + 1023) << 52),
        normal_offset_(static_cast<std::uint64_t>(1023 - f.bias) << 52),
        sign_(std::uint64_t{1} << (f.exp_bits + f.man_bits)),
        drop_(52 - f.man_bits),
        subnormals_(f.subnormals) {}

  [[nodiscard]] ACCSIM_INLINE std::uint64_t operator()(double x) const {
    const auto u = std::bit_cast<std::uint64_t>(x);
    const std::uint64_t sign = (u >> 63) != 0 ? sign_ : 0;
    const std::uint64_t a = u & ~(std::uint64_t{1} << 63);
    std::uint64_t magnitude;
    if (a >= min_normal_bits_) [[likely]] {
      magnitude = (a - normal_offset_) >> drop_;
    } else if (a == 0) {
      magnitude = 0;
    } else {
      const double shifted = std::bit_cast<double>(a) + std::bit_cast<double>(min_normal_bits_);
      magnitude = (std::bit_cast<std::uint64_t>(shifted) - min_normal_bits_) >> drop_;
    }
    return sign | magnitude;
  }

  // The same over num::fast's vector lanes.
  template <int W>
  [[nodiscard]] ACCSIM_INLINE typename num::fast::Lanes<W>::U lanes(typename num::fast::Lanes<W>::D x) const {
    using U = typename num::fast::Lanes<W>::U;
    using I = typename num::fast::Lanes<W>::I;
    using D = typename num::fast::Lanes<W>::D;
    const U u = (U)(x);
    const U a = u & ~(std::uint64_t{1} << 63);
    const I negative = (I)(u) < 0;
    const U normal = (a - normal_offset_) >> drop_;
    const I is_normal = (I)(a) >= static_cast<std::int64_t>(min_normal_bits_);
    U magnitude;
    if (subnormals_) {
      const D shifted = (D)(a) + std::bit_cast<double>(min_normal_bits_);
      const U subnormal = ((U)(shifted)-min_normal_bits_) >> drop_;
      const I is_zero = (I)(a) == 0;
      magnitude = is_normal ? normal : (is_zero ? U{} : subnormal);
    } else {
      magnitude = is_normal ? normal : U{};  // a flush-to-zero format holds only zeros below 2^emin
    }
    return magnitude | (U(negative) & sign_);
  }

 private:
  std::uint64_t min_normal_bits_ = 0, normal_offset_ = 0, sign_ = 0;
  int drop_ = 0;
  bool subnormals_ = true;
};

// The bits of a fused (exact) product register: sign, the sum of the operand
// exponent fields (E+1 bits) and the product of the significands (2(M+1)
// bits); for integer operands the 2w-bit two's-complement product.
class FusedProductBits {
 public:
  FusedProductBits() = default;
  explicit FusedProductBits(const num::Format& operand);
  [[nodiscard]] int width() const { return width_; }
  [[nodiscard]] ACCSIM_INLINE u128 operator()(std::uint64_t a, std::uint64_t b) const {
    if (int_bits_ > 0) {
      const int unused = 64 - int_bits_;
      const auto x = static_cast<std::int64_t>(a << unused) >> unused;
      const auto y = static_cast<std::int64_t>(b << unused) >> unused;
      return static_cast<u128>(static_cast<std::uint64_t>(x * y)) & mask_;
    }
    const std::uint64_t fraction_mask = (std::uint64_t{1} << man_) - 1;
    const std::uint64_t ea = (a >> man_) & exp_mask_, eb = (b >> man_) & exp_mask_;
    const std::uint64_t sa = (a & fraction_mask) | (ea != 0 ? std::uint64_t{1} << man_ : 0);
    const std::uint64_t sb = (b & fraction_mask) | (eb != 0 ? std::uint64_t{1} << man_ : 0);
    const u128 sign = ((a ^ b) >> (exp_bits_ + man_)) & 1;
    const u128 exponent = (ea == 0 ? 1 : ea) + (eb == 0 ? 1 : eb);
    return (sign << (width_ - 1)) | (exponent << (2 * man_ + 2)) | (static_cast<u128>(sa) * sb);
  }

  // The same over vector lanes, for float operands whose register fits 64
  // bits (fits64()).
  [[nodiscard]] bool fits64() const { return int_bits_ == 0 && width_ <= 64; }
  template <int W>
  [[nodiscard]] ACCSIM_INLINE typename num::fast::Lanes<W>::U lanes(typename num::fast::Lanes<W>::U a,
                                                                   typename num::fast::Lanes<W>::U b) const {
    using U = typename num::fast::Lanes<W>::U;
    using I = typename num::fast::Lanes<W>::I;
    const std::uint64_t fraction_mask = (std::uint64_t{1} << man_) - 1;
    const U ea = (a >> man_) & exp_mask_, eb = (b >> man_) & exp_mask_;
    const U sa = (a & fraction_mask) | (U((I)(ea) != 0) & (std::uint64_t{1} << man_));
    const U sb = (b & fraction_mask) | (U((I)(eb) != 0) & (std::uint64_t{1} << man_));
    const U sign = ((a ^ b) >> (exp_bits_ + man_)) & 1;
    // A zero exponent field counts as 1 (subnormal): the mask is -1 there.
    const U exponent = ea - U((I)(ea) == 0) + eb - U((I)(eb) == 0);
    return (sign << (width_ - 1)) | (exponent << (2 * man_ + 2)) | (sa * sb);
  }

 private:
  int int_bits_ = 0;
  int man_ = 0, exp_bits_ = 0;
  std::uint64_t exp_mask_ = 0;
  u128 mask_ = 0;
  int width_ = 0;
};

// The multiplier: operands in the multiplier format, the product exact
// (fused) or rounded once into the product format; latency pipeline stages.
class Multiplier {
 public:
  Multiplier(num::Format operand, std::optional<num::Format> product, unsigned latency);

  struct Output {
    num::Exact addend;       // what the adder receives
    u128 register_bits = 0;  // what the product register holds
    num::Events events = 0;  // from rounding into the product format (0 when fused)
  };
  // sr_key is the MAC's key; the product rounding draws with
  // num::product_key(sr_key), exactly as num::mac does.
  [[nodiscard]] Output operator()(std::uint64_t a_bits, std::uint64_t b_bits, std::uint64_t sr_key) const;

  [[nodiscard]] const num::Format& operand_format() const { return operand_; }
  [[nodiscard]] const std::optional<num::Format>& product_format() const { return product_; }
  [[nodiscard]] unsigned latency() const { return latency_; }
  [[nodiscard]] int register_width() const;

 private:
  num::Format operand_;
  std::optional<num::Format> product_;
  unsigned latency_;
  FusedProductBits fused_;
};

// The accumulator's adder: acc + addend rounded once into its format, with
// latency pipeline stages (the last is the sum register).
class Accumulator {
 public:
  Accumulator(num::Format format, unsigned latency) : format_(std::move(format)), latency_(latency) {}
  [[nodiscard]] num::Result operator()(std::uint64_t acc_bits, const num::Exact& addend, std::uint64_t sr_key) const {
    return num::accumulate(acc_bits, format_, addend, sr_key);
  }
  [[nodiscard]] const num::Format& format() const { return format_; }
  [[nodiscard]] unsigned latency() const { return latency_; }

 private:
  num::Format format_;
  unsigned latency_;
};

}  // namespace accsim::hw
