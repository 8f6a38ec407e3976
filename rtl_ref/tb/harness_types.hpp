// Port table of the generated harness top: one entry per configuration of
// configs.txt, filled by the generated harness_configs.inc.
#pragma once

#include <cstdint>
#include <string>

struct HarnessPorts {
  // inputs
  std::uint64_t* a = nullptr;
  std::uint64_t* b = nullptr;
  std::uint64_t* acc = nullptr;
  std::uint64_t* p_in = nullptr;
  std::uint64_t* sr_prod = nullptr;
  std::uint64_t* sr_acc = nullptr;
  std::uint64_t* pe_ctl = nullptr;
  std::uint64_t* pe_a = nullptr;
  std::uint64_t* pe_b = nullptr;
  std::uint64_t* pe_sr = nullptr;
  // outputs
  std::uint64_t* m_flags = nullptr;
  std::uint64_t* m_exp = nullptr;
  std::uint64_t* m_sig = nullptr;
  std::uint64_t* p_bits = nullptr;
  std::uint64_t* p_events = nullptr;
  std::uint64_t* fused_sum = nullptr;
  std::uint64_t* fused_events = nullptr;
  std::uint64_t* add_sum = nullptr;
  std::uint64_t* add_events = nullptr;
  std::uint64_t* pe_acc = nullptr;
  std::uint64_t* pe_status = nullptr;
};

struct HarnessConfig {
  std::string name;
  std::string operand;
  std::string product;
  std::string accumulator;
  bool pe_rounded = false;
  bool exhaustive_acc = false;
  bool is_int = false;
  HarnessPorts ports;
};
