// Bounds on shapes read from files, so that no numel / stride / byte-size computation on them can overflow
// (a shape with a zero dimension still gets strides computed from its other dimensions).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace a2f {

// True when every dimension is >= 0 and the product of the dimensions, zeros taken as 1, times 16 fits in
// int64.
inline bool shape_is_bounded(const Shape& s) {
  int64_t p = 1;
  for (int64_t d : s) {
    if (d < 0) return false;
    if (d > 1 && __builtin_mul_overflow(p, d, &p)) return false;
  }
  return p <= INT64_MAX / 16;
}

}  // namespace a2f
