#include "sim/npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "sim/errors.hpp"
#include "sim/output_file.hpp"

namespace accsim::sim {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::size_t kMaxDims = 32;  // NumPy's own limit (NPY_MAXDIMS)

[[noreturn]] void fail(std::string_view name, std::string_view problem) { throw InputError(name, problem); }

std::uint64_t load_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A character of a header for an error message: printable, or \xNN.
std::string describe(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte \\x") + kHex[u >> 4] + kHex[u & 15];
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f8', 'fortran_order': False, 'shape': (64, 256), }
// NumPy reads it with ast.literal_eval; this accepts the subset NumPy writes
// (string keys; string, bool and int-tuple values) and rejects all else.
struct Header {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<std::int64_t>> shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  Header parse() {
    Header h;
    skip_space();
    expect('{');
    skip_space();
    while (!at('}')) {
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (h.descr) bad("key 'descr' appears twice");
        h.descr = parse_string();
      } else if (key == "fortran_order") {
        if (h.fortran_order) bad("key 'fortran_order' appears twice");
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (h.shape) bad("key 'shape' appears twice");
        h.shape = parse_tuple();
      } else {
        bad("unexpected key '" + key + "' (a .npy header has descr, fortran_order and shape)");
      }
      skip_space();
      if (at(',')) {
        ++pos_;
        skip_space();
      } else if (!at('}')) {
        bad_char("',' or '}'");
      }
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size()) bad_char("the end of the header");
    if (!h.descr) bad("key 'descr' is missing");
    if (!h.fortran_order) bad("key 'fortran_order' is missing");
    if (!h.shape) bad("key 'shape' is missing");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const { fail(name_, "malformed .npy header: " + what); }
  [[noreturn]] void bad_char(std::string_view wanted) const {
    if (pos_ >= text_.size()) bad("ends where " + std::string(wanted) + " was expected");
    bad("expected " + std::string(wanted) + " at header offset " + std::to_string(pos_) + ", found " +
        describe(text_[pos_]));
  }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void expect(char c) {
    if (!at(c)) bad_char(std::string("'") + c + "'");
    ++pos_;
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  std::string parse_string() {
    if (!at('\'') && !at('"')) bad_char("a quoted string");
    const char quote = text_[pos_++];
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      const auto u = static_cast<unsigned char>(text_[pos_]);
      if (text_[pos_] == '\\' || u < 0x20 || u >= 0x7f) bad_char("a plain ASCII string character");
      ++pos_;
    }
    if (pos_ >= text_.size()) bad("unterminated string");
    std::string s(text_.substr(start, pos_ - start));
    ++pos_;
    return s;
  }
  bool parse_bool() {
    if (text_.substr(pos_).starts_with("True")) {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_).starts_with("False")) {
      pos_ += 5;
      return false;
    }
    bad_char("True or False");
  }
  std::int64_t parse_int() {
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') bad_char("a non-negative integer");
    std::int64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::int64_t>(text_[pos_] - '0');
      if (v > (INT64_MAX - digit) / 10) bad("shape dimension too large");
      v = v * 10 + digit;
      ++pos_;
    }
    if (at('L')) ++pos_;  // Python 2 long literal, written by old NumPy
    return v;
  }
  std::vector<std::int64_t> parse_tuple() {
    expect('(');
    skip_space();
    std::vector<std::int64_t> dims;
    while (!at(')')) {
      if (dims.size() == kMaxDims) bad("shape has more than 32 dimensions");
      dims.push_back(parse_int());
      skip_space();
      if (at(',')) {
        ++pos_;
        skip_space();
      } else if (!at(')')) {
        bad_char("',' or ')' in the shape");
      }
    }
    ++pos_;
    return dims;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

// A matrix is float32 or float64 only, with messages that say so; an array
// may also hold integers (a trace's labels).
enum class Want { matrix, array };

NpyType parse_dtype(const std::string& descr, std::string_view name, Want want) {
  // '=' is native order, unambiguous only because we check what native is;
  // '|' ("not applicable") is meaningless for multi-byte types, so rejected.
  constexpr bool kLittle = std::endian::native == std::endian::little;
  if (descr.size() == 3 && (descr[0] == '<' || (descr[0] == '=' && kLittle))) {
    const std::string_view t = std::string_view(descr).substr(1);
    if (t == "f4") return NpyType::float32;
    if (t == "f8") return NpyType::float64;
    if (want == Want::array && t == "i8") return NpyType::int64;
    if (want == Want::array && t == "i4") return NpyType::int32;
  }
  if (want == Want::array) {
    fail(name, "dtype '" + descr + "' is not supported (little-endian float32, float64, int64 or int32)");
  }
  if (descr == ">f4" || descr == ">f8") {
    fail(name, "dtype '" + descr + "' is big-endian; save it little-endian (a.astype('<f8'))");
  }
  fail(name, "dtype '" + descr + "' is not supported; accsim reads float32 ('<f4') or float64 ('<f8')");
}

std::size_t item_size(NpyType t) { return (t == NpyType::float32 || t == NpyType::int32) ? 4 : 8; }

NpyArray parse(std::string_view bytes, std::string_view name, Want want) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    fail(name, bytes.empty() ? "file is empty, not a .npy file" : "not a .npy file (bad magic string)");
  }
  if (bytes.size() < 8) fail(name, "truncated .npy file (no version)");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3) {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (1.0, 2.0 and 3.0 are supported)");
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = 8 + length_bytes;
  if (bytes.size() < prefix) fail(name, "truncated .npy file (no header length)");
  const std::uint64_t header_len = load_le(bytes.data() + 8, static_cast<int>(length_bytes));
  if (header_len > bytes.size() - prefix) {
    fail(name, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(bytes.size()) + " bytes)");
  }
  const Header header = HeaderParser(bytes.substr(prefix, header_len), name).parse();

  NpyArray a;
  a.type = parse_dtype(*header.descr, name, want);
  if (*header.fortran_order) {
    fail(name, "Fortran-order arrays are not supported; save np.ascontiguousarray(a) instead");
  }
  a.shape = *header.shape;
  if (want == Want::matrix && a.shape.size() != 2) {
    fail(name, "array is " + std::to_string(a.shape.size()) + "-D with shape " + npy_shape_text(a.shape) +
                   "; accsim needs a 2-D matrix");
  }
  std::uint64_t count = 1;
  for (std::int64_t dim : a.shape) {
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(dim), &count)) {
      fail(name, "shape " + npy_shape_text(a.shape) + " is too large");
    }
  }
  std::uint64_t need = 0;
  if (__builtin_mul_overflow(count, item_size(a.type), &need)) {
    fail(name, "shape " + npy_shape_text(a.shape) + " is too large");
  }
  const std::uint64_t have = bytes.size() - prefix - header_len;
  if (need != have) {
    fail(name, std::string(need > have ? "truncated: " : "size mismatch: ") + "shape " + npy_shape_text(a.shape) +
                   " of " + std::string(to_string(a.type)) + " needs " + std::to_string(need) +
                   " data bytes, the file holds " + std::to_string(have));
  }
  a.data.assign(bytes.substr(prefix + header_len));
  return a;
}

std::string read_bytes(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(name, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) fail(name, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(name, "is a directory, not a .npy file");
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(name, std::string("cannot read: ") + std::strerror(errno));
    }
    bytes.append(buffer, static_cast<std::size_t>(got));
  }
  return bytes;
}

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
  if (type != NpyType::float32) {
    fail(name, "dtype is " + std::string(to_string(type)) + "; a trace stores float32 here");
  }
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
    fail(name, "dtype is " + std::string(to_string(type)) + "; a trace stores int64 here");
  }
  return out;
}

NpyArray parse_npy_array(std::string_view bytes, std::string_view name) { return parse(bytes, name, Want::array); }

NpyArray read_npy_array(const std::filesystem::path& path) {
  return parse_npy_array(read_bytes(path), path.string());
}

NpyMatrix parse_npy(std::string_view bytes, std::string_view name) {
  const NpyArray a = parse(bytes, name, Want::matrix);
  NpyMatrix out;
  out.dtype = a.type;
  out.matrix.rows = static_cast<std::size_t>(a.shape[0]);
  out.matrix.cols = static_cast<std::size_t>(a.shape[1]);
  out.matrix.data.resize(a.size());
  const char* p = a.data.data();
  for (std::size_t i = 0; i < out.matrix.data.size(); ++i) {
    if (a.type == NpyType::float64) {
      out.matrix.data[i] = std::bit_cast<double>(load_le(p + 8 * i, 8));
    } else {
      out.matrix.data[i] = std::bit_cast<float>(static_cast<std::uint32_t>(load_le(p + 4 * i, 4)));
    }
  }
  return out;
}

NpyMatrix read_npy(const std::filesystem::path& path) { return parse_npy(read_bytes(path), path.string()); }

std::string encode_npy(const ref::Matrix& m) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(m.rows) + ", " +
                     std::to_string(m.cols) + "), }";
  // Pad with spaces and a final newline so the data starts 64-byte aligned,
  // as NumPy does.
  const bool v1 = dict.size() + 1 + 10 <= 0xffff;
  const std::size_t prefix = v1 ? 10 : 12;
  const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';

  std::string out(kMagic);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((dict.size() >> (8 * i)) & 0xff);
  out += dict;
  out.reserve(out.size() + 8 * m.data.size());
  for (double v : m.data) {
    const auto u = std::bit_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) out += static_cast<char>((u >> (8 * i)) & 0xff);
  }
  return out;
}

void write_npy(const std::filesystem::path& path, const ref::Matrix& m) { write_file_atomically(path, encode_npy(m)); }

}  // namespace accsim::sim
