// Helpers shared by the reference kernels (internal to backends; models never include this).
#pragma once
#include <vector>

#include "core/backend.h"

namespace a2f::ref {

// All elements of a float tensor as a contiguous f32 vector (any float dtype, any strides).
std::vector<float> to_f32(const Tensor& t);
// An f32 vector as a new contiguous tensor of the given shape and dtype (rounded to nearest even for 16-bit).
Tensor from_f32(const std::vector<float>& v, const Shape& shape, DType dtype);
// Checks that t is a defined float tensor; names the op and the argument otherwise.
void check_float(const Tensor& t, const char* op, const char* arg);
// Normalises a possibly negative dimension index; throws naming the op when out of range.
int norm_dim(int dim, int ndim, const char* op);

}  // namespace a2f::ref
