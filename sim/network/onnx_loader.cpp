#include "sim/network/onnx_loader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "sim/errors.hpp"
#include "sim/network/kernels.hpp"
#include "sim/network/onnx_node.hpp"

namespace accsim::net {

using sim::InputError;

namespace detail {

void Context::fail(std::string_view problem) const {
  throw InputError(file, node.empty() ? std::string(problem) : node + ": " + std::string(problem));
}

std::string dims_text(const Shape& shape) { return shape_text(shape); }

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence: lead byte, continuation bytes, no
    // overlong form, no surrogate, at most U+10FFFF.
    const int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    bool ok = len != 0 && c <= 0xf4 && c >= 0xc2 && i + static_cast<std::size_t>(len) <= text.size();
    std::uint32_t cp = ok ? (c & (0x7fu >> len)) : 0;
    for (int k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    ok = ok && !(len == 3 && cp < 0x800) && !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
         !(cp >= 0xd800 && cp <= 0xdfff);
    if (ok) {
      out.append(text.substr(i, static_cast<std::size_t>(len)));
      i += static_cast<std::size_t>(len);
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

void check_shape_limits(const Shape& shape, const Context& ctx, std::string_view what) {
  if (shape.size() > static_cast<std::size_t>(kMaxRank)) {
    ctx.fail(fmt::format("{} has {} dimensions; accsim supports at most {}", what, shape.size(), kMaxRank));
  }
  std::int64_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 1) ctx.fail(fmt::format("{} has a dimension of {}; empty and negative dimensions are not supported", what, d));
    if (d > kMaxTensorElements || count * d > kMaxTensorElements) {
      ctx.fail(fmt::format("{} is too large (more than {} elements)", what, kMaxTensorElements));
    }
    count *= d;
  }
}

// --- attributes -----------------------------------------------------------------------

namespace {

bool has_field(const onnx::AttributeProto& a, onnx::AttributeProto::AttributeType type) {
  switch (type) {
    case onnx::AttributeProto::INT: return a.has_i();
    case onnx::AttributeProto::FLOAT: return a.has_f();
    case onnx::AttributeProto::STRING: return a.has_s();
    case onnx::AttributeProto::TENSOR: return a.has_t();
    case onnx::AttributeProto::INTS: return a.ints_size() > 0;
    case onnx::AttributeProto::FLOATS: return a.floats_size() > 0;
    default: return false;
  }
}

std::string_view type_name(onnx::AttributeProto::AttributeType type) {
  switch (type) {
    case onnx::AttributeProto::INT: return "an int";
    case onnx::AttributeProto::FLOAT: return "a float";
    case onnx::AttributeProto::STRING: return "a string";
    case onnx::AttributeProto::TENSOR: return "a tensor";
    case onnx::AttributeProto::INTS: return "a list of ints";
    case onnx::AttributeProto::FLOATS: return "a list of floats";
    default: return "another type";
  }
}

}  // namespace

AttrReader::AttrReader(const onnx::NodeProto& node, const Context& ctx, std::initializer_list<std::string_view> known)
    : node_(node), ctx_(ctx) {
  std::unordered_set<std::string_view> seen;
  for (const onnx::AttributeProto& a : node.attribute()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || a.name() == k;
    if (!ok) ctx.fail(fmt::format("attribute '{}' is not supported", printable(a.name())));
    if (!seen.insert(a.name()).second) ctx.fail(fmt::format("attribute '{}' appears twice", printable(a.name())));
    if (!a.ref_attr_name().empty()) ctx.fail(fmt::format("attribute '{}' refers to a function attribute", printable(a.name())));
  }
}

const onnx::AttributeProto* AttrReader::find(std::string_view name) const {
  for (const onnx::AttributeProto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

const onnx::AttributeProto* AttrReader::find_typed(std::string_view name,
                                                   onnx::AttributeProto::AttributeType type) const {
  const onnx::AttributeProto* a = find(name);
  if (a == nullptr) return nullptr;
  // Old exporters leave `type` unset; then the value field decides.
  const bool ok = a->type() == type || (a->type() == onnx::AttributeProto::UNDEFINED && has_field(*a, type));
  if (!ok) ctx_.fail(fmt::format("attribute '{}' must be {}", name, type_name(type)));
  return a;
}

std::optional<std::int64_t> AttrReader::get_int(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::INT);
  return a ? std::optional(a->i()) : std::nullopt;
}

std::optional<std::vector<std::int64_t>> AttrReader::get_ints(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::INTS);
  if (a == nullptr) return std::nullopt;
  return std::vector<std::int64_t>(a->ints().begin(), a->ints().end());
}

std::optional<float> AttrReader::get_float(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::FLOAT);
  if (a == nullptr) return std::nullopt;
  if (!std::isfinite(a->f())) ctx_.fail(fmt::format("attribute '{}' is not finite", name));
  return a->f();
}

std::optional<std::vector<float>> AttrReader::get_floats(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::FLOATS);
  if (a == nullptr) return std::nullopt;
  for (float f : a->floats()) {
    if (!std::isfinite(f)) ctx_.fail(fmt::format("attribute '{}' holds a value that is not finite", name));
  }
  return std::vector<float>(a->floats().begin(), a->floats().end());
}

std::optional<std::string> AttrReader::get_string(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::STRING);
  return a ? std::optional(printable(a->s())) : std::nullopt;
}

const onnx::TensorProto* AttrReader::get_tensor(std::string_view name) const {
  const auto* a = find_typed(name, onnx::AttributeProto::TENSOR);
  return a ? &a->t() : nullptr;
}

}  // namespace detail

namespace {

using detail::Context;
using detail::InputRef;
using detail::IntTensor;
using detail::printable;

static_assert(std::endian::native == std::endian::little, "raw_data is little-endian");

constexpr std::int64_t kMinOpset = 7;
constexpr std::int64_t kMaxOpset = 21;
// Constant subgraphs are folded at load time up to this size; larger ones
// are computed per sample (they are rare, and folding them would let a small
// file allocate a lot).
constexpr std::int64_t kMaxFoldElements = std::int64_t{1} << 20;

std::string data_type_name(int type) {
  static constexpr std::string_view kNames[] = {"UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16",
                                                "INT16",     "INT32",  "INT64",     "STRING",     "BOOL",
                                                "FLOAT16",   "DOUBLE", "UINT32",    "UINT64",     "COMPLEX64",
                                                "COMPLEX128", "BFLOAT16"};
  if (type >= 0 && type < static_cast<int>(std::size(kNames))) return std::string(kNames[type]);
  return "unknown type " + std::to_string(type);
}

// A decoded initializer or Constant: float data, or int64 data (shapes).
struct Decoded {
  Shape shape;
  bool is_int64 = false;
  std::vector<float> floats;
  std::vector<std::int64_t> ints;
};

Decoded decode_tensor(const onnx::TensorProto& t, const Context& ctx, const std::string& what) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    ctx.fail(what + " keeps its data in an external file; export with the weights embedded");
  }
  if (t.has_segment()) ctx.fail(what + " is a segment of a tensor; segmented tensors are not supported");
  Decoded d;
  if (t.dims_size() > kMaxRank) {
    ctx.fail(fmt::format("{} has {} dimensions; accsim supports at most {}", what, t.dims_size(), kMaxRank));
  }
  d.shape.assign(t.dims().begin(), t.dims().end());
  detail::check_shape_limits(d.shape, ctx, what);
  const auto count = static_cast<std::size_t>(element_count(d.shape));
  const int type = t.data_type();
  if (type == onnx::TensorProto::INT32 || type == onnx::TensorProto::BOOL) {
    // Indices and masks: held as int64 (BOOL as 0 and 1).
    d.is_int64 = true;
    const std::size_t item = type == onnx::TensorProto::BOOL ? 1 : 4;
    if (t.has_raw_data()) {
      const std::string& raw = t.raw_data();
      if (raw.size() != count * item) {
        ctx.fail(fmt::format("{} has shape {} ({} elements, {} bytes) but raw_data holds {} bytes", what,
                             shape_text(d.shape), count, count * item, raw.size()));
      }
      for (std::size_t i = 0; i < count; ++i) {
        std::int32_t v = 0;
        if (item == 1) {
          v = static_cast<unsigned char>(raw[i]) != 0;
        } else {
          std::memcpy(&v, raw.data() + i * 4, 4);
        }
        d.ints.push_back(v);
      }
    } else {
      if (static_cast<std::size_t>(t.int32_data_size()) != count) {
        ctx.fail(fmt::format("{} has shape {} ({} elements) but holds {} int32 values", what, shape_text(d.shape),
                             count, t.int32_data_size()));
      }
      for (std::int32_t v : t.int32_data()) d.ints.push_back(type == onnx::TensorProto::BOOL ? (v != 0) : v);
    }
    return d;
  }
  if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::INT64) {
    ctx.fail(fmt::format("{} has data type {}; accsim reads FLOAT weights and INT64, INT32 or BOOL shapes, indices and "
                         "masks",
                         what, data_type_name(type)));
  }
  d.is_int64 = type == onnx::TensorProto::INT64;
  const std::size_t item = d.is_int64 ? 8 : 4;
  if (t.has_raw_data()) {
    if (t.float_data_size() > 0 || t.int64_data_size() > 0) ctx.fail(what + " has both raw_data and typed data");
    const std::string& raw = t.raw_data();
    if (raw.size() != count * item) {
      ctx.fail(fmt::format("{} has shape {} ({} elements, {} bytes) but raw_data holds {} bytes", what,
                           shape_text(d.shape), count, count * item, raw.size()));
    }
    if (d.is_int64) {
      d.ints.resize(count);  // count >= 1: check_shape_limits rejects empty dimensions
      std::memcpy(d.ints.data(), raw.data(), raw.size());
    } else {
      d.floats.resize(count);
      std::memcpy(d.floats.data(), raw.data(), raw.size());
    }
  } else if (d.is_int64) {
    if (static_cast<std::size_t>(t.int64_data_size()) != count) {
      ctx.fail(fmt::format("{} has shape {} ({} elements) but holds {} int64 values", what, shape_text(d.shape),
                           count, t.int64_data_size()));
    }
    d.ints.assign(t.int64_data().begin(), t.int64_data().end());
  } else {
    if (static_cast<std::size_t>(t.float_data_size()) != count) {
      ctx.fail(fmt::format("{} has shape {} ({} elements) but holds {} float values", what, shape_text(d.shape),
                           count, t.float_data_size()));
    }
    d.floats.assign(t.float_data().begin(), t.float_data().end());
  }
  for (std::size_t i = 0; i < d.floats.size(); ++i) {
    if (!std::isfinite(d.floats[i])) {
      ctx.fail(fmt::format("{} element {} is {}; weights and constants must be finite", what, i,
                           std::isnan(d.floats[i]) ? "NaN" : (d.floats[i] > 0 ? "+inf" : "-inf")));
    }
  }
  return d;
}

// What a name in the graph stands for while the network is being built.
struct Symbol {
  enum class Kind { value, int64, unavailable } kind = Kind::value;
  ValueId value = 0;
  const IntTensor* ints = nullptr;
  std::string why;  // unavailable: why it cannot be used
};

class Loader {
 public:
  Loader(std::string_view name, const std::optional<InputBinding>& binding) : binding_(binding) {
    ctx_.file = std::string(name);
    net_.source = std::string(name);
  }

  Network load(std::string_view bytes) {
    if (bytes.empty()) ctx_.fail("file is empty, not an ONNX model");
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) ctx_.fail("file is too large for an ONNX model (2 GiB)");
    onnx::ModelProto model;
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      ctx_.fail("not a valid ONNX model: the protobuf is truncated or corrupt");
    }
    read_opset(model);
    if (!model.has_graph()) ctx_.fail("the model has no graph");
    const onnx::GraphProto& graph = model.graph();
    if (graph.sparse_initializer_size() > 0) ctx_.fail("sparse initializers are not supported");
    read_initializers(graph);
    read_input(graph);
    const std::string output_name = read_output_name(graph);
    name_nodes(graph);
    for (std::size_t n : execution_order(graph, output_name)) build_node(graph.node(static_cast<int>(n)), n);
    finish_output(graph, output_name);
    return std::move(net_);
  }

 private:
  void read_opset(const onnx::ModelProto& model) {
    std::optional<std::int64_t> version;
    for (const onnx::OperatorSetIdProto& o : model.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") {
        if (version) ctx_.fail("the default ONNX domain is imported twice");
        version = o.version();
      }
    }
    if (!version) ctx_.fail("the model imports no opset of the default ONNX domain");
    if (*version < kMinOpset || *version > kMaxOpset) {
      ctx_.fail(fmt::format("opset {} is not supported (accsim reads opsets {} to {})", *version, kMinOpset,
                            kMaxOpset));
    }
    net_.opset = *version;
  }

  ValueId add_value(std::string name, Shape shape, std::optional<std::vector<float>> data) {
    Value v;
    v.name = std::move(name);
    v.shape = std::move(shape);
    if (data) {
      v.constant = net_.constants.size();
      net_.constants.push_back(std::move(*data));
    }
    net_.values.push_back(std::move(v));
    return net_.values.size() - 1;
  }

  void define(const std::string& name, Decoded&& d) {
    Symbol s;
    if (d.is_int64) {
      s.kind = Symbol::Kind::int64;
      ints_.push_back(std::make_unique<IntTensor>(IntTensor{std::move(d.shape), std::move(d.ints)}));
      s.ints = ints_.back().get();
    } else {
      s.value = add_value(printable(name), std::move(d.shape), std::move(d.floats));
    }
    symbols_[name] = std::move(s);
  }

  void read_initializers(const onnx::GraphProto& graph) {
    for (const onnx::TensorProto& t : graph.initializer()) {
      const std::string& name = t.name();
      if (name.empty()) ctx_.fail("an initializer has no name");
      const std::string shown = "initializer '" + printable(name) + "'";
      if (symbols_.contains(name)) ctx_.fail(shown + " is defined twice");
      define(name, decode_tensor(t, ctx_, shown));
      initializers_.insert(name);
    }
  }

  void read_input(const onnx::GraphProto& graph) {
    const onnx::ValueInfoProto* input = nullptr;
    std::string names;
    int count = 0;
    for (const onnx::ValueInfoProto& v : graph.input()) {
      if (initializers_.contains(v.name())) continue;  // IR < 4 lists initializers as inputs
      names += (count ? ", '" : "'") + printable(v.name()) + "'";
      ++count;
      input = &v;
    }
    if (count == 0) ctx_.fail("the graph has no input");
    if (count > 1) ctx_.fail(fmt::format("the graph has {} inputs ({}); accsim runs networks with one input", count, names));
    const std::string& name = input->name();
    if (name.empty()) ctx_.fail("the graph input has no name");
    const std::string what = "input '" + printable(name) + "'";
    if (!input->has_type() || !input->type().has_tensor_type()) ctx_.fail(what + " is not a tensor");
    const onnx::TypeProto::Tensor& tt = input->type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT) {
      ctx_.fail(fmt::format("{} has element type {}; accsim feeds float32 inputs", what, data_type_name(tt.elem_type())));
    }
    Shape shape;
    if (!tt.has_shape()) {
      if (!binding_) ctx_.fail(what + " has no shape; accsim needs static shapes");
      shape = binding_->shape;
    } else {
      const int rank = tt.shape().dim_size();
      if (binding_ && static_cast<std::size_t>(rank) != binding_->shape.size()) {
        throw InputError(binding_->source, fmt::format("samples have shape {} but the model's {} has {} dimensions",
                                                       shape_text(binding_->shape), what, rank));
      }
      for (int i = 0; i < rank; ++i) {
        const onnx::TensorShapeProto::Dimension& d = tt.shape().dim(i);
        if (d.has_dim_value()) {
          if (d.dim_value() < 1) ctx_.fail(fmt::format("{} dimension {} is {}", what, i, d.dim_value()));
          if (binding_ && binding_->shape[static_cast<std::size_t>(i)] != d.dim_value()) {
            Shape declared;
            for (int j = 0; j < rank; ++j) {
              declared.push_back(tt.shape().dim(j).has_dim_value() ? tt.shape().dim(j).dim_value() : -1);
            }
            throw InputError(binding_->source,
                             fmt::format("samples have shape {} but {} of {} is {} (-1: dynamic)",
                                         shape_text(binding_->shape), what, ctx_.file, shape_text(declared)));
          }
          shape.push_back(d.dim_value());
        } else if (binding_) {
          shape.push_back(binding_->shape[static_cast<std::size_t>(i)]);
        } else if (i == 0) {
          shape.push_back(1);  // the batch: accsim runs one sample at a time
        } else {
          ctx_.fail(fmt::format("{} dimension {} is dynamic{}; accsim needs static shapes (export with a fixed input size)",
                                what, i, d.has_dim_param() ? " ('" + printable(d.dim_param()) + "')" : ""));
        }
      }
    }
    detail::check_shape_limits(shape, ctx_, what);
    if (symbols_.contains(name)) ctx_.fail(fmt::format("{} has the name of an initializer", what));
    net_.input = add_value(printable(name), shape, std::nullopt);
    symbols_[name] = Symbol{Symbol::Kind::value, net_.input, nullptr, {}};
  }

  std::string read_output_name(const onnx::GraphProto& graph) {
    if (graph.output_size() != 1) {
      ctx_.fail(fmt::format("the graph has {} outputs; accsim runs networks with one output", graph.output_size()));
    }
    const std::string& name = graph.output(0).name();
    if (name.empty()) ctx_.fail("the graph output has no name");
    return name;
  }

  // Names for messages and layer selection: the node's own, or <op>_<index>;
  // a repeated name gets #<index> appended so every layer can be named.
  void name_nodes(const onnx::GraphProto& graph) {
    std::unordered_set<std::string> used;
    node_names_.resize(static_cast<std::size_t>(graph.node_size()));
    for (int i = 0; i < graph.node_size(); ++i) {
      const onnx::NodeProto& n = graph.node(i);
      std::string name = printable(n.name());
      if (name.empty()) name = printable(n.op_type()) + "_" + std::to_string(i);
      if (used.contains(name)) name += "#" + std::to_string(i);
      used.insert(name);
      node_names_[static_cast<std::size_t>(i)] = std::move(name);
    }
  }

  std::string node_context(const onnx::NodeProto& n, std::size_t index) const {
    return fmt::format("node '{}' ({})", node_names_[index], printable(n.op_type()));
  }

  // The nodes the output depends on, each after the nodes it reads from.
  // Iterative depth-first search, so a deep (or hostile) graph cannot
  // overflow the stack; a node met again while on the path closes a cycle.
  std::vector<std::size_t> execution_order(const onnx::GraphProto& graph, const std::string& output_name) {
    std::unordered_map<std::string, std::size_t> producer;
    for (int i = 0; i < graph.node_size(); ++i) {
      for (const std::string& out : graph.node(i).output()) {
        if (out.empty()) continue;
        const std::string& name = out;
        Context c = ctx_;
        c.node = node_context(graph.node(i), static_cast<std::size_t>(i));
        if (symbols_.contains(name)) {
          c.fail(fmt::format("output '{}' has the name of {}", printable(name),
                             initializers_.contains(name) ? "an initializer" : "the graph input"));
        }
        const auto [it, inserted] = producer.emplace(name, static_cast<std::size_t>(i));
        if (!inserted) {
          c.fail(fmt::format("output '{}' is also produced by node '{}'", printable(name), node_names_[it->second]));
        }
      }
    }
    std::vector<std::size_t> order;
    const auto root = producer.find(output_name);
    if (root == producer.end()) {
      if (symbols_.contains(output_name)) return order;  // the output is the input or a constant
      ctx_.fail(fmt::format("graph output '{}' is not produced by any node", printable(output_name)));
    }
    enum : std::uint8_t { kNew, kOnPath, kDone };
    std::vector<std::uint8_t> state(static_cast<std::size_t>(graph.node_size()), kNew);
    std::vector<std::pair<std::size_t, int>> stack{{root->second, 0}};
    state[root->second] = kOnPath;
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      const onnx::NodeProto& node = graph.node(static_cast<int>(n));
      if (next == node.input_size()) {
        state[n] = kDone;
        order.push_back(n);
        stack.pop_back();
        continue;
      }
      const std::string& name = node.input(next++);
      if (name.empty() || symbols_.contains(name)) continue;
      const auto p = producer.find(name);
      if (p == producer.end()) {
        Context c = ctx_;
        c.node = node_context(node, n);
        c.fail(fmt::format("input '{}' is not produced by any node and is neither an initializer nor the graph input",
                           printable(name)));
      }
      if (state[p->second] == kOnPath) {
        Context c = ctx_;
        c.node = node_context(graph.node(static_cast<int>(p->second)), p->second);
        c.fail("the graph has a cycle through this node");
      }
      if (state[p->second] == kNew) {
        state[p->second] = kOnPath;
        stack.emplace_back(p->second, 0);
      }
    }
    return order;
  }

  void build_node(const onnx::NodeProto& proto, std::size_t index) {
    Context ctx = ctx_;
    ctx.node = node_context(proto, index);
    if (!proto.domain().empty() && proto.domain() != "ai.onnx") {
      ctx.fail(fmt::format("operator domain '{}' is not supported (only the default ONNX domain)",
                           printable(proto.domain())));
    }
    const std::optional<Op> op = parse_op(proto.op_type());
    if (!op) {
      ctx.fail(fmt::format("operator '{}' is not supported; accsim implements {}", printable(proto.op_type()),
                           supported_ops()));
    }
    if (proto.output_size() == 0 || proto.output(0).empty()) ctx.fail("has no output");
    const std::string& output = proto.output(0);
    for (int i = 1; i < proto.output_size() && *op != Op::Split; ++i) {
      if (proto.output(i).empty()) continue;
      Symbol s;
      s.kind = Symbol::Kind::unavailable;
      s.why = fmt::format("output {} of {}, which accsim does not compute", i, ctx.node);
      symbols_[proto.output(i)] = std::move(s);
    }

    if (*op == Op::Constant) {
      if (proto.input_size() != 0) ctx.fail("a Constant takes no inputs");
      define(output, decode_constant(proto, ctx));
      return;
    }

    std::vector<InputRef> inputs(static_cast<std::size_t>(proto.input_size()));
    for (int i = 0; i < proto.input_size(); ++i) {
      InputRef& ref = inputs[static_cast<std::size_t>(i)];
      const std::string& raw = proto.input(i);
      ref.name = printable(raw);
      if (raw.empty()) continue;
      ref.present = true;
      const Symbol& s = symbols_.at(raw);  // execution_order checked every name
      switch (s.kind) {
        case Symbol::Kind::value: ref.value = s.value; break;
        case Symbol::Kind::int64: ref.int64 = s.ints; break;
        case Symbol::Kind::unavailable: ctx.fail(fmt::format("input '{}' is {}", ref.name, s.why));
      }
    }

    switch (*op) {
      case Op::ShapeOf: return fold_shape(proto, inputs, output, ctx);
      case Op::ConstantOfShape: return fold_constant_of_shape(proto, inputs, output, ctx);
      case Op::Split: return build_split(proto, index, inputs, ctx);
      default: break;
    }

    // Integer tensors (shapes, indices, masks) exist only at load time. An
    // operator whose data inputs are all integers computes an integer result
    // (Cast says so itself), folded now; integer data mixed with float data
    // (a Where's boolean mask) is used as float.
    const std::size_t data_count = *op == Op::Reshape || *op == Op::Expand || *op == Op::Gather || *op == Op::Slice ||
                                           *op == Op::Unsqueeze || *op == Op::Squeeze || *op == Op::ReduceMean
                                       ? 1
                                       : inputs.size();
    bool any_int = false, all_int = true;
    for (std::size_t i = 0; i < std::min(data_count, inputs.size()); ++i) {
      if (!inputs[i].present) continue;
      any_int = any_int || inputs[i].int64 != nullptr;
      all_int = all_int && inputs[i].int64 != nullptr;
    }
    bool int_out = any_int && all_int;
    if (*op == Op::Cast) {
      const onnx::AttributeProto* to = nullptr;
      for (const auto& a : proto.attribute()) {
        if (a.name() == "to") to = &a;
      }
      int_out = to != nullptr && detail::cast_target_is_integer(to->i());
    }
    if (int_out && any_int && fold_int_vector(*op, proto, inputs, output, ctx)) return;
    if (int_out && any_int && !int_capable(*op)) {
      ctx.fail(fmt::format("{} of integer tensors is not supported (accsim folds integer shape arithmetic with "
                           "Add, Sub, Mul, Neg, Equal, Where, Cast, Concat, Gather, Slice, Unsqueeze, Squeeze, "
                           "Reshape, Expand, Flatten, Transpose and Identity)",
                           printable(proto.op_type())));
    }
    for (std::size_t i = 0; i < std::min(data_count, inputs.size()); ++i) {
      if (inputs[i].int64 == nullptr) continue;
      inputs[i].value = int_as_float(*inputs[i].int64, ctx, inputs[i].name);
      inputs[i].int64 = nullptr;
    }
    detail::BuiltNode built = detail::build_operator(*op, proto, inputs, net_, net_.opset, ctx);
    built.node.name = node_names_[index];
    add_built(std::move(built), output, ctx, int_out);
  }

  // Adds a built node's output: folded into a constant when every input is
  // constant (and the node is not a GEMM layer), otherwise a node of the
  // graph. An integer result must fold.
  void add_built(detail::BuiltNode built, const std::string& output, const Context& ctx, bool int_out) {
    const Op op = built.node.op;
    const ValueId out = add_value(printable(output), built.output_shape, std::nullopt);
    built.node.output = out;

    bool all_constant = true;
    for (const auto& in : built.node.inputs) all_constant = all_constant && (!in || net_.values[*in].constant);
    const std::int64_t count = element_count(built.output_shape);
    if (int_out && (!all_constant || count > kMaxFoldElements)) {
      ctx.fail(all_constant ? "the integer result is too large to fold"
                            : "computes an integer tensor from a tensor computed per sample; accsim computes integers "
                              "(shapes, indices, masks) only at load time");
    }
    if (all_constant && !is_gemm_op(op) && count <= kMaxFoldElements) {
      // Fold: compute it now, in float, exactly as the executor would.
      std::vector<const float*> in_data;
      for (const auto& in : built.node.inputs) {
        in_data.push_back(in ? net_.constants[*net_.values[*in].constant].data() : nullptr);
      }
      std::vector<float> data(static_cast<std::size_t>(count));
      run_float_op(net_, built.node, in_data, data.data());
      if (int_out) {
        Decoded d;
        d.is_int64 = true;
        d.shape = built.output_shape;
        for (float f : data) {
          // Beyond 2^24 a float no longer holds every integer: the result
          // could be off, so refuse it.
          if (!(std::fabs(f) <= 16777216.0f)) {
            ctx.fail("integer arithmetic gives a value beyond 2^24 in magnitude, which accsim does not compute");
          }
          d.ints.push_back(static_cast<std::int64_t>(std::trunc(f)));
        }
        define(output, std::move(d));
        return;
      }
      net_.values[out].constant = net_.constants.size();
      net_.constants.push_back(std::move(data));
    } else {
      if (is_gemm_op(op)) net_.gemm_layers.push_back(net_.nodes.size());
      net_.nodes.push_back(std::move(built.node));
    }
    symbols_[output] = Symbol{Symbol::Kind::value, out, nullptr, {}};
  }

  // Slice and Concat of 1-D integer tensors (shape vectors), computed here
  // in integers: exporters slice shapes down to nothing ("x.flatten(1)"
  // slices Shape(x)[0:0] and concatenates -1), and the float executor has no
  // empty tensors. Returns false for anything else.
  bool fold_int_vector(Op op, const onnx::NodeProto& proto, std::span<const InputRef> inputs,
                       const std::string& output, const Context& ctx) {
    auto vector_input = [&](std::size_t i) -> const IntTensor* {
      if (i >= inputs.size() || !inputs[i].present || inputs[i].int64 == nullptr) return nullptr;
      return inputs[i].int64->shape.size() == 1 ? inputs[i].int64 : nullptr;
    };
    Decoded d;
    d.is_int64 = true;
    if (op == Op::Concat) {
      const detail::AttrReader attrs(proto, ctx, {"axis"});
      const auto axis = attrs.get_int("axis");
      if (!axis || (*axis != 0 && *axis != -1)) return false;
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        const IntTensor* t = vector_input(i);
        if (t == nullptr) return false;
        d.ints.insert(d.ints.end(), t->data.begin(), t->data.end());
      }
    } else if (op == Op::Slice && net_.opset >= 10) {
      const IntTensor* data = vector_input(0);
      const IntTensor* starts = vector_input(1);
      const IntTensor* ends = vector_input(2);
      const IntTensor* axes = vector_input(3);
      const IntTensor* steps = vector_input(4);
      if (data == nullptr || starts == nullptr || ends == nullptr || starts->data.size() != 1 ||
          ends->data.size() != 1 || (axes && (axes->data.size() != 1 || (axes->data[0] != 0 && axes->data[0] != -1))) ||
          (steps && steps->data.size() != 1) || (inputs.size() > 3 && inputs[3].present && !axes) ||
          (inputs.size() > 4 && inputs[4].present && !steps) || inputs.size() > 5) {
        return false;
      }
      (void)detail::AttrReader(proto, ctx, {});
      const std::int64_t step = steps ? steps->data[0] : 1;
      if (step == 0) ctx.fail("a step is 0");
      std::int64_t first = 0;
      const auto len = static_cast<std::int64_t>(data->data.size());
      const std::int64_t count = detail::slice_axis(len, starts->data[0], ends->data[0], step, &first);
      for (std::int64_t i = 0; i < count; ++i) d.ints.push_back(data->data[static_cast<std::size_t>(first + i * step)]);
    } else {
      return false;
    }
    d.shape = {static_cast<std::int64_t>(d.ints.size())};
    define(output, std::move(d));
    return true;
  }

  static bool int_capable(Op op) {
    switch (op) {
      case Op::Add: case Op::Sub: case Op::Mul: case Op::Neg: case Op::Equal: case Op::Where: case Op::Cast:
      case Op::Concat: case Op::Gather: case Op::Slice: case Op::Unsqueeze: case Op::Squeeze: case Op::Reshape:
      case Op::Expand: case Op::Flatten: case Op::Transpose: case Op::Identity:
        return true;
      default:
        return false;
    }
  }

  // An integer constant as a float constant value, for the float builders
  // and kernels: exact while every value has at most 24 significant bits.
  ValueId int_as_float(const IntTensor& t, const Context& ctx, const std::string& name) {
    if (t.data.empty()) ctx.fail(fmt::format("integer input '{}' is empty; empty tensors are not supported here", name));
    std::vector<float> data;
    data.reserve(t.data.size());
    for (std::int64_t v : t.data) {
      if (v > (std::int64_t{1} << 24) || v < -(std::int64_t{1} << 24)) {
        ctx.fail(fmt::format("integer input '{}' holds {}; accsim computes with integers up to 2^24 in magnitude", name, v));
      }
      data.push_back(static_cast<float>(v));
    }
    return add_value(name, t.shape, std::move(data));
  }

  void fold_shape(const onnx::NodeProto& proto, std::span<const InputRef> inputs, const std::string& output,
                  const Context& ctx) {
    const detail::AttrReader attrs(proto, ctx, {"start", "end"});
    if (inputs.size() != 1 || !inputs[0].present) ctx.fail(fmt::format("takes 1 input, has {}", inputs.size()));
    const Shape& shape = inputs[0].value ? net_.values[*inputs[0].value].shape : inputs[0].int64->shape;
    const auto rank = static_cast<std::int64_t>(shape.size());
    auto bound = [rank](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + rank : v, 0, rank); };
    const std::int64_t start = bound(attrs.get_int("start").value_or(0));
    const std::int64_t end = bound(attrs.get_int("end").value_or(rank));
    Decoded d;
    d.is_int64 = true;
    for (std::int64_t i = start; i < end; ++i) d.ints.push_back(shape[static_cast<std::size_t>(i)]);
    d.shape = {static_cast<std::int64_t>(d.ints.size())};
    define(output, std::move(d));
  }

  void fold_constant_of_shape(const onnx::NodeProto& proto, std::span<const InputRef> inputs,
                              const std::string& output, const Context& ctx) {
    const detail::AttrReader attrs(proto, ctx, {"value"});
    if (inputs.size() != 1 || !inputs[0].present || inputs[0].int64 == nullptr) {
      ctx.fail("takes one input, an int64 shape known at load time");
    }
    const IntTensor& shape = *inputs[0].int64;
    if (shape.shape.size() != 1) ctx.fail("input must be a 1-D shape");
    Decoded d;
    d.shape = Shape(shape.data.begin(), shape.data.end());
    detail::check_shape_limits(d.shape, ctx, "output");
    if (element_count(d.shape) > kMaxFoldElements) ctx.fail("output is too large to fold");
    Decoded fill;
    fill.floats = {0.0f};
    if (const onnx::TensorProto* t = attrs.get_tensor("value")) {
      fill = decode_tensor(*t, ctx, "its value");
      if ((fill.is_int64 ? fill.ints.size() : fill.floats.size()) != 1) ctx.fail("value must hold one element");
    }
    d.is_int64 = fill.is_int64;
    const auto count = static_cast<std::size_t>(element_count(d.shape));
    if (d.is_int64) {
      d.ints.assign(count, fill.ints[0]);
    } else {
      d.floats.assign(count, fill.floats[0]);
    }
    define(output, std::move(d));
  }

  // Split: one Slice per output.
  void build_split(const onnx::NodeProto& proto, std::size_t index, std::span<const InputRef> inputs,
                   const Context& ctx) {
    if (!inputs.empty() && inputs[0].present && inputs[0].int64 != nullptr) ctx.fail("Split of an integer tensor is not supported");
    const std::vector<std::int64_t> sizes = detail::split_sizes(proto, inputs, net_, net_.opset, ctx);
    const std::int64_t axis = sizes[0];
    std::int64_t start = 0;
    for (int i = 0; i < proto.output_size(); ++i) {
      const std::int64_t length = sizes[static_cast<std::size_t>(i) + 1];
      if (!proto.output(i).empty()) {
        detail::BuiltNode part = detail::build_slice_part(net_, *inputs[0].value, axis, start, length);
        part.node.name = i == 0 ? node_names_[index] : fmt::format("{}:{}", node_names_[index], i);
        add_built(std::move(part), proto.output(i), ctx, false);
      }
      start += length;
    }
  }

  Decoded decode_constant(const onnx::NodeProto& proto, const Context& ctx) {
    const detail::AttrReader attrs(proto, ctx, {"value", "value_float", "value_floats", "value_int", "value_ints",
                                                "sparse_value", "value_string", "value_strings"});
    if (proto.attribute_size() != 1) ctx.fail("a Constant needs exactly one value attribute");
    Decoded d;
    if (const onnx::TensorProto* t = attrs.get_tensor("value")) return decode_tensor(*t, ctx, "its value");
    if (const auto f = attrs.get_float("value_float")) {
      d.floats = {*f};
    } else if (const auto fs = attrs.get_floats("value_floats")) {
      d.floats = *fs;
      d.shape = {static_cast<std::int64_t>(fs->size())};
    } else if (const auto i = attrs.get_int("value_int")) {
      d.is_int64 = true;
      d.ints = {*i};
    } else if (const auto is = attrs.get_ints("value_ints")) {
      d.is_int64 = true;
      d.ints = *is;
      d.shape = {static_cast<std::int64_t>(is->size())};
    } else {
      ctx.fail(fmt::format("value attribute '{}' is not supported (float and int64 constants are)",
                           printable(proto.attribute(0).name())));
    }
    detail::check_shape_limits(d.shape, ctx, "its value");
    return d;
  }

  void finish_output(const onnx::GraphProto& graph, const std::string& name) {
    const Symbol& s = symbols_.at(name);
    if (s.kind != Symbol::Kind::value) ctx_.fail(fmt::format("graph output '{}' is not a float32 tensor", printable(name)));
    net_.output = s.value;
    const onnx::ValueInfoProto& info = graph.output(0);
    if (!info.has_type() || !info.type().has_tensor_type()) return;
    const onnx::TypeProto::Tensor& tt = info.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::UNDEFINED && tt.elem_type() != onnx::TensorProto::FLOAT) {
      ctx_.fail(fmt::format("graph output '{}' has element type {}; accsim computes float32", printable(name),
                            data_type_name(tt.elem_type())));
    }
    if (!tt.has_shape()) return;
    const Shape& got = net_.values[net_.output].shape;
    bool ok = tt.shape().dim_size() == static_cast<int>(got.size());
    for (int i = 0; ok && i < tt.shape().dim_size(); ++i) {
      const auto& d = tt.shape().dim(i);
      ok = !d.has_dim_value() || d.dim_value() == got[static_cast<std::size_t>(i)];
    }
    if (!ok) {
      ctx_.fail(fmt::format("graph output '{}' is declared with another shape than the {} the graph computes", printable(name),
                            shape_text(got)));
    }
  }

  Context ctx_;
  std::optional<InputBinding> binding_;
  Network net_;
  std::vector<std::unique_ptr<IntTensor>> ints_;
  std::unordered_map<std::string, Symbol> symbols_;
  std::unordered_set<std::string> initializers_;
  std::vector<std::string> node_names_;
};

}  // namespace

Network parse_onnx(std::string_view bytes, std::string_view name, const std::optional<InputBinding>& input) {
  return Loader(name, input).load(bytes);
}

std::string read_file_bytes(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(name, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw InputError(name, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(name, "is a directory, not a file");
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      throw InputError(name, std::string("cannot read: ") + std::strerror(errno));
    }
    bytes.append(buffer, static_cast<std::size_t>(got));
  }
  return bytes;
}

Network load_onnx(const std::filesystem::path& path, const std::optional<InputBinding>& input) {
  return parse_onnx(read_file_bytes(path), path.string(), input);
}

}  // namespace accsim::net
