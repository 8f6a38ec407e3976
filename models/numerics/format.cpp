#include "models/numerics/format.hpp"

#include <charconv>
#include <optional>
#include <vector>

namespace accsim::num {
namespace {

[[noreturn]] void fail(std::string_view text, const std::string& what) {
  throw FormatError(std::string(text) + ": " + what);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

std::optional<long long> parse_int(std::string_view s) {
  long long v = 0;
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<unsigned long long> parse_uint(std::string_view s) {
  unsigned long long v = 0;
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Rounding> parse_rounding(std::string_view s) {
  for (Rounding r : {Rounding::rne, Rounding::rna, Rounding::rtz, Rounding::rd, Rounding::ru,
                     Rounding::sr}) {
    if (s == to_string(r)) return r;
  }
  return std::nullopt;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  return out;
}

std::optional<FloatFormat> named_float(std::string_view name) {
  const std::string n = lower(name);
  if (n == "fp32") return formats::fp32();
  if (n == "fp16") return formats::fp16();
  if (n == "bf16") return formats::bf16();
  if (n == "e5m2") return formats::e5m2();
  if (n == "e4m3") return formats::e4m3();
  if (n == "e3m4") return formats::e3m4();
  return std::nullopt;
}

// "M<x>E<y>" with decimal x and y.
std::optional<FloatFormat> parse_mxey(std::string_view full, std::string_view head) {
  if (head.size() < 4 || (head[0] != 'M' && head[0] != 'm')) return std::nullopt;
  std::size_t e = head.find_first_of("Ee", 1);
  if (e == std::string_view::npos) return std::nullopt;
  auto m = parse_int(head.substr(1, e - 1));
  auto x = parse_int(head.substr(e + 1));
  if (!m || !x) return std::nullopt;
  if (*m < 0 || *m > 52) fail(full, "mantissa bits must be 0..52");
  if (*x < 1 || *x > 11) fail(full, "exponent bits must be 1..11");
  return formats::mxey(static_cast<int>(*m), static_cast<int>(*x));
}

IntFormat parse_int_format(std::string_view full, std::string_view head,
                           const std::vector<std::string_view>& options) {
  auto bits = parse_int(head.substr(3));
  if (!bits) fail(full, "integer width '" + std::string(head.substr(3)) + "' is not a number");
  if (*bits < 2 || *bits > 32) fail(full, "integer bits must be 2..32");
  IntFormat f{static_cast<int>(*bits), false};
  for (std::string_view opt : options) {
    if (opt == "wrap") f.saturate = false;
    else if (opt == "sat") f.saturate = true;
    else fail(full, "unknown integer option '" + std::string(opt) + "' (expected wrap or sat)");
  }
  return f;
}

void apply_float_option(std::string_view full, std::string_view opt, FloatFormat& f,
                        bool& seed_given) {
  const std::size_t eq = opt.find('=');
  const std::string_view key = opt.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? std::string_view{} : opt.substr(eq + 1);
  const bool has_value = eq != std::string_view::npos;
  if (key == "bias" && has_value) {
    auto b = parse_int(value);
    if (!b || *b < -100000 || *b > 100000) fail(full, "bias '" + std::string(value) + "' must be an integer");
    f.bias = static_cast<int>(*b);
  } else if (key == "round" && has_value) {
    auto r = parse_rounding(value);
    if (!r) fail(full, "rounding '" + std::string(value) + "' must be one of rne, rna, rtz, rd, ru, sr");
    f.rounding = *r;
  } else if (key == "seed" && has_value) {
    auto s = parse_uint(value);
    if (!s) fail(full, "seed '" + std::string(value) + "' must be a non-negative integer");
    f.sr_seed = *s;
    seed_given = true;
  } else if (opt == "ftz") {
    f.subnormals = false;
  } else if (opt == "subnormals") {
    f.subnormals = true;
  } else if (opt == "ieee") {
    f.specials = Specials::ieee;
    f.saturate = false;
  } else if (opt == "fn") {
    f.specials = Specials::fn;
    f.saturate = true;
  } else if (opt == "sat") {
    f.saturate = true;
  } else {
    fail(full, "unknown option '" + std::string(opt) +
                   "' (expected bias=N, round=MODE, seed=N, ftz, ieee, sat)");
  }
}

}  // namespace

std::string_view to_string(Rounding r) {
  switch (r) {
    case Rounding::rne: return "rne";
    case Rounding::rna: return "rna";
    case Rounding::rtz: return "rtz";
    case Rounding::rd: return "rd";
    case Rounding::ru: return "ru";
    case Rounding::sr: return "sr";
  }
  return "?";
}

namespace formats {
FloatFormat mxey(int man_bits, int exp_bits) {
  FloatFormat f;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = (1 << (exp_bits - 1)) - 1;
  f.subnormals = true;
  f.specials = Specials::none;
  f.saturate = true;
  f.rounding = Rounding::rne;
  return f;
}
static FloatFormat ieee(int man_bits, int exp_bits) {
  FloatFormat f = mxey(man_bits, exp_bits);
  f.specials = Specials::ieee;
  f.saturate = false;
  return f;
}
FloatFormat fp32() { return ieee(23, 8); }
FloatFormat fp16() { return ieee(10, 5); }
FloatFormat bf16() { return ieee(7, 8); }
FloatFormat e5m2() { return ieee(2, 5); }
FloatFormat e4m3() {
  FloatFormat f = mxey(3, 4);
  f.specials = Specials::fn;
  return f;
}
FloatFormat e3m4() { return mxey(4, 3); }
}  // namespace formats

void validate(const FloatFormat& f) {
  auto bad = [&](const std::string& what) { throw FormatError(to_string(f) + ": " + what); };
  if (f.man_bits < 0 || f.man_bits > 52) throw FormatError("format: mantissa bits must be 0..52");
  if (f.exp_bits < 1 || f.exp_bits > 11) throw FormatError("format: exponent bits must be 1..11");
  if (f.bias < -100000 || f.bias > 100000) bad("bias must be within +-100000");
  if (f.specials == Specials::ieee && f.exp_bits < 2) bad("ieee specials need at least 2 exponent bits");
  if (f.specials == Specials::fn && f.man_bits < 1) bad("fn specials need at least 1 mantissa bit");
  if (f.specials != Specials::ieee && !f.saturate) bad("formats without infinity always saturate");
  if (f.rounding != Rounding::sr && f.sr_seed != 0) bad("seed= only applies to round=sr");
}

void validate(const IntFormat& f) {
  if (f.bits < 2 || f.bits > 32) throw FormatError("int" + std::to_string(f.bits) + ": integer bits must be 2..32");
}

FloatFormat parse_float_format(std::string_view text) {
  Format f = parse_format(text);
  if (auto* ff = std::get_if<FloatFormat>(&f)) return *ff;
  fail(text, "an integer format is not allowed here; expected a floating-point format");
}

Format parse_format(std::string_view text) {
  if (text.empty()) throw FormatError("empty format string: expected e.g. fp32, e4m3, M7E4,bias=10,round=rtz,ftz or int8");
  std::vector<std::string_view> parts = split(text, ',');
  const std::string_view head = parts.front();
  parts.erase(parts.begin());
  for (std::string_view p : parts) {
    if (p.empty()) fail(text, "empty option between commas");
  }
  if (lower(head).starts_with("int")) return parse_int_format(text, head, parts);

  std::optional<FloatFormat> f = named_float(head);
  if (!f) f = parse_mxey(text, head);
  if (!f) {
    fail(text, "unknown format '" + std::string(head) +
                   "' (expected fp32, fp16, bf16, e5m2, e4m3, e3m4, MxEy or intN)");
  }
  bool seed_given = false;
  for (std::string_view opt : parts) apply_float_option(text, opt, *f, seed_given);
  if (seed_given && f->rounding != Rounding::sr) fail(text, "seed= only applies to round=sr");
  try {
    validate(*f);
  } catch (const FormatError& e) {
    std::string what = e.what();
    fail(text, what.substr(what.find(": ") + 2));
  }
  return *f;
}

std::string to_string(const FloatFormat& f) {
  // The shortest spelling: a named format when the shape matches, then only
  // the options that differ from that base.
  FloatFormat base = formats::mxey(f.man_bits, f.exp_bits);
  std::string out = "M";
  out += std::to_string(f.man_bits);
  out += 'E';
  out += std::to_string(f.exp_bits);
  for (auto [name, named] : {std::pair{"fp32", formats::fp32()}, {"fp16", formats::fp16()},
                             {"bf16", formats::bf16()}, {"e5m2", formats::e5m2()},
                             {"e4m3", formats::e4m3()}}) {
    if (named.exp_bits == f.exp_bits && named.man_bits == f.man_bits && named.specials == f.specials) {
      base = named;
      out = name;
    }
  }
  if (f.bias != base.bias) out += ",bias=" + std::to_string(f.bias);
  if (f.rounding != base.rounding) out += ",round=" + std::string(to_string(f.rounding));
  if (f.sr_seed != 0) out += ",seed=" + std::to_string(f.sr_seed);
  if (!f.subnormals) out += ",ftz";
  if (f.specials != base.specials) {
    if (f.specials == Specials::ieee) out += ",ieee";
    if (f.specials == Specials::fn) out += ",fn";
  }
  if (f.saturate && f.specials == Specials::ieee) out += ",sat";
  return out;
}

std::string to_string(const IntFormat& f) {
  return "int" + std::to_string(f.bits) + (f.saturate ? ",sat" : "");
}

std::string to_string(const Format& f) {
  return std::visit([](const auto& x) { return to_string(x); }, f);
}

int width(const Format& f) {
  return std::visit(
      [](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, FloatFormat>) return x.width();
        else return x.bits;
      },
      f);
}

}  // namespace accsim::num
