// sim/output_file: outputs appear whole or not at all.
#include "sim/output_file.hpp"

#include <gtest/gtest.h>

#include "sim/errors.hpp"
#include "test_util.hpp"

namespace accsim::sim {
namespace {

using testing::read_bytes;
using testing::TempDir;

TEST(OutputFile, WritesAndLeavesNoTemporary) {
  TempDir dir;
  write_file_atomically(dir / "a.txt", "hello");
  EXPECT_EQ(read_bytes(dir / "a.txt"), "hello");
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"a.txt"}));
}

TEST(OutputFile, ReplacesAnExistingFile) {
  TempDir dir;
  testing::write_bytes(dir / "a.txt", "old contents, longer than the new");
  write_file_atomically(dir / "a.txt", "new");
  EXPECT_EQ(read_bytes(dir / "a.txt"), "new");
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"a.txt"}));
}

TEST(OutputFile, UncommittedStageLeavesNothing) {
  TempDir dir;
  testing::write_bytes(dir / "keep.txt", "old");
  {
    StagedFile staged(dir / "new.txt", "data");
    StagedFile over(dir / "keep.txt", "replacement");
    EXPECT_EQ(dir.listing().size(), 3u) << "the temporaries exist while staged";
  }
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"keep.txt"}));
  EXPECT_EQ(read_bytes(dir / "keep.txt"), "old");
}

TEST(OutputFile, MissingDirectoryIsAnInputError) {
  TempDir dir;
  try {
    write_file_atomically(dir / "no" / "such" / "c.npy", "x");
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("c.npy: directory"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.listing().empty());
}

TEST(OutputFile, DirectoryTargetIsAnInputError) {
  TempDir dir;
  std::filesystem::create_directory(dir / "sub");
  EXPECT_THROW(write_file_atomically(dir / "sub", "x"), InputError);
  EXPECT_THROW(write_file_atomically(dir.path() / "", "x"), InputError);
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"sub"}));
}

}  // namespace
}  // namespace accsim::sim
