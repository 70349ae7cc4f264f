#include "io/pickle.h"

#include <bit>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "core/error.h"

namespace a2f {

namespace {

constexpr size_t kMaxObjects = size_t(1) << 22;  // ~4M values: far above any real state dict
constexpr size_t kMaxMarks = size_t(1) << 20;

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

class Machine {
 public:
  Machine(const uint8_t* p, size_t n, const std::string& what) : p_(p), n_(n), what_(what) {
    // Shared singletons for None / False / True.
    add(PickleKind::None);
    add(PickleKind::Bool).b = false;
    add(PickleKind::Bool).b = true;
  }

  PickleData run() {
    while (true) {
      const size_t op_pos = pos_;
      const uint8_t op = u8();
      if (op == '.') {  // STOP
        PickleData d;
        d.root = pop();
        d.objects = std::move(objs_);
        return d;
      }
      step(op, op_pos);
    }
  }

 private:
  // ---- errors and input ----
  [[noreturn]] void bad(const std::string& why) const {
    fail(what_, ": malformed pickle: ", why, " (at byte ", pos_, ")");
  }
  void need(size_t k) const {
    if (k > n_ - pos_) bad(cat("truncated data (needs ", k, " more bytes, ", n_ - pos_, " left)"));
  }
  uint8_t u8() {
    need(1);
    return p_[pos_++];
  }
  uint64_t le(size_t k) {
    need(k);
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = (v << 8) | p_[pos_ + i];
    pos_ += k;
    return v;
  }
  std::string_view bytes(uint64_t k) {
    if (k > n_ - pos_) bad(cat("string of ", k, " bytes runs past the end of the data"));
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(k));
    pos_ += static_cast<size_t>(k);
    return s;
  }
  std::string_view line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) bad("unterminated text argument");
    size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - p_);
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }

  // ---- objects and stack ----
  PickleObject& add(PickleKind k) {
    if (objs_.size() >= kMaxObjects) bad(cat("more than ", kMaxObjects, " objects"));
    objs_.emplace_back();
    objs_.back().kind = k;
    return objs_.back();
  }
  uint32_t push_new(PickleKind k) {
    add(k);
    uint32_t id = static_cast<uint32_t>(objs_.size() - 1);
    push(id);
    return id;
  }
  void push(uint32_t id) {
    if (stack_.size() >= kMaxObjects) bad(cat("stack deeper than ", kMaxObjects));
    stack_.push_back(id);
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= base()) bad("stack underflow");
    uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  uint32_t& top() {
    if (stack_.size() <= base()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PickleObject& obj(uint32_t id) { return objs_[id]; }
  void push_int(int64_t v) { add_int(v); }
  uint32_t add_int(int64_t v) {
    uint32_t id = push_new(PickleKind::Int);
    obj(id).i = v;
    return id;
  }
  void push_str(PickleKind k, std::string_view s) {
    uint32_t id = push_new(k);
    obj(id).s.assign(s);
  }
  void memo_put(uint64_t key) {
    if (stack_.size() <= base()) bad("memo put with an empty stack");
    if (memo_.size() >= kMaxObjects && !memo_.count(key))
      bad(cat("more than ", kMaxObjects, " memo entries"));
    memo_[key] = stack_.back();
  }
  void memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) bad(cat("memo key ", key, " not found"));
    push(it->second);
  }

  // Integer from LONG1/LONG4 (little-endian two's complement).
  void push_long(uint64_t k) {
    std::string_view b = bytes(k);
    if (k > 8) {
      // Allow redundant sign bytes, refuse real big integers.
      for (size_t i = 8; i < k; ++i) {
        uint8_t expect = (static_cast<uint8_t>(b[7]) & 0x80) ? 0xff : 0x00;
        if (static_cast<uint8_t>(b[i]) != expect) bad("integer wider than 64 bits");
      }
      k = 8;
    }
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[i]);
    if (k > 0 && k < 8 && (static_cast<uint8_t>(b[k - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * k);
    push_int(static_cast<int64_t>(v));
  }
  int64_t parse_decimal(std::string_view s) {
    if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
    bool neg = !s.empty() && s[0] == '-';
    if (neg || (!s.empty() && s[0] == '+')) s.remove_prefix(1);
    if (s.empty() || s.size() > 19) bad("bad or too large decimal integer");
    int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') bad("bad decimal integer");
      v = v * 10 + (c - '0');
    }
    return neg ? -v : v;
  }

  // ---- globals and calls ----
  void push_global(std::string module, std::string name) {
    std::string full = module + "." + name;
    Call call;
    if (!global_allowed(full, call)) {
      std::string shown = full.size() > 200 ? full.substr(0, 200) + "..." : full;
      fail("refusing to load ", what_, ": pickle imports non-allow-listed global '", shown,
           "' (only PyTorch tensor and state-dict globals are allowed; this file may contain code)");
    }
    push_str(PickleKind::Global, full);
  }

  const PickleObject& arg(const std::vector<uint32_t>& args, size_t i, PickleKind k, const char* fn) {
    if (i >= args.size()) bad(cat(fn, ": missing argument ", i));
    const PickleObject& o = objs_[args[i]];
    if (o.kind != k)
      bad(cat(fn, ": argument ", i, " is ", pickle_kind_name(o.kind), ", expected ", pickle_kind_name(k)));
    return o;
  }
  std::vector<int64_t> int_tuple(uint32_t id, const char* fn, const char* field) {
    const PickleObject& o = objs_[id];
    if (o.kind != PickleKind::Tuple && o.kind != PickleKind::List)
      bad(cat(fn, ": ", field, " is not a tuple"));
    if (o.items.size() > 32) bad(cat(fn, ": ", field, " has more than 32 dimensions"));
    std::vector<int64_t> v;
    for (uint32_t e : o.items) {
      if (objs_[e].kind != PickleKind::Int) bad(cat(fn, ": ", field, " holds a non-integer"));
      v.push_back(objs_[e].i);
    }
    return v;
  }

  uint32_t rebuild_tensor(const std::vector<uint32_t>& a, const char* fn) {
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

  uint32_t call(uint32_t callable, uint32_t args_id, int depth = 0) {
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
    fail("refusing to load ", what_, ": pickle calls '", g.s,
         "', which is not an allowed state-dict function");
  }

  // persistent_load(('storage', storage_type, key, location, numel))
  uint32_t persistent(uint32_t pid) {
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

  void add_items(uint32_t target, const std::vector<uint32_t>& items, bool pairs) {
    PickleObject& o = objs_[target];
    if (pairs) {
      if (o.kind != PickleKind::Dict) bad(cat("SETITEM(S) on a ", pickle_kind_name(o.kind)));
      if (items.size() % 2) bad("SETITEMS with an odd number of items");
    } else if (o.kind != PickleKind::List) {
      bad(cat("APPEND(S)/ADDITEMS on a ", pickle_kind_name(o.kind)));
    }
    o.items.insert(o.items.end(), items.begin(), items.end());
  }

  void step(uint8_t op, size_t op_pos) {
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t v = u8();
        if (v > 5) bad(cat("unsupported pickle protocol ", int(v)));
        return;
      }
      case 0x95:
        le(8);
        return;  // FRAME (length is informational)
      case '(':
        if (marks_.size() >= kMaxMarks) bad("too many MARKs");
        marks_.push_back(stack_.size());
        return;
      case '0': {  // POP
        if (stack_.size() > base()) {
          stack_.pop_back();
        } else {
          pop_mark();
        }
        return;
      }
      case '1':
        pop_mark();
        return;  // POP_MARK
      case '2':
        push(top());
        return;  // DUP
      case 'N':
        push(0);
        return;
      case 0x89:
        push(1);
        return;  // NEWFALSE
      case 0x88:
        push(2);
        return;  // NEWTRUE
      case 'J':
        push_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))));
        return;  // BININT
      case 'K':
        push_int(static_cast<int64_t>(le(1)));
        return;  // BININT1
      case 'M':
        push_int(static_cast<int64_t>(le(2)));
        return;  // BININT2
      case 0x8a:
        push_long(le(1));
        return;     // LONG1
      case 0x8b: {  // LONG4
        int32_t k = static_cast<int32_t>(static_cast<uint32_t>(le(4)));
        if (k < 0) bad("negative LONG4 length");
        push_long(static_cast<uint64_t>(k));
        return;
      }
      case 'I': {  // INT (text); "00"/"01" are False/True
        std::string_view s = line();
        if (s == "00") return push(1);
        if (s == "01") return push(2);
        push_int(parse_decimal(s));
        return;
      }
      case 'L':
        push_int(parse_decimal(line()));
        return;    // LONG (text)
      case 'G': {  // BINFLOAT, big-endian
        need(8);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | p_[pos_ + i];
        pos_ += 8;
        uint32_t id = push_new(PickleKind::Float);
        obj(id).f = std::bit_cast<double>(v);
        return;
      }
      case 'F': {  // FLOAT (text)
        std::string s(line());
        char* end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) bad("bad FLOAT");
        uint32_t id = push_new(PickleKind::Float);
        obj(id).f = v;
        return;
      }
      case 'X':
        push_str(PickleKind::Str, bytes(le(4)));
        return;  // BINUNICODE
      case 0x8c:
        push_str(PickleKind::Str, bytes(le(1)));
        return;  // SHORT_BINUNICODE
      case 0x8d:
        push_str(PickleKind::Str, bytes(le(8)));
        return;  // BINUNICODE8
      case 'V':
        push_str(PickleKind::Str, line());
        return;  // UNICODE (raw-unicode-escape; ASCII taken as is)
      case 'B':
        push_str(PickleKind::Bytes, bytes(le(4)));
        return;  // BINBYTES
      case 'C':
        push_str(PickleKind::Bytes, bytes(le(1)));
        return;  // SHORT_BINBYTES
      case 0x8e:
        push_str(PickleKind::Bytes, bytes(le(8)));
        return;  // BINBYTES8
      case 0x96:
        push_str(PickleKind::Bytes, bytes(le(8)));
        return;    // BYTEARRAY8
      case 'T': {  // BINSTRING (Python 2 str)
        int32_t k = static_cast<int32_t>(static_cast<uint32_t>(le(4)));
        if (k < 0) bad("negative BINSTRING length");
        push_str(PickleKind::Str, bytes(static_cast<uint64_t>(k)));
        return;
      }
      case 'U':
        push_str(PickleKind::Str, bytes(le(1)));
        return;    // SHORT_BINSTRING
      case 'S': {  // STRING (quoted text, no escapes supported)
        std::string_view s = line();
        if (s.size() < 2 || (s[0] != '\'' && s[0] != '"') || s.back() != s[0]) bad("bad STRING");
        s = s.substr(1, s.size() - 2);
        if (s.find('\\') != std::string_view::npos) bad("escapes in STRING are not supported");
        push_str(PickleKind::Str, s);
        return;
      }
      case ')':
        push_new(PickleKind::Tuple);
        return;  // EMPTY_TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t k = op - 0x84u;
        std::vector<uint32_t> items(k);
        for (size_t i = k; i-- > 0;) items[i] = pop();
        uint32_t id = push_new(PickleKind::Tuple);
        obj(id).items = std::move(items);
        return;
      }
      case 't': {  // TUPLE
        std::vector<uint32_t> items = pop_mark();
        uint32_t id = push_new(PickleKind::Tuple);
        obj(id).items = std::move(items);
        return;
      }
      case ']':
        push_new(PickleKind::List);
        return;  // EMPTY_LIST
      case 0x8f:
        push_new(PickleKind::List);
        return;  // EMPTY_SET (kept as a list)
      case 'l':
      case 0x91: {  // LIST, FROZENSET
        std::vector<uint32_t> items = pop_mark();
        uint32_t id = push_new(PickleKind::List);
        obj(id).items = std::move(items);
        return;
      }
      case '}':
        push_new(PickleKind::Dict);
        return;    // EMPTY_DICT
      case 'd': {  // DICT
        std::vector<uint32_t> items = pop_mark();
        if (items.size() % 2) bad("DICT with an odd number of items");
        uint32_t id = push_new(PickleKind::Dict);
        obj(id).items = std::move(items);
        return;
      }
      case 'a': {  // APPEND
        uint32_t v = pop();
        add_items(top(), {v}, false);
        return;
      }
      case 'e':
      case 0x90: {  // APPENDS, ADDITEMS
        std::vector<uint32_t> items = pop_mark();
        add_items(top(), items, false);
        return;
      }
      case 's': {  // SETITEM
        uint32_t v = pop();
        uint32_t k = pop();
        add_items(top(), {k, v}, true);
        return;
      }
      case 'u': {  // SETITEMS
        std::vector<uint32_t> items = pop_mark();
        add_items(top(), items, true);
        return;
      }
      case 'q':
        memo_put(le(1));
        return;  // BINPUT
      case 'r':
        memo_put(le(4));
        return;  // LONG_BINPUT
      case 'p':
        memo_put(static_cast<uint64_t>(parse_decimal(line())));
        return;  // PUT
      case 0x94:
        memo_put(memo_.size());
        return;  // MEMOIZE
      case 'h':
        memo_get(le(1));
        return;  // BINGET
      case 'j':
        memo_get(le(4));
        return;  // LONG_BINGET
      case 'g':
        memo_get(static_cast<uint64_t>(parse_decimal(line())));
        return;    // GET
      case 'c': {  // GLOBAL
        std::string module(line());
        std::string name(line());
        push_global(std::move(module), std::move(name));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        uint32_t name = pop(), module = pop();
        if (obj(name).kind != PickleKind::Str || obj(module).kind != PickleKind::Str)
          bad("STACK_GLOBAL of non-string names");
        push_global(obj(module).s, obj(name).s);
        return;
      }
      case 'Q': {  // BINPERSID
        uint32_t pid = pop();
        push(persistent(pid));
        return;
      }
      case 'R': {  // REDUCE
        uint32_t args = pop();
        uint32_t callable = pop();
        push(call(callable, args));
        return;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        uint32_t args = pop();
        uint32_t cls = pop();
        if (obj(cls).kind != PickleKind::Global || obj(cls).s != "collections.OrderedDict")
          fail("refusing to load ", what_, ": pickle instantiates '",
               obj(cls).kind == PickleKind::Global ? obj(cls).s : pickle_kind_name(obj(cls).kind),
               "', which is not an allowed state-dict class");
        if (obj(args).kind != PickleKind::Tuple) bad("NEWOBJ arguments are not a tuple");
        push_new(PickleKind::Dict);
        return;
      }
      case 'b': {  // BUILD: the state is dropped (OrderedDict._metadata, tensor attributes); nothing is
                   // called
        pop();
        top();
        return;
      }
      case 'P':
        bad("text persistent ids (PERSID) are not used by PyTorch and not supported");
      case 'i':
      case 'o':
      case 0x92:
        fail("refusing to load ", what_, ": pickle opcode 0x", "0123456789abcdef"[op >> 4],
             "0123456789abcdef"[op & 15], " (INST/OBJ/NEWOBJ_EX) instantiates classes and is not allowed");
      case 0x82:
      case 0x83:
      case 0x84:
        bad("extension registry opcodes (EXT1/2/4) are not supported");
      case 0x97:
      case 0x98:
        bad("out-of-band buffers are not supported");
      default:
        break;
    }
    pos_ = op_pos;
    bad(cat("unknown opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15]));
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& what_;
  std::vector<PickleObject> objs_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
};

}  // namespace

const char* pickle_kind_name(PickleKind k) {
  switch (k) {
    case PickleKind::None:
      return "None";
    case PickleKind::Bool:
      return "bool";
    case PickleKind::Int:
      return "int";
    case PickleKind::Float:
      return "float";
    case PickleKind::Str:
      return "str";
    case PickleKind::Bytes:
      return "bytes";
    case PickleKind::Tuple:
      return "tuple";
    case PickleKind::List:
      return "list";
    case PickleKind::Dict:
      return "dict";
    case PickleKind::Global:
      return "global";
    case PickleKind::Storage:
      return "storage";
    case PickleKind::Tensor:
      return "tensor";
  }
  return "?";
}

PickleData pickle_parse(const void* data, size_t size, const std::string& what) {
  A2F_CHECK(data != nullptr || size == 0, what, ": no pickle data");
  if (size == 0) fail(what, ": empty pickle");
  return Machine(static_cast<const uint8_t*>(data), size, what).run();
}

}  // namespace a2f
