// Output files that appear whole or not at all. Contents go to a temporary
// file in the target's directory (so the final rename stays on one file
// system and is atomic); commit() renames it over the target, and a
// StagedFile destroyed without commit() removes its temporary. A run that
// fails therefore leaves no partial --out or --report behind.
#pragma once

#include <filesystem>
#include <string_view>

namespace accsim::sim {

class StagedFile {
 public:
  // Writes contents to a temporary next to target; throws InputError naming
  // target when the directory is missing or not writable, or the disk is full.
  StagedFile(std::filesystem::path target, std::string_view contents);
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  StagedFile(StagedFile&& other) noexcept;
  StagedFile& operator=(StagedFile&&) = delete;
  ~StagedFile();

  void commit();  // throws InputError; the temporary is gone either way
  [[nodiscard]] const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;  // empty once committed or moved from
};

// StagedFile(target, contents).commit().
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

// Throws InputError naming target when it could obviously not be written
// (its directory is missing, or it is a directory): lets a command fail
// before doing the work rather than after.
void check_writable_target(const std::filesystem::path& target);

}  // namespace accsim::sim
