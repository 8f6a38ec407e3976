// Counter-based random draws for stochastic rounding. A draw depends only on
// (seed, key): no generator state is carried between operations, so results
// never depend on thread count or scheduling. Callers derive the key from
// where the operation sits (for example, output element and step k).
#pragma once

#include <cstdint>

namespace accsim::num {

// SplitMix64's finalizer: a bijective 64-bit mixer with full avalanche.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A uniform 32-bit draw r. Stochastic rounding rounds away from zero iff the
// discarded fraction of an ulp, f in [0, 1), satisfies f * 2^32 > r: the
// probability is f to within 2^-32, and f == 0 never rounds.
[[nodiscard]] constexpr std::uint32_t sr_draw(std::uint64_t seed, std::uint64_t key) {
  return static_cast<std::uint32_t>(mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ key) >> 32);
}

// Keys for the two roundings inside one MAC, kept apart so they never share
// a draw.
[[nodiscard]] constexpr std::uint64_t product_key(std::uint64_t key) { return mix64(key ^ 0x70726f64ULL); }

}  // namespace accsim::num
