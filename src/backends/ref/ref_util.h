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

// Argument checks shared by every backend's version of an op; they throw a2f::Error naming the op and shapes.
Shape conv2d_check(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const Conv2dParams& p);  // -> out shape
void linear_check(const Tensor& x, const Tensor& w, const Tensor& bias);
Shape matmul_check(const Tensor& a, const Tensor& b, bool trans_b);  // -> out shape
void attention_check(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);
void group_norm_check(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta);
void layer_norm_check(const Tensor& x, const Tensor& gamma, const Tensor& beta);

}  // namespace a2f::ref
