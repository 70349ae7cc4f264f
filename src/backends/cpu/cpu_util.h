// Helpers of the CPU backend's drivers: parallel dtype conversion and strided copies.
#pragma once
#include "core/tensor.h"

namespace a2f::cpu {

// Copies src (any strides, any dtype) into dst (contiguous, same shape; converts to dst's dtype). Parallel.
void copy_strided(const Tensor& src, Tensor& dst);
// t as a contiguous tensor of dtype dt (t itself when it already is one). Parallel.
Tensor to_contiguous(const Tensor& t, DType dt);
// t as a contiguous f32 tensor (t itself when it already is one).
Tensor to_f32_contiguous(const Tensor& t);
// A result in the requested output dtype (t itself when it already has that dtype).
Tensor from_f32_result(const Tensor& t, DType dtype);

}  // namespace a2f::cpu
