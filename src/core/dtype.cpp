#include "core/dtype.h"

#include <cstring>

#include "core/error.h"

namespace a2f {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
    case DType::I8: return 1;
    case DType::Bool: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
    case DType::I8: return "i8";
    case DType::Bool: return "bool";
  }
  return "?";
}

bool dtype_is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

DType dtype_parse(std::string_view s) {
  if (s == "f32" || s == "fp32" || s == "float32") return DType::F32;
  if (s == "f16" || s == "fp16" || s == "float16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  fail("unknown dtype '", s, "' (expected fp32, fp16 or bf16)");
}

uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in f16: value = abs_float * 2^24, rounded to nearest even.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to zero
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14 + (113 - exp) - ... : places the value in units of 2^-24
    uint32_t val = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (val & 1u))) ++val;
    return static_cast<uint16_t>(sign | val);
  }
  // Normal: rebias exponent (127 -> 15), round mantissa 23 -> 10 bits to nearest even.
  uint32_t val = abs - 0x38000000u;  // exponent - 112
  uint32_t rem = val & 0x1fffu;
  val >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (val & 1u))) ++val;  // carry into exponent is correct
  return static_cast<uint16_t>(sign | val);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {
      // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      out = sign | ((112u - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(out);
}

namespace {
template <class T>
float load_as_f32(const void* p, size_t i) {
  return static_cast<float>(static_cast<const T*>(p)[i]);
}

double load_f64(const void* src, DType t, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(src)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    case DType::F64: return static_cast<const double*>(src)[i];
    case DType::I64: return static_cast<double>(static_cast<const int64_t*>(src)[i]);
    case DType::I32: return static_cast<const int32_t*>(src)[i];
    case DType::U8: return static_cast<const uint8_t*>(src)[i];
    case DType::I8: return static_cast<const int8_t*>(src)[i];
    case DType::Bool: return static_cast<const uint8_t*>(src)[i] ? 1.0 : 0.0;
  }
  return 0;
}

void store_f64(void* dst, DType t, size_t i, double v) {
  switch (t) {
    case DType::F32: static_cast<float*>(dst)[i] = static_cast<float>(v); break;
    case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(static_cast<float>(v)); break;
    case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(static_cast<float>(v)); break;
    case DType::F64: static_cast<double*>(dst)[i] = v; break;
    case DType::I64: static_cast<int64_t*>(dst)[i] = static_cast<int64_t>(v); break;
    case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
    case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
    case DType::I8: static_cast<int8_t*>(dst)[i] = static_cast<int8_t>(v); break;
    case DType::Bool: static_cast<uint8_t*>(dst)[i] = v != 0.0; break;
  }
}
}  // namespace

void convert(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (st == dt) {
    std::memcpy(dst, src, n * dtype_size(st));
    return;
  }
  if (dt == DType::F32 && st == DType::BF16) {
    auto* s = static_cast<const uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
    return;
  }
  if (dt == DType::BF16 && st == DType::F32) {
    auto* s = static_cast<const float*>(src);
    auto* d = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
    return;
  }
  if (dt == DType::F32 && st == DType::F16) {
    auto* s = static_cast<const uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
    return;
  }
  if (dt == DType::F16 && st == DType::F32) {
    auto* s = static_cast<const float*>(src);
    auto* d = static_cast<uint16_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]);
    return;
  }
  // I64 <-> F64 through double can lose precision above 2^53; integer <-> integer goes direct.
  if (dt == DType::I64 && st == DType::I32) {
    for (size_t i = 0; i < n; ++i) static_cast<int64_t*>(dst)[i] = static_cast<const int32_t*>(src)[i];
    return;
  }
  for (size_t i = 0; i < n; ++i) store_f64(dst, dt, i, load_f64(src, st, i));
}

}  // namespace a2f
