// The fast CPU backend: oneDNN (libdnnl, OpenMP runtime) for conv2d / linear / matmul with fused bias and
// activation, f32 or bf16 compute (bf16 when a weight or activation is bf16); own multi-threaded, vectorised
// kernels for norms, softmax, elementwise ops and a memory-efficient fused attention. Everything it does not
// override comes from RefBackend.
#pragma once
#include <memory>

#include "backends/cpu/cpu_kernels.h"
#include "backends/ref/ref_backend.h"

namespace a2f {

namespace cpu {
class DnnlContext;
}

class CpuBackend : public RefBackend {
 public:
  // `kernels` selects the ISA of our own kernels (default: the best the CPU has, or $A2F_CPU_ISA). `threads`:
  // worker threads per op (0: the calling thread's OpenMP setting, all cores unless changed).
  explicit CpuBackend(const cpu::Kernels* kernels = nullptr, int threads = 0);
  ~CpuBackend() override;
  std::string name() const override;
  Tensor empty(const Shape& shape, DType dtype) override;  // large blocks recycled (cpu_alloc.h)
  void release_caches() override;
  void trim_memory() override;
  Tensor prepare_dense_weight(const Tensor& w, DType dtype) override;

  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) override;
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act = Act::None) override;
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b = false, float alpha = 1.0f) override;

  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor scale(const Tensor& x, float alpha, float beta = 0.0f) override;
  Tensor unary(Act act, const Tensor& x) override;
  Tensor geglu(const Tensor& x) override;

  Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                    Act act = Act::None) override;
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) override;
  Tensor softmax(const Tensor& x) override;

  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) override;

  Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) override;
  Tensor concat(const std::vector<Tensor>& xs, int dim) override;
  Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1) override;
  Tensor permute(const Tensor& x, const std::vector<int>& perm) override;
  Tensor cast(const Tensor& x, DType dtype) override;

  const cpu::Kernels& kernels() const { return *k_; }
  // Worker threads per op, applied on whichever thread calls the op (OpenMP keeps the count per thread, so a
  // count set once on the creating thread would not reach a server's request threads). 0: leave it.
  void set_num_threads(int threads);
  int num_threads() const { return threads_; }
  // Winograd (oneDNN's f32 F(4x4, 3x3)) for 3x3 stride-1 convolutions whose f32 weights take at most this
  // many bytes. Default 0 (never) unless $A2F_CPU_WINOGRAD = all | <MB>. About 2.8x faster than direct
  // convolution here (bf16 inputs too, widened exactly); NMSE vs the reference 1.4e-12 instead of 3e-13, and
  // its cached transformed weights take 4x their f32 size. It is off by default because its different
  // rounding flips pixels of the uint8-rounded face crop in the face parity tests; 16 MB covers the UNet's
  // 320/640-channel levels (~+1 GB), "all" also the 1280-channel ones (~+7.6 GB for SD1.5).
  void set_winograd_max_weight_bytes(size_t bytes);
  // The oneDNN implementation used for a convolution already run (tests, benchmarks).
  std::string conv_impl(const Tensor& x, const Tensor& w, bool has_bias, const Conv2dParams& p) const;

 private:
  const cpu::Kernels* k_;
  int threads_;
  std::unique_ptr<cpu::DnnlContext> dnnl_;
};

// The CPU backend with the best kernels for this CPU (or those named by $A2F_CPU_ISA), `threads` worker
// threads per op (0: the calling thread's OpenMP setting).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);
// The CPU backend with our kernels for one ISA; throws a2f::Error when the CPU lacks it (tests use this).
std::unique_ptr<Backend> make_cpu_backend(cpu::Isa isa);

}  // namespace a2f
