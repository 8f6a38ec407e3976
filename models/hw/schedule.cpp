#include "models/hw/schedule.hpp"

#include <algorithm>

namespace accsim::hw {

namespace {
std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
}  // namespace

Schedule::Schedule(const ArrayConfig& array, GemmShape shape)
    : shape_(shape),
      ws_(array.dataflow == Dataflow::weight_stationary),
      r_(array.rows),
      c_(array.cols),
      lm_(array.mul_latency),
      la_(array.add_latency) {
  if (shape.m == 0 || shape.k == 0 || shape.n == 0) return;  // nothing to run
  n_tiles_ = ceil_div(shape.n, c_);
  if (ws_) {
    m_tiles_ = 1;
    k_tiles_ = ceil_div(shape.k, r_);
  } else {
    m_tiles_ = ceil_div(shape.m, r_);
    k_tiles_ = 1;
  }
}

std::size_t Schedule::tile_count() const { return m_tiles_ * k_tiles_ * n_tiles_; }

Tile Schedule::tile(std::size_t index) const {
  Tile t;
  t.index = index;
  if (ws_) {
    t.nt = index / k_tiles_;
    t.kt = index % k_tiles_;
    t.m0 = 0, t.mr = shape_.m;
    t.k0 = t.kt * r_, t.kr = std::min(r_, shape_.k - t.k0);
    t.first_k = t.kt == 0;
    t.last_k = t.kt + 1 == k_tiles_;
  } else {
    t.mt = index / n_tiles_;
    t.nt = index % n_tiles_;
    t.m0 = t.mt * r_, t.mr = std::min(r_, shape_.m - t.m0);
    t.k0 = 0, t.kr = shape_.k;
  }
  t.n0 = t.nt * c_, t.nc = std::min(c_, shape_.n - t.n0);
  return t;
}

TileTiming Schedule::timing(const Tile& tile) const {
  TileTiming t;
  if (ws_) {
    // Vector m meets PE(r, c)'s adder at step m + r*La + c + Lm; the last PE
    // starts at (R-1)*La + C-1 + Lm, takes one vector per step, and its last
    // sum leaves La steps after its last operand.
    t.load = tile.kr;
    t.fill = static_cast<std::uint64_t>(r_ - 1) * la_ + (c_ - 1) + lm_;
    t.steady = shape_.m;
    t.drain = la_;
  } else {
    // Step k meets PE(r, c)'s adder at k*La + r + c + Lm; the last PE starts
    // at R-1 + C-1 + Lm and accumulates for K*La steps; then R drain steps
    // shift the accumulators out of the bottom of the array.
    t.fill = (r_ - 1) + (c_ - 1) + lm_;
    t.steady = static_cast<std::uint64_t>(shape_.k) * la_;
    t.drain = r_;
  }
  return t;
}

std::uint64_t Schedule::ws_output_latency() const {
  return static_cast<std::uint64_t>(r_) * la_ + lm_ + c_ - 1;
}

std::uint64_t Schedule::os_drain_start() const {
  return static_cast<std::uint64_t>(shape_.k) * la_ + r_ + c_ - 2 + lm_;
}

PhaseCycles Schedule::formula() const {
  PhaseCycles p;
  const std::uint64_t tiles = tile_count();
  if (tiles == 0) return p;
  const TileTiming t = timing(tile(0));  // fill, steady and drain do not depend on the tile
  if (ws_) p.weight_load = static_cast<std::uint64_t>(n_tiles_) * shape_.k;  // sum of kr over k-tiles is K
  p.fill = tiles * t.fill;
  p.steady = tiles * t.steady;
  p.drain = tiles * t.drain;
  return p;
}

}  // namespace accsim::hw
