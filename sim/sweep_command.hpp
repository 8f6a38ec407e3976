// `accsim sweep` and `accsim sweep-merge` (docs/sweep.md): design-space
// sweeps from a YAML spec, resumable, shardable across machines.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace accsim::sim {

struct SweepOptions {
  std::string spec_path;
  std::string out_dir;  // required unless dry_run
  unsigned threads = 0;  // 0: every hardware thread
  bool dry_run = false;  // print the points and their count, run nothing
  std::string shard;     // "I/N" (0 <= I < N): this machine's share; empty: every point
  bool quiet = false;    // nothing on the terminal but errors (the log file in DIR keeps everything)
  std::string log_level = "info";
};

struct SweepMergeOptions {
  std::vector<std::string> dirs;
  std::string out_dir;
  bool quiet = false;
  std::string log_level = "info";
};

CLI::App* setup_sweep(CLI::App& parent, SweepOptions& options);
CLI::App* setup_sweep_merge(CLI::App& parent, SweepMergeOptions& options);

// Exit codes: 0 every point ok; 1 some points failed (each recorded with its
// reason) or an internal error; 2 a user error (the spec, a flag, DIR).
int run_sweep(const SweepOptions& options, std::ostream& out, std::ostream& err);
int run_sweep(const SweepOptions& options);
int run_sweep_merge(const SweepMergeOptions& options, std::ostream& out, std::ostream& err);
int run_sweep_merge(const SweepMergeOptions& options);

}  // namespace accsim::sim
