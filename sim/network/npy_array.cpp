#include "sim/network/npy_array.hpp"

#include <bit>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "sim/errors.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {
namespace {

using sim::InputError;

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::size_t kMaxDims = 32;
static_assert(std::endian::native == std::endian::little, ".npy data is read as little-endian");

[[noreturn]] void fail(std::string_view name, std::string_view problem) { throw InputError(name, problem); }

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2000, 1, 28, 28), }:
// string keys, and string, bool or tuple-of-int values, as NumPy writes it.
class Header {
 public:
  Header(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;

  void parse() {
    bool have_descr = false, have_order = false, have_shape = false;
    space();
    expect('{');
    space();
    while (!at('}')) {
      const std::string key = string();
      space();
      expect(':');
      space();
      if (key == "descr") {
        if (have_descr) bad("key 'descr' appears twice");
        descr = string();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) bad("key 'fortran_order' appears twice");
        fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) bad("key 'shape' appears twice");
        tuple();
        have_shape = true;
      } else {
        bad("unexpected key '" + key + "'");
      }
      space();
      if (at(',')) {
        ++pos_;
        space();
      } else if (!at('}')) {
        bad("expected ',' or '}' at header offset " + std::to_string(pos_));
      }
    }
    ++pos_;
    space();
    if (pos_ != text_.size()) bad("unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape) bad("descr, fortran_order or shape is missing");
  }

 private:
  [[noreturn]] void bad(const std::string& what) const { fail(name_, "malformed .npy header: " + what); }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void expect(char c) {
    if (!at(c)) bad(std::string("expected '") + c + "' at header offset " + std::to_string(pos_));
    ++pos_;
  }
  void space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }
  std::string string() {
    if (!at('\'') && !at('"')) bad("expected a quoted string at header offset " + std::to_string(pos_));
    const char quote = text_[pos_++];
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      const auto u = static_cast<unsigned char>(text_[pos_]);
      if (u == '\\' || u < 0x20 || u >= 0x7f) bad("unexpected character in a string");
      ++pos_;
    }
    if (pos_ >= text_.size()) bad("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }
  bool boolean() {
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (text_.substr(pos_).starts_with(word)) {
        pos_ += word.size();
        return value;
      }
    }
    bad("expected True or False at header offset " + std::to_string(pos_));
  }
  void tuple() {
    expect('(');
    space();
    while (!at(')')) {
      if (shape.size() == kMaxDims) bad("more than 32 dimensions");
      if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') bad("expected a dimension at header offset " + std::to_string(pos_));
      std::int64_t v = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        if (v > (INT64_MAX - 9) / 10) bad("dimension too large");
        v = v * 10 + (text_[pos_++] - '0');
      }
      if (at('L')) ++pos_;
      shape.push_back(v);
      space();
      if (at(',')) {
        ++pos_;
        space();
      } else if (!at(')')) {
        bad("expected ',' or ')' in the shape");
      }
    }
    ++pos_;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

std::size_t item_size(NpyType t) { return (t == NpyType::float32 || t == NpyType::int32) ? 4 : 8; }

}  // namespace

std::string_view to_string(NpyType type) {
  switch (type) {
    case NpyType::float32: return "float32";
    case NpyType::float64: return "float64";
    case NpyType::int64: return "int64";
    case NpyType::int32: return "int32";
  }
  return "?";
}

std::string npy_shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::size_t NpyArray::size() const { return data.size() / item_size(type); }

std::vector<float> NpyArray::floats(std::string_view name) const {
  if (type != NpyType::float32) fail(name, fmt::format("dtype is {}; a trace stores float32 here", to_string(type)));
  std::vector<float> out(size());
  if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());  // never memcpy from null, even 0 bytes
  return out;
}

std::vector<std::int64_t> NpyArray::int64s(std::string_view name) const {
  std::vector<std::int64_t> out(size());
  if (type == NpyType::int64) {
    if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
  } else if (type == NpyType::int32) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::int32_t v;
      std::memcpy(&v, data.data() + 4 * i, 4);
      out[i] = v;
    }
  } else {
    fail(name, fmt::format("dtype is {}; a trace stores int64 here", to_string(type)));
  }
  return out;
}

NpyArray parse_npy_array(std::string_view bytes, std::string_view name) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    fail(name, bytes.empty() ? "file is empty, not a .npy file" : "not a .npy file (bad magic string)");
  }
  if (bytes.size() < 8) fail(name, "truncated .npy file (no version)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3) {
    fail(name, fmt::format("unsupported .npy format version {}.{} (1.0, 2.0 and 3.0 are supported)", major, minor));
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = 8 + length_bytes;
  if (bytes.size() < prefix) fail(name, "truncated .npy file (no header length)");
  std::uint64_t header_len = 0;
  for (std::size_t i = length_bytes; i-- > 0;) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
  if (header_len > bytes.size() - prefix) fail(name, "truncated .npy file (the header runs past the end)");
  Header h(bytes.substr(prefix, header_len), name);
  h.parse();

  NpyArray a;
  const std::string& d = h.descr;
  const bool little = d.size() == 3 && (d[0] == '<' || d[0] == '=');
  if (little && d.substr(1) == "f4") {
    a.type = NpyType::float32;
  } else if (little && d.substr(1) == "f8") {
    a.type = NpyType::float64;
  } else if (little && d.substr(1) == "i8") {
    a.type = NpyType::int64;
  } else if (little && d.substr(1) == "i4") {
    a.type = NpyType::int32;
  } else {
    fail(name, fmt::format("dtype '{}' is not supported (little-endian float32, float64, int64 or int32)", d));
  }
  if (h.fortran_order) fail(name, "Fortran-order arrays are not supported; save np.ascontiguousarray(a)");
  a.shape = h.shape;
  std::uint64_t count = 1;
  for (std::int64_t dim : a.shape) {
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(dim), &count)) fail(name, "shape is too large");
  }
  std::uint64_t need = 0;
  if (__builtin_mul_overflow(count, item_size(a.type), &need)) fail(name, "shape is too large");
  const std::uint64_t have = bytes.size() - prefix - header_len;
  if (need != have) {
    fail(name, fmt::format("{}shape {} of {} needs {} data bytes, the file holds {}", need > have ? "truncated: " : "size mismatch: ",
                           npy_shape_text(a.shape), to_string(a.type), need, have));
  }
  a.data.assign(bytes.substr(prefix + header_len));
  return a;
}

NpyArray read_npy_array(const std::filesystem::path& path) {
  return parse_npy_array(read_file_bytes(path), path.string());
}

}  // namespace accsim::net
