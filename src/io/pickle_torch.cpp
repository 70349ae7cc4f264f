// The PyTorch side of the pickle machine: the globals a state dict may reference (anything else is refused),
// and the symbolic interpretation of the torch rebuild functions (REDUCE) and persistent storage ids. Nothing
// is ever executed.
#include <string_view>

#include "io/pickle_machine.h"

namespace a2f::pickle_detail {

namespace {

enum class Call : uint8_t {
  NotCallable,
  OrderedDict,
  RebuildTensorV2,
  RebuildTensor,
  RebuildParameter,
  RebuildParameterWithState,
  RebuildFromTypeV2,
  CodecsEncode,
  TorchSize,
  TorchDevice
};

struct AllowedGlobal {
  const char* name;
  Call call;
};

// Everything a torch state dict pickle may reference. Referencing is harmless; only the entries with a Call
// can be called, and they are interpreted here, never executed.
constexpr AllowedGlobal kAllowed[] = {
    {"collections.OrderedDict", Call::OrderedDict},
    {"torch._utils._rebuild_tensor_v2", Call::RebuildTensorV2},
    {"torch._utils._rebuild_tensor", Call::RebuildTensor},
    {"torch._utils._rebuild_parameter", Call::RebuildParameter},
    {"torch._utils._rebuild_parameter_with_state", Call::RebuildParameterWithState},
    {"torch._tensor._rebuild_from_type_v2", Call::RebuildFromTypeV2},
    {"torch._utils._rebuild_from_type_v2", Call::RebuildFromTypeV2},
    {"_codecs.encode", Call::CodecsEncode},
    {"torch.Size", Call::TorchSize},
    {"torch.device", Call::TorchDevice},
    {"torch.Tensor", Call::NotCallable},
    {"torch.nn.parameter.Parameter", Call::NotCallable},
};

struct StorageType {
  const char* name;
  bool supported;
  DType dtype;
};
constexpr StorageType kStorages[] = {
    {"torch.FloatStorage", true, DType::F32},
    {"torch.HalfStorage", true, DType::F16},
    {"torch.BFloat16Storage", true, DType::BF16},
    {"torch.DoubleStorage", true, DType::F64},
    {"torch.LongStorage", true, DType::I64},
    {"torch.IntStorage", true, DType::I32},
    {"torch.ByteStorage", true, DType::U8},
    {"torch.CharStorage", true, DType::I8},
    {"torch.BoolStorage", true, DType::Bool},
    {"torch.UntypedStorage", true, DType::U8},
    {"torch.ShortStorage", false, DType::F32},
    {"torch.ComplexFloatStorage", false, DType::F32},
    {"torch.ComplexDoubleStorage", false, DType::F32},
    {"torch.QInt8Storage", false, DType::F32},
    {"torch.QUInt8Storage", false, DType::F32},
    {"torch.QInt32Storage", false, DType::F32},
    {"torch.QUInt4x2Storage", false, DType::F32},
    {"torch.QUInt2x4Storage", false, DType::F32},
};

// torch dtype objects (torch.float32, ...) may appear as plain references (e.g. in tensor metadata).
constexpr const char* kDtypes[] = {"torch.float32", "torch.float16", "torch.bfloat16", "torch.float64",
                                   "torch.int64",   "torch.int32",   "torch.uint8",    "torch.int8",
                                   "torch.bool",    "torch.float",   "torch.half",     "torch.double",
                                   "torch.long",    "torch.int",     "torch.strided"};

const StorageType* find_storage(std::string_view name) {
  for (const auto& s : kStorages) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

bool global_allowed(std::string_view name, Call& call) {
  for (const auto& g : kAllowed) {
    if (name == g.name) {
      call = g.call;
      return true;
    }
  }
  call = Call::NotCallable;
  if (find_storage(name)) return true;
  for (const char* d : kDtypes) {
    if (name == d) return true;
  }
  return false;
}

}  // namespace

void PickleMachine::push_global(std::string module, std::string name) {
  std::string full = module + "." + name;
  Call call;
  if (!global_allowed(full, call)) {
    std::string shown = full.size() > 200 ? full.substr(0, 200) + "..." : full;
    fail("refusing to load ", what_, ": pickle imports non-allow-listed global '", shown,
         "' (only PyTorch tensor and state-dict globals are allowed; this file may contain code)");
  }
  push_str(PickleKind::Global, full);
}

const PickleObject& PickleMachine::arg(const std::vector<uint32_t>& args, size_t i, PickleKind k,
                                       const char* fn) {
  if (i >= args.size()) bad(cat(fn, ": missing argument ", i));
  const PickleObject& o = objs_[args[i]];
  if (o.kind != k)
    bad(cat(fn, ": argument ", i, " is ", pickle_kind_name(o.kind), ", expected ", pickle_kind_name(k)));
  return o;
}
std::vector<int64_t> PickleMachine::int_tuple(uint32_t id, const char* fn, const char* field) {
  const PickleObject& o = objs_[id];
  if (o.kind != PickleKind::Tuple && o.kind != PickleKind::List) bad(cat(fn, ": ", field, " is not a tuple"));
  if (o.items.size() > 32) bad(cat(fn, ": ", field, " has more than 32 dimensions"));
  std::vector<int64_t> v;
  for (uint32_t e : o.items) {
    if (objs_[e].kind != PickleKind::Int) bad(cat(fn, ": ", field, " holds a non-integer"));
    v.push_back(objs_[e].i);
  }
  return v;
}

uint32_t PickleMachine::rebuild_tensor(const std::vector<uint32_t>& a, const char* fn) {
  if (a.size() < 4) bad(cat(fn, ": expected at least 4 arguments, got ", a.size()));
  const uint32_t st = a[0];
  if (objs_[st].kind != PickleKind::Storage) bad(cat(fn, ": first argument is not a tensor storage"));
  const int64_t offset = arg(a, 1, PickleKind::Int, fn).i;
  Shape shape = int_tuple(a[2], fn, "size");
  std::vector<int64_t> stride = int_tuple(a[3], fn, "stride");
  if (shape.size() != stride.size()) bad(cat(fn, ": size and stride have different lengths"));
  PickleObject& t = add(PickleKind::Tensor);
  t.storage = st;
  t.i = offset;
  t.dtype = objs_[st].dtype;
  t.shape = std::move(shape);
  t.stride = std::move(stride);
  return static_cast<uint32_t>(objs_.size() - 1);
}

uint32_t PickleMachine::call(uint32_t callable, uint32_t args_id, int depth) {
  if (depth > 4) bad("nested _rebuild_from_type_v2 calls");
  const PickleObject& g = objs_[callable];
  if (g.kind != PickleKind::Global) bad(cat("call of a ", pickle_kind_name(g.kind), " value"));
  const PickleObject& at = objs_[args_id];
  if (at.kind != PickleKind::Tuple) bad(cat("arguments of ", g.s, " are not a tuple"));
  const std::vector<uint32_t> a = at.items;
  Call c;
  global_allowed(g.s, c);
  switch (c) {
    case Call::OrderedDict: {
      if (!a.empty()) bad("collections.OrderedDict called with arguments");
      add(PickleKind::Dict);
      return static_cast<uint32_t>(objs_.size() - 1);
    }
    case Call::RebuildTensorV2:
      return rebuild_tensor(a, "_rebuild_tensor_v2");
    case Call::RebuildTensor:
      return rebuild_tensor(a, "_rebuild_tensor");
    case Call::RebuildParameter:
    case Call::RebuildParameterWithState: {
      if (a.empty() || objs_[a[0]].kind != PickleKind::Tensor)
        bad("_rebuild_parameter: data is not a tensor");
      return a[0];
    }
    case Call::RebuildFromTypeV2: {  // (func, new_type, args, state): func(*args); the type/state are
                                     // dropped
      if (a.size() != 4) bad("_rebuild_from_type_v2: expected 4 arguments");
      if (objs_[a[2]].kind != PickleKind::Tuple) bad("_rebuild_from_type_v2: args is not a tuple");
      uint32_t r = call(a[0], a[2], depth + 1);
      if (objs_[r].kind != PickleKind::Tensor) bad("_rebuild_from_type_v2 did not produce a tensor");
      return r;
    }
    case Call::CodecsEncode: {
      const PickleObject& s = arg(a, 0, PickleKind::Str, "_codecs.encode");
      std::string enc = a.size() > 1 ? arg(a, 1, PickleKind::Str, "_codecs.encode").s : "utf-8";
      std::string out;
      if (enc == "latin1" || enc == "latin-1") {  // code points < 256 -> one byte each
        const std::string& in = s.s;
        for (size_t i = 0; i < in.size(); ++i) {
          uint8_t ch = static_cast<uint8_t>(in[i]);
          if (ch < 0x80) {
            out.push_back(static_cast<char>(ch));
          } else if ((ch & 0xe0) == 0xc0 && i + 1 < in.size() && ch <= 0xc3) {
            out.push_back(static_cast<char>(((ch & 0x1f) << 6) | (static_cast<uint8_t>(in[++i]) & 0x3f)));
          } else {
            bad("_codecs.encode: character not representable in latin1");
          }
        }
      } else if (enc == "utf-8" || enc == "utf8") {
        out = s.s;
      } else {
        bad(cat("_codecs.encode: unsupported encoding '", enc, "'"));
      }
      PickleObject& o = add(PickleKind::Bytes);
      o.s = std::move(out);
      return static_cast<uint32_t>(objs_.size() - 1);
    }
    case Call::TorchSize: {
      if (a.size() != 1) bad("torch.Size: expected one argument");
      int_tuple(a[0], "torch.Size", "argument");
      return a[0];
    }
    case Call::TorchDevice: {
      const PickleObject& s = arg(a, 0, PickleKind::Str, "torch.device");
      std::string dev = s.s;
      PickleObject& o = add(PickleKind::Str);
      o.s = std::move(dev);
      return static_cast<uint32_t>(objs_.size() - 1);
    }
    case Call::NotCallable:
      break;
  }
  fail("refusing to load ", what_, ": pickle calls '", g.s, "', which is not an allowed state-dict function");
}

// persistent_load(('storage', storage_type, key, location, numel))
uint32_t PickleMachine::persistent(uint32_t pid) {
  const PickleObject& t = objs_[pid];
  if (t.kind != PickleKind::Tuple || t.items.size() != 5)
    bad("persistent id is not a 5-tuple ('storage', ...)");
  const PickleObject& tag = objs_[t.items[0]];
  if (tag.kind != PickleKind::Str || tag.s != "storage") bad("persistent id does not start with 'storage'");
  const PickleObject& ty = objs_[t.items[1]];
  if (ty.kind != PickleKind::Global) bad("persistent id: storage type is not a global");
  const StorageType* st = find_storage(ty.s);
  if (!st) bad(cat("persistent id: '", ty.s, "' is not a storage type"));
  if (!st->supported) fail(what_, ": tensor storage type ", ty.s, " is not supported");
  const PickleObject& key = objs_[t.items[2]];
  if (key.kind != PickleKind::Str) bad("persistent id: storage key is not a string");
  const PickleObject& loc = objs_[t.items[3]];
  if (loc.kind != PickleKind::Str) bad("persistent id: storage location is not a string");
  const PickleObject& numel = objs_[t.items[4]];
  if (numel.kind != PickleKind::Int || numel.i < 0)
    bad("persistent id: storage size is not a non-negative integer");
  PickleObject o;
  o.kind = PickleKind::Storage;
  o.s = key.s;
  o.i = numel.i;
  o.dtype = st->dtype;
  if (objs_.size() >= kMaxObjects) bad("too many objects");
  objs_.push_back(std::move(o));
  return static_cast<uint32_t>(objs_.size() - 1);
}

}  // namespace a2f::pickle_detail
