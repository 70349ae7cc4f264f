// ONNX model files (libonnx's protobuf classes): the graph's nodes, attributes, initializers and declared
// inputs/outputs, converted into plain structs so nothing outside io/onnx.cpp sees protobuf. Interpreting the
// graph is models/onnx_graph's job.
//
// Loading is defensive: a size cap (protobuf's 2 GiB message limit), a clear error when the file is not a
// valid ONNX protobuf, when an initializer lives in external data files, or when an initializer's data does
// not match its declared type and shape.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace a2f {

struct OnnxAttribute {
  enum class Type : uint8_t {
    Undefined,
    Float,
    Int,
    String,
    Tensor,
    Graph,
    Floats,
    Ints,
    Strings,
    Tensors,
    Graphs
  };
  std::string name;
  Type type = Type::Undefined;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  Tensor t;  // host tensor
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};
const char* onnx_attribute_type_name(OnnxAttribute::Type t);

struct OnnxNode {
  std::string name;
  std::string op_type;
  std::string domain;               // "" for the default ai.onnx domain
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<OnnxAttribute> attributes;

  const OnnxAttribute* attribute(const std::string& name) const;  // nullptr when absent
  std::string desc() const;                                       // "Conv node 'Conv_0'"
};

struct OnnxValueInfo {
  std::string name;
  int32_t elem_type = 0;  // TensorProto.DataType (1 = float, 7 = int64, ...)
  bool has_shape = false;
  std::vector<int64_t> dims;            // -1 where the dimension is symbolic or unknown
  std::vector<std::string> dim_params;  // the symbol ("?", "None", "batch") or "" for a fixed dimension
  std::string shape_desc() const;       // "[1, 3, ?, ?]"
};

struct OnnxModel {
  std::string source;  // file path or caller's name, for messages
  int64_t ir_version = 0;
  std::string producer_name, producer_version;
  int64_t opset = 0;                      // opset of the default domain
  std::map<std::string, int64_t> opsets;  // every domain's opset
  std::string graph_name;
  std::vector<OnnxNode> nodes;                 // in file order (ONNX requires topological order)
  std::map<std::string, Tensor> initializers;  // host tensors, by name
  std::vector<OnnxValueInfo> inputs;           // graph.input minus initializers, in graph order
  std::vector<OnnxValueInfo> outputs;          // graph.output, in graph order
};

struct OnnxLoadOptions {
  uint64_t max_file_bytes = (2ull << 30) - 1;  // protobuf cannot parse messages of 2 GiB or more
};

OnnxModel onnx_load(const std::filesystem::path& path, const OnnxLoadOptions& opt = {});
OnnxModel onnx_parse(const void* data, size_t size, const std::string& what, const OnnxLoadOptions& opt = {});

// DType of an ONNX TensorProto.DataType; throws naming `what` for types we do not handle.
DType onnx_dtype(int32_t elem_type, const std::string& what);
const char* onnx_elem_type_name(int32_t elem_type);

}  // namespace a2f
