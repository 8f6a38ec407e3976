#include "models/hw/processing_element.hpp"

#include <stdexcept>

namespace accsim::hw {

ProcessingElement::ProcessingElement(const Multiplier& multiplier, const Accumulator& accumulator)
    : multiplier_(multiplier),
      accumulator_(accumulator),
      product_stages_(multiplier.latency()),
      sum_stages_(accumulator.latency()) {}

PeRegister ProcessingElement::product() const {
  if (product_stages_.empty()) return {};
  const ProductStage& last = product_stages_.back();
  return {last.valid, static_cast<std::uint64_t>(last.bits), last.tag};
}

void ProcessingElement::load(PeRegister& reg, const PeRegister& in, std::uint64_t& toggle_count) {
  if (in.valid) {
    toggle_count += static_cast<std::uint64_t>(std::popcount(reg.bits ^ in.bits));
    reg = in;
  } else {
    reg.valid = false;  // a bubble: the data is held
  }
}

void ProcessingElement::shift_weight(std::uint64_t bits) { load(weight_, PeRegister{true, bits, 0}, toggles_.weight); }

ProcessingElement::ProductStage ProcessingElement::multiply(const PeRegister& a, std::uint64_t b_bits,
                                                            std::uint64_t key) {
  ProductStage p;
  if (!a.valid) return p;
  const Multiplier::Output out = multiplier_(a.bits, b_bits, key);
  if (multiplier_.product_format()) product_events_.record(out.events);
  p.valid = true;
  p.bits = out.register_bits;
  p.addend = out.addend;
  p.key = key;
  p.tag = a.tag;
  return p;
}

ProcessingElement::ProductStage ProcessingElement::advance_multiplier(const ProductStage& entering) {
  if (product_stages_.empty()) return entering;  // combinational multiplier
  const ProductStage out = product_stages_.back();
  for (std::size_t i = product_stages_.size(); i-- > 0;) {
    const ProductStage& in = i == 0 ? entering : product_stages_[i - 1];
    ProductStage& stage = product_stages_[i];
    if (in.valid) {
      toggles_.product += static_cast<std::uint64_t>(popcount128(stage.bits ^ in.bits));
      stage = in;
    } else {
      stage.valid = false;
    }
  }
  return out;
}

void ProcessingElement::advance_adder(const PeRegister& entering) {
  for (std::size_t i = sum_stages_.size(); i-- > 0;) {
    load(sum_stages_[i], i == 0 ? entering : sum_stages_[i - 1], toggles_.sum);
  }
}

void ProcessingElement::clock_ws(const PeRegister& act_in, const PeRegister& psum_in, bool mac,
                                 std::uint64_t sr_key) {
  const ProductStage at_adder = advance_multiplier(mac ? multiply(act_in, weight_.bits, sr_key) : ProductStage{});
  PeRegister entering;
  if (mac) {
    if (at_adder.valid != psum_in.valid) throw std::logic_error("PE: product and partial sum out of step");
    if (at_adder.valid) {
      const num::Result r = accumulator_(psum_in.bits, at_adder.addend, at_adder.key);
      sum_events_.record(r.events);
      entering = {true, r.bits, at_adder.tag};
    }
  } else {
    entering = psum_in;
  }
  advance_adder(entering);
  if (mac) load(activation_, act_in, toggles_.activation);
}

void ProcessingElement::clock_os(const PeRegister& act_in, const PeRegister& weight_in, std::uint64_t sr_key) {
  if (act_in.valid != weight_in.valid) throw std::logic_error("PE: activation and weight out of step");
  const ProductStage at_adder = advance_multiplier(multiply(act_in, weight_in.bits, sr_key));
  PeRegister entering;
  if (at_adder.valid) {
    for (std::size_t i = 0; i + 1 < sum_stages_.size(); ++i) {
      if (sum_stages_[i].valid) throw std::logic_error("PE: accumulation issued before the previous sum left the adder");
    }
    const num::Result r = accumulator_(sum_stages_.back().bits, at_adder.addend, at_adder.key);
    sum_events_.record(r.events);
    entering = {true, r.bits, at_adder.tag};
  }
  advance_adder(entering);
  load(activation_, act_in, toggles_.activation);
  load(weight_, weight_in, toggles_.weight);
}

void ProcessingElement::drain(std::uint64_t bits_from_above) {
  PeRegister& acc = sum_stages_.back();
  toggles_.sum += static_cast<std::uint64_t>(std::popcount(acc.bits ^ bits_from_above));
  acc.bits = bits_from_above;
}

}  // namespace accsim::hw
