// Per-operator checks and shape inference: what each supported ONNX operator
// accepts (inputs, attributes, shapes) and what it produces. The semantics
// follow the ONNX operator specification; where PyTorch and the ONNX text
// disagree (the last window of a ceil_mode pooling), PyTorch's rule is used,
// since PyTorch is what exports the networks accsim runs.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "sim/errors.hpp"
#include "sim/network/onnx_loader.hpp"
#include "sim/network/onnx_node.hpp"

namespace accsim::net::detail {
namespace {

// Attribute values beyond this are nonsense for any real network and would
// only serve to overflow index arithmetic.
constexpr std::int64_t kMaxAttr = std::int64_t{1} << 31;

using Inputs = std::span<const InputRef>;

void check_input_count(Inputs in, std::size_t min, std::size_t max, const Context& ctx) {
  if (in.size() < min || in.size() > max) {
    if (min == max) ctx.fail(fmt::format("takes {} input{}, has {}", min, min == 1 ? "" : "s", in.size()));
    ctx.fail(fmt::format("takes {} to {} inputs, has {}", min, max, in.size()));
  }
}

// A float tensor input; `role` names it in messages ("weight W").
ValueId float_input(Inputs in, std::size_t i, const Context& ctx, std::string_view role) {
  if (i >= in.size() || !in[i].present) ctx.fail(fmt::format("input {} ({}) is missing", i, role));
  if (!in[i].value) {
    ctx.fail(fmt::format("input {} ({}) '{}' is an int64 tensor; only float32 tensors flow through accsim's executor",
                         i, role, in[i].name));
  }
  return *in[i].value;
}
std::optional<ValueId> optional_float_input(Inputs in, std::size_t i, const Context& ctx, std::string_view role) {
  if (i >= in.size() || !in[i].present) return std::nullopt;
  return float_input(in, i, ctx, role);
}

const Shape& shape_of(const Network& net, ValueId v) { return net.values[v].shape; }
const std::vector<float>* constant_of(const Network& net, ValueId v) {
  const auto& c = net.values[v].constant;
  return c ? &net.constants[*c] : nullptr;
}

void check_rank(const Network& net, ValueId v, std::size_t rank, const Context& ctx, std::string_view role) {
  const Shape& s = shape_of(net, v);
  if (s.size() != rank) {
    ctx.fail(fmt::format("{} '{}' has shape {}; it must have {} dimensions", role, net.values[v].name, dims_text(s),
                         rank));
  }
}

std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, bool allow_end, const Context& ctx) {
  const std::int64_t hi = allow_end ? rank : rank - 1;
  if (axis < -rank || axis > hi) ctx.fail(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

bool bool_attr(const AttrReader& attrs, std::string_view name, bool fallback, const Context& ctx) {
  const auto v = attrs.get_int(name);
  if (!v) return fallback;
  if (*v != 0 && *v != 1) ctx.fail(fmt::format("attribute '{}' is {}; it must be 0 or 1", name, *v));
  return *v == 1;
}

std::vector<std::int64_t> ints_attr(const AttrReader& attrs, std::string_view name, std::size_t length,
                                    std::int64_t fallback, std::int64_t min, const Context& ctx) {
  auto v = attrs.get_ints(name);
  if (!v) return std::vector<std::int64_t>(length, fallback);
  if (v->size() != length) {
    ctx.fail(fmt::format("attribute '{}' has {} values; a 2-D window needs {}", name, v->size(), length));
  }
  for (std::int64_t x : *v) {
    if (x < min || x > kMaxAttr) ctx.fail(fmt::format("attribute '{}' value {} is out of range", name, x));
  }
  return *v;
}

// Output length along one axis, and the pads auto_pad implies.
struct Axis {
  std::int64_t out = 0, pad_begin = 0, pad_end = 0;
};
Axis window_axis(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                 std::int64_t pad_begin, std::int64_t pad_end, const std::string& auto_pad, bool ceil_mode,
                 const Context& ctx, std::string_view axis_name) {
  const std::int64_t extent = (kernel - 1) * dilation + 1;  // < 2^62: both factors <= 2^31
  Axis a;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    a.out = (in + stride - 1) / stride;
    const std::int64_t total = std::max<std::int64_t>(0, (a.out - 1) * stride + extent - in);
    a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    a.pad_end = total - a.pad_begin;
    return a;
  }
  if (auto_pad == "VALID") pad_begin = pad_end = 0;
  a.pad_begin = pad_begin;
  a.pad_end = pad_end;
  const std::int64_t span = in + pad_begin + pad_end;
  if (span < extent) {
    ctx.fail(fmt::format("the window ({} with dilation {}) is larger than the padded input {} along {}", kernel,
                         dilation, span, axis_name));
  }
  a.out = (span - extent) / stride + 1;
  if (ceil_mode && (span - extent) % stride != 0) {
    ++a.out;
    // PyTorch: the last window must start inside the input or its left padding.
    if ((a.out - 1) * stride >= in + pad_begin) --a.out;
  }
  return a;
}

// Conv and pooling geometry from kernel_shape, strides, dilations, pads and
// auto_pad; returns the window and sets out_h, out_w.
Window2d resolve_window(const AttrReader& attrs, const Context& ctx, std::int64_t in_h, std::int64_t in_w,
                        std::int64_t kernel_h, std::int64_t kernel_w, bool ceil_mode, std::int64_t* out_h,
                        std::int64_t* out_w) {
  const std::string auto_pad = attrs.get_string("auto_pad").value_or("NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID") {
    ctx.fail(fmt::format("auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", auto_pad));
  }
  if (auto_pad != "NOTSET" && attrs.has("pads")) ctx.fail("attributes 'pads' and 'auto_pad' cannot be used together");
  const auto strides = ints_attr(attrs, "strides", 2, 1, 1, ctx);
  const auto dilations = ints_attr(attrs, "dilations", 2, 1, 1, ctx);
  const auto pads = ints_attr(attrs, "pads", 4, 0, 0, ctx);
  const Axis h = window_axis(in_h, kernel_h, strides[0], dilations[0], pads[0], pads[2], auto_pad, ceil_mode, ctx,
                             "the height");
  const Axis w = window_axis(in_w, kernel_w, strides[1], dilations[1], pads[1], pads[3], auto_pad, ceil_mode, ctx,
                             "the width");
  *out_h = h.out;
  *out_w = w.out;
  Window2d win;
  win.kernel_h = kernel_h;
  win.kernel_w = kernel_w;
  win.stride_h = strides[0];
  win.stride_w = strides[1];
  win.dilation_h = dilations[0];
  win.dilation_w = dilations[1];
  win.pad_top = h.pad_begin;
  win.pad_bottom = h.pad_end;
  win.pad_left = w.pad_begin;
  win.pad_right = w.pad_end;
  return win;
}

// Pooling must see at least one input element in every window (a window
// wholly in the padding has no maximum, and no average without padding).
void check_windows_touch_input(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                               std::int64_t dilation, std::int64_t pad_begin, const Context& ctx,
                               std::string_view axis_name) {
  for (std::int64_t o = 0; o < out; ++o) {
    const std::int64_t start = o * stride - pad_begin;
    // The first tap at or after position 0, if the window has one.
    const std::int64_t first = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
    const bool touches = first < kernel && start + first * dilation < in;
    if (!touches) {
      ctx.fail(fmt::format("pooling window {} along {} lies wholly in the padding; reduce the pads", o, axis_name));
    }
  }
}

Shape checked_shape(Shape s, const Context& ctx, std::string_view what) {
  check_shape_limits(s, ctx, what);
  return s;
}

// --- operators ----------------------------------------------------------------------

BuiltNode build_conv(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 3, ctx);
  const ValueId x = float_input(in, 0, ctx, "X");
  const ValueId w = float_input(in, 1, ctx, "weight W");
  const auto bias = optional_float_input(in, 2, ctx, "bias B");
  const Shape& xs = shape_of(net, x);
  const Shape& ws = shape_of(net, w);
  if (xs.size() != 4) {
    ctx.fail(fmt::format("input X has shape {}; accsim runs 2-D convolutions on [N, C, H, W] tensors", dims_text(xs)));
  }
  check_rank(net, w, 4, ctx, "weight W");
  if (xs[0] != 1) ctx.fail(fmt::format("batch dimension is {}; accsim runs one sample at a time (N = 1)", xs[0]));
  const std::int64_t group = attrs.get_int("group").value_or(1);
  if (group < 1 || group > xs[1]) ctx.fail(fmt::format("group {} is out of range for {} input channels", group, xs[1]));
  if (xs[1] % group != 0) ctx.fail(fmt::format("{} input channels are not divisible by group {}", xs[1], group));
  if (ws[1] * group != xs[1]) {
    ctx.fail(fmt::format("weight W has shape {} but the input has {} channels in {} group{} (W needs {} per group)",
                         dims_text(ws), xs[1], group, group == 1 ? "" : "s", xs[1] / group));
  }
  if (ws[0] % group != 0) ctx.fail(fmt::format("{} output channels are not divisible by group {}", ws[0], group));
  if (const auto ks = attrs.get_ints("kernel_shape"); ks && (ks->size() != 2 || (*ks)[0] != ws[2] || (*ks)[1] != ws[3])) {
    ctx.fail(fmt::format("kernel_shape does not match the weight's shape {}", dims_text(ws)));
  }
  if (bias && shape_of(net, *bias) != Shape{ws[0]}) {
    ctx.fail(fmt::format("bias B has shape {}; it must be [{}]", dims_text(shape_of(net, *bias)), ws[0]));
  }
  BuiltNode b;
  ConvAttrs a;
  a.group = group;
  std::int64_t oh = 0, ow = 0;
  a.window = resolve_window(attrs, ctx, xs[2], xs[3], ws[2], ws[3], false, &oh, &ow);
  b.output_shape = checked_shape({1, ws[0], oh, ow}, ctx, "output");  // bounds oh * ow
  b.node.gemm = {ws[0] / group, ws[1] * ws[2] * ws[3], oh * ow, group};
  // im2col holds k x n values per group.
  if (b.node.gemm.k > kMaxTensorElements || b.node.gemm.n > kMaxTensorElements ||
      b.node.gemm.k * b.node.gemm.n > kMaxTensorElements) {
    ctx.fail(fmt::format("the lowered matrix ({} x {}) is too large", b.node.gemm.k, b.node.gemm.n));
  }
  b.node.attrs = a;
  b.node.inputs = {x, w};
  if (bias) b.node.inputs.push_back(bias);
  return b;
}

BuiltNode build_gemm(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 3, ctx);
  const ValueId a = float_input(in, 0, ctx, "A");
  const ValueId bv = float_input(in, 1, ctx, "B");
  const auto c = optional_float_input(in, 2, ctx, "C");
  check_rank(net, a, 2, ctx, "input A");
  check_rank(net, bv, 2, ctx, "input B");
  GemmAttrs g;
  g.alpha = attrs.get_float("alpha").value_or(1.0f);
  g.beta = attrs.get_float("beta").value_or(1.0f);
  g.trans_a = bool_attr(attrs, "transA", false, ctx);
  g.trans_b = bool_attr(attrs, "transB", false, ctx);
  const Shape& as = shape_of(net, a);
  const Shape& bs = shape_of(net, bv);
  const std::int64_t m = g.trans_a ? as[1] : as[0], k = g.trans_a ? as[0] : as[1];
  const std::int64_t kb = g.trans_b ? bs[1] : bs[0], n = g.trans_b ? bs[0] : bs[1];
  if (k != kb) {
    ctx.fail(fmt::format("A {}{} and B {}{} have different inner dimensions ({} and {})", dims_text(as),
                         g.trans_a ? " (transposed)" : "", dims_text(bs), g.trans_b ? " (transposed)" : "", k, kb));
  }
  if (c) {
    const Shape& cs = shape_of(net, *c);
    const Shape out{m, n};
    bool ok = cs.size() <= 2;
    for (std::size_t i = 0; ok && i < cs.size(); ++i) {
      const std::int64_t want = out[2 - cs.size() + i];
      ok = cs[i] == 1 || cs[i] == want;
    }
    if (!ok) ctx.fail(fmt::format("C has shape {}, which does not broadcast to [{}, {}]", dims_text(cs), m, n));
  }
  BuiltNode b;
  b.node.attrs = g;
  b.node.gemm = {m, k, n, 1};
  b.node.inputs = {a, bv};
  if (c) b.node.inputs.push_back(c);
  b.output_shape = checked_shape({m, n}, ctx, "output");
  return b;
}

// NumPy (multidirectional) broadcasting of two shapes.
Shape broadcast(const Shape& as, const Shape& bs, const Context& ctx) {
  const std::size_t rank = std::max(as.size(), bs.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i + as.size() >= rank ? as[i + as.size() - rank] : 1;
    const std::int64_t db = i + bs.size() >= rank ? bs[i + bs.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) {
      ctx.fail(fmt::format("shapes {} and {} do not broadcast", dims_text(as), dims_text(bs)));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

BuiltNode build_matmul(Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 2, ctx);
  const ValueId a = float_input(in, 0, ctx, "A");
  const ValueId bv = float_input(in, 1, ctx, "B");
  const Shape& as = shape_of(net, a);
  const Shape& bs = shape_of(net, bv);
  if (as.empty() || bs.empty()) ctx.fail("MatMul operands must have at least one dimension");
  const std::int64_t k = as.back();
  const std::int64_t kb = bs.size() == 1 ? bs[0] : bs[bs.size() - 2];
  if (k != kb) {
    ctx.fail(fmt::format("A {} and B {} have different inner dimensions ({} and {})", dims_text(as), dims_text(bs), k,
                         kb));
  }
  BuiltNode b;
  b.node.attrs = GemmAttrs{1.0f, 0.0f, false, false};
  b.node.inputs = {a, bv};
  if (bs.size() <= 2) {
    // B is one matrix (a weight, typically): A's leading dimensions fold
    // into the rows of one GEMM.
    const std::int64_t n = bs.size() == 2 ? bs[1] : 1;
    Shape out(as.begin(), as.end() - 1);
    std::int64_t m = 1;
    for (std::int64_t d : out) m *= d;  // bounded: A's element count is
    if (bs.size() == 2) out.push_back(n);
    b.node.gemm = {m, k, n, 1};
    b.output_shape = checked_shape(out, ctx, "output");
    return b;
  }
  // Batched: [..., M, K] x [..., K, N], the batch dimensions broadcast (a
  // 1-D A is one row, dropped from the output as NumPy does).
  const Shape a2 = as.size() == 1 ? Shape{1, as[0]} : as;
  const Shape a_batch(a2.begin(), a2.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  const Shape batch = broadcast(a_batch, b_batch, ctx);
  const std::int64_t m = a2[a2.size() - 2], n = bs.back();
  Shape out = batch;
  if (as.size() > 1) out.push_back(m);
  out.push_back(n);
  b.output_shape = checked_shape(out, ctx, "output");
  const std::int64_t groups = element_count(batch);
  b.node.gemm = {m, k, n, groups};
  // Offsets of each batch matrix in A and B: a broadcast dimension (1)
  // contributes nothing.
  auto offsets = [&](const Shape& own) {
    std::vector<std::int64_t> result(static_cast<std::size_t>(groups));
    for (std::int64_t g = 0; g < groups; ++g) {
      std::int64_t rest = g, offset = 0, stride = 1;
      for (std::size_t d = batch.size(); d-- > 0;) {
        const std::int64_t idx = rest % batch[d];
        rest /= batch[d];
        const std::size_t o = d + own.size();
        if (o >= batch.size()) {
          const std::int64_t dim = own[o - batch.size()];
          if (dim != 1) offset += idx * stride;
          stride *= dim;
        }
      }
      result[static_cast<std::size_t>(g)] = offset;
    }
    return result;
  };
  b.node.batch_a = offsets(a_batch);
  b.node.batch_b = offsets(b_batch);
  return b;
}

// Add, Sub, Mul, Div, Pow, Equal (two inputs) and Where (three): elementwise
// with broadcasting.
BuiltNode build_broadcast(Inputs in, std::size_t count, const Network& net, const Context& ctx) {
  check_input_count(in, count, count, ctx);
  static constexpr std::string_view kRoles[] = {"A", "B", "C"};
  BuiltNode b;
  Shape out;
  for (std::size_t i = 0; i < count; ++i) {
    const ValueId v = float_input(in, i, ctx, count == 3 ? std::string_view("condition, X or Y") : kRoles[i]);
    out = i == 0 ? shape_of(net, v) : broadcast(out, shape_of(net, v), ctx);
    b.node.inputs.push_back(v);
  }
  b.output_shape = checked_shape(out, ctx, "output");
  return b;
}

BuiltNode build_unary(Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 1, 1, ctx);
  const ValueId x = float_input(in, 0, ctx, "X");
  BuiltNode b;
  b.node.inputs = {x};
  b.output_shape = shape_of(net, x);
  return b;
}

float clip_bound(Inputs in, std::size_t i, float fallback, const Network& net, const Context& ctx,
                 std::string_view role) {
  const auto v = optional_float_input(in, i, ctx, role);
  if (!v) return fallback;
  const std::vector<float>* data = constant_of(net, *v);
  if (data == nullptr) ctx.fail(fmt::format("{} must be a constant (an initializer or a Constant node)", role));
  if (data->size() != 1) ctx.fail(fmt::format("{} has shape {}; it must be a scalar", role, dims_text(shape_of(net, *v))));
  return (*data)[0];
}

BuiltNode build_clip(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset, const Context& ctx) {
  ClipAttrs c;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (opset < 11) {
    check_input_count(in, 1, 1, ctx);
    c.min = attrs.get_float("min").value_or(-kInf);
    c.max = attrs.get_float("max").value_or(kInf);
  } else {
    if (attrs.has("min") || attrs.has("max")) ctx.fail("from opset 11 on, Clip takes min and max as inputs, not attributes");
    check_input_count(in, 1, 3, ctx);
    c.min = clip_bound(in, 1, -kInf, net, ctx, "min");
    c.max = clip_bound(in, 2, kInf, net, ctx, "max");
  }
  BuiltNode b = build_unary(in.subspan(0, 1), net, ctx);
  b.node.attrs = c;
  return b;
}

BuiltNode build_pool(Op op, const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 1, 1, ctx);
  const ValueId x = float_input(in, 0, ctx, "X");
  const Shape& xs = shape_of(net, x);
  if (xs.size() != 4) ctx.fail(fmt::format("input X has shape {}; accsim pools [N, C, H, W] tensors", dims_text(xs)));
  const auto kernel = attrs.get_ints("kernel_shape");
  if (!kernel) ctx.fail("attribute 'kernel_shape' is missing");
  if (kernel->size() != 2) ctx.fail(fmt::format("kernel_shape has {} values; accsim pools in 2-D", kernel->size()));
  for (std::int64_t k : *kernel) {
    if (k < 1 || k > kMaxAttr) ctx.fail(fmt::format("kernel_shape value {} is out of range", k));
  }
  const bool ceil_mode = bool_attr(attrs, "ceil_mode", false, ctx);
  if (const auto order = attrs.get_int("storage_order"); order && *order != 0 && *order != 1) {
    ctx.fail("attribute 'storage_order' must be 0 or 1");
  }
  PoolAttrs p;
  std::int64_t oh = 0, ow = 0;
  p.window = resolve_window(attrs, ctx, xs[2], xs[3], (*kernel)[0], (*kernel)[1], ceil_mode, &oh, &ow);
  BuiltNode b;
  b.output_shape = checked_shape({xs[0], xs[1], oh, ow}, ctx, "output");  // bounds oh and ow
  if (op == Op::AveragePool) p.count_include_pad = bool_attr(attrs, "count_include_pad", false, ctx);
  const Window2d& w = p.window;
  check_windows_touch_input(xs[2], oh, w.kernel_h, w.stride_h, w.dilation_h, w.pad_top, ctx, "the height");
  check_windows_touch_input(xs[3], ow, w.kernel_w, w.stride_w, w.dilation_w, w.pad_left, ctx, "the width");
  b.node.attrs = p;
  b.node.inputs = {x};
  return b;
}

BuiltNode build_global_average_pool(Inputs in, const Network& net, const Context& ctx) {
  BuiltNode b = build_unary(in, net, ctx);
  Shape& s = b.output_shape;
  if (s.size() < 3) ctx.fail(fmt::format("input X has shape {}; it needs [N, C, spatial...]", dims_text(s)));
  for (std::size_t i = 2; i < s.size(); ++i) s[i] = 1;
  return b;
}

BuiltNode build_flatten(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  BuiltNode b = build_unary(in, net, ctx);
  const Shape xs = b.output_shape;
  const std::int64_t axis =
      normalize_axis(attrs.get_int("axis").value_or(1), static_cast<std::int64_t>(xs.size()), true, ctx);
  std::int64_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < xs.size(); ++i) (static_cast<std::int64_t>(i) < axis ? outer : inner) *= xs[i];
  b.output_shape = {outer, inner};
  return b;
}

BuiltNode build_reshape(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                        const Context& ctx) {
  check_input_count(in, 2, 2, ctx);
  const ValueId x = float_input(in, 0, ctx, "data");
  if (!in[1].present) ctx.fail("input 1 (shape) is missing");
  if (in[1].int64 == nullptr) {
    ctx.fail(fmt::format("input 1 (shape) '{}' must be an int64 constant (an initializer or a Constant node)",
                         in[1].name));
  }
  const IntTensor& target = *in[1].int64;
  if (target.shape.size() != 1) ctx.fail("input 1 (shape) must be a 1-D tensor");
  const bool allow_zero = opset >= 14 && bool_attr(attrs, "allowzero", false, ctx);
  const Shape& xs = shape_of(net, x);
  Shape out(target.data.size());
  std::optional<std::size_t> infer;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::int64_t d = target.data[i];
    if (d == 0 && !allow_zero) {
      if (i >= xs.size()) ctx.fail(fmt::format("shape entry {} is 0 (copy) but the input has only {} dimensions", i, xs.size()));
      d = xs[i];
    }
    if (d == -1) {
      if (infer) ctx.fail("shape has more than one -1");
      infer = i;
      continue;
    }
    if (d < 1) ctx.fail(fmt::format("shape entry {} is {}; empty and negative dimensions are not supported", i, d));
    if (d > kMaxTensorElements || known * d > kMaxTensorElements) ctx.fail("target shape is too large");
    known *= d;
    out[i] = d;
  }
  const std::int64_t count = element_count(xs);
  if (infer) {
    if (count % known != 0) ctx.fail(fmt::format("cannot reshape {} into {}", dims_text(xs), dims_text(Shape(target.data))));
    out[*infer] = count / known;
  } else if (known != count) {
    ctx.fail(fmt::format("cannot reshape {} ({} elements) into {} ({} elements)", dims_text(xs), count,
                         dims_text(out), known));
  }
  BuiltNode b;
  b.node.inputs = {x};
  b.output_shape = checked_shape(out, ctx, "output");
  return b;
}

BuiltNode build_batch_norm(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 5, 5, ctx);
  const ValueId x = float_input(in, 0, ctx, "X");
  const Shape& xs = shape_of(net, x);
  if (xs.size() < 2) ctx.fail(fmt::format("input X has shape {}; it needs [N, C, ...]", dims_text(xs)));
  if (bool_attr(attrs, "training_mode", false, ctx)) ctx.fail("training_mode = 1 is not supported (inference only)");
  if (const auto spatial = attrs.get_int("spatial"); spatial && *spatial != 1) {
    ctx.fail("spatial = 0 (per-activation statistics) is not supported");
  }
  BatchNormAttrs bn;
  bn.epsilon = attrs.get_float("epsilon").value_or(1e-5f);
  if (!(bn.epsilon >= 0)) ctx.fail("epsilon must not be negative");
  BuiltNode b;
  b.node.inputs = {x};
  static constexpr std::string_view kRoles[] = {"scale", "B", "input_mean", "input_var"};
  for (std::size_t i = 1; i < 5; ++i) {
    const ValueId v = float_input(in, i, ctx, kRoles[i - 1]);
    if (shape_of(net, v) != Shape{xs[1]}) {
      ctx.fail(fmt::format("{} has shape {}; it must be [{}]", kRoles[i - 1], dims_text(shape_of(net, v)), xs[1]));
    }
    b.node.inputs.push_back(v);
  }
  if (const std::vector<float>* var = constant_of(net, *b.node.inputs[4])) {
    for (std::size_t c = 0; c < var->size(); ++c) {
      if (!(static_cast<double>((*var)[c]) + bn.epsilon > 0)) {
        ctx.fail(fmt::format("input_var + epsilon is not positive for channel {}", c));
      }
    }
  }
  b.node.attrs = bn;
  b.output_shape = xs;
  return b;
}

BuiltNode build_softmax(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                        const Context& ctx) {
  BuiltNode b = build_unary(in, net, ctx);
  const auto rank = static_cast<std::int64_t>(b.output_shape.size());
  if (rank == 0) ctx.fail("input is a scalar; Softmax needs at least one dimension");
  SoftmaxAttrs s;
  s.over_trailing = opset < 13;
  s.axis = normalize_axis(attrs.get_int("axis").value_or(opset < 13 ? 1 : -1), rank, false, ctx);
  b.node.attrs = s;
  return b;
}

BuiltNode build_concat(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  if (in.empty()) ctx.fail("takes at least one input, has none");
  const auto axis_attr = attrs.get_int("axis");
  if (!axis_attr) ctx.fail("attribute 'axis' is missing");
  BuiltNode b;
  Shape out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const ValueId v = float_input(in, i, ctx, "input");
    const Shape& s = shape_of(net, v);
    if (i == 0) {
      if (s.empty()) ctx.fail("cannot concatenate scalars");
      out = s;
      b.node.attrs = ConcatAttrs{normalize_axis(*axis_attr, static_cast<std::int64_t>(s.size()), false, ctx)};
    } else {
      const auto axis = static_cast<std::size_t>(std::get<ConcatAttrs>(b.node.attrs).axis);
      bool ok = s.size() == out.size();
      for (std::size_t d = 0; ok && d < s.size(); ++d) ok = d == axis || s[d] == out[d];
      if (!ok) ctx.fail(fmt::format("input {} has shape {}, which does not match {} outside the axis", i, dims_text(s), dims_text(shape_of(net, *b.node.inputs[0]))));
      out[axis] += s[axis];
      if (out[axis] > kMaxTensorElements) ctx.fail("output is too large");
    }
    b.node.inputs.push_back(v);
  }
  b.output_shape = checked_shape(out, ctx, "output");
  return b;
}


// An int64 constant input (a shape, indices, axes); `role` names it.
const IntTensor& int_input(Inputs in, std::size_t i, const Context& ctx, std::string_view role) {
  if (i >= in.size() || !in[i].present) ctx.fail(fmt::format("input {} ({}) is missing", i, role));
  if (in[i].int64 == nullptr) {
    ctx.fail(fmt::format("input {} ({}) '{}' must be an int64 constant (an initializer, a Constant node, or computed "
                         "from shapes at load time)",
                         i, role, in[i].name));
  }
  return *in[i].int64;
}
const IntTensor* optional_int_input(Inputs in, std::size_t i, const Context& ctx, std::string_view role) {
  if (i >= in.size() || !in[i].present) return nullptr;
  return &int_input(in, i, ctx, role);
}

// Axes from an attribute or an input, normalized against `rank`, distinct.
std::vector<std::int64_t> normalize_axes(const std::vector<std::int64_t>& axes, std::int64_t rank, const Context& ctx) {
  if (static_cast<std::int64_t>(axes.size()) > rank) {
    ctx.fail(fmt::format("{} axes given for a tensor of {} dimensions", axes.size(), rank));
  }
  std::vector<std::int64_t> out;
  for (std::int64_t a : axes) {
    const std::int64_t n = normalize_axis(a, rank, false, ctx);
    if (std::find(out.begin(), out.end(), n) != out.end()) ctx.fail(fmt::format("axis {} appears twice", a));
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::int64_t> axes_from(const AttrReader& attrs, Inputs in, std::size_t input_index, bool as_input,
                                    const Context& ctx, bool* given) {
  *given = false;
  if (as_input) {
    if (attrs.has("axes")) ctx.fail("from this opset on, axes is an input, not an attribute");
    const IntTensor* t = optional_int_input(in, input_index, ctx, "axes");
    if (t == nullptr) return {};
    if (t->shape.size() > 1) ctx.fail("input axes must be a 1-D tensor");
    *given = true;
    return t->data;
  }
  if (in.size() > input_index) ctx.fail(fmt::format("takes 1 input at this opset, has {}", in.size()));
  auto a = attrs.get_ints("axes");
  if (!a) return {};
  *given = true;
  return *a;
}

BuiltNode build_transpose(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  BuiltNode b = build_unary(in, net, ctx);
  const Shape xs = b.output_shape;
  const auto rank = static_cast<std::int64_t>(xs.size());
  TransposeAttrs t;
  if (const auto perm = attrs.get_ints("perm")) {
    t.perm = *perm;
  } else {
    for (std::int64_t i = rank; i-- > 0;) t.perm.push_back(i);
  }
  std::vector<bool> seen(xs.size(), false);
  if (static_cast<std::int64_t>(t.perm.size()) != rank) {
    ctx.fail(fmt::format("perm has {} entries; the input {} has {} dimensions", t.perm.size(), dims_text(xs), rank));
  }
  for (std::size_t i = 0; i < t.perm.size(); ++i) {
    const std::int64_t p = t.perm[i];
    if (p < 0 || p >= rank || seen[static_cast<std::size_t>(p)]) ctx.fail("perm is not a permutation of the dimensions");
    seen[static_cast<std::size_t>(p)] = true;
    b.output_shape[i] = xs[static_cast<std::size_t>(p)];
  }
  b.node.attrs = t;
  return b;
}

BuiltNode build_gather(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 2, ctx);
  const ValueId x = float_input(in, 0, ctx, "data");
  const IntTensor& idx = int_input(in, 1, ctx, "indices");
  const Shape& xs = shape_of(net, x);
  if (xs.empty()) ctx.fail("data is a scalar; Gather needs at least one dimension");
  GatherAttrs g;
  g.axis = normalize_axis(attrs.get_int("axis").value_or(0), static_cast<std::int64_t>(xs.size()), false, ctx);
  const std::int64_t len = xs[static_cast<std::size_t>(g.axis)];
  for (std::int64_t i : idx.data) {
    if (i < -len || i >= len) ctx.fail(fmt::format("index {} is out of range for dimension {} of {}", i, g.axis, dims_text(xs)));
    g.indices.push_back(i < 0 ? i + len : i);
  }
  g.indices_shape = idx.shape;
  Shape out(xs.begin(), xs.begin() + g.axis);
  out.insert(out.end(), idx.shape.begin(), idx.shape.end());
  out.insert(out.end(), xs.begin() + g.axis + 1, xs.end());
  if (out.size() > static_cast<std::size_t>(kMaxRank)) ctx.fail("output has too many dimensions");
  BuiltNode b;
  b.node.attrs = std::move(g);
  b.node.inputs = {x};
  b.output_shape = checked_shape(out, ctx, "output");
  return b;
}

}  // namespace

// ONNX's clamping of one Slice range: start and end in [0, len] (positive
// step) or [-1, len - 1] (negative step); returns the output length.
std::int64_t slice_axis(std::int64_t len, std::int64_t start, std::int64_t end, std::int64_t step, std::int64_t* first) {
  auto clamp = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return std::min(std::max(v, lo), hi); };
  // Exporters write INT64_MIN / INT64_MAX for "to the end"; adding len to a
  // negative value cannot overflow.
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (step > 0) {
    start = clamp(start, 0, len);
    end = clamp(end, 0, len);
    *first = start;
    return end > start ? (end - start + step - 1) / step : 0;
  }
  start = clamp(start, -1, len - 1);
  end = clamp(end, -1, len - 1);
  *first = start;
  return start > end ? (start - end + (-step) - 1) / (-step) : 0;
}

namespace {

BuiltNode build_slice(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                      const Context& ctx) {
  std::vector<std::int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    check_input_count(in, 1, 1, ctx);
    starts = attrs.get_ints("starts").value_or(std::vector<std::int64_t>{});
    ends = attrs.get_ints("ends").value_or(std::vector<std::int64_t>{});
    if (!attrs.has("starts") || !attrs.has("ends")) ctx.fail("attributes 'starts' and 'ends' are required");
    if (auto a = attrs.get_ints("axes")) axes = *a;
  } else {
    check_input_count(in, 3, 5, ctx);
    starts = int_input(in, 1, ctx, "starts").data;
    ends = int_input(in, 2, ctx, "ends").data;
    if (const IntTensor* a = optional_int_input(in, 3, ctx, "axes")) axes = a->data;
    if (const IntTensor* st = optional_int_input(in, 4, ctx, "steps")) steps = st->data;
  }
  const ValueId x = float_input(in, 0, ctx, "data");
  const Shape& xs = shape_of(net, x);
  const auto rank = static_cast<std::int64_t>(xs.size());
  if (ends.size() != starts.size()) ctx.fail(fmt::format("starts has {} entries but ends has {}", starts.size(), ends.size()));
  if (axes.empty()) {
    if (starts.size() > xs.size()) ctx.fail("starts has more entries than the data has dimensions");
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) ctx.fail("starts, ends, axes and steps differ in length");
  SliceAttrs sl;
  sl.starts.assign(xs.size(), 0);
  sl.steps.assign(xs.size(), 1);
  Shape out = xs;
  std::vector<bool> seen(xs.size(), false);
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const auto a = static_cast<std::size_t>(normalize_axis(axes[i], rank, false, ctx));
    if (seen[a]) ctx.fail(fmt::format("axis {} is sliced twice", axes[i]));
    seen[a] = true;
    if (steps[i] == 0) ctx.fail("a step is 0");
    if (steps[i] < -kMaxAttr || steps[i] > kMaxAttr) ctx.fail(fmt::format("step {} is out of range", steps[i]));
    std::int64_t first = 0;
    out[a] = slice_axis(xs[a], starts[i], ends[i], steps[i], &first);
    if (out[a] == 0) ctx.fail(fmt::format("the slice of dimension {} is empty; empty tensors are not supported", a));
    sl.starts[a] = first;
    sl.steps[a] = steps[i];
  }
  BuiltNode b;
  b.node.attrs = std::move(sl);
  b.node.inputs = {x};
  b.output_shape = checked_shape(out, ctx, "output");
  return b;
}

BuiltNode build_unsqueeze(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                          const Context& ctx) {
  bool given = false;
  const std::vector<std::int64_t> axes = axes_from(attrs, in, 1, opset >= 13, ctx, &given);
  if (!given || axes.empty()) ctx.fail("axes are missing");
  BuiltNode b = build_unary(in.subspan(0, 1), net, ctx);
  const Shape xs = b.output_shape;
  const auto rank = static_cast<std::int64_t>(xs.size() + axes.size());
  if (rank > kMaxRank) ctx.fail("output has too many dimensions");
  const std::vector<std::int64_t> norm = normalize_axes(axes, rank, ctx);
  Shape out;
  std::size_t next = 0;
  for (std::int64_t i = 0; i < rank; ++i) {
    if (std::find(norm.begin(), norm.end(), i) != norm.end()) {
      out.push_back(1);
    } else {
      out.push_back(xs[next++]);
    }
  }
  b.output_shape = out;
  return b;
}

BuiltNode build_squeeze(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                        const Context& ctx) {
  bool given = false;
  const std::vector<std::int64_t> axes = axes_from(attrs, in, 1, opset >= 13, ctx, &given);
  BuiltNode b = build_unary(in.subspan(0, 1), net, ctx);
  const Shape xs = b.output_shape;
  const std::vector<std::int64_t> norm = normalize_axes(axes, static_cast<std::int64_t>(xs.size()), ctx);
  Shape out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const bool listed = std::find(norm.begin(), norm.end(), static_cast<std::int64_t>(i)) != norm.end();
    if (listed && xs[i] != 1) ctx.fail(fmt::format("dimension {} of {} is not 1 and cannot be squeezed", i, dims_text(xs)));
    if ((given && !listed) || (!given && xs[i] != 1)) out.push_back(xs[i]);
  }
  b.output_shape = out;
  return b;
}

BuiltNode build_expand(Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 2, ctx);
  const ValueId x = float_input(in, 0, ctx, "input");
  const IntTensor& shape = int_input(in, 1, ctx, "shape");
  if (shape.shape.size() != 1) ctx.fail("input shape must be a 1-D tensor");
  if (shape.data.size() > static_cast<std::size_t>(kMaxRank)) ctx.fail("shape has too many dimensions");
  for (std::int64_t d : shape.data) {
    if (d < 1 || d > kMaxTensorElements) ctx.fail(fmt::format("shape entry {} is out of range", d));
  }
  BuiltNode b;
  b.node.inputs = {x};
  b.output_shape = checked_shape(broadcast(shape_of(net, x), Shape(shape.data), ctx), ctx, "output");
  return b;
}

BuiltNode build_reduce_mean(const AttrReader& attrs, Inputs in, const Network& net, std::int64_t opset,
                            const Context& ctx) {
  bool given = false;
  const std::vector<std::int64_t> axes = axes_from(attrs, in, 1, opset >= 18, ctx, &given);
  const bool keep = bool_attr(attrs, "keepdims", true, ctx);
  const bool noop_empty = bool_attr(attrs, "noop_with_empty_axes", false, ctx);
  BuiltNode b = build_unary(in.subspan(0, 1), net, ctx);
  const Shape xs = b.output_shape;
  ReduceAttrs r;
  if (!given || axes.empty()) {
    if (!noop_empty) {
      for (std::size_t i = 0; i < xs.size(); ++i) r.axes.push_back(static_cast<std::int64_t>(i));
    }
  } else {
    r.axes = normalize_axes(axes, static_cast<std::int64_t>(xs.size()), ctx);
  }
  Shape out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const bool reduced = std::find(r.axes.begin(), r.axes.end(), static_cast<std::int64_t>(i)) != r.axes.end();
    if (!reduced) {
      out.push_back(xs[i]);
    } else if (keep) {
      out.push_back(1);
    }
  }
  b.node.attrs = std::move(r);
  b.output_shape = out;
  return b;
}

BuiltNode build_layer_norm(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  check_input_count(in, 2, 3, ctx);
  const ValueId x = float_input(in, 0, ctx, "X");
  const ValueId scale = float_input(in, 1, ctx, "Scale");
  const auto bias = optional_float_input(in, 2, ctx, "B");
  const Shape& xs = shape_of(net, x);
  if (xs.empty()) ctx.fail("input X is a scalar");
  LayerNormAttrs ln;
  ln.axis = normalize_axis(attrs.get_int("axis").value_or(-1), static_cast<std::int64_t>(xs.size()), false, ctx);
  ln.epsilon = attrs.get_float("epsilon").value_or(1e-5f);
  if (!(ln.epsilon >= 0)) ctx.fail("epsilon must not be negative");
  if (const auto st = attrs.get_int("stash_type"); st && *st != 1) ctx.fail("stash_type other than 1 (float) is not supported");
  // Scale and B cover the normalized dimensions [axis, rank) exactly
  // (leading 1s allowed), as every exporter writes them.
  const Shape normalized(xs.begin() + ln.axis, xs.end());
  auto check = [&](ValueId v, std::string_view role) {
    Shape s = shape_of(net, v);
    while (s.size() > normalized.size() && s.front() == 1) s.erase(s.begin());
    if (s != normalized) {
      ctx.fail(fmt::format("{} has shape {}; it must be the normalized shape {} of X {}", role,
                           dims_text(shape_of(net, v)), dims_text(normalized), dims_text(xs)));
    }
  };
  check(scale, "Scale");
  if (bias) check(*bias, "B");
  BuiltNode b;
  b.node.attrs = ln;
  b.node.inputs = {x, scale};
  if (bias) b.node.inputs.push_back(bias);
  b.output_shape = xs;
  return b;
}

BuiltNode build_cast(const AttrReader& attrs, Inputs in, const Network& net, const Context& ctx) {
  const auto to = attrs.get_int("to");
  if (!to) ctx.fail("attribute 'to' is missing");
  if (!cast_target_supported(*to)) {
    ctx.fail(fmt::format("casting to data type {} is not supported (FLOAT, DOUBLE, FLOAT16, INT64, INT32, BOOL are)", *to));
  }
  (void)attrs.get_int("saturate");
  return build_unary(in, net, ctx);
}

}  // namespace

std::vector<std::int64_t> split_sizes(const onnx::NodeProto& proto, Inputs in, const Network& net, std::int64_t opset,
                                      const Context& ctx) {
  const AttrReader attrs(proto, ctx, {"axis", "split", "num_outputs"});
  const ValueId x = float_input(in, 0, ctx, "input");
  const Shape& xs = shape_of(net, x);
  if (xs.empty()) ctx.fail("input is a scalar; Split needs at least one dimension");
  const std::int64_t axis = normalize_axis(attrs.get_int("axis").value_or(0), static_cast<std::int64_t>(xs.size()), false, ctx);
  const std::int64_t len = xs[static_cast<std::size_t>(axis)];
  const auto outputs = static_cast<std::int64_t>(proto.output_size());
  std::vector<std::int64_t> sizes;
  if (opset < 13) {
    check_input_count(in, 1, 1, ctx);
    if (auto sp = attrs.get_ints("split")) sizes = *sp;
  } else {
    check_input_count(in, 1, 2, ctx);
    if (attrs.has("split")) ctx.fail("from opset 13 on, split is an input, not an attribute");
    if (const IntTensor* sp = optional_int_input(in, 1, ctx, "split")) sizes = sp->data;
  }
  if (sizes.empty()) {
    const std::int64_t parts = attrs.get_int("num_outputs").value_or(outputs);
    if (parts != outputs || parts < 1) ctx.fail(fmt::format("num_outputs is {} but the node has {} outputs", parts, outputs));
    // Equal parts; opset 18 lets the last be smaller.
    const std::int64_t each = (len + parts - 1) / parts;
    if (opset < 18 && len % parts != 0) ctx.fail(fmt::format("dimension {} ({}) does not split into {} equal parts", axis, len, parts));
    for (std::int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(each, len - i * each));
  }
  if (static_cast<std::int64_t>(sizes.size()) != outputs) {
    ctx.fail(fmt::format("split has {} sizes but the node has {} outputs", sizes.size(), outputs));
  }
  std::int64_t total = 0;
  for (std::int64_t sz : sizes) {
    if (sz < 1 || sz > len) ctx.fail(fmt::format("split size {} is out of range (empty outputs are not supported)", sz));
    total += sz;
  }
  if (total != len) ctx.fail(fmt::format("split sizes sum to {}, but dimension {} of {} is {}", total, axis, dims_text(xs), len));
  sizes.insert(sizes.begin(), axis);  // [axis, sizes...]
  return sizes;
}

BuiltNode build_slice_part(const Network& net, ValueId x, std::int64_t axis, std::int64_t start, std::int64_t length) {
  const Shape& xs = shape_of(net, x);
  SliceAttrs sl;
  sl.starts.assign(xs.size(), 0);
  sl.steps.assign(xs.size(), 1);
  sl.starts[static_cast<std::size_t>(axis)] = start;
  BuiltNode b;
  b.node.op = Op::Slice;
  b.node.attrs = std::move(sl);
  b.node.inputs = {x};
  b.output_shape = xs;
  b.output_shape[static_cast<std::size_t>(axis)] = length;
  return b;
}

bool cast_target_supported(std::int64_t to) {
  return to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE || to == onnx::TensorProto::FLOAT16 ||
         cast_target_is_integer(to);
}
bool cast_target_is_integer(std::int64_t to) {
  return to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32 || to == onnx::TensorProto::BOOL;
}

namespace {
}  // namespace

BuiltNode build_operator(Op op, const onnx::NodeProto& proto, Inputs in, const Network& net, std::int64_t opset,
                         const Context& ctx) {
  BuiltNode b;
  switch (op) {
    case Op::Conv:
      b = build_conv(AttrReader(proto, ctx, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}), in,
                     net, ctx);
      break;
    case Op::Gemm:
      b = build_gemm(AttrReader(proto, ctx, {"alpha", "beta", "transA", "transB"}), in, net, ctx);
      break;
    case Op::MatMul:
      (void)AttrReader(proto, ctx, {});
      b = build_matmul(in, net, ctx);
      break;
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
    case Op::Pow:
    case Op::Equal:
      (void)AttrReader(proto, ctx, {});
      b = build_broadcast(in, 2, net, ctx);
      break;
    case Op::Where:
      (void)AttrReader(proto, ctx, {});
      b = build_broadcast(in, 3, net, ctx);
      break;
    case Op::Relu:
    case Op::Identity:
    case Op::Sqrt:
    case Op::Neg:
    case Op::Erf:
    case Op::Tanh:
      (void)AttrReader(proto, ctx, {});
      b = build_unary(in, net, ctx);
      break;
    case Op::Clip:
      b = build_clip(AttrReader(proto, ctx, {"min", "max"}), in, net, opset, ctx);
      break;
    case Op::MaxPool:
      b = build_pool(op, AttrReader(proto, ctx, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                                 "storage_order", "strides"}),
                     in, net, ctx);
      break;
    case Op::AveragePool:
      b = build_pool(op, AttrReader(proto, ctx, {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                                 "kernel_shape", "pads", "strides"}),
                     in, net, ctx);
      break;
    case Op::GlobalAveragePool:
      (void)AttrReader(proto, ctx, {});
      b = build_global_average_pool(in, net, ctx);
      break;
    case Op::Flatten:
      b = build_flatten(AttrReader(proto, ctx, {"axis"}), in, net, ctx);
      break;
    case Op::Reshape:
      b = build_reshape(AttrReader(proto, ctx, {"allowzero"}), in, net, opset, ctx);
      break;
    case Op::BatchNormalization:
      b = build_batch_norm(
          AttrReader(proto, ctx, {"epsilon", "momentum", "training_mode", "spatial", "consumed_inputs", "is_test"}),
          in, net, ctx);
      break;
    case Op::Softmax:
      b = build_softmax(AttrReader(proto, ctx, {"axis"}), in, net, opset, ctx);
      break;
    case Op::Concat:
      b = build_concat(AttrReader(proto, ctx, {"axis"}), in, net, ctx);
      break;
    case Op::Transpose:
      b = build_transpose(AttrReader(proto, ctx, {"perm"}), in, net, ctx);
      break;
    case Op::Gather:
      b = build_gather(AttrReader(proto, ctx, {"axis"}), in, net, ctx);
      break;
    case Op::Slice:
      b = build_slice(AttrReader(proto, ctx, {"starts", "ends", "axes"}), in, net, opset, ctx);
      break;
    case Op::Unsqueeze:
      b = build_unsqueeze(AttrReader(proto, ctx, {"axes"}), in, net, opset, ctx);
      break;
    case Op::Squeeze:
      b = build_squeeze(AttrReader(proto, ctx, {"axes"}), in, net, opset, ctx);
      break;
    case Op::Expand:
      (void)AttrReader(proto, ctx, {});
      b = build_expand(in, net, ctx);
      break;
    case Op::ReduceMean:
      b = build_reduce_mean(AttrReader(proto, ctx, {"axes", "keepdims", "noop_with_empty_axes"}), in, net, opset, ctx);
      break;
    case Op::LayerNormalization:
      b = build_layer_norm(AttrReader(proto, ctx, {"axis", "epsilon", "stash_type"}), in, net, ctx);
      break;
    case Op::Cast:
      b = build_cast(AttrReader(proto, ctx, {"to", "saturate"}), in, net, ctx);
      break;
    case Op::Constant:
    case Op::ConstantOfShape:
    case Op::ShapeOf:
    case Op::Split:
      ctx.fail("internal: the loader builds this operator itself");
  }
  b.node.op = op;
  return b;
}

}  // namespace accsim::net::detail
