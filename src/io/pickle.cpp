// pickle_parse: the opcode interpreter of the pickle virtual machine (protocols 0-5, minus the opcodes that
// instantiate arbitrary classes). What globals and calls mean is decided in pickle_torch.cpp.
#include "io/pickle.h"

#include <bit>
#include <cstring>
#include <string_view>

#include "io/pickle_machine.h"

namespace a2f {

namespace pickle_detail {

void PickleMachine::add_items(uint32_t target, const std::vector<uint32_t>& items, bool pairs) {
  PickleObject& o = objs_[target];
  if (pairs) {
    if (o.kind != PickleKind::Dict) bad(cat("SETITEM(S) on a ", pickle_kind_name(o.kind)));
    if (items.size() % 2) bad("SETITEMS with an odd number of items");
  } else if (o.kind != PickleKind::List) {
    bad(cat("APPEND(S)/ADDITEMS on a ", pickle_kind_name(o.kind)));
  }
  o.items.insert(o.items.end(), items.begin(), items.end());
}

void PickleMachine::step(uint8_t op, size_t op_pos) {
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

}  // namespace pickle_detail

using pickle_detail::PickleMachine;

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
  return PickleMachine(static_cast<const uint8_t*>(data), size, what).run();
}

}  // namespace a2f
