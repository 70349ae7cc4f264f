#include "io/onnx.h"

#include <fcntl.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace a2f {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; big-endian hosts unsupported");

const char* onnx_attribute_type_name(OnnxAttribute::Type t) {
  using T = OnnxAttribute::Type;
  switch (t) {
    case T::Undefined:
      return "undefined";
    case T::Float:
      return "float";
    case T::Int:
      return "int";
    case T::String:
      return "string";
    case T::Tensor:
      return "tensor";
    case T::Graph:
      return "graph";
    case T::Floats:
      return "floats";
    case T::Ints:
      return "ints";
    case T::Strings:
      return "strings";
    case T::Tensors:
      return "tensors";
    case T::Graphs:
      return "graphs";
  }
  return "?";
}

const OnnxAttribute* OnnxNode::attribute(const std::string& n) const {
  for (const auto& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

std::string OnnxNode::desc() const {
  return cat(op_type, " node '", name.empty() ? (outputs.empty() ? std::string("?") : outputs[0]) : name,
             "'");
}

std::string OnnxValueInfo::shape_desc() const {
  if (!has_shape) return "[unknown]";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i] >= 0 ? std::to_string(dims[i]) : (dim_params[i].empty() ? std::string("?") : dim_params[i]);
  }
  return s + "]";
}

const char* onnx_elem_type_name(int32_t t) {
  switch (t) {
    case onnx::TensorProto_DataType_FLOAT:
      return "float32";
    case onnx::TensorProto_DataType_UINT8:
      return "uint8";
    case onnx::TensorProto_DataType_INT8:
      return "int8";
    case onnx::TensorProto_DataType_UINT16:
      return "uint16";
    case onnx::TensorProto_DataType_INT16:
      return "int16";
    case onnx::TensorProto_DataType_INT32:
      return "int32";
    case onnx::TensorProto_DataType_INT64:
      return "int64";
    case onnx::TensorProto_DataType_STRING:
      return "string";
    case onnx::TensorProto_DataType_BOOL:
      return "bool";
    case onnx::TensorProto_DataType_FLOAT16:
      return "float16";
    case onnx::TensorProto_DataType_DOUBLE:
      return "float64";
    case onnx::TensorProto_DataType_UINT32:
      return "uint32";
    case onnx::TensorProto_DataType_UINT64:
      return "uint64";
    case onnx::TensorProto_DataType_BFLOAT16:
      return "bfloat16";
    default:
      return "unknown";
  }
}

DType onnx_dtype(int32_t t, const std::string& what) {
  switch (t) {
    case onnx::TensorProto_DataType_FLOAT:
      return DType::F32;
    case onnx::TensorProto_DataType_FLOAT16:
      return DType::F16;
    case onnx::TensorProto_DataType_BFLOAT16:
      return DType::BF16;
    case onnx::TensorProto_DataType_DOUBLE:
      return DType::F64;
    case onnx::TensorProto_DataType_INT64:
      return DType::I64;
    case onnx::TensorProto_DataType_INT32:
      return DType::I32;
    case onnx::TensorProto_DataType_UINT8:
      return DType::U8;
    case onnx::TensorProto_DataType_INT8:
      return DType::I8;
    case onnx::TensorProto_DataType_BOOL:
      return DType::Bool;
    default:
      break;
  }
  fail(what, ": element type ", onnx_elem_type_name(t), " (", t, ") is not supported");
}

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 40;

// Converts a TensorProto into a host tensor. Moves raw_data out of the proto (no copy of the bytes).
Tensor tensor_from_proto(onnx::TensorProto& tp, const std::string& what) {
  if (tp.data_location() == onnx::TensorProto_DataLocation_EXTERNAL || tp.external_data_size() > 0) {
    std::string loc;
    for (const auto& kv : tp.external_data())
      if (kv.key() == "location") loc = kv.value();
    fail(what, " keeps its data in an external file", loc.empty() ? "" : cat(" ('", loc, "')"),
         "; external-data ONNX models are not supported: re-save the model as one file, e.g. "
         "onnx.save(onnx.load(path), out_path, save_as_external_data=False)");
  }
  A2F_CHECK(!tp.has_segment(), what, ": segmented tensors are not supported");
  const DType dt = onnx_dtype(tp.data_type(), what);
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : tp.dims()) {
    A2F_CHECK(d >= 0 && d <= kMaxElements, what, ": invalid dimension ", d);
    shape.push_back(d);
    A2F_CHECK(!__builtin_mul_overflow(numel, d, &numel) && numel <= kMaxElements, what, ": too many elements");
  }
  const size_t es = dtype_size(dt);
  const size_t bytes = static_cast<size_t>(numel) * es;
  if (tp.has_raw_data()) {
    A2F_CHECK(tp.raw_data().size() == bytes, what, ": has ", tp.raw_data().size(),
              " bytes of data, expected ", bytes, " for ", onnx_elem_type_name(tp.data_type()),
              shape_str(shape));
    auto owner = std::make_shared<std::string>(std::move(*tp.mutable_raw_data()));
    void* p = owner->data();
    if (bytes == 0 || reinterpret_cast<uintptr_t>(p) % 16 != 0) {
      Tensor t = Tensor::empty(shape, dt);
      if (bytes) std::memcpy(t.raw_data(), owner->data(), bytes);
      return t;
    }
    return Tensor::from_storage(storage_wrap(p, bytes, Device::CPU, owner), 0, shape, dt);
  }
  auto expect_count = [&](int64_t n, const char* field) {
    A2F_CHECK(n == numel, what, ": has ", n, " values in ", field, ", expected ", numel, " for ",
              onnx_elem_type_name(tp.data_type()), shape_str(shape));
  };
  // The typed-data field's count is checked before anything is allocated: a few bytes of file must not make
  // us allocate what its declared shape says (found by fuzz_onnx).
  switch (dt) {
    case DType::F32:
      expect_count(tp.float_data_size(), "float_data");
      break;
    case DType::F64:
      expect_count(tp.double_data_size(), "double_data");
      break;
    case DType::I64:
      expect_count(tp.int64_data_size(), "int64_data");
      break;
    default:
      expect_count(tp.int32_data_size(), "int32_data");
  }
  Tensor t = Tensor::empty(shape, dt);
  switch (dt) {
    case DType::F32:
      if (numel) std::memcpy(t.raw_data(), tp.float_data().data(), bytes);
      break;
    case DType::F64:
      if (numel) std::memcpy(t.raw_data(), tp.double_data().data(), bytes);
      break;
    case DType::I64:
      if (numel) std::memcpy(t.raw_data(), tp.int64_data().data(), bytes);
      break;
    case DType::I32:
      if (numel) std::memcpy(t.raw_data(), tp.int32_data().data(), bytes);
      break;
    case DType::F16:
    case DType::BF16: {
      auto* d = t.data<uint16_t>();
      for (int64_t i = 0; i < numel; ++i) d[i] = static_cast<uint16_t>(tp.int32_data(static_cast<int>(i)));
      break;
    }
    case DType::U8:
    case DType::I8:
    case DType::Bool: {
      auto* d = static_cast<uint8_t*>(t.raw_data());
      for (int64_t i = 0; i < numel; ++i) d[i] = static_cast<uint8_t>(tp.int32_data(static_cast<int>(i)));
      break;
    }
  }
  return t;
}

OnnxValueInfo value_info_from_proto(const onnx::ValueInfoProto& vi) {
  OnnxValueInfo v;
  v.name = vi.name();
  if (vi.has_type() && vi.type().has_tensor_type()) {
    const auto& tt = vi.type().tensor_type();
    v.elem_type = tt.elem_type();
    if (tt.has_shape()) {
      v.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value() && d.dim_value() >= 0) {
          v.dims.push_back(d.dim_value());
          v.dim_params.emplace_back();
        } else {
          v.dims.push_back(-1);
          v.dim_params.push_back(d.has_dim_param() ? d.dim_param() : std::string("?"));
        }
      }
    }
  }
  return v;
}

OnnxAttribute attribute_from_proto(onnx::AttributeProto& ap, const std::string& what) {
  using T = OnnxAttribute::Type;
  OnnxAttribute a;
  a.name = ap.name();
  int type = ap.type();
  if (type == onnx::AttributeProto_AttributeType_UNDEFINED) {  // very old files: infer from the field set
    if (ap.has_f())
      type = onnx::AttributeProto_AttributeType_FLOAT;
    else if (ap.has_i())
      type = onnx::AttributeProto_AttributeType_INT;
    else if (ap.has_s())
      type = onnx::AttributeProto_AttributeType_STRING;
    else if (ap.has_t())
      type = onnx::AttributeProto_AttributeType_TENSOR;
    else if (ap.floats_size())
      type = onnx::AttributeProto_AttributeType_FLOATS;
    else if (ap.ints_size())
      type = onnx::AttributeProto_AttributeType_INTS;
    else if (ap.strings_size())
      type = onnx::AttributeProto_AttributeType_STRINGS;
  }
  const std::string awhat = cat(what, " attribute '", a.name, "'");
  switch (type) {
    case onnx::AttributeProto_AttributeType_FLOAT:
      a.type = T::Float;
      a.f = ap.f();
      break;
    case onnx::AttributeProto_AttributeType_INT:
      a.type = T::Int;
      a.i = ap.i();
      break;
    case onnx::AttributeProto_AttributeType_STRING:
      a.type = T::String;
      a.s = ap.s();
      break;
    case onnx::AttributeProto_AttributeType_TENSOR:
      a.type = T::Tensor;
      a.t = tensor_from_proto(*ap.mutable_t(), awhat);
      break;
    case onnx::AttributeProto_AttributeType_FLOATS:
      a.type = T::Floats;
      a.floats.assign(ap.floats().begin(), ap.floats().end());
      break;
    case onnx::AttributeProto_AttributeType_INTS:
      a.type = T::Ints;
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      break;
    case onnx::AttributeProto_AttributeType_STRINGS:
      a.type = T::Strings;
      for (const auto& s : ap.strings()) a.strings.push_back(s);
      break;
    case onnx::AttributeProto_AttributeType_GRAPH:
      a.type = T::Graph;
      break;
    case onnx::AttributeProto_AttributeType_GRAPHS:
      a.type = T::Graphs;
      break;
    case onnx::AttributeProto_AttributeType_TENSORS:
      a.type = T::Tensors;
      break;
    default:
      a.type = T::Undefined;
      break;
  }
  return a;
}

OnnxModel model_from_proto(onnx::ModelProto& mp, const std::string& what) {
  A2F_CHECK(mp.has_graph(), what, " is not an ONNX model: it has no graph");
  OnnxModel m;
  m.source = what;
  m.ir_version = mp.ir_version();
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  for (const auto& os : mp.opset_import()) {
    const std::string dom = os.domain() == "ai.onnx" ? std::string() : os.domain();
    m.opsets[dom] = os.version();
  }
  auto it = m.opsets.find("");
  m.opset = it == m.opsets.end() ? (mp.opset_import_size() == 0 ? 1 : 0) : it->second;
  onnx::GraphProto& g = *mp.mutable_graph();
  m.graph_name = g.name();
  for (int i = 0; i < g.initializer_size(); ++i) {
    onnx::TensorProto& tp = *g.mutable_initializer(i);
    A2F_CHECK(!tp.name().empty(), what, ": initializer ", i, " has no name");
    const std::string iw = cat(what, ": initializer '", tp.name(), "'");
    A2F_CHECK(!m.initializers.count(tp.name()), iw, " is defined twice");
    m.initializers.emplace(tp.name(), tensor_from_proto(tp, iw));
  }
  A2F_CHECK(g.sparse_initializer_size() == 0, what, ": sparse initializers are not supported");
  for (const auto& vi : g.input())
    if (!m.initializers.count(vi.name())) m.inputs.push_back(value_info_from_proto(vi));
  for (const auto& vi : g.output()) m.outputs.push_back(value_info_from_proto(vi));
  m.nodes.reserve(g.node_size());
  for (int i = 0; i < g.node_size(); ++i) {
    onnx::NodeProto& np = *g.mutable_node(i);
    OnnxNode n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? std::string() : np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    const std::string nw = cat(what, ": ", n.desc());
    for (int k = 0; k < np.attribute_size(); ++k)
      n.attributes.push_back(attribute_from_proto(*np.mutable_attribute(k), nw));
    m.nodes.push_back(std::move(n));
  }
  return m;
}

}  // namespace

OnnxModel onnx_parse(const void* data, size_t size, const std::string& what, const OnnxLoadOptions& opt) {
  A2F_CHECK(size > 0, what, " is empty (0 bytes)");
  A2F_CHECK(size <= opt.max_file_bytes, what, " is too large to be an ONNX model file (", size,
            " bytes; limit ", opt.max_file_bytes, ")");
  onnx::ModelProto mp;
  if (!mp.ParseFromArray(data, static_cast<int>(size))) {
    fail(what,
         " is not a valid ONNX model (protobuf parsing failed: the file is corrupt, truncated or not ONNX)");
  }
  return model_from_proto(mp, what);
}

OnnxModel onnx_load(const std::filesystem::path& path, const OnnxLoadOptions& opt) {
  const std::string what = cat("ONNX model '", path.string(), "'");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", what, ": ", std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  struct stat st {};
  A2F_CHECK(::fstat(fd, &st) == 0, "cannot stat ", what, ": ", std::strerror(errno));
  A2F_CHECK(S_ISREG(st.st_mode), "cannot read ", what, ": not a regular file");
  A2F_CHECK(st.st_size > 0, what, " is empty (0 bytes)");
  A2F_CHECK(static_cast<uint64_t>(st.st_size) <= opt.max_file_bytes, what, " is ", st.st_size,
            " bytes, over the limit of ", opt.max_file_bytes,
            " (protobuf cannot parse 2 GiB or more; such models keep their weights in external data files, "
            "which are not supported)");
  onnx::ModelProto mp;
  if (!mp.ParseFromFileDescriptor(fd)) {
    fail(what,
         " is not a valid ONNX model (protobuf parsing failed: the file is corrupt, truncated or not ONNX)");
  }
  return model_from_proto(mp, what);
}

}  // namespace a2f
