#include "models/hw/vcd.hpp"

#include <algorithm>

namespace accsim::hw {

namespace {

// VCD identifiers: printable ASCII '!'..'~', base 94.
std::string identifier(std::uint32_t index) {
  std::string id;
  do {
    id += static_cast<char>('!' + index % 94);
    index /= 94;
  } while (index != 0);
  return id;
}

std::string binary(u128 v, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s += ((v >> i) & 1) != 0 ? '1' : '0';
  const std::size_t first = s.find('1');
  return first == std::string::npos ? "0" : s.substr(first);  // VCD zero-extends on the left
}

}  // namespace

VcdRecorder::VcdRecorder(const std::string& path, const VcdWindow& window, std::size_t rows, std::size_t cols,
                         const RegisterWidths& widths, unsigned latest_lag)
    : out_(path, std::ios::binary | std::ios::trunc),
      path_(path),
      window_(window),
      row_begin_(static_cast<std::size_t>(std::min<std::uint64_t>(window.row_begin, rows))),
      row_end_(static_cast<std::size_t>(std::min<std::uint64_t>(window.row_end, rows))),
      col_begin_(static_cast<std::size_t>(std::min<std::uint64_t>(window.col_begin, cols))),
      col_end_(static_cast<std::size_t>(std::min<std::uint64_t>(window.col_end, cols))),
      traced_cols_(col_end_ - col_begin_),
      lag_(latest_lag) {
  if (!out_) throw ConfigError("vcd_path", "cannot write '" + path + "'");
  clk_ = add_signal(1);
  stall_ = add_signal(1);
  phase_ = add_signal(3);
  tile_ = add_signal(32);
  first_pe_ = static_cast<std::uint32_t>(signals_.size());
  std::vector<std::string> scopes;
  for (std::size_t r = row_begin_; r < row_end_; ++r) {
    for (std::size_t c = col_begin_; c < col_end_; ++c) {
      scopes.push_back("pe_" + std::to_string(r) + "_" + std::to_string(c));
      add_signal(widths.activation);
      add_signal(widths.weight);
      add_signal(std::max(1, widths.product));
      add_signal(widths.sum);
    }
  }
  write_header(scopes);
}

std::uint32_t VcdRecorder::add_signal(int width) {
  const auto index = static_cast<std::uint32_t>(signals_.size());
  signals_.push_back(Signal{identifier(index), width, 0, 0, false});
  return index;
}

void VcdRecorder::write_header(const std::vector<std::string>& scopes) {
  out_ << "$date accsim $end\n$version accsim " ACCSIM_VERSION " cycle-accurate MAC array $end\n"
       << "$comment one clock cycle = 10 ns; registers change at the rising edge $end\n"
       << "$timescale 1ns $end\n$scope module accelerator $end\n";
  const auto var = [&](std::uint32_t s, const char* name) {
    out_ << "$var " << (signals_[s].width == 1 && s == clk_ ? "wire" : "reg") << ' ' << signals_[s].width << ' '
         << signals_[s].id << ' ' << name << " $end\n";
  };
  var(clk_, "clk");
  var(stall_, "stall");
  var(phase_, "phase");
  var(tile_, "tile");
  out_ << "$scope module array $end\n";
  static constexpr const char* kNames[] = {"a", "w", "p", "s"};
  for (std::size_t i = 0; i < scopes.size(); ++i) {
    out_ << "$scope module " << scopes[i] << " $end\n";
    for (std::uint32_t k = 0; k < 4; ++k) var(first_pe_ + static_cast<std::uint32_t>(4 * i) + k, kNames[k]);
    out_ << "$upscope $end\n";
  }
  out_ << "$upscope $end\n$upscope $end\n$enddefinitions $end\n";
}

void VcdRecorder::pe(PeSignal signal, std::size_t r, std::size_t c, std::uint64_t step, u128 bits) {
  const auto index = first_pe_ + static_cast<std::uint32_t>(
                                     4 * ((r - row_begin_) * traced_cols_ + (c - col_begin_)) + static_cast<int>(signal));
  const Change change{index, bits};
  if (auto it = step_cycle_.find(step); it != step_cycle_.end()) {
    by_cycle_[it->second].push_back(change);
  } else {
    by_step_[step].push_back(change);
  }
}

void VcdRecorder::cycle(std::uint64_t cycle, std::optional<std::uint64_t> step, PhaseCode phase, bool stall,
                        std::uint64_t tile) {
  std::vector<Change>& now = by_cycle_[cycle];
  now.push_back({stall_, stall ? 1u : 0u});
  now.push_back({phase_, static_cast<u128>(phase)});
  now.push_back({tile_, static_cast<u128>(tile)});
  if (!step) return;
  step_cycle_[*step] = cycle;
  last_step_ = step;
  last_step_cycle_ = cycle;
  if (auto it = by_step_.find(*step); it != by_step_.end()) {
    now.insert(now.end(), it->second.begin(), it->second.end());
    by_step_.erase(it);
  }
  // Changes still to come are for steps > step - lag: everything before the
  // cycle of step - lag is final.
  if (*step >= lag_ + 1) {
    const std::uint64_t safe_step = *step - lag_ - 1;
    if (auto it = step_cycle_.find(safe_step); it != step_cycle_.end()) {
      flush_before(it->second);
      step_cycle_.erase(step_cycle_.begin(), it);
    }
  }
}

void VcdRecorder::write_value(const Signal& s) {
  if (s.width == 1) {
    out_ << (s.value != 0 ? '1' : '0') << s.id << '\n';
  } else {
    out_ << 'b' << binary(s.value, s.width) << ' ' << s.id << '\n';
  }
}

void VcdRecorder::flush_before(std::uint64_t cycle) {
  for (; next_cycle_ < cycle; ++next_cycle_) {
    const std::uint64_t g = next_cycle_;
    if (auto it = by_cycle_.find(g); it != by_cycle_.end()) {
      for (const Change& ch : it->second) signals_[ch.signal].value = ch.value;
      by_cycle_.erase(it);
    }
    if (g < window_.cycle_begin || g >= window_.cycle_end) continue;
    out_ << '#' << g * 10 << '\n';
    signals_[clk_].value = 1;
    if (!dumped_) {
      out_ << "$dumpvars\n";
      for (Signal& s : signals_) {
        write_value(s);
        s.written = s.value;
        s.ever_written = true;
      }
      out_ << "$end\n";
      dumped_ = true;
    } else {
      for (Signal& s : signals_) {
        if (s.value != s.written) {
          write_value(s);
          s.written = s.value;
        }
      }
    }
    out_ << '#' << g * 10 + 5 << "\n0" << signals_[clk_].id << '\n';
    signals_[clk_].value = 0;
    signals_[clk_].written = 0;
  }
}

void VcdRecorder::finish(std::uint64_t cycles) {
  // Steps that never ran (none in a complete run) land after the last one.
  for (auto& [step, changes] : by_step_) {
    const std::uint64_t g = last_step_ ? last_step_cycle_ + (step - *last_step_) : step;
    auto& dst = by_cycle_[g];
    dst.insert(dst.end(), changes.begin(), changes.end());
  }
  by_step_.clear();
  std::uint64_t end = cycles;
  if (!by_cycle_.empty()) end = std::max(end, by_cycle_.rbegin()->first + 1);
  flush_before(end);
  if (end >= window_.cycle_begin && end <= window_.cycle_end) out_ << '#' << end * 10 << '\n';
  out_.flush();
  if (!out_) throw ConfigError("vcd_path", "error writing '" + path_ + "'");
}

}  // namespace accsim::hw
