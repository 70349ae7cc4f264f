// A SAFE unpickler for PyTorch state dicts: a pickle virtual machine (protocols 0-5 minus the opcodes that
// instantiate arbitrary classes) that builds a tree of plain values and NEVER executes anything. GLOBAL /
// STACK_GLOBAL may only name the allow-listed globals a state dict needs (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage types, ...); anything else (os.system,
// builtins.eval, ...) is refused with an a2f::Error naming the global. The torch reductions are interpreted
// symbolically: persistent ids become Storage objects, _rebuild_tensor_v2 calls become Tensor objects that
// torch_checkpoint.cpp resolves against the archive. All sizes, counts and depths are bounded.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace a2f {

enum class PickleKind : uint8_t {
  None,
  Bool,
  Int,
  Float,
  Str,
  Bytes,
  Tuple,
  List,
  Dict,
  Global,
  Storage,
  Tensor
};
const char* pickle_kind_name(PickleKind k);

struct PickleObject {
  PickleKind kind = PickleKind::None;
  bool b = false;
  int64_t i = 0;  // Int; Storage: numel (elements); Tensor: storage offset (elements)
  double f = 0;
  std::string s;                // Str / Bytes; Global: "module.name"; Storage: key (the archive's data/<key>)
  std::vector<uint32_t> items;  // Tuple / List: elements; Dict: key0, value0, key1, value1, ...
  DType dtype = DType::F32;     // Storage, Tensor
  uint32_t storage = 0;         // Tensor: index of its Storage object
  Shape shape;                  // Tensor: size
  std::vector<int64_t> stride;  // Tensor: strides (elements)
};

struct PickleData {
  std::vector<PickleObject> objects;  // index = object id
  uint32_t root = 0;
  const PickleObject& at(uint32_t id) const { return objects[id]; }
};

// Runs the pickle in `data` (e.g. an archive's data.pkl). `what` names the source in errors
// ("refusing to load 'x.bin': pickle imports non-allow-listed global 'os.system'").
PickleData pickle_parse(const void* data, size_t size, const std::string& what);

}  // namespace a2f
