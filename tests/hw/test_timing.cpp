// Cycles: the closed forms of docs/array.md when nothing stalls; with
// bandwidth-limited buffers and DRAM, cycles = formula + stalls exactly, the
// stall count matching what the bandwidth predicts; no deadlock with the
// smallest legal buffers; traffic in words and bytes.
#include <gtest/gtest.h>

#include "models/hw/schedule.hpp"
#include "test_util.hpp"

namespace accsim::hw {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// docs/array.md, written out independently of the Schedule class.
std::uint64_t ws_formula(std::uint64_t R, std::uint64_t C, std::uint64_t Lm, std::uint64_t La, std::uint64_t M,
                         std::uint64_t K, std::uint64_t N) {
  const std::uint64_t Nt = ceil_div(N, C), Kt = ceil_div(K, R);
  return Nt * K + Nt * Kt * (M + R * La + Lm + C - 1);
}
std::uint64_t os_formula(std::uint64_t R, std::uint64_t C, std::uint64_t Lm, std::uint64_t La, std::uint64_t M,
                         std::uint64_t K, std::uint64_t N) {
  return ceil_div(M, R) * ceil_div(N, C) * (K * La + Lm + 2 * R + C - 2);
}

struct TimingCase {
  std::size_t R, C;
  unsigned Lm, La;
  std::size_t M, K, N;
};

const TimingCase kTiming[] = {
    {1, 1, 0, 1, 3, 4, 2},   {1, 8, 1, 1, 7, 5, 20},  {8, 1, 2, 2, 9, 19, 3},  {4, 4, 1, 1, 16, 16, 16},
    {4, 4, 0, 3, 13, 37, 19}, {8, 16, 3, 2, 5, 40, 33}, {16, 16, 1, 1, 64, 64, 64}, {32, 32, 1, 4, 33, 65, 31},
};

class ClosedForm : public ::testing::TestWithParam<TimingCase> {};

TEST_P(ClosedForm, CyclesAndPhasesWithoutStalls) {
  const TimingCase& t = GetParam();
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz");
  const test::Operands ops = test::quantized(t.M, t.K, t.N, cfg, test::test_seed());
  for (const Dataflow d : {Dataflow::weight_stationary, Dataflow::output_stationary}) {
    for (const WsPartialSums p : {WsPartialSums::merge, WsPartialSums::feedback}) {
      if (d == Dataflow::output_stationary && p == WsPartialSums::feedback) continue;
      const ArrayConfig arr = test::array_config(t.R, t.C, d, p, t.Lm, t.La);
      SCOPED_TRACE(std::string(ref::to_string(d)) + " " + std::string(ref::to_string(p)));
      const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
      const std::uint64_t want = d == Dataflow::weight_stationary ? ws_formula(t.R, t.C, t.Lm, t.La, t.M, t.K, t.N)
                                                                  : os_formula(t.R, t.C, t.Lm, t.La, t.M, t.K, t.N);
      EXPECT_EQ(r.stats.cycles, want);
      EXPECT_EQ(r.stats.formula_cycles, want);
      EXPECT_EQ(r.stats.phases, formula_cycles(arr, t.M, t.K, t.N));
      EXPECT_EQ(r.stats.phases.total(), r.stats.cycles);
      EXPECT_EQ(r.stats.phases.stall, 0u);
      EXPECT_EQ(r.stats.useful_macs, t.M * t.K * t.N);
      EXPECT_DOUBLE_EQ(r.stats.utilization(),
                       static_cast<double>(t.M * t.K * t.N) / static_cast<double>(t.R * t.C * want));
      if (d == Dataflow::weight_stationary) {
        EXPECT_EQ(r.stats.phases.weight_load, ceil_div(t.N, t.C) * t.K);
      } else {
        EXPECT_EQ(r.stats.phases.weight_load, 0u);
        EXPECT_EQ(r.stats.phases.steady, ceil_div(t.M, t.R) * ceil_div(t.N, t.C) * t.K * t.La);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ClosedForm, ::testing::ValuesIn(kTiming));

// A narrow input port: every activation vector of kr words takes
// ceil(kr / bw) cycles, so each issue stalls ceil(kr / bw) - 1 cycles.
TEST(Stalls, InputPortBandwidthIsExactlyPredicted) {
  const std::size_t R = 8, C = 4, M = 10, K = 19, N = 9;
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp16", "");
  const test::Operands ops = test::quantized(M, K, N, cfg, 5);
  for (const unsigned bw : {1u, 3u, 5u, 8u}) {
    ArrayConfig arr = test::array_config(R, C, Dataflow::weight_stationary);
    arr.input_buffer.bandwidth_words = bw;
    const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
    std::uint64_t predicted = 0;
    for (std::size_t k0 = 0; k0 < K; k0 += R) predicted += M * (ceil_div(std::min(R, K - k0), bw) - 1);
    predicted *= ceil_div(N, C);
    EXPECT_EQ(r.stats.stalls.input_port, predicted) << "bw=" << bw;
    EXPECT_EQ(r.stats.stalls.total(), predicted);
    EXPECT_EQ(r.stats.cycles, r.stats.formula_cycles + predicted);
    EXPECT_EQ(r.stats.phases.stall, predicted);
  }
}

// One shared port on the output buffer: a merge reads and writes nc words
// (ceil(2nc / bw) cycles), the first k-tile only writes (ceil(nc / bw)).
TEST(Stalls, SharedOutputPortIsExactlyPredicted) {
  const std::size_t R = 4, C = 6, M = 7, K = 11, N = 15;
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "");
  const test::Operands ops = test::quantized(M, K, N, cfg, 6);
  ArrayConfig arr = test::array_config(R, C, Dataflow::weight_stationary);
  arr.output_buffer.ports = 1;
  arr.output_buffer.bandwidth_words = 4;
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  std::uint64_t predicted = 0;
  for (std::size_t n0 = 0; n0 < N; n0 += C) {
    const std::size_t nc = std::min(C, N - n0);
    for (std::size_t k0 = 0; k0 < K; k0 += R) predicted += M * (ceil_div((k0 == 0 ? 1 : 2) * nc, 4) - 1);
  }
  EXPECT_EQ(r.stats.stalls.output_port, predicted);
  EXPECT_EQ(r.stats.cycles, r.stats.formula_cycles + predicted);
}

// OS streams a row of A and a column of B per step, every La cycles.
TEST(Stalls, OsWeightPortIsExactlyPredicted) {
  const std::size_t R = 4, C = 8, M = 9, K = 13, N = 17;
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp32", "");
  const test::Operands ops = test::quantized(M, K, N, cfg, 7);
  ArrayConfig arr = test::array_config(R, C, Dataflow::output_stationary);
  arr.weight_buffer.bandwidth_words = 3;
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  std::uint64_t predicted = 0;
  for (std::size_t n0 = 0; n0 < N; n0 += C) predicted += K * (ceil_div(std::min(C, N - n0), 3) - 1);
  predicted *= ceil_div(M, R);
  EXPECT_EQ(r.stats.stalls.weight_port, predicted);
  EXPECT_EQ(r.stats.cycles, r.stats.formula_cycles + predicted);
}

struct MemoryCase {
  Dataflow dataflow;
  WsPartialSums partial_sums;
  bool smallest_buffers;
  double dram_bytes_per_cycle;
  unsigned bandwidth_words;
};

class Memory : public ::testing::TestWithParam<MemoryCase> {};

// Limited DRAM and small buffers: never a deadlock, results unchanged,
// cycles >= formula and the stall count explains the difference exactly.
TEST_P(Memory, StallsExplainTheDifference) {
  const MemoryCase& c = GetParam();
  const std::size_t R = 4, C = 5, M = 11, K = 14, N = 12;
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz");
  const test::Operands ops = test::quantized(M, K, N, cfg, 8);
  ArrayConfig arr = test::array_config(R, C, c.dataflow, c.partial_sums, 1, 2);
  if (c.smallest_buffers) {
    // One tile row each: R one-byte activations, C weights, C 12-bit outputs.
    arr.input_buffer.capacity_bytes = R;
    arr.weight_buffer.capacity_bytes = C;
    arr.output_buffer.capacity_bytes = (C * 12 + 7) / 8;
    arr.output_buffer.ports = 1;
  }
  arr.input_buffer.bandwidth_words = arr.weight_buffer.bandwidth_words = arr.output_buffer.bandwidth_words =
      c.bandwidth_words;
  arr.dram_bytes_per_cycle = c.dram_bytes_per_cycle;
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  const CycleStats& s = r.stats;
  EXPECT_GE(s.cycles, s.formula_cycles);
  EXPECT_EQ(s.cycles, s.formula_cycles + s.phases.stall);
  EXPECT_EQ(s.phases.stall, s.stalls.total());
  EXPECT_EQ(s.phases.weight_load + s.phases.fill + s.phases.steady + s.phases.drain, s.formula_cycles);
  if (c.dram_bytes_per_cycle > 0) {
    EXPECT_GT(s.stalls.dram, 0u);
  }
  // Every operand word is fetched at least once; results all reach DRAM.
  EXPECT_GE(s.input.dram_reads, M * K);
  EXPECT_GE(s.weight.dram_reads, K * N);
  const std::uint64_t k_tiles = (K + R - 1) / R, n_tiles = (N + C - 1) / C, m_tiles = (M + R - 1) / R;
  if (c.dataflow == Dataflow::weight_stationary) {
    EXPECT_EQ(s.weight.dram_reads, K * N);
    EXPECT_EQ(s.input.dram_reads, s.input.resident ? M * K : n_tiles * M * K);
    // Spilled partial sums go out and come back once per k-tile boundary.
    const std::uint64_t spills = s.output.resident ? 0 : (k_tiles - 1) * M * N;
    EXPECT_EQ(s.output.dram_writes, M * N + spills);
    EXPECT_EQ(s.output.dram_reads, spills);
    EXPECT_EQ(s.output.resident, !c.smallest_buffers);
  } else {
    EXPECT_EQ(s.output.dram_writes, M * N);
    EXPECT_EQ(s.input.dram_reads, s.input.resident ? M * K : n_tiles * M * K);
    EXPECT_EQ(s.weight.dram_reads, s.weight.resident ? K * N : m_tiles * K * N);
  }
  EXPECT_LE(s.input.peak_occupancy_words, s.input.capacity_words);
  EXPECT_LE(s.weight.peak_occupancy_words, s.weight.capacity_words);
  EXPECT_LE(s.output.peak_occupancy_words, s.output.capacity_words);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Memory,
    ::testing::Values(MemoryCase{Dataflow::weight_stationary, WsPartialSums::merge, false, 3, 0},
                      MemoryCase{Dataflow::weight_stationary, WsPartialSums::merge, true, 0, 0},
                      MemoryCase{Dataflow::weight_stationary, WsPartialSums::merge, true, 2.5, 2},
                      MemoryCase{Dataflow::weight_stationary, WsPartialSums::feedback, true, 0, 0},
                      MemoryCase{Dataflow::weight_stationary, WsPartialSums::feedback, true, 1, 1},
                      MemoryCase{Dataflow::weight_stationary, WsPartialSums::feedback, false, 0.5, 3},
                      MemoryCase{Dataflow::output_stationary, WsPartialSums::merge, false, 4, 0},
                      MemoryCase{Dataflow::output_stationary, WsPartialSums::merge, true, 0, 0},
                      MemoryCase{Dataflow::output_stationary, WsPartialSums::merge, true, 1.5, 1}));

// The smallest legal buffers in every shape the suite uses, with a slow DRAM:
// the run completes (a deadlock would throw) and stays bit-identical.
TEST(Memory, SmallestBuffersNeverDeadlock) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp16", "");
  for (const std::size_t R : {1u, 3u, 8u}) {
    for (const std::size_t C : {1u, 4u, 7u}) {
      const test::Operands ops = test::quantized(2 * R + 1, 3 * R + 2, 2 * C + 1, cfg, R * 10 + C);
      for (const Dataflow d : {Dataflow::weight_stationary, Dataflow::output_stationary}) {
        for (const WsPartialSums p : {WsPartialSums::merge, WsPartialSums::feedback}) {
          ArrayConfig arr = test::array_config(R, C, d, p, 2, 3);
          arr.input_buffer.capacity_bytes = R;
          arr.weight_buffer.capacity_bytes = C;
          arr.output_buffer.capacity_bytes = 2 * C;
          arr.output_buffer.ports = 1;
          arr.output_buffer.bandwidth_words = 1;
          arr.dram_bytes_per_cycle = 0.75;
          SCOPED_TRACE(std::to_string(R) + "x" + std::to_string(C) + " " + std::string(ref::to_string(d)) + " " +
                       std::string(ref::to_string(p)));
          const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
          EXPECT_EQ(r.stats.cycles, r.stats.formula_cycles + r.stats.phases.stall);
        }
      }
    }
  }
}

// Word widths come from the formats: a 12-bit accumulator moves 12/32 of
// the partial-sum bytes of an fp32 one, and the same SRAM holds 32/12 as
// many of its words.
TEST(Traffic, NarrowerAccumulatorNarrowerBytes) {
  const std::size_t M = 20, K = 33, N = 10;
  ref::GemmConfig narrow = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "");
  ref::GemmConfig wide = test::gemm_config("e4m3", "fp32", "");
  const test::Operands ops = test::quantized(M, K, N, narrow, 9);
  ArrayConfig arr = test::array_config(8, 8, Dataflow::weight_stationary);
  arr.output_buffer.capacity_bytes = 300;  // M x C = 160 words: 200 12-bit words fit them, 75 fp32 words do not
  const CycleResult a = test::expect_bit_identical(ops, narrow, arr);
  const CycleResult b = test::expect_bit_identical(ops, wide, arr);
  EXPECT_EQ(a.stats.output.word_bits, 12);
  EXPECT_EQ(b.stats.output.word_bits, 32);
  EXPECT_EQ(a.stats.output.capacity_words, 200u);
  EXPECT_EQ(b.stats.output.capacity_words, 75u);
  EXPECT_TRUE(a.stats.output.resident);
  EXPECT_FALSE(b.stats.output.resident);
  EXPECT_EQ(a.stats.output.array_writes, b.stats.output.array_writes);
  EXPECT_DOUBLE_EQ(a.stats.output.bytes(a.stats.output.array_writes),
                   b.stats.output.bytes(b.stats.output.array_writes) * 12 / 32);
  EXPECT_EQ(a.stats.output.dram_writes, M * N);
  EXPECT_GT(b.stats.output.dram_writes, M * N);  // the fp32 partial sums spill
  EXPECT_LT(a.stats.dram_write_bytes(), b.stats.dram_write_bytes());
  EXPECT_EQ(a.stats.register_bits.sum, 12);
  EXPECT_EQ(b.stats.register_bits.sum, 32);
}

// Array-side traffic: WS reads each activation once per n-tile and each
// weight once; the output buffer sees one write per output per k-tile and
// one read per merge.
TEST(Traffic, ArraySideCounts) {
  const std::size_t R = 4, C = 4, M = 6, K = 10, N = 7;
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp16", "");
  const test::Operands ops = test::quantized(M, K, N, cfg, 10);
  const std::uint64_t k_tiles = 3, n_tiles = 2;
  const CycleResult ws = test::expect_bit_identical(ops, cfg, test::array_config(R, C, Dataflow::weight_stationary));
  EXPECT_EQ(ws.stats.input.array_reads, n_tiles * M * K);
  EXPECT_EQ(ws.stats.weight.array_reads, K * N);
  EXPECT_EQ(ws.stats.output.array_writes, k_tiles * M * N);
  EXPECT_EQ(ws.stats.output.array_reads, (k_tiles - 1) * M * N);
  EXPECT_EQ(ws.stats.output.sram_reads(), ws.stats.output.array_reads + M * N);
  const CycleResult os = test::expect_bit_identical(ops, cfg, test::array_config(R, C, Dataflow::output_stationary));
  EXPECT_EQ(os.stats.input.array_reads, n_tiles * M * K);
  EXPECT_EQ(os.stats.weight.array_reads, 2 * K * N);  // two m-tiles
  EXPECT_EQ(os.stats.output.array_writes, M * N);
}

}  // namespace
}  // namespace accsim::hw
