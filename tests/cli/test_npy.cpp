// sim/npy: reading what NumPy writes, writing what NumPy reads, and a typed
// one-line error for every malformed input.
#include "sim/npy.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sim/errors.hpp"
#include "test_util.hpp"

namespace accsim::sim {
namespace {

using testing::npy_f32;
using testing::npy_f64;
using testing::npy_header_dict;
using testing::npy_raw;
using testing::TempDir;

// Parses bytes expecting an InputError whose one-line message names the
// file and contains `problem`.
void expect_rejected(const std::string& bytes, const std::string& problem) {
  try {
    (void)parse_npy(bytes, "in.npy");
    ADD_FAILURE() << "accepted; expected an error containing '" << problem << "'";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.starts_with("in.npy: ")) << what;
    EXPECT_NE(what.find(problem), std::string::npos) << "message: " << what << "\nexpected: " << problem;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(Npy, RoundTripKeepsEveryBit) {
  ref::Matrix m(3, 4);
  const std::vector<double> values = {0.0,     -0.0,     1.0,  -1.5,
                                      0.1,     1e300,    -1e-310, std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::max(),
                                      std::nan(""), 123456789.0};
  m.data = values;
  const NpyMatrix back = parse_npy(encode_npy(m), "m.npy");
  EXPECT_EQ(back.dtype, NpyDtype::float64);
  ASSERT_EQ(back.matrix.rows, 3u);
  ASSERT_EQ(back.matrix.cols, 4u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::bit_cast<std::uint64_t>(back.matrix.data[i]), std::bit_cast<std::uint64_t>(values[i])) << i;
  }
}

TEST(Npy, WriterMatchesNumPyLayout) {
  ref::Matrix m(2, 3, 1.25);
  const std::string bytes = encode_npy(m);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u) << "data must start 64-byte aligned";
  const std::string header = bytes.substr(10, header_len);
  EXPECT_TRUE(header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }")) << header;
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_len + 6 * 8);
}

TEST(Npy, FileRoundTrip) {
  TempDir dir;
  ref::Matrix m(5, 2);
  for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = static_cast<double>(i) - 3.5;
  write_npy(dir / "m.npy", m);
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"m.npy"}));
  const NpyMatrix back = read_npy(dir / "m.npy");
  EXPECT_EQ(back.matrix.data, m.data);
}

TEST(Npy, ReadsFloat32Exactly) {
  const std::vector<float> values = {1.5f, -2.0f, 0.1f, 3.0e38f, 1e-45f, -0.0f};
  const NpyMatrix m = parse_npy(npy_f32(2, 3, values), "f.npy");
  EXPECT_EQ(m.dtype, NpyDtype::float32);
  ASSERT_EQ(m.matrix.rows, 2u);
  ASSERT_EQ(m.matrix.cols, 3u);
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::bit_cast<std::uint64_t>(m.matrix.data[i]),
              std::bit_cast<std::uint64_t>(static_cast<double>(values[i])));
  }
}

TEST(Npy, AcceptsHeaderVariants) {
  const std::string data = testing::le_bytes(std::bit_cast<std::uint64_t>(2.0), 8) +
                           testing::le_bytes(std::bit_cast<std::uint64_t>(3.0), 8);
  // Version 2.0 and 3.0 headers (4-byte length).
  EXPECT_EQ(parse_npy(npy_raw(npy_header_dict("<f8", "(1, 2)"), data, 2), "v2").matrix.data,
            (std::vector<double>{2.0, 3.0}));
  EXPECT_EQ(parse_npy(npy_raw(npy_header_dict("<f8", "(2, 1)"), data, 3), "v3").matrix.rows, 2u);
  // Native byte order on a little-endian machine, key order, double quotes,
  // no trailing comma, Python 2 longs, extra spaces.
  if constexpr (std::endian::native == std::endian::little) {
    EXPECT_EQ(parse_npy(npy_raw(npy_header_dict("=f8", "(1, 2)"), data), "native").matrix.cols, 2u);
  }
  EXPECT_EQ(parse_npy(npy_raw("{\"shape\": (2,1), \"fortran_order\": False, \"descr\": \"<f8\"}", data), "dq")
                .matrix.rows,
            2u);
  EXPECT_EQ(parse_npy(npy_raw("  { 'descr' : '<f8' , 'fortran_order' : False , 'shape' : ( 1L , 2L , ) }   ", data),
                      "spaces")
                .matrix.cols,
            2u);
  // An empty matrix is well-formed (the GEMM command rejects it).
  EXPECT_EQ(parse_npy(npy_raw(npy_header_dict("<f8", "(0, 5)"), ""), "empty").matrix.data.size(), 0u);
}

TEST(Npy, RejectsBadMagicAndVersion) {
  expect_rejected("", "empty");
  expect_rejected("\x93NUMP", "bad magic");
  expect_rejected("PK\x03\x04 this is a zip file", "bad magic");
  expect_rejected("\x93NUMPY", "truncated");
  expect_rejected(std::string("\x93NUMPY\x01", 7), "truncated");
  expect_rejected(std::string("\x93NUMPY\x01\x00", 8), "truncated");
  expect_rejected(std::string("\x93NUMPY\x02\x00\x10\x00", 10), "truncated");
  expect_rejected(std::string("\x93NUMPY\x04\x00\x10\x00", 10), "version 4.0");
  expect_rejected(std::string("\x93NUMPY\x01\x01\x10\x00", 10), "version 1.1");
  expect_rejected(std::string("\x93NUMPY\x00\x00\x10\x00", 10), "version 0.0");
}

TEST(Npy, RejectsHeaderLengthBeyondTheFile) {
  std::string bytes = npy_f64(1, 1, {1.0});
  bytes[8] = '\xff';
  bytes[9] = '\xff';
  expect_rejected(bytes, "header length 65535 runs past the end");
  std::string v2 = npy_raw(npy_header_dict("<f8", "(1, 1)"), std::string(8, '\0'), 2);
  v2[11] = '\x7f';
  expect_rejected(v2, "runs past the end");
}

TEST(Npy, RejectsGarbageInTheHeader) {
  const std::string data(16, '\0');
  expect_rejected(npy_raw("", data), "malformed .npy header");
  expect_rejected(npy_raw("garbage", data), "expected '{'");
  expect_rejected(npy_raw(std::string("{\0\xff}", 4), data), "byte \\x00");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), ", data), "malformed");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2)} x", data), "end of the header");
  expect_rejected(npy_raw("{'descr': '<f8, 'fortran_order': False, 'shape': (1, 2)}", data), "',' or '}'");
  expect_rejected(npy_raw("{'descr': '<f8", data), "found byte \\x0a");  // the header's newline
  std::string unterminated = npy_raw("{'descr': '<f8", "");
  unterminated.pop_back();  // no newline: the string runs to the end of the header
  unterminated[8] = static_cast<char>(unterminated[8] - 1);
  expect_rejected(unterminated, "unterminated string");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': Flase, 'shape': (1, 2)}", data), "True or False");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1, -2)}", data), "non-negative");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': [1, 2]}", data), "expected '('");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1 2)}", data), "',' or ')'");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False}", data), "'shape' is missing");
  expect_rejected(npy_raw("{'descr': '<f8', 'shape': (1, 2)}", data), "'fortran_order' is missing");
  expect_rejected(npy_raw("{'fortran_order': False, 'shape': (1, 2)}", data), "'descr' is missing");
  expect_rejected(npy_raw("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1, 2)}", data),
                  "appears twice");
  expect_rejected(npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), 'extra': 1}", data),
                  "unexpected key 'extra'");
  expect_rejected(npy_raw("{'descr': 'a\\'b', 'fortran_order': False, 'shape': (1, 2)}", data), "plain ASCII");
}

TEST(Npy, RejectsShapeOverflowAndSizeMismatch) {
  expect_rejected(npy_raw(npy_header_dict("<f8", "(99999999999999999999999, 1)"), ""), "dimension too large");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(1099511627776, 1099511627776)"), ""), "too large");
  // count fits in 64 bits, count * itemsize does not
  expect_rejected(npy_raw(npy_header_dict("<f8", "(2305843009213693952, 1)"), ""), "too large");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(1000000, 1000000)"), std::string(16, '\0')), "truncated");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(1, 2)"), std::string(15, '\0')),
                  "truncated: shape (1, 2) of float64 needs 16 data bytes, the file holds 15");
  expect_rejected(npy_raw(npy_header_dict("<f4", "(1, 2)"), std::string(9, '\0')), "size mismatch");
}

TEST(Npy, RejectsUnsupportedArrays) {
  const std::string data(16, '\0');
  expect_rejected(npy_raw(npy_header_dict("<i4", "(2, 2)"), data), "dtype '<i4' is not supported");
  expect_rejected(npy_raw(npy_header_dict("<f2", "(2, 4)"), data), "dtype '<f2' is not supported");
  expect_rejected(npy_raw(npy_header_dict("|f8", "(1, 2)"), data), "dtype '|f8' is not supported");
  expect_rejected(npy_raw(npy_header_dict(">f8", "(1, 2)"), data), "big-endian");
  expect_rejected(npy_raw(npy_header_dict("float64", "(1, 2)"), data), "not supported");
  expect_rejected(npy_raw(npy_header_dict("<c16", "(1, 1)"), data), "not supported");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(1, 2)", true), data), "Fortran-order");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(2,)"), data), "array is 1-D with shape (2,)");
  expect_rejected(npy_raw(npy_header_dict("<f8", "()"), std::string(8, '\0')), "array is 0-D");
  expect_rejected(npy_raw(npy_header_dict("<f8", "(1, 1, 2)"), data), "array is 3-D with shape (1, 1, 2)");
}

TEST(Npy, ReadFileErrorsNameThePath) {
  TempDir dir;
  try {
    (void)read_npy(dir / "missing.npy");
    ADD_FAILURE() << "accepted a missing file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.npy: cannot open"), std::string::npos) << e.what();
  }
  try {
    (void)read_npy(dir.path());
    ADD_FAILURE() << "accepted a directory";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

// Every prefix and many single-byte corruptions of a valid file: the parser
// either accepts or throws InputError, never anything else (ASan/UBSan builds
// check it reads nothing out of bounds).
TEST(Npy, NeverCrashesOnCorruptedFiles) {
  const std::string valid = npy_f32(3, 2, {1, 2, 3, 4, 5, 6});
  for (std::size_t n = 0; n < valid.size(); ++n) {
    EXPECT_THROW((void)parse_npy(valid.substr(0, n), "p.npy"), InputError) << "prefix " << n;
  }
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      bytes[rng() % 128 % bytes.size()] = static_cast<char>(rng() & 0xff);
    }
    try {
      const NpyMatrix m = parse_npy(bytes, "p.npy");
      EXPECT_EQ(m.matrix.data.size(), m.matrix.rows * m.matrix.cols);
    } catch (const InputError&) {
    }
  }
}

}  // namespace
}  // namespace accsim::sim
