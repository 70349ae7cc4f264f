// A small ONNX interpreter for the op subset of insightface's exported models (SCRFD-10G-bnkps, ArcFace
// IResNet): Conv, BatchNormalization, PRelu, Relu, Sigmoid, Add/Sub/Mul/Div, MaxPool, AveragePool
// (ceil_mode), Resize/Upsample nearest, Gemm, Flatten, Transpose, Reshape, Concat, Identity and the int64
// shape subgraph (Shape, Gather, Unsqueeze, Squeeze, Slice, Cast, Constant). Float work runs on an
// a2f::Backend.
//
// Loading checks every node: an unknown op type, domain or attribute is an error naming the node. Inputs and
// outputs are taken in graph order; shapes are computed at run time (declared output shapes are ignored:
// det_10g.onnx declares stale 640x640 ones). Nodes whose inputs are all known at load time are folded; a
// Relu that is the only consumer of a Conv is fused into it.
//
// Thread safety: run() may not be called concurrently on one OnnxGraph.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "io/onnx.h"

namespace a2f {

struct OnnxGraphOptions {
  DType weight_dtype = DType::F32;  // dtype weights are prepared in
  bool fuse = true;                 // Conv + Relu fusion (off: every node runs on its own, for dumps)
};

class OnnxGraph {
 public:
  OnnxGraph(OnnxModel model, Backend& backend, const OnnxGraphOptions& options = {});
  static std::unique_ptr<OnnxGraph> load(const std::filesystem::path& path, Backend& backend,
                                         const OnnxGraphOptions& options = {});
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  // Inputs in graph order (float tensors; checked against the declared rank and fixed dimensions);
  // returns the graph outputs in graph order.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  const std::vector<OnnxValueInfo>& inputs() const;
  const std::vector<OnnxValueInfo>& outputs() const;
  const std::vector<std::string>& node_names() const;  // every node of the file, in file order
  std::map<std::string, int> op_counts() const;        // op_type -> count, of the file's nodes
  const std::string& source() const;
  Backend& backend() const;  // the backend the graph runs on (outputs live on its device)
  int64_t opset() const;

  // Called with (value name, tensor) for every value a node produces during run() (debug dumps).
  void set_dump(std::function<void(const std::string&, const Tensor&)> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2f
