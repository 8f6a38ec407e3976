// The .npy reader, as a matrix and as an N-D array, on arbitrary bytes: every input either parses or throws
// InputError; anything else (a crash, a sanitizer report, another exception)
// is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/errors.hpp"
#include "sim/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)accsim::sim::parse_npy(bytes, "fuzz.npy");
  } catch (const accsim::sim::InputError&) {
  }
  try {
    const accsim::sim::NpyArray a = accsim::sim::parse_npy_array(bytes, "fuzz.npy");
    if (a.type == accsim::sim::NpyType::float32) (void)a.floats("fuzz.npy");
    if (a.type == accsim::sim::NpyType::int64 || a.type == accsim::sim::NpyType::int32) (void)a.int64s("fuzz.npy");
  } catch (const accsim::sim::InputError&) {
  }
  return 0;
}
