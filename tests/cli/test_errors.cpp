// guarded(): the one way every subcommand turns an escaped exception into a
// message and an exit code.
#include <gtest/gtest.h>

#include <new>
#include <sstream>
#include <stdexcept>

#include "models/cost/cost.hpp"
#include "sim/errors.hpp"

namespace accsim::sim {
namespace {

TEST(Guarded, PassesTheBodysExitCode) {
  std::ostringstream err;
  EXPECT_EQ(guarded(err, [] { return 0; }), 0);
  EXPECT_EQ(guarded(err, [] { return 1; }), 1);
  EXPECT_EQ(err.str(), "");
}

TEST(Guarded, UserErrorsAreOneLineAndExit2) {
  std::ostringstream err;
  bool cleared = false;
  EXPECT_EQ(guarded(err, []() -> int { throw InputError("a.npy", "bad\nline"); }, [&] { cleared = true; }), 2);
  EXPECT_TRUE(cleared);
  EXPECT_EQ(err.str(), "accsim: error: a.npy: bad?line\n");
  err.str("");
  EXPECT_EQ(guarded(err, []() -> int { throw cost::CostError("--acc", "no such unit"); }), 2);
  EXPECT_EQ(err.str().rfind("accsim: error: --acc", 0), 0u) << err.str();
}

TEST(Guarded, OtherExceptionsAreInternalErrorsExit1) {
  std::ostringstream err;
  EXPECT_EQ(guarded(err, []() -> int { throw std::logic_error("broken invariant"); }), 1);
  EXPECT_EQ(err.str(), "accsim: internal error: broken invariant\n");
  err.str("");
  EXPECT_EQ(guarded(err, []() -> int { throw std::bad_alloc(); }), 1);
  EXPECT_EQ(err.str(), "accsim: error: out of memory\n");
}

}  // namespace
}  // namespace accsim::sim
