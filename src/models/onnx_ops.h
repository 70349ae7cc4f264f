// Internal to models/onnx_graph: the ONNX operators the interpreter knows, each as a "compile" function that
// checks the node's attributes once (an unknown attribute or value is an error naming it) and returns a
// kernel. Kernels run float work through a2f::Backend and the small int64 shape arithmetic on the host.
//
// Value placement: integer tensors (shapes, indices) live on the host; float tensors are backend tensors.
#pragma once
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "core/backend.h"
#include "io/onnx.h"

namespace a2f::onnx_ops {

// Runs one node: inputs in node order (an undefined Tensor for an omitted optional input), outputs in order.
using Kernel = std::function<std::vector<Tensor>(Backend&, const std::vector<Tensor>&)>;

struct NodeInfo {
  const OnnxNode* node = nullptr;
  int64_t opset = 0;
  std::string where;  // "ONNX model '...': Conv node 'Conv_0'"
  // The host value of each input when it is known at load time (initializer, Constant or folded), else null.
  std::vector<const Tensor*> consts;
  Act fused_act = Act::None;  // an activation the graph folded into this node (Conv + Relu)
  DType weight_dtype = DType::F32;

  const Tensor* const_input(size_t i) const { return i < consts.size() ? consts[i] : nullptr; }
  size_t num_inputs() const { return node->inputs.size(); }
  bool has_input(size_t i) const { return i < node->inputs.size() && !node->inputs[i].empty(); }
};

using CompileFn = Kernel (*)(const NodeInfo&, Backend&);

// op_type -> compile function (default domain only).
const std::map<std::string, CompileFn>& op_table();
void register_nn_ops(std::map<std::string, CompileFn>& table);     // onnx_ops.cpp
void register_shape_ops(std::map<std::string, CompileFn>& table);  // onnx_ops_shape.cpp

// Reads attributes, rejecting any attribute not in `allowed` (naming it and the node).
class Attrs {
 public:
  Attrs(const NodeInfo& info, std::initializer_list<const char*> allowed);
  bool has(const char* name) const;
  int64_t i(const char* name, int64_t def) const;
  float f(const char* name, float def) const;
  std::string s(const char* name, const std::string& def) const;
  std::vector<int64_t> ints(const char* name, const std::vector<int64_t>& def = {}) const;
  const Tensor& t(const char* name) const;
  [[noreturn]] void unsupported(const char* name, const std::string& value) const;

 private:
  const OnnxAttribute* get(const char* name, OnnxAttribute::Type type) const;
  const NodeInfo& info_;
};

// Checks the number of inputs (max counts optional ones) and outputs.
void check_arity(const NodeInfo& info, size_t min_in, size_t max_in, size_t min_out, size_t max_out);

// Host-side helpers for integer tensors.
bool is_host_value(const Tensor& t);  // integer dtype: kept on the host
std::vector<int64_t> to_int64s(const Tensor& t,
                               const std::string& what);  // any integer/float tensor, on host
Tensor int64_tensor(const std::vector<int64_t>& v, const Shape& shape);
Tensor int64_tensor(const std::vector<int64_t>& v);  // 1-D
// Normalises a possibly negative axis for rank `rank`; throws naming `where`.
int norm_axis(int64_t axis, int64_t rank, const std::string& where);

}  // namespace a2f::onnx_ops
