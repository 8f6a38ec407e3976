// How the controller tiles an M x K x N GEMM onto the array, how long each
// tile takes when nothing stalls, and the closed-form totals (docs/array.md
// derives them).
#pragma once

#include <cstddef>
#include <cstdint>

#include "models/hw/array_config.hpp"
#include "models/hw/stats.hpp"

namespace accsim::hw {

struct GemmShape {
  std::size_t m = 0, k = 0, n = 0;
};

// One tile: the array's work between two weight loads (WS) or two drains (OS).
struct Tile {
  std::size_t index = 0;
  std::size_t m0 = 0, mr = 0;  // output rows (WS: all of M; OS: up to R)
  std::size_t k0 = 0, kr = 0;  // reduction range (WS: up to R, one per array row; OS: all of K)
  std::size_t n0 = 0, nc = 0;  // output columns (up to C)
  std::size_t mt = 0, kt = 0, nt = 0;  // tile coordinates (kt is the chunk index in WS)
  bool first_k = true, last_k = true;  // first / last k-tile of its output columns (WS)
};

// Array steps of one tile when nothing stalls. Stream steps are numbered from
// the tile's first issue: fill, then steady, then drain.
struct TileTiming {
  std::uint64_t load = 0;  // WS: kr weight rows; OS: 0
  std::uint64_t fill = 0, steady = 0, drain = 0;
  [[nodiscard]] std::uint64_t stream() const { return fill + steady + drain; }
  [[nodiscard]] std::uint64_t total() const { return load + stream(); }
};

class Schedule {
 public:
  Schedule(const ArrayConfig& array, GemmShape shape);

  [[nodiscard]] const GemmShape& shape() const { return shape_; }
  [[nodiscard]] bool weight_stationary() const { return ws_; }
  [[nodiscard]] std::size_t rows() const { return r_; }
  [[nodiscard]] std::size_t cols() const { return c_; }
  [[nodiscard]] unsigned mul_latency() const { return lm_; }
  [[nodiscard]] unsigned add_latency() const { return la_; }
  [[nodiscard]] std::size_t m_tiles() const { return m_tiles_; }
  [[nodiscard]] std::size_t k_tiles() const { return k_tiles_; }
  [[nodiscard]] std::size_t n_tiles() const { return n_tiles_; }

  // WS: n-tiles outer, k-tiles inner (the output columns' partial sums stay
  // in the output buffer while k advances). OS: m-tiles outer, n-tiles inner
  // (a panel of A rows is reused across the n-tiles).
  [[nodiscard]] std::size_t tile_count() const;
  [[nodiscard]] Tile tile(std::size_t index) const;
  [[nodiscard]] TileTiming timing(const Tile& tile) const;

  // WS: the stream step at which output vector m is written is
  // m + output_latency(): R*La + Lm + C - 1.
  [[nodiscard]] std::uint64_t ws_output_latency() const;
  // OS: the stream step of the first drain cycle: K*La + R + C - 2 + Lm.
  [[nodiscard]] std::uint64_t os_drain_start() const;

  // The closed forms, phase by phase, with no stall:
  //   WS: N_t*K + N_t*K_t*(M + R*La + Lm + C - 1)
  //   OS: M_t*N_t*(K*La + Lm + 2R + C - 2)
  [[nodiscard]] PhaseCycles formula() const;

 private:
  GemmShape shape_;
  bool ws_;
  std::size_t r_, c_;
  unsigned lm_, la_;
  std::size_t m_tiles_ = 0, k_tiles_ = 0, n_tiles_ = 0;
};

}  // namespace accsim::hw
