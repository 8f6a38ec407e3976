#include "models/hw/units.hpp"

namespace accsim::hw {

FusedProductBits::FusedProductBits(const num::Format& operand) {
  if (const auto* i = std::get_if<num::IntFormat>(&operand)) {
    int_bits_ = i->bits;
    width_ = 2 * i->bits;
    mask_ = width_ >= 128 ? ~u128{0} : (u128{1} << width_) - 1;
    return;
  }
  const auto& f = std::get<num::FloatFormat>(operand);
  man_ = f.man_bits;
  exp_bits_ = f.exp_bits;
  exp_mask_ = (std::uint64_t{1} << f.exp_bits) - 1;
  width_ = 1 + (f.exp_bits + 1) + 2 * (f.man_bits + 1);
}

Multiplier::Multiplier(num::Format operand, std::optional<num::Format> product, unsigned latency)
    : operand_(std::move(operand)), product_(std::move(product)), latency_(latency), fused_(operand_) {}

Multiplier::Output Multiplier::operator()(std::uint64_t a_bits, std::uint64_t b_bits, std::uint64_t sr_key) const {
  Output out;
  if (product_) {
    const num::Result p = num::multiply(a_bits, b_bits, operand_, *product_, num::product_key(sr_key));
    out.addend = num::decode(p.bits, *product_);
    out.register_bits = p.bits;
    out.events = p.events;
  } else {
    out.addend = num::exact_product(num::decode(a_bits, operand_), num::decode(b_bits, operand_));
    out.register_bits = fused_(a_bits, b_bits);
  }
  return out;
}

int Multiplier::register_width() const { return product_ ? num::width(*product_) : fused_.width(); }

}  // namespace accsim::hw
