#include "sim/output_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "sim/errors.hpp"

namespace accsim::sim {
namespace {

std::filesystem::path directory_of(const std::filesystem::path& target) {
  const std::filesystem::path dir = target.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

[[noreturn]] void fail_errno(const std::filesystem::path& target, std::string_view what, int error) {
  throw InputError(target.string(), std::string(what) + ": " + std::strerror(error));
}

}  // namespace

void check_writable_target(const std::filesystem::path& target) {
  if (target.empty()) throw InputError("output", "empty file name");
  if (!target.has_filename()) throw InputError(target.string(), "names a directory, not a file");
  std::error_code ec;
  if (std::filesystem::is_directory(target, ec)) throw InputError(target.string(), "is a directory");
  const std::filesystem::path dir = directory_of(target);
  if (!std::filesystem::is_directory(dir, ec)) {
    throw InputError(target.string(), "directory '" + dir.string() + "' does not exist");
  }
  if (::access(dir.c_str(), W_OK) != 0) fail_errno(target, "cannot write to its directory", errno);
}

StagedFile::StagedFile(std::filesystem::path target, std::string_view contents) : target_(std::move(target)) {
  check_writable_target(target_);
  static std::atomic<unsigned> counter{0};
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp_ = directory_of(target_) / ("." + target_.filename().string() + ".tmp." + std::to_string(::getpid()) +
                                     "." + std::to_string(counter++));
    // 0666 filtered by the umask, like any file the user creates.
    fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) {
      const int error = errno;
      temp_.clear();
      fail_errno(target_, "cannot create a file next to it", error);
    }
  }
  if (fd < 0) {
    temp_.clear();
    throw InputError(target_.string(), "cannot create a temporary file next to it");
  }
  const char* p = contents.data();
  std::size_t left = contents.size();
  int error = 0;
  while (left > 0) {
    const ssize_t wrote = ::write(fd, p, left);
    if (wrote < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    p += wrote;
    left -= static_cast<std::size_t>(wrote);
  }
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(temp_.c_str());
    temp_.clear();
    fail_errno(target_, "cannot write", error);
  }
}

StagedFile::StagedFile(StagedFile&& other) noexcept
    : target_(std::move(other.target_)), temp_(std::exchange(other.temp_, {})) {}

StagedFile::~StagedFile() {
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void StagedFile::commit() {
  if (temp_.empty()) return;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp_.c_str());
    temp_.clear();
    fail_errno(target_, "cannot replace", error);
  }
  temp_.clear();
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents) {
  StagedFile file(target, contents);
  file.commit();
}

}  // namespace accsim::sim
