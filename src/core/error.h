// Errors and the string building used in their messages. The library throws a2f::Error with a message a user
// can act on; the C API boundary turns it into a status.
#pragma once
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace a2f {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::string& s, std::string_view v) { s.append(v); }
inline void append(std::string& s, const char* v) { s.append(v ? v : "(null)"); }
inline void append(std::string& s, const std::string& v) { s.append(v); }
inline void append(std::string& s, char v) { s.push_back(v); }
inline void append(std::string& s, bool v) { s.append(v ? "true" : "false"); }
template <class T>
  requires std::is_arithmetic_v<T>
void append(std::string& s, T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  s.append(buf, r.ptr);
}
template <class T>
void append(std::string& s, const std::vector<T>& v) {
  s.push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.append(", ");
    append(s, v[i]);
  }
  s.push_back(']');
}
}  // namespace detail

// cat("shape ", shape, " has ", n, " elements") -> one string.
template <class... Args>
std::string cat(const Args&... args) {
  std::string s;
  (detail::append(s, args), ...);
  return s;
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace a2f

// A2F_CHECK(cond, parts...): throws a2f::Error(parts...) when cond is false. For user-facing conditions.
#define A2F_CHECK(cond, ...)                 \
  do {                                       \
    if (!(cond)) ::a2f::fail(__VA_ARGS__);   \
  } while (0)

// A2F_ASSERT: an internal invariant; names file and line.
#define A2F_ASSERT(cond)                                                                        \
  do {                                                                                          \
    if (!(cond)) ::a2f::fail("internal error: ", #cond, " failed at ", __FILE__, ":", __LINE__); \
  } while (0)
