// Hand-built ONNX models for the network tests, written with the protobuf
// API directly (independently of the loader under test).
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace accsim::net::testing {

inline onnx::TensorProto float_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                                      const std::vector<float>& values, bool raw = true) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (std::int64_t d : dims) t.add_dims(d);
  if (raw) {
    std::string bytes(values.size() * 4, '\0');
    // An empty vector's data() may be null, and memcpy from null is undefined
    // even for 0 bytes (UBSan stops there).
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    t.set_raw_data(bytes);
  } else {
    for (float v : values) t.add_float_data(v);
  }
  return t;
}

inline onnx::TensorProto int64_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                                      const std::vector<std::int64_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  for (std::int64_t d : dims) t.add_dims(d);
  for (std::int64_t v : values) t.add_int64_data(v);
  return t;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(std::int64_t opset = 13) {
    model_.set_ir_version(7);
    model_.set_producer_name("accsim-tests");
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    graph_ = model_.mutable_graph();
    graph_->set_name("test");
  }

  // dims: -1 for a symbolic dimension (dim_param "N").
  ModelBuilder& input(const std::string& name, const std::vector<std::int64_t>& dims) {
    set_value_info(graph_->add_input(), name, dims);
    return *this;
  }
  ModelBuilder& output(const std::string& name, const std::vector<std::int64_t>& dims = {}) {
    set_value_info(graph_->add_output(), name, dims, !dims.empty());
    return *this;
  }
  ModelBuilder& init(const onnx::TensorProto& t) {
    *graph_->add_initializer() = t;
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, std::initializer_list<std::string> inputs,
                        std::initializer_list<std::string> outputs, const std::string& name = "") {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }

  [[nodiscard]] std::string bytes() const { return model_.SerializeAsString(); }
  onnx::ModelProto& model() { return model_; }
  onnx::GraphProto& graph() { return *graph_; }

 private:
  static void set_value_info(onnx::ValueInfoProto* v, const std::string& name, const std::vector<std::int64_t>& dims,
                             bool with_shape = true) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    if (!with_shape) return;
    auto* shape = tt->mutable_shape();
    for (std::int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0) {
        dim->set_dim_param("N");
      } else {
        dim->set_dim_value(d);
      }
    }
  }

  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
};

inline void attr_int(onnx::NodeProto& n, const std::string& name, std::int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_ints(onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (std::int64_t x : v) a->add_ints(x);
}
inline void attr_float(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
inline void attr_string(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}
inline void attr_tensor(onnx::NodeProto& n, const std::string& name, const onnx::TensorProto& t) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = t;
}

}  // namespace accsim::net::testing
