// Element types and exact conversions between f32 and the 16-bit float formats (round to nearest even).
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace a2f {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, U8, I8, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "f16", "bf16", ...
bool dtype_is_float(DType t);
// Parses "f32"/"fp32"/"float32", "f16"/"fp16"/"float16", "bf16"/"bfloat16". Throws on anything else.
DType dtype_parse(std::string_view s);

// f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// IEEE binary16 <-> binary32, exact round to nearest even, subnormals, inf and NaN handled.
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

// Bulk conversions (n elements).
void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t n);

}  // namespace a2f
