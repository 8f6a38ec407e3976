// Content digests: SHA-256 (FIPS 180-4) of bytes and files, and the identity
// of a trace. Sweeps key their points by it and `accsim check` refuses a
// baseline from another trace by it, so it depends on the data that decides
// every result, never on paths or timestamps.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace accsim::net {

struct Trace;

// Incremental SHA-256: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::byte> bytes);
  void update(std::string_view text) { update(std::as_bytes(std::span(text.data(), text.size()))); }
  // The digest as 64 lowercase hex digits. Finishes the hash: call it once.
  [[nodiscard]] std::string hex();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> block_{};
  std::size_t block_used_ = 0;
  std::uint64_t total_bytes_ = 0;
};

[[nodiscard]] std::string sha256_hex(std::string_view text);
// Throws sim::InputError naming the file when it cannot be read.
[[nodiscard]] std::string sha256_file(const std::filesystem::path& path);

// "sha256:<hex>" over the trace's model, inputs, labels and golden logits
// (each file's role, size and SHA-256, in that order): every sample the
// files hold, whatever `samples` was loaded. trace.json's descriptive text
// is not part of it.
[[nodiscard]] std::string trace_content_hash(const Trace& trace);

}  // namespace accsim::net
