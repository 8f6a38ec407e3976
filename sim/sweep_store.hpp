// A sweep folder (docs/sweep.md): points.jsonl, the log every finished point
// is appended to as one whole line (one write, then fsync), and, when the
// sweep ends, points.jsonl rewritten sorted by key with the Pareto flags and
// points.csv beside it, both byte-identical whatever the thread count, the
// finish order, or how many machines (shards) ran the points.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace accsim::sim {

using PointRecords = std::map<std::string, nlohmann::ordered_json>;  // by key

struct LogRead {
  PointRecords records;        // the last record of each key
  std::size_t torn_bytes = 0;  // bytes of an incomplete last line (a run killed mid-write)
};

// Reads DIR/points.jsonl (absent: nothing). An incomplete or unparsable last
// line is a run killed while writing it: it is counted in torn_bytes and
// left out; with `repair` the file is cut back to the last whole line. A bad
// line anywhere else is an InputError naming the file and line.
[[nodiscard]] LogRead read_point_log(const std::filesystem::path& dir, bool repair);

// Appends records to DIR/points.jsonl, each one write(2) of a whole line and
// an fsync, from any thread.
class PointLog {
 public:
  explicit PointLog(const std::filesystem::path& dir);
  ~PointLog();
  PointLog(const PointLog&) = delete;
  PointLog& operator=(const PointLog&) = delete;
  void append(const nlohmann::ordered_json& record);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mutex_;
};

// Fills in every record's "pareto" ({"area": bool, "energy": bool}: on the
// top-1-versus-array-area and top-1-versus-energy fronts among the ok points
// of the same trace and sample count), then writes DIR/points.jsonl (sorted
// by key) and DIR/points.csv, each to a temporary renamed into place.
void write_final(const std::filesystem::path& dir, PointRecords& records);

// The line a record is written as (without the newline).
[[nodiscard]] std::string record_line(const nlohmann::ordered_json& record);

}  // namespace accsim::sim
