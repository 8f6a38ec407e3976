#include "sim/sweep_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "sim/errors.hpp"
#include "sim/output_file.hpp"

namespace accsim::sim {
namespace {

using nlohmann::ordered_json;

constexpr const char* kLogName = "points.jsonl";
constexpr const char* kCsvName = "points.csv";

bool is_record(const ordered_json& j) {
  return j.is_object() && j.contains("key") && j["key"].is_string() && j.contains("status") && j.contains("config");
}

// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string csv_value(const ordered_json& j) {
  if (j.is_null()) return "";
  if (j.is_string()) return csv_field(j.get<std::string>());
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number()) return j.dump();
  return csv_field(j.dump());  // overrides: a JSON list in one cell
}

const ordered_json& at(const ordered_json& j, std::initializer_list<const char*> path) {
  static const ordered_json null;
  const ordered_json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return null;
    p = &(*p)[k];
  }
  return *p;
}

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

// Pareto flags: on the front when no other ok point of the same trace and
// sample count has a top-1 at least as high at a cost at most as low, one of
// them strictly.
void mark_fronts(PointRecords& records, const char* flag, const char* cost_key, const char* cost_sub) {
  std::vector<ordered_json*> ok;
  for (auto& [key, r] : records) {
    if (r["status"] == "ok") ok.push_back(&r);
  }
  for (ordered_json* p : ok) {
    const ordered_json& pc = cost_sub ? at(*p, {cost_key, cost_sub}) : at(*p, {cost_key});
    bool front = pc.is_number() && (*p)["top1"].is_number();
    for (ordered_json* q : ok) {
      if (!front) break;
      if (q == p || at(*q, {"trace", "hash"}) != at(*p, {"trace", "hash"}) || (*q)["samples"] != (*p)["samples"]) continue;
      const ordered_json& qc = cost_sub ? at(*q, {cost_key, cost_sub}) : at(*q, {cost_key});
      if (!qc.is_number() || !(*q)["top1"].is_number()) continue;
      const double pa = (*p)["top1"].get<double>(), qa = (*q)["top1"].get<double>();
      const double pk = pc.get<double>(), qk = qc.get<double>();
      if (qa >= pa && qk <= pk && (qa > pa || qk < pk)) front = false;
    }
    (*p)["pareto"][flag] = front;
  }
}

}  // namespace

std::string record_line(const ordered_json& record) {
  return record.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

LogRead read_point_log(const std::filesystem::path& dir, bool repair) {
  LogRead out;
  const std::filesystem::path path = dir / kLogName;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return out;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open the point log");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  std::size_t pos = 0, line_no = 0, good_end = 0;
  std::vector<std::pair<std::size_t, std::string>> bad;  // line number, problem
  while (pos < text.size()) {
    ++line_no;
    const std::size_t nl = text.find('\n', pos);
    const bool whole = nl != std::string::npos;
    const std::string line = text.substr(pos, whole ? nl - pos : std::string::npos);
    const std::size_t next = whole ? nl + 1 : text.size();
    ordered_json j = ordered_json::parse(line, nullptr, false);
    if (!whole || j.is_discarded() || !is_record(j)) {
      bad.emplace_back(line_no, !whole ? "an incomplete line" : "not a point record");
    } else {
      if (!bad.empty()) {
        throw InputError(fmt::format("{}:{}", path.string(), bad.front().first),
                         bad.front().second + " before the end of the log; remove the line or the folder");
      }
      std::string key = j["key"].get<std::string>();
      out.records[key] = std::move(j);
      good_end = next;
    }
    pos = next;
  }
  out.torn_bytes = text.size() - good_end;
  if (repair && out.torn_bytes > 0) {
    if (::truncate(path.c_str(), static_cast<off_t>(good_end)) != 0) {
      throw InputError(path.string(), std::string("cannot cut off a torn last line: ") + std::strerror(errno));
    }
  }
  return out;
}

PointLog::PointLog(const std::filesystem::path& dir) : path_(dir / kLogName) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(path_.string(), std::string("cannot open for appending: ") + std::strerror(errno));
  sync_directory(dir);
}

PointLog::~PointLog() {
  if (fd_ >= 0) ::close(fd_);
}

void PointLog::append(const ordered_json& record) {
  const std::string line = record_line(record) + "\n";
  std::lock_guard lock(mutex_);
  // One write of the whole line: a kill leaves the line whole or absent, or,
  // at worst, a torn tail that the next run cuts off.
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    throw InputError(path_.string(), n < 0 ? std::string("cannot append: ") + std::strerror(errno)
                                           : std::string("short write (disk full?)"));
  }
  if (::fsync(fd_) != 0) throw InputError(path_.string(), std::string("fsync failed: ") + std::strerror(errno));
}

void write_final(const std::filesystem::path& dir, PointRecords& records) {
  for (auto& [key, r] : records) r["pareto"] = {{"area", false}, {"energy", false}};
  mark_fronts(records, "area", "area_um2", "array");
  mark_fronts(records, "energy", "energy_uj_per_inference", nullptr);

  std::string jsonl;
  for (const auto& [key, r] : records) jsonl += record_line(r) + "\n";

  // CSV: fixed columns, then every layer's rates (layers in the order they
  // first appear, by key).
  std::vector<std::string> layer_names;
  std::set<std::string> seen;
  for (const auto& [key, r] : records) {
    if (!r.contains("layers") || !r["layers"].is_array()) continue;
    for (const auto& l : r["layers"]) {
      const std::string name = l.value("name", "");
      if (seen.insert(name).second) layer_names.push_back(name);
    }
  }
  static const char* kRates[] = {"overflow", "underflow", "swamp", "product_underflow"};
  std::string csv =
      "key,status,error,trace,trace_hash,samples,mul,prod,acc,order,scale,overrides,array,dataflow,node,ibuf,wbuf,obuf,"
      "energy_samples,top1,top1_fp32,agreement,cycles_per_inference,area_pe_um2,area_array_um2,"
      "energy_uj_per_inference,array_order,pareto_area,pareto_energy";
  for (const std::string& name : layer_names) {
    for (const char* rate : kRates) csv += "," + csv_field(name + ":" + rate);
  }
  csv += "\n";
  for (const auto& [key, r] : records) {
    std::vector<ordered_json> row = {r["key"],
                                     at(r, {"status"}),
                                     at(r, {"error"}),
                                     at(r, {"trace", "path"}),
                                     at(r, {"trace", "hash"}),
                                     at(r, {"samples"})};
    for (const char* k : {"mul", "prod", "acc", "order", "scale", "overrides", "array", "dataflow", "node", "ibuf", "wbuf",
                          "obuf", "energy_samples"}) {
      row.push_back(at(r, {"config", k}));
    }
    for (const char* k : {"top1", "top1_fp32", "agreement", "cycles_per_inference"}) row.push_back(at(r, {k}));
    row.push_back(at(r, {"area_um2", "pe"}));
    row.push_back(at(r, {"area_um2", "array"}));
    row.push_back(at(r, {"energy_uj_per_inference"}));
    row.push_back(at(r, {"array_order"}));
    row.push_back(at(r, {"pareto", "area"}));
    row.push_back(at(r, {"pareto", "energy"}));
    for (const std::string& name : layer_names) {
      const ordered_json* layer = nullptr;
      if (r.contains("layers") && r["layers"].is_array()) {
        for (const auto& l : r["layers"]) {
          if (l.value("name", "") == name) layer = &l;
        }
      }
      for (const char* rate : kRates) row.push_back(layer ? at(*layer, {rate}) : ordered_json());
    }
    for (std::size_t i = 0; i < row.size(); ++i) csv += (i ? "," : "") + csv_value(row[i]);
    csv += "\n";
  }
  write_file_atomically(dir / kCsvName, csv);
  write_file_atomically(dir / kLogName, jsonl);
  sync_directory(dir);
}

}  // namespace accsim::sim
