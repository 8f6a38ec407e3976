// Helpers for the sim tests: scratch directories, hand-made .npy bytes
// (written here, independently of sim/npy.cpp) and running the accsim binary.
#pragma once

#include <sys/wait.h>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace accsim::sim::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temp directory, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "accsim-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] fs::path operator/(const std::string& name) const { return path_ / name; }
  // Names of the entries, hidden ones (temporaries) included.
  [[nodiscard]] std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) names.insert(entry.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A version-1.0 .npy file with the given header dict text and raw data.
inline std::string npy_raw(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict + "\n";
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const int length_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < length_bytes; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

inline std::string le_bytes(std::uint64_t bits, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((bits >> (8 * i)) & 0xff);
  return s;
}

inline std::string npy_header_dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape +
         ", }";
}

// A float64 (or float32) C-order matrix, row-major values.
inline std::string npy_f64(std::size_t rows, std::size_t cols, const std::vector<double>& values) {
  std::string data;
  for (double v : values) data += le_bytes(std::bit_cast<std::uint64_t>(v), 8);
  return npy_raw(npy_header_dict("<f8", "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")"), data);
}
inline std::string npy_f32(std::size_t rows, std::size_t cols, const std::vector<float>& values) {
  std::string data;
  for (float v : values) data += le_bytes(std::bit_cast<std::uint32_t>(v), 4);
  return npy_raw(npy_header_dict("<f4", "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")"), data);
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

// Runs the accsim binary with args in directory cwd; stdout and stderr are
// captured in a directory of their own so cwd's listing stays meaningful.
// `environment` holds NAME=VALUE settings for this run only.
inline RunResult run_accsim(const std::vector<std::string>& args, const fs::path& cwd,
                            const std::vector<std::string>& environment = {}) {
  TempDir streams;
  std::string command = "cd " + shell_quote(cwd.string()) + " && env";
  for (const auto& setting : environment) command += " " + shell_quote(setting);
  command += " " + shell_quote(ACCSIM_BIN);
  for (const auto& a : args) command += " " + shell_quote(a);
  command += " >" + shell_quote((streams / "out").string()) + " 2>" + shell_quote((streams / "err").string());
  const int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_bytes(streams / "out");
  r.err = read_bytes(streams / "err");
  return r;
}

}  // namespace accsim::sim::testing
