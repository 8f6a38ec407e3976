#include "models/hw/buffer_model.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace accsim::hw {

BufferModel::BufferModel(const BufferConfig& config, int word_bits, std::uint64_t working_set_words, bool resident,
                         std::uint64_t total_fill)
    : config_(config),
      capacity_(config.capacity_bytes * 8 / static_cast<std::uint64_t>(word_bits)),
      total_fill_(total_fill),
      fill_limit_(total_fill) {
  stats_.word_bits = word_bits;
  stats_.capacity_words = capacity_;
  stats_.working_set_words = working_set_words;
  stats_.resident = resident;
}

std::uint64_t BufferModel::port_cycles(const Access& a) const {
  const std::uint64_t bw = config_.bandwidth_words;
  if (bw == 0) return 1;
  const auto cycles = [bw](std::uint64_t words) { return (words + bw - 1) / bw; };
  const std::uint64_t need = config_.ports == 1 ? cycles(std::uint64_t{a.read} + a.write)
                                                : std::max(cycles(a.read), cycles(a.write));
  return std::max<std::uint64_t>(1, need);
}

Wait BufferModel::poll(const Access& a) {
  if (fetched_ - consumed_ < a.fill) return Wait::dram;
  assert(occupancy_ >= a.release);
  if (occupancy_ - a.release + a.alloc > capacity_) return Wait::dram;
  const std::uint64_t need = port_cycles(a);
  if (port_progress_ < need) ++port_progress_;
  return port_progress_ >= need ? Wait::none : Wait::port;
}

void BufferModel::commit(const Access& a) {
  consumed_ += a.fill;
  occupancy_ = occupancy_ - a.release + a.alloc;
  if (a.writeback > 0) {
    writebacks_.push_back({a.writeback, a.spill});
    writeback_pending_ += a.writeback;
  }
  stats_.array_reads += a.read;
  stats_.array_writes += a.write;
  stats_.peak_occupancy_words = std::max(stats_.peak_occupancy_words, occupancy_);
  port_progress_ = 0;
}

std::uint64_t BufferModel::fill_room() const {
  const std::uint64_t limit = std::min(fill_limit_, total_fill_);
  const std::uint64_t allowed = limit > fetched_ ? limit - fetched_ : 0;
  return std::min(allowed, capacity_ - std::min(capacity_, occupancy_));
}

std::uint64_t BufferModel::fill_missing(const Access& a) const {
  const std::uint64_t ready = fetched_ - consumed_;
  return a.fill > ready ? a.fill - ready : 0;
}

void BufferModel::fill(std::uint64_t words) {
  fetched_ += words;
  occupancy_ += words;
  stats_.dram_reads += words;
  stats_.peak_occupancy_words = std::max(stats_.peak_occupancy_words, occupancy_);
}

void BufferModel::set_fill_limit(std::uint64_t cumulative_words) { fill_limit_ = cumulative_words; }

void BufferModel::write_back(std::uint64_t words) {
  assert(words <= writeback_pending_);
  writeback_pending_ -= words;
  occupancy_ -= words;
  stats_.dram_writes += words;
  while (words > 0) {
    WriteBack& front = writebacks_.front();
    const std::uint64_t n = std::min(words, front.words);
    front.words -= n;
    words -= n;
    if (front.words == 0) {
      spills_done_ += front.spill;
      writebacks_.pop_front();
    }
  }
}

DramModel::DramModel(double bytes_per_cycle, int widest_word_bits)
    : unlimited_(bytes_per_cycle <= 0),
      bits_per_cycle_(bytes_per_cycle * 8),
      carry_cap_(static_cast<double>(widest_word_bits)) {}

void DramModel::new_cycle() {
  if (!unlimited_) credit_ = std::min(credit_, carry_cap_) + bits_per_cycle_;
}

std::uint64_t DramModel::transfer(std::uint64_t words, int word_bits) {
  if (unlimited_ || words == 0) return words;
  const auto affordable = static_cast<std::uint64_t>(std::floor(credit_ / word_bits));
  const std::uint64_t n = std::min(words, affordable);
  credit_ -= static_cast<double>(n) * word_bits;
  return n;
}

}  // namespace accsim::hw
