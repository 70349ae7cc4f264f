#include "io/npy.h"

#include <cstdio>
#include <cstring>
#include <string_view>

#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/shape_check.h"

namespace a2f {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kMaxHeader = size_t(1)
                              << 20;  // numpy itself refuses headers over 10 KB unless told otherwise

// A cursor over the header text: a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& what) : s_(s), what_(what) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        shape = parse_shape();
        have_shape = true;
      } else {
        bad(cat("unexpected key '", key, "'"));
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      break;
    }
    skip_ws();
    if (pos_ != s_.size()) bad("trailing characters after the header dict");
    if (!have_descr || !have_fortran || !have_shape) bad("missing 'descr', 'fortran_order' or 'shape'");
  }

 private:
  [[noreturn]] void bad(const std::string& why) const {
    fail(what_, ": malformed .npy header (", why, " at header character ", pos_, ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) bad(cat("expected '", c, "'"));
    ++pos_;
  }
  std::string parse_string() {
    skip_ws();
    char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    ++pos_;
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\') bad("escape sequences are not supported");
      ++pos_;
    }
    if (pos_ >= s_.size()) bad("unterminated string");
    std::string out(s_.substr(start, pos_ - start));
    ++pos_;
    return out;
  }
  bool parse_bool() {
    skip_ws();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  Shape parse_shape() {
    expect('(');
    Shape shape;
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++pos_;
        break;
      }
      if (peek() < '0' || peek() > '9') bad("expected a dimension");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (INT64_MAX - 9) / 10) bad("dimension too large");
        v = v * 10 + (peek() - '0');
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix
      shape.push_back(v);
      if (shape.size() > 32) bad("more than 32 dimensions");
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(')');
      break;
    }
    return shape;
  }

  std::string_view s_;
  const std::string& what_;
  size_t pos_ = 0;
};

DType npy_dtype(const std::string& descr, const std::string& what) {
  if (descr == "<f4") return DType::F32;
  if (descr == "<f8") return DType::F64;
  if (descr == "<f2") return DType::F16;
  if (descr == "<i8") return DType::I64;
  if (descr == "<i4") return DType::I32;
  if (descr == "|u1" || descr == "<u1") return DType::U8;
  if (descr == "|i1" || descr == "<i1") return DType::I8;
  if (descr == "|b1" || descr == "<b1") return DType::Bool;
  if (!descr.empty() && descr[0] == '>') fail(what, ": big-endian .npy dtype '", descr, "' is not supported");
  fail(what, ": unsupported .npy dtype '", descr, "' (supported: <f4 <f8 <f2 <i8 <i4 |u1 |i1 |b1)");
}

const char* npy_descr(DType t) {
  switch (t) {
    case DType::F32:
      return "<f4";
    case DType::F64:
      return "<f8";
    case DType::F16:
      return "<f2";
    case DType::I64:
      return "<i8";
    case DType::I32:
      return "<i4";
    case DType::U8:
      return "|u1";
    case DType::I8:
      return "|i1";
    case DType::Bool:
      return "|b1";
    case DType::BF16:
      return "<f4";  // written as float32
  }
  return "?";
}

}  // namespace

Tensor npy_parse(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  A2F_CHECK(size >= kMagicLen + 4 && std::memcmp(p, kMagic, kMagicLen) == 0, what,
            ": not a .npy file (missing the \\x93NUMPY magic)");
  const int major = p[6];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = size_t(p[8]) | size_t(p[9]) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    A2F_CHECK(size >= 12, what, ": truncated .npy header");
    header_len = size_t(p[8]) | size_t(p[9]) << 8 | size_t(p[10]) << 16 | size_t(p[11]) << 24;
    header_start = 12;
  } else {
    fail(what, ": unsupported .npy format version ", major, ".", int(p[7]), " (1.0 to 3.0 are supported)");
  }
  A2F_CHECK(header_len <= kMaxHeader, what, ": .npy header length ", header_len, " is implausibly large");
  A2F_CHECK(header_len <= size - header_start, what, ": truncated .npy file (header of ", header_len,
            " bytes, file has ", size, " bytes)");
  std::string_view header(reinterpret_cast<const char*>(p + header_start), header_len);
  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(header, what).parse(descr, fortran, shape);
  A2F_CHECK(shape_is_bounded(shape), what, ": shape ", shape_str(shape), " needs more data than the file's ",
            size - header_start - header_len, " bytes");
  A2F_CHECK(!fortran, what, ": Fortran-order .npy arrays are not supported (save with C order)");
  const DType dtype = npy_dtype(descr, what);

  const size_t data_start = header_start + header_len;
  const size_t avail = size - data_start;
  const size_t es = dtype_size(dtype);
  // numel * element size, overflow-checked, must be exactly what the file holds.
  size_t need = es;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(need, static_cast<size_t>(d), &need)) {
      fail(what, ": shape ", shape_str(shape), " needs more data than the file's ", avail, " bytes");
    }
  }
  A2F_CHECK(need == avail, what, ": shape ", shape_str(shape), " of ", descr, " needs ", need,
            " data bytes but the file has ", avail);
  Tensor t = Tensor::empty(shape, dtype);
  if (need) std::memcpy(t.raw_data(), p + data_start, need);
  return t;
}

Tensor npy_read(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  return npy_parse(file->data(), file->size(), cat("'", path.string(), "'"));
}

void npy_write(const std::filesystem::path& path, const Tensor& t_in) {
  A2F_CHECK(t_in.defined(), "npy_write '", path.string(), "': undefined tensor");
  A2F_CHECK(t_in.device() == Device::CPU, "npy_write '", path.string(), "': tensor is not on the host");
  Tensor t = t_in.dtype() == DType::BF16 ? t_in.to(DType::F32) : t_in.contiguous();

  std::string dict = cat("{'descr': '", npy_descr(t.dtype()), "', 'fortran_order': False, 'shape': (");
  for (size_t i = 0; i < t.shape().size(); ++i) {
    dict += cat(t.shape()[i]);
    if (t.shape().size() == 1 || i + 1 < t.shape().size()) dict += ", ";
  }
  if (t.shape().size() == 1) dict.pop_back();  // "(3,)"
  dict += "), }";
  const bool v2 = dict.size() + 11 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  size_t total = prefix + dict.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  const size_t hl = dict.size();
  std::string head(kMagic, kMagicLen);
  head.push_back(static_cast<char>(v2 ? 2 : 1));
  head.push_back(0);
  head.push_back(static_cast<char>(hl & 0xff));
  head.push_back(static_cast<char>((hl >> 8) & 0xff));
  if (v2) {
    head.push_back(static_cast<char>((hl >> 16) & 0xff));
    head.push_back(static_cast<char>((hl >> 24) & 0xff));
  }
  head += dict;

  write_file_atomic(path, {{head.data(), head.size()}, {t.raw_data(), t.nbytes()}});
}

}  // namespace a2f
