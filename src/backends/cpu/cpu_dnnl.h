// oneDNN (libdnnl 2.6, OpenMP runtime) for conv2d and matmul / linear with fused bias + activation.
// Primitives are cached by shape, dtype and parameters (the UNet calls the same shapes every step; creating
// one takes milliseconds); weights are reordered into the primitive's preferred layout (and dtype) once and
// cached by their storage (pointer + offset + shape), valid while that storage lives — see
// Backend::release_caches.
//
// Compute dtype: bf16 (f32 accumulation) when the activation or the weight is bf16, f32 otherwise; f16 inputs
// are widened to f32 first. The output has the activation's dtype.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/backend.h"

namespace a2f::cpu {

class DnnlContext {
 public:
  DnnlContext();
  ~DnnlContext();
  DnnlContext(const DnnlContext&) = delete;
  DnnlContext& operator=(const DnnlContext&) = delete;

  // Arguments already checked by the caller (ref::conv2d_check etc.).
  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                const Shape& out_shape);
  // x [..., K] times weight w [N, K] (cached as a weight), + bias, act.
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act);
  // a [..., M, K] times b [..., K, N] (or [..., N, K] when trans_b), batch dims broadcast; nothing cached.
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b, float alpha, const Shape& out_shape);

  void clear();
  // Winograd for f32 3x3 stride-1 convolutions whose weights take at most this many bytes (0: never).
  void set_winograd_max_weight_bytes(size_t bytes);
  // The oneDNN implementation a cached convolution primitive uses (for tests and benchmarks; "" if none).
  std::string conv_impl(const Tensor& x, const Tensor& w, bool has_bias, const Conv2dParams& p);
  // "avx512_core_bf16" etc.: the ISA oneDNN runs on this CPU.
  static const char* isa();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t winograd_max_weight_bytes_;
};

}  // namespace a2f::cpu
