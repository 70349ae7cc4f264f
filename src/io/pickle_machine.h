// The pickle virtual machine behind pickle_parse (internal to src/io). The opcode interpreter is in
// pickle.cpp; the PyTorch reconstruction rules (the allow-listed globals, the torch rebuild functions called
// by REDUCE, persistent storage ids) are in pickle_torch.cpp.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "io/pickle.h"

namespace a2f::pickle_detail {

constexpr size_t kMaxObjects = size_t(1) << 22;  // ~4M values: far above any real state dict
constexpr size_t kMaxMarks = size_t(1) << 20;

class PickleMachine {
 public:
  PickleMachine(const uint8_t* p, size_t n, const std::string& what) : p_(p), n_(n), what_(what) {
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

  // ---- PyTorch reconstruction rules (pickle_torch.cpp) ----
  void push_global(std::string module, std::string name);
  const PickleObject& arg(const std::vector<uint32_t>& args, size_t i, PickleKind k, const char* fn);
  std::vector<int64_t> int_tuple(uint32_t id, const char* fn, const char* field);
  uint32_t rebuild_tensor(const std::vector<uint32_t>& a, const char* fn);
  uint32_t call(uint32_t callable, uint32_t args_id, int depth = 0);
  // persistent_load(('storage', storage_type, key, location, numel))
  uint32_t persistent(uint32_t pid);

  // ---- opcodes (pickle.cpp) ----
  void add_items(uint32_t target, const std::vector<uint32_t>& items, bool pairs);
  void step(uint8_t op, size_t op_pos);

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& what_;
  std::vector<PickleObject> objs_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, uint32_t> memo_;
};

}  // namespace a2f::pickle_detail
