#include "models/hw/controller_model.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "models/hw/vcd.hpp"

namespace accsim::hw {

namespace {
constexpr std::size_t kInput = 0, kWeight = 1, kOutput = 2;
std::uint32_t u32(std::size_t x) { return static_cast<std::uint32_t>(x); }
}  // namespace

Residency plan_residency(const Schedule& s, std::uint64_t input_capacity, std::uint64_t weight_capacity,
                         std::uint64_t output_capacity) {
  Residency r;
  const GemmShape& g = s.shape();
  const std::uint64_t M = g.m, K = g.k, N = g.n;
  if (s.tile_count() == 0) return r;
  if (s.weight_stationary()) {
    r.input_working_set = M * K;
    r.input = r.input_working_set <= input_capacity;
    r.input_fill = r.input ? M * K : s.n_tiles() * M * K;
    r.weight_working_set = std::min<std::uint64_t>(s.rows(), K) * std::min<std::uint64_t>(s.cols(), N);
    r.weight = r.weight_working_set <= weight_capacity;  // only reports whether a tile fits: weights are used once
    r.weight_fill = K * N;
    r.output_working_set = M * std::min<std::uint64_t>(s.cols(), N);
    r.output = r.output_working_set <= output_capacity;
    r.output_fill = r.output ? 0 : (s.k_tiles() - 1) * M * N;
  } else {
    r.input_working_set = std::min<std::uint64_t>(s.rows(), M) * K;
    r.input = r.input_working_set <= input_capacity;
    r.input_fill = r.input ? M * K : s.n_tiles() * M * K;
    r.weight_working_set = K * N;
    r.weight = r.weight_working_set <= weight_capacity;
    r.weight_fill = r.weight ? K * N : s.m_tiles() * K * N;
    r.output_working_set = std::min<std::uint64_t>(s.cols(), N);
    r.output = true;  // results drain row by row and leave: nothing spills
    r.output_fill = 0;
  }
  return r;
}

ControllerModel::ControllerModel(const Schedule& schedule, const Residency& residency, bool ws_feedback,
                                 double dram_bytes_per_cycle, ArrayPort& array, BufferPort& input, BufferPort& weight, BufferPort& output,
                                 VcdRecorder* vcd)
    : schedule_(schedule),
      residency_(residency),
      feedback_(ws_feedback),
      dram_(dram_bytes_per_cycle,
            std::max({input.word_bits(), weight.word_bits(), output.word_bits()})),
      array_(array),
      buffers_{&input, &weight, &output},
      vcd_(vcd) {
  // With no state change for this long, nothing ever will: a DRAM word needs
  // at most widest/bits_per_cycle cycles of credit.
  const int widest = std::max({input.word_bits(), weight.word_bits(), output.word_bits()});
  deadlock_bound_ = 4 + (dram_.unlimited() ? 0 : static_cast<std::uint64_t>(std::ceil(widest / dram_.bits_per_cycle())));
  if (schedule_.tile_count() == 0) {
    array_done_ = true;
  } else {
    start_tile(0);
  }
}

bool ControllerModel::done() const { return array_done_ && buffers_[kOutput]->writeback_pending() == 0; }

void ControllerModel::start_tile(std::size_t index) {
  tile_index_ = index;
  tile_ = schedule_.tile(index);
  timing_ = schedule_.timing(tile_);
  step_ = 0;
  tile_writes_ = 0;
  refetch_units_ = 0;
  refetch_base_ = buffers_[kOutput]->fetched();  // every earlier refetch has been consumed
  array_.begin_tile(tile_);
}

// The accesses of the current array step (docs/array.md, "Buffers, DRAM and the
// stall rules").
void ControllerModel::plan_step() {
  for (Access& a : access_) a = Access{};
  const bool ws = schedule_.weight_stationary();
  const std::size_t M = schedule_.shape().m, K = schedule_.shape().k;
  const bool first_n = tile_.nt == 0, last_n = tile_.nt + 1 == schedule_.n_tiles();
  if (ws) {
    if (step_ < timing_.load) {
      phase_ = Phase::weight_load;
      access_[kWeight] = {.read = u32(tile_.nc), .fill = u32(tile_.nc), .release = u32(tile_.nc)};
      return;
    }
    const std::uint64_t s = step_ - timing_.load;
    phase_ = s < timing_.fill ? Phase::fill : s < timing_.fill + timing_.steady ? Phase::steady : Phase::drain;
    const auto nc = u32(tile_.nc);
    const bool spill = !residency_.output;
    Access& out = access_[kOutput];
    // A read of earlier partial sums: from the buffer, or refetched from DRAM
    // after a spill (and then its space is free again).
    const auto read_partial_sums = [&] {
      out.read += nc;
      if (spill) out.fill += nc, out.release += nc;
    };
    if (s < M) {  // activation vector s enters the skew registers
      const auto kr = u32(tile_.kr);
      access_[kInput] = {.read = kr,
                         .fill = residency_.input && !first_n ? 0 : kr,
                         .release = residency_.input && !last_n ? 0 : kr};
      if (feedback_ && !tile_.first_k) read_partial_sums();  // they enter at the top of the columns
    }
    if (s >= schedule_.ws_output_latency()) {  // de-skewed output vector s - L reaches the output buffer
      if (!feedback_ && !tile_.first_k) read_partial_sums();  // merge: read, add, write back in place
      out.write = nc;
      out.alloc = spill || tile_.first_k ? nc : 0;
      out.writeback = spill || tile_.last_k ? nc : 0;
      out.spill = !tile_.last_k;
    }
    return;
  }
  const std::uint64_t s = step_;
  phase_ = s < timing_.fill ? Phase::fill : s < timing_.fill + timing_.steady ? Phase::steady : Phase::drain;
  const unsigned La = schedule_.add_latency();
  if (s % La == 0 && s / La < K) {  // step k = s/La enters the skew registers
    const auto mr = u32(tile_.mr), nc = u32(tile_.nc);
    const bool first_m = tile_.mt == 0, last_m = tile_.mt + 1 == schedule_.m_tiles();
    access_[kInput] = {.read = mr,
                       .fill = residency_.input && !first_n ? 0 : mr,
                       .release = residency_.input && !last_n ? 0 : mr};
    access_[kWeight] = {.read = nc,
                        .fill = residency_.weight && !first_m ? 0 : nc,
                        .release = residency_.weight && !last_m ? 0 : nc};
  }
  const std::uint64_t drain = schedule_.os_drain_start();
  if (s >= drain && schedule_.rows() - 1 - (s - drain) < tile_.mr) {
    const auto nc = u32(tile_.nc);
    access_[kOutput] = {.write = nc, .alloc = nc, .writeback = nc};
  }
}

// WS with spilled partial sums: the DMA may refetch vector m of the current
// k-tile only once (a) the previous k-tile's spill of it has reached DRAM and
// (b) every output write scheduled before its use has happened, so that a
// prefetch never takes the space an earlier write needs (space is granted in
// schedule order, which is what keeps the smallest buffers deadlock-free).
// Refetches never run ahead into the next tile.
void ControllerModel::update_output_fill_limit() {
  if (!schedule_.weight_stationary() || residency_.output) return;
  BufferPort& out = *buffers_[kOutput];
  if (array_done_) {
    out.set_fill_limit(out.fetched());
    return;
  }
  if (tile_.first_k) {
    out.set_fill_limit(refetch_base_);
    return;
  }
  const std::uint64_t M = schedule_.shape().m, L = schedule_.ws_output_latency();
  const std::uint64_t spills_before_previous = (tile_index_ - 1 - tile_.nt) * M;
  while (refetch_units_ < M) {
    const std::uint64_t m = refetch_units_;
    // Feedback reads vector m at step m; merge at step L + m, beside its write.
    const std::uint64_t writes_before = feedback_ ? (m > L ? std::min(M, m - L) : 0) : m;
    if (tile_writes_ < writes_before || out.spills_written_back() < spills_before_previous + m + 1) break;
    ++refetch_units_;
  }
  out.set_fill_limit(refetch_base_ + refetch_units_ * tile_.nc);
}

std::uint64_t ControllerModel::dma_pass(bool for_current_step) {
  std::uint64_t moved = 0;
  BufferPort& out = *buffers_[kOutput];
  // Write-backs first: they free space.
  const std::uint64_t wb = dram_.transfer(out.writeback_pending(), out.word_bits());
  if (wb > 0) out.write_back(wb);
  moved += wb;
  if (for_current_step && !array_done_) {
    for (std::size_t b = 0; b < 3; ++b) {
      BufferPort& buf = *buffers_[b];
      const std::uint64_t n =
          dram_.transfer(std::min(buf.fill_missing(access_[b]), buf.fill_room()), buf.word_bits());
      if (n > 0) buf.fill(n);
      moved += n;
    }
  }
  for (BufferPort* buf : buffers_) {
    const std::uint64_t n = dram_.transfer(buf->fill_room(), buf->word_bits());
    if (n > 0) buf->fill(n);
    moved += n;
  }
  return moved;
}

void ControllerModel::cycle() {
  dram_.new_cycle();
  if (!array_done_) plan_step();
  update_output_fill_limit();
  std::uint64_t progress = dma_pass(true);
  std::optional<std::uint64_t> taken;
  bool stalled = false;
  if (!array_done_) {
    Wait waits[3];
    bool ready = true, dram_wait = false, port_wait = false;
    for (std::size_t b = 0; b < 3; ++b) {
      waits[b] = buffers_[b]->poll(access_[b]);
      ready = ready && waits[b] == Wait::none;
      dram_wait = dram_wait || waits[b] == Wait::dram;
      port_wait = port_wait || waits[b] == Wait::port;
    }
    if (ready) {
      for (std::size_t b = 0; b < 3; ++b) buffers_[b]->commit(access_[b]);
      if (access_[kOutput].write > 0) ++tile_writes_;
      switch (phase_) {
        case Phase::weight_load: ++phases_.weight_load; break;
        case Phase::fill: ++phases_.fill; break;
        case Phase::steady: ++phases_.steady; break;
        case Phase::drain: ++phases_.drain; break;
      }
      if (step_ < timing_.load) {
        array_.load_step(step_, array_time_);
      } else {
        array_.stream_step(step_ - timing_.load, array_time_);
      }
      taken = array_time_++;
      if (++step_ == timing_.total()) {
        if (tile_index_ + 1 < schedule_.tile_count()) {
          start_tile(tile_index_ + 1);
        } else {
          array_done_ = true;
        }
      }
      ++progress;
    } else {
      stalled = true;
      ++phases_.stall;
      if (dram_wait) {
        ++stalls_.dram;
      } else if (waits[kInput] == Wait::port) {
        ++stalls_.input_port;
      } else if (waits[kWeight] == Wait::port) {
        ++stalls_.weight_port;
      } else {
        ++stalls_.output_port;
      }
      progress += port_wait;
    }
  } else {
    stalled = true;  // results still on their way to DRAM
    ++phases_.stall;
    ++stalls_.dram;
  }
  update_output_fill_limit();
  progress += dma_pass(false);
  if (vcd_ != nullptr) {
    PhaseCode code = PhaseCode::idle;
    if (taken) {
      switch (phase_) {
        case Phase::weight_load: code = PhaseCode::weight_load; break;
        case Phase::fill: code = PhaseCode::fill; break;
        case Phase::steady: code = PhaseCode::steady; break;
        case Phase::drain: code = PhaseCode::drain; break;
      }
    }
    vcd_->cycle(cycle_, taken, code, stalled, tile_index_);
  }
  ++cycle_;
  idle_cycles_ = progress > 0 ? 0 : idle_cycles_ + 1;
  if (idle_cycles_ > deadlock_bound_) {
    throw std::logic_error("cycle model: no progress for " + std::to_string(idle_cycles_) + " cycles at cycle " +
                           std::to_string(cycle_) + " (tile " + std::to_string(tile_index_) + ", step " +
                           std::to_string(step_) + "): deadlock");
  }
}

}  // namespace accsim::hw
