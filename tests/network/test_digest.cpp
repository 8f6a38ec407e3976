// SHA-256 against FIPS 180-2's published examples and against coreutils'
// sha256sum (an independent implementation) on lengths around every padding
// boundary, and the trace hash's sensitivity to the data it names.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "sim/errors.hpp"
#include "sim/network/digest.hpp"
#include "sim/network/trace.hpp"

namespace accsim::net {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const char* tag) {
  fs::path dir = fs::temp_directory_path() / (std::string("accsim_") + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string coreutils_sha256(const fs::path& file) {
  const std::string command = "sha256sum '" + file.string() + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[128] = {};
  const std::size_t got = std::fread(buffer, 1, 64, pipe);
  pclose(pipe);
  return std::string(buffer, got);
}

TEST(Digest, FipsExamples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Digest, AgreesWithSha256sumAcrossBlockBoundaries) {
  if (std::system("sha256sum --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "sha256sum not installed";
  const fs::path dir = temp_dir("digest");
  std::mt19937 rng(20261204);
  const std::size_t lengths[] = {1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, (1u << 20) + 3};
  for (std::size_t n : lengths) {
    std::string data(n, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    const fs::path file = dir / ("data" + std::to_string(n));
    std::ofstream(file, std::ios::binary).write(data.data(), static_cast<std::streamsize>(n));
    const std::string want = coreutils_sha256(file);
    EXPECT_EQ(sha256_file(file), want) << n << " bytes";
    // Fed in uneven pieces, the incremental hash gives the same digest.
    Sha256 h;
    for (std::size_t at = 0; at < n;) {
      const std::size_t piece = std::min<std::size_t>(1 + rng() % 97, n - at);
      h.update(std::string_view(data).substr(at, piece));
      at += piece;
    }
    EXPECT_EQ(h.hex(), want) << n << " bytes in pieces";
  }
  fs::remove_all(dir);
}

TEST(Digest, MissingFileIsAnInputError) {
  EXPECT_THROW((void)sha256_file("/nonexistent/accsim/file.bin"), sim::InputError);
}

TEST(Digest, TraceHashFollowsTheDataNotThePath) {
  const fs::path shipped = fs::path(ACCSIM_TRACES_DIR) / "fmnist_cnn";
  const fs::path dir = temp_dir("digest_trace");
  const fs::path copy = dir / "copy";
  fs::copy(shipped, copy, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string original = trace_content_hash(load_trace(shipped, 4));
  EXPECT_EQ(original.rfind("sha256:", 0), 0u);
  EXPECT_EQ(original.size(), 7u + 64u);
  // Another folder, fewer samples loaded: the same data, the same identity.
  EXPECT_EQ(trace_content_hash(load_trace(copy, 1)), original);
  // The last bit of the last sample's last pixel changed: another trace.
  {
    std::fstream inputs(copy / "inputs.npy", std::ios::binary | std::ios::in | std::ios::out);
    inputs.seekg(-4, std::ios::end);  // the low mantissa byte of the last float32
    char byte = 0;
    inputs.read(&byte, 1);
    inputs.seekp(-4, std::ios::end);
    byte = static_cast<char>(byte ^ 1);
    inputs.write(&byte, 1);
  }
  EXPECT_NE(trace_content_hash(load_trace(copy, 1)), original);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace accsim::net
