// One processing element with every register explicit, clocked one cycle at a
// time: the definition of what a PE does each cycle, and the obviously
// correct model that the array's fast kernels are checked against (tests/hw
// builds a plain array of these and compares values, timing and toggles).
//
// Registers load only when what arrives is valid (clock gating): on a bubble
// a register keeps its data and drops its valid bit, so idle PEs do not
// toggle. Toggles are counted on every load, per pipeline stage.
#pragma once

#include <cstdint>
#include <vector>

#include "models/hw/stats.hpp"
#include "models/hw/units.hpp"
#include "models/numerics/events.hpp"

namespace accsim::hw {

struct PeRegister {
  bool valid = false;
  std::uint64_t bits = 0;
  std::uint64_t tag = 0;  // travels with the data: the vector index m (WS) or step k (OS)
};

class ProcessingElement {
 public:
  ProcessingElement(const Multiplier& multiplier, const Accumulator& accumulator);

  // Register outputs during the current cycle.
  [[nodiscard]] const PeRegister& activation() const { return activation_; }  // forwarded right
  [[nodiscard]] const PeRegister& weight() const { return weight_; }          // WS stationary / OS forwarded down
  [[nodiscard]] const PeRegister& sum() const { return sum_stages_.back(); }  // partial sum down (WS), accumulator (OS)
  [[nodiscard]] PeRegister product() const;  // the multiplier's last stage (latency >= 1; else never valid)

  // WS weight loading: the weight register takes the value shifted in from
  // above.
  void shift_weight(std::uint64_t bits);

  // One WS cycle. act_in from the left, psum_in from above (or the top feed);
  // `mac`: this PE holds one of the tile's weights, otherwise partial sums
  // pass through its adder pipeline unchanged. sr_key: the key of the MAC
  // act_in starts (unused when act_in is not valid).
  void clock_ws(const PeRegister& act_in, const PeRegister& psum_in, bool mac, std::uint64_t sr_key);

  // One OS cycle: act_in from the left, weight_in from above, both valid or
  // neither; products accumulate into the sum register.
  void clock_os(const PeRegister& act_in, const PeRegister& weight_in, std::uint64_t sr_key);

  // OS drain: the sum register takes the one above (+0 enters the top row).
  void drain(std::uint64_t bits_from_above);

  [[nodiscard]] const ToggleCounts& toggles() const { return toggles_; }
  [[nodiscard]] const num::EventCounts& product_events() const { return product_events_; }
  [[nodiscard]] const num::EventCounts& sum_events() const { return sum_events_; }

 private:
  struct ProductStage {
    bool valid = false;
    u128 bits = 0;
    num::Exact addend;
    std::uint64_t key = 0;
    std::uint64_t tag = 0;
  };
  ProductStage multiply(const PeRegister& a, std::uint64_t b_bits, std::uint64_t key);
  // The product reaching the adder this cycle, and the multiplier pipeline
  // clocked with `entering`.
  ProductStage advance_multiplier(const ProductStage& entering);
  void advance_adder(const PeRegister& entering);
  void load(PeRegister& reg, const PeRegister& in, std::uint64_t& toggle_count);

  const Multiplier& multiplier_;
  const Accumulator& accumulator_;
  PeRegister activation_, weight_;
  std::vector<ProductStage> product_stages_;
  std::vector<PeRegister> sum_stages_;
  ToggleCounts toggles_;
  num::EventCounts product_events_, sum_events_;
};

}  // namespace accsim::hw
