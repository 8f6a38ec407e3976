// The `accsim` Python module: a thin shell over the libraries the CLI links
// (python/layer.hpp over sim/network and models/reference). It checks every
// argument at the boundary (a Python exception that names it), releases the
// GIL around the C++ work, and hands arrays back without copies.
//
//   import accsim
//   a = accsim.Arithmetic()                      # `accsim run`'s defaults
//   y = accsim.conv2d(x, w, b, padding=1, arithmetic=a)
//   y, info = accsim.conv2d(x, w, b, padding=1, arithmetic=a, masks="fine")
//
// docs/finetune.md documents the functions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "python/layer.hpp"
#include "sim/errors.hpp"
#include "sim/network/layer_config.hpp"
#include "sim/network/onnx_loader.hpp"
#include "sim/run_command.hpp"

namespace py = pybind11;
using namespace accsim;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

[[noreturn]] void value_error(const std::string& name, const std::string& problem) {
  throw py::value_error(name + ": " + problem);
}

// A float32 C-contiguous view of `obj` (a NumPy array or a CPU tensor; no
// copy when it already is one), after checking what forcecast would hide:
// the device, a dtype that is not floating point, the rank, NaN and inf.
FloatArray float_array(py::handle obj, const std::string& name, std::optional<int> ndim) {
  if (obj.is_none()) value_error(name, "is None");
  py::object value = py::reinterpret_borrow<py::object>(obj);
  if (py::hasattr(value, "device") && py::hasattr(value, "detach")) {  // a torch.Tensor
    const std::string device = py::str(value.attr("device").attr("type"));
    if (device != "cpu") value_error(name, "is on device '" + device + "'; accsim computes on the CPU (pass .cpu())");
    value = value.attr("detach")();
  }
  py::array any = py::array::ensure(value);
  if (!any) throw py::type_error(name + ": expected a NumPy array or a torch.Tensor, got " +
                                 std::string(py::str(py::type::of(value).attr("__name__"))));
  const char kind = any.dtype().kind();
  if (kind != 'f') {
    throw py::type_error(name + ": dtype " + std::string(py::str(any.dtype())) +
                         " is not a floating-point type (float32 expected)");
  }
  FloatArray a = FloatArray::ensure(any);
  if (!a) value_error(name, "cannot be converted to float32");
  if (ndim && a.ndim() != *ndim) {
    value_error(name, "expected " + std::to_string(*ndim) + " dimensions, got " + std::to_string(a.ndim()));
  }
  // A branch-free scan of the exponent fields first (it vectorizes; batches
  // are megabytes), the element named only when there is one.
  const float* p = a.data();
  const auto n = static_cast<std::size_t>(a.size());
  std::uint32_t special = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, p + i, sizeof u);
    special |= static_cast<std::uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  if (special != 0) {
    const std::size_t i = static_cast<std::size_t>(std::find_if(p, p + n, [](float v) { return !std::isfinite(v); }) - p);
    value_error(name, std::string(std::isnan(p[i]) ? "NaN" : "infinity") + " at flat index " + std::to_string(i));
  }
  return a;
}

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(v));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owner->data(), free_when_done);
}

py::dict counts_dict(const num::EventCounts& c) {
  py::dict d;
  d["ops"] = c.ops;
  d["overflow"] = c.overflow;
  d["underflow"] = c.underflow;
  d["swamp"] = c.swamp;
  d["inexact"] = c.inexact;
  return d;
}

py::dict tallies_dict(const accsim::binding::Tallies& t) {
  py::dict d;
  d["product"] = counts_dict(t.product);
  d["accumulate"] = counts_dict(t.accumulate);
  d["merge"] = counts_dict(t.merge);
  return d;
}

accsim::binding::MaskKind parse_masks(const std::optional<std::string>& masks) {
  using accsim::binding::MaskKind;
  if (!masks) return MaskKind::none;
  if (*masks == "events") return MaskKind::events;
  if (*masks == "fine") return MaskKind::fine;
  if (*masks == "recursive") return MaskKind::recursive;
  value_error("masks", "'" + *masks + "' is not one of None, 'events', 'fine', 'recursive'");
}

// An int or a tuple of `n` ints.
std::vector<std::int64_t> ints(py::handle obj, const std::string& name, std::vector<std::size_t> lengths) {
  std::vector<std::int64_t> out;
  if (py::isinstance<py::int_>(obj)) {
    out.push_back(obj.cast<std::int64_t>());
    return out;
  }
  try {
    out = obj.cast<std::vector<std::int64_t>>();
  } catch (const py::cast_error&) {
    value_error(name, "expected an int or a tuple of ints");
  }
  if (std::find(lengths.begin(), lengths.end(), out.size()) == lengths.end()) {
    value_error(name, "has " + std::to_string(out.size()) + " elements");
  }
  return out;
}

net::LayerArithmetic make_arithmetic(const std::string& mul, const std::string& prod, const std::string& acc,
                                     const std::string& order, const std::string& scale, const std::string& engine) {
  net::LayerArithmetic a;
  a.engine = net::Engine::reference;
  net::apply_setting(a, "mul", mul, "mul");
  net::apply_setting(a, "prod", prod, "prod");
  net::apply_setting(a, "acc", acc, "acc");
  net::apply_setting(a, "order", order, "order");
  net::apply_setting(a, "scale", scale, "scale");
  net::apply_setting(a, "engine", engine, "engine");
  return a;
}

// `accsim run`'s defaults (sim/run_command.hpp): the paper's 12-bit configuration.
net::LayerArithmetic run_defaults() {
  return make_arithmetic(sim::kDefaultMultiplier, sim::kDefaultProduct, sim::kDefaultAccumulator, sim::kDefaultOrder,
                         sim::kDefaultScale, "reference");
}

py::object layer_result(py::array_t<float> y, accsim::binding::RunResult&& r, accsim::binding::MaskKind kind,
                        std::vector<py::ssize_t> out_shape, py::ssize_t positions) {
  if (kind == accsim::binding::MaskKind::none) return y;
  py::dict info;
  info["events"] = to_numpy(std::move(r.events), out_shape);
  if (r.drop.empty()) {
    info["drop"] = py::none();
  } else {
    const auto stride = static_cast<py::ssize_t>(r.drop_stride);
    info["drop"] = to_numpy(std::move(r.drop), {out_shape[0], out_shape[1], positions, stride});
  }
  info["reference"] = tallies_dict(r.reference);
  info["replayed"] = tallies_dict(r.replayed);
  return py::make_tuple(y, info);
}

}  // namespace

PYBIND11_MODULE(accsim, m) {
  m.doc() = "accsim's reference GEMM and network executor on NumPy arrays and PyTorch tensors";
  m.attr("__version__") = ACCSIM_VERSION;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const sim::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<net::LayerArithmetic>(m, "Arithmetic",
                                   "How a GEMM layer computes: the settings of `accsim run` (docs/run.md); the "
                                   "defaults are its defaults, the paper's 12-bit configuration.")
      .def(py::init(&make_arithmetic), py::arg("mul") = sim::kDefaultMultiplier,
           py::arg("prod") = sim::kDefaultProduct, py::arg("acc") = sim::kDefaultAccumulator,
           py::arg("order") = sim::kDefaultOrder, py::arg("scale") = sim::kDefaultScale,
           py::arg("engine") = "reference")
      .def(
          "with_setting",
          [](net::LayerArithmetic a, const std::string& key, const std::string& value) {
            net::apply_setting(a, key, value, key);
            return a;
          },
          py::arg("key"), py::arg("value"), "A copy with one `--layer` key (engine, mul, prod, acc, order, scale) set.")
      .def_property_readonly("engine",
                             [](const net::LayerArithmetic& a) { return a.engine == net::Engine::fp32 ? "fp32" : "reference"; })
      .def_property_readonly("mul", [](const net::LayerArithmetic& a) { return num::to_string(a.config.multiplier); })
      .def_property_readonly("prod", [](const net::LayerArithmetic& a) {
        return a.config.product ? num::to_string(*a.config.product) : std::string("exact");
      })
      .def_property_readonly("acc", [](const net::LayerArithmetic& a) { return num::to_string(a.config.accumulator); })
      .def_property_readonly("order", [](const net::LayerArithmetic& a) { return ref::to_string(a.config.order); })
      .def_property_readonly("scale",
                             [](const net::LayerArithmetic& a) { return std::string(ref::to_string(a.config.scaling)); })
      .def("__eq__", [](const net::LayerArithmetic& a, const net::LayerArithmetic& b) { return a == b; })
      .def("__repr__", [](const net::LayerArithmetic& a) { return "<accsim.Arithmetic " + net::describe(a) + ">"; });

  m.def(
      "layer_arithmetic",
      [](const std::string& onnx, const net::LayerArithmetic& base, const std::vector<std::string>& layer,
         const std::optional<std::string>& layer_config) {
        std::vector<net::LayerOverride> overrides;
        net::Network network;
        {
          py::gil_scoped_release release;
          network = net::load_onnx(onnx);
          if (layer_config) overrides = net::read_layer_config(*layer_config);
          for (const std::string& flag : layer) overrides.push_back(net::parse_layer_flag(flag));
        }
        const std::vector<net::LayerArithmetic> resolved = net::resolve_layers(network, base, overrides);
        std::vector<std::pair<std::string, net::LayerArithmetic>> out;
        for (std::size_t l = 0; l < resolved.size(); ++l) {
          out.emplace_back(network.nodes[network.gemm_layers[l]].name, resolved[l]);
        }
        return out;
      },
      py::arg("onnx"), py::arg("base") = run_defaults(), py::arg("layer") = std::vector<std::string>{},
      py::arg("layer_config") = std::nullopt,
      "[(node name, Arithmetic)] for every GEMM layer of an ONNX model, in graph order: `base`, then the "
      "overrides of --layer-config and --layer, resolved exactly as `accsim run` does.");

  m.def(
      "conv2d",
      [](py::handle x_obj, py::handle w_obj, py::handle b_obj, py::handle stride, py::handle padding,
         py::handle dilation, std::int64_t groups, const net::LayerArithmetic& arithmetic,
         const std::optional<std::string>& masks, unsigned threads, bool per_sample) {
        const accsim::binding::MaskKind kind = parse_masks(masks);
        const FloatArray x = float_array(x_obj, "x", 4);
        const FloatArray w = float_array(w_obj, "weight", 4);
        std::optional<FloatArray> b;
        if (!b_obj.is_none()) b = float_array(b_obj, "bias", 1);
        const auto st = ints(stride, "stride", {1, 2});
        const auto pd = ints(padding, "padding", {1, 2, 4});
        const auto dl = ints(dilation, "dilation", {1, 2});
        accsim::binding::ConvSpec spec;
        spec.channels = x.shape(1);
        spec.height = x.shape(2);
        spec.width = x.shape(3);
        spec.out_channels = w.shape(0);
        spec.groups = groups;
        if (groups >= 1 && w.shape(1) * groups != x.shape(1)) {
          value_error("weight", "has " + std::to_string(w.shape(1)) + " input channels per group, x has " +
                                    std::to_string(x.shape(1)) + " channels in " + std::to_string(groups) + " groups");
        }
        net::Window2d& win = spec.window;
        win.kernel_h = w.shape(2);
        win.kernel_w = w.shape(3);
        win.stride_h = st[0];
        win.stride_w = st.back();
        win.dilation_h = dl[0];
        win.dilation_w = dl.back();
        if (pd.size() == 4) {  // ONNX order: top, left, bottom, right
          win.pad_top = pd[0], win.pad_left = pd[1], win.pad_bottom = pd[2], win.pad_right = pd[3];
        } else {
          win.pad_top = win.pad_bottom = pd[0];
          win.pad_left = win.pad_right = pd.back();
        }
        const std::size_t batch = static_cast<std::size_t>(x.shape(0));
        accsim::binding::Layer layer = accsim::binding::make_conv(
            spec, {w.data(), static_cast<std::size_t>(w.size())},
            b ? std::span<const float>(b->data(), static_cast<std::size_t>(b->size())) : std::span<const float>());
        std::vector<py::ssize_t> shape{x.shape(0), w.shape(0), layer.out_h, layer.out_w};
        py::array_t<float> y(shape);
        float* out = y.mutable_data();
        accsim::binding::RunResult r;
        {
          py::gil_scoped_release release;
          r = accsim::binding::run_layer(layer, arithmetic, x.data(), batch, out, {kind, threads, per_sample});
        }
        return layer_result(y, std::move(r), kind, shape, static_cast<py::ssize_t>(layer.positions));
      },
      py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1, py::arg("padding") = 0,
      py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("arithmetic") = run_defaults(),
      py::arg("masks") = std::nullopt, py::arg("threads") = 0, py::arg("per_sample") = false,
      "A 2-D convolution of x [N, C, H, W] with weight [M, C/groups, kH, kW] (PyTorch's layouts and arguments; "
      "padding an int, (pH, pW) or ONNX's (top, left, bottom, right)) computed as accsim's executor computes each "
      "sample, with the given arithmetic (the samples stacked into a few GEMMs; per_sample=True "
      "runs the executor itself on one sample at a time: the same bits, slower). Returns y [N, M, H', W'], or with masks (y, info): info['events'] per output "
      "(1 product flushed, 2 swamped, 4 saturated, 8 sum flushed), info['drop'] [N, M, H'*W', ceil(K/8)] bits of "
      "the products that lose their gradient ('fine', 'recursive'), and event tallies of the reference GEMM and "
      "of the replay.");

  m.def(
      "linear",
      [](py::handle x_obj, py::handle w_obj, py::handle b_obj, const net::LayerArithmetic& arithmetic,
         const std::optional<std::string>& masks, unsigned threads, bool per_sample) {
        const accsim::binding::MaskKind kind = parse_masks(masks);
        const FloatArray x = float_array(x_obj, "x", 2);
        const FloatArray w = float_array(w_obj, "weight", 2);
        std::optional<FloatArray> b;
        if (!b_obj.is_none()) b = float_array(b_obj, "bias", 1);
        if (w.shape(1) != x.shape(1)) {
          value_error("weight", "has " + std::to_string(w.shape(1)) + " input features, x has " +
                                    std::to_string(x.shape(1)));
        }
        accsim::binding::Layer layer = accsim::binding::make_linear(
            {x.shape(1), w.shape(0)}, {w.data(), static_cast<std::size_t>(w.size())},
            b ? std::span<const float>(b->data(), static_cast<std::size_t>(b->size())) : std::span<const float>());
        std::vector<py::ssize_t> shape{x.shape(0), w.shape(0)};
        py::array_t<float> y(shape);
        float* out = y.mutable_data();
        accsim::binding::RunResult r;
        {
          py::gil_scoped_release release;
          r = accsim::binding::run_layer(layer, arithmetic, x.data(), static_cast<std::size_t>(x.shape(0)), out,
                                    {kind, threads, per_sample});
        }
        return layer_result(y, std::move(r), kind, shape, 1);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("arithmetic") = run_defaults(),
      py::arg("masks") = std::nullopt, py::arg("threads") = 0, py::arg("per_sample") = false,
      "y = x weight^T + bias for x [N, K], weight [M, K] (nn.Linear; ONNX Gemm with transB = 1), one sample per "
      "row, as accsim's executor computes it. masks and per_sample as for conv2d; info['drop'] is [N, M, 1, ceil(K/8)].");

  m.def(
      "drop_correction",
      [](const py::array_t<std::uint8_t, py::array::c_style>& drop, py::handle grad_obj, py::handle w_obj,
         py::handle cols_obj, std::int64_t groups, unsigned threads) {
        const FloatArray grad = float_array(grad_obj, "grad", 3);
        const FloatArray w = float_array(w_obj, "weight", 2);
        const FloatArray cols = float_array(cols_obj, "cols", 3);
        if (drop.ndim() != 4) value_error("drop", "expected 4 dimensions");
        const std::size_t batch = static_cast<std::size_t>(grad.shape(0));
        accsim::binding::Layer layer;
        layer.out_channels = grad.shape(1);
        layer.positions = static_cast<std::size_t>(grad.shape(2));
        layer.k = static_cast<std::size_t>(w.shape(1));
        layer.groups = groups;
        layer.sample_out = static_cast<std::size_t>(grad.shape(1) * grad.shape(2));
        if (groups < 1 || grad.shape(1) % groups != 0) value_error("groups", "does not divide the output channels");
        if (w.shape(0) != grad.shape(1)) value_error("weight", "rows differ from grad's channels");
        if (cols.shape(0) != grad.shape(0) || cols.shape(1) != groups * w.shape(1) || cols.shape(2) != grad.shape(2)) {
          value_error("cols", "expected [N, groups * K, positions] matching grad and weight");
        }
        if (drop.shape(0) != grad.shape(0) || drop.shape(1) != grad.shape(1) || drop.shape(2) != grad.shape(2) ||
            static_cast<std::size_t>(drop.shape(3)) != (layer.k + 7) / 8) {
          value_error("drop", "shape does not match grad and weight");
        }
        py::array_t<float> d_weight({w.shape(0), w.shape(1)});
        py::array_t<float> d_cols({cols.shape(0), cols.shape(1), cols.shape(2)});
        float* dw = d_weight.mutable_data();
        float* dc = d_cols.mutable_data();
        std::memset(dc, 0, static_cast<std::size_t>(d_cols.size()) * sizeof(float));
        {
          py::gil_scoped_release release;
          accsim::binding::drop_correction(layer, {drop.data(), static_cast<std::size_t>(drop.size())},
                                      static_cast<std::size_t>(drop.shape(3)), grad.data(), w.data(), cols.data(),
                                      batch, dw, dc, threads);
        }
        return py::make_tuple(d_weight, d_cols);
      },
      py::arg("drop"), py::arg("grad"), py::arg("weight"), py::arg("cols"), py::arg("groups") = 1,
      py::arg("threads") = 0,
      "The gradient of the dropped products (what 'fine' and 'recursive' take away from the straight-through "
      "gradient): grad [N, M, P], weight [M, K], cols [N, groups*K, P] (im2col of the input; a linear layer's "
      "input as [N, K, 1]). Returns (d_weight [M, K], d_cols [N, groups*K, P]).");

  m.def(
      "run_network",
      [](const std::string& onnx, py::handle inputs_obj, const net::LayerArithmetic& base,
         const std::vector<std::string>& layer, const std::optional<std::string>& layer_config, bool layer_outputs,
         unsigned threads) {
        const FloatArray inputs = float_array(inputs_obj, "inputs", std::nullopt);
        net::Network network;
        std::vector<net::LayerOverride> overrides;
        {
          py::gil_scoped_release release;
          network = net::load_onnx(onnx);
          if (layer_config) overrides = net::read_layer_config(*layer_config);
          for (const std::string& flag : layer) overrides.push_back(net::parse_layer_flag(flag));
        }
        const std::vector<net::LayerArithmetic> resolved = net::resolve_layers(network, base, overrides);
        const net::Shape& in_shape = network.input_shape();
        if (inputs.ndim() != static_cast<py::ssize_t>(in_shape.size())) {
          value_error("inputs", "expected " + std::to_string(in_shape.size()) + " dimensions (samples first)");
        }
        for (std::size_t d = 1; d < in_shape.size(); ++d) {
          if (inputs.shape(static_cast<py::ssize_t>(d)) != in_shape[d]) {
            value_error("inputs", "shape differs from the model's input " + net::shape_text(in_shape));
          }
        }
        const std::size_t batch = static_cast<std::size_t>(inputs.shape(0));
        accsim::binding::NetworkRun run;
        {
          py::gil_scoped_release release;
          run = accsim::binding::run_network(network, resolved, inputs.data(), batch, layer_outputs, threads);
        }
        py::dict out;
        const auto classes = static_cast<py::ssize_t>(net::element_count(network.output_shape()));
        out["logits"] = to_numpy(std::move(run.logits), {static_cast<py::ssize_t>(batch), classes});
        py::list names, outputs, events;
        for (std::size_t l = 0; l < resolved.size(); ++l) {
          const net::Node& node = network.nodes[network.gemm_layers[l]];
          names.append(node.name);
          if (layer_outputs) {
            std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(batch)};
            const net::Shape& s = network.values[node.output].shape;
            shape.insert(shape.end(), s.begin() + 1, s.end());
            outputs.append(to_numpy(std::move(run.layer_outputs[l]), shape));
          }
          py::dict e;
          e["weights"] = counts_dict(run.weight_events[l]);
          e["quantize"] = counts_dict(run.stats[l].quantize);
          e["product"] = counts_dict(run.stats[l].product);
          e["accumulate"] = counts_dict(run.stats[l].accumulate);
          e["merge"] = counts_dict(run.stats[l].merge);
          events.append(e);
        }
        out["layers"] = names;
        out["layer_outputs"] = layer_outputs ? py::object(outputs) : py::object(py::none());
        out["events"] = events;
        return out;
      },
      py::arg("onnx"), py::arg("inputs"), py::arg("base") = run_defaults(),
      py::arg("layer") = std::vector<std::string>{}, py::arg("layer_config") = std::nullopt,
      py::arg("layer_outputs") = false, py::arg("threads") = 0,
      "Runs an ONNX model over inputs [N, ...] (one sample per run, as `accsim run`'s low-bit run) with `base` "
      "and the per-layer overrides. Returns {'logits', 'layers' (GEMM node names), 'layer_outputs' (per GEMM "
      "layer, or None), 'events' (per GEMM layer, as `accsim run` reports them: 'weights' counted once, 'quantize', "
      "'product', 'accumulate', 'merge' summed over the samples)}.");
}
