// The closed op set and the backend interface. Models and the ONNX interpreter call ops through a Backend&;
// they never include a backend's own header. backends/ref implements every op with plain scalar loops (the
// ground truth of the op tests); backends/cpu derives from it and overrides the ops it makes fast.
//
// Conventions (all ops):
// - Inputs may be f32, bf16 or f16 (weights may differ from activations); integer inputs only where stated.
//   The output has the dtype of the first activation input. Computation is in f32.
// - Inputs may be non-contiguous views; outputs are new contiguous tensors on the backend's device.
// - An "undefined" Tensor (Tensor()) means an absent optional input (e.g. no bias).
// - Shape errors throw a2f::Error naming the op and the shapes.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace a2f {

// Activations, usable alone (unary) or fused after conv2d / linear / group_norm.
enum class Act : uint8_t {
  None,
  Relu,
  Silu,       // x * sigmoid(x)
  GeluErf,    // 0.5 x (1 + erf(x / sqrt 2))
  GeluTanh,   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  QuickGelu,  // x * sigmoid(1.702 x)
  Sigmoid,
};
const char* act_name(Act a);

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div };

struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  Act act = Act::None;  // applied after the bias
  static Conv2dParams same(int stride, int pad) {
    Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = pad;
    return p;
  }
};

enum class PoolKind : uint8_t { Max, Avg };
struct Pool2dParams {
  PoolKind kind = PoolKind::Max;
  int kernel_h = 2, kernel_w = 2;
  int stride_h = 2, stride_w = 2;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // Avg only (ONNX default false: callers set it)
};

struct AttentionParams {
  int heads = 1;
  float scale = 0.0f;  // 0 means 1/sqrt(head_dim)
  bool causal = false;  // mask keys j > i (CLIP)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const { return Device::CPU; }

  // Allocation and transfer (CPU backends: host memory).
  virtual Tensor empty(const Shape& shape, DType dtype);
  virtual Tensor to_device(const Tensor& host);  // returns the tensor itself on CPU backends
  virtual Tensor to_host(const Tensor& t);
  virtual void synchronize() {}
  // Prepares a weight for repeated use (dtype conversion, backend layout). Default: converted copy if needed.
  virtual Tensor prepare_weight(const Tensor& w, DType dtype);
  // prepare_weight for a weight that is only ever the `w` of conv2d / linear (nn::Linear, nn::Conv2d). A
  // backend whose conv2d / linear convert weights into their own layout anyway may return it in another dtype
  // when the result is the same (CPU: a bf16 model's f32 weights mapped from their file are rounded to bf16
  // once, by the reorder into oneDNN's layout, instead of into a second plain copy). Default: prepare_weight.
  virtual Tensor prepare_dense_weight(const Tensor& w, DType dtype) { return prepare_weight(w, dtype); }
  // Backends may cache the `w` of conv2d / linear in their own layout, keyed by the weight's storage (CPU:
  // oneDNN-reordered weights, kept while that storage lives). Those weights are therefore treated as constant:
  // do not pass scratch/arena memory whose contents change between calls as `w`, and call this after changing
  // a weight's values in place (e.g. fusing a LoRA into it) or to free the cached copies (model unload).
  virtual void release_caches() {}
  // Gives back memory kept for reuse by later ops of the same shapes (CPU: idle output blocks), keeping the
  // cached weights. Pipelines call it between stages whose tensors differ (denoising -> VAE decode -> idle),
  // so one stage's recycled blocks do not add to the next stage's peak.
  virtual void trim_memory() {}

  // --- Dense ---
  // x [N, C, H, W], w [O, C/groups, kh, kw], bias [O] -> [N, O, Ho, Wo]
  virtual Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) = 0;
  // x [..., K], w [N, K] (PyTorch Linear layout), bias [N] -> act(x w^T + b) [..., N]
  virtual Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act = Act::None) = 0;
  // a [..., M, K], b [..., K, N] (or [..., N, K] when trans_b) -> alpha * a b [..., M, N]. Batch dims broadcast.
  virtual Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b = false, float alpha = 1.0f) = 0;

  // --- Elementwise ---
  // Numpy broadcasting.
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) = 0;
  Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
  Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
  Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
  Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
  // alpha * x + beta
  virtual Tensor scale(const Tensor& x, float alpha, float beta = 0.0f) = 0;
  virtual Tensor unary(Act act, const Tensor& x) = 0;
  // x [N, C, ...], slope [C] (or [1] / [C, 1, 1]): x > 0 ? x : slope * x
  virtual Tensor prelu(const Tensor& x, const Tensor& slope) = 0;
  // x [..., 2H] -> x[..., :H] * gelu_erf(x[..., H:])   (diffusers GEGLU after its proj)
  virtual Tensor geglu(const Tensor& x) = 0;

  // --- Normalisation ---
  // x [N, C, ...]; gamma, beta [C] (optional). Optionally fused with an activation (SiLU in diffusers).
  virtual Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                            Act act = Act::None) = 0;
  // over the last dimension; gamma, beta [D]
  virtual Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) = 0;
  // inference: (x - mean) / sqrt(var + eps) * gamma + beta over channel dim 1
  virtual Tensor batch_norm(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
                            const Tensor& beta, float eps) = 0;
  // over the last dimension
  virtual Tensor softmax(const Tensor& x) = 0;

  // --- Attention ---
  // q [B, Lq, H*D], k [B, Lk, H*D], v [B, Lk, H*Dv] -> softmax(scale q k^T [+ causal mask]) v  [B, Lq, H*Dv].
  // Heads are interleaved in the last dimension exactly as diffusers/transformers reshape them. Memory use does
  // not grow with Lq * Lk per head.
  virtual Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) = 0;

  // --- Spatial ---
  // Nearest resize of [N, C, H, W] to [N, C, out_h, out_w], source index floor(dst * in / out) (ONNX
  // asymmetric + floor; torch "nearest").
  virtual Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) = 0;
  virtual Tensor pool2d(const Tensor& x, const Pool2dParams& p) = 0;

  // --- Layout ---
  virtual Tensor concat(const std::vector<Tensor>& xs, int dim) = 0;
  // x[..., start:end:step, ...] along dim (end clamped; step > 0)
  virtual Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1) = 0;
  virtual Tensor permute(const Tensor& x, const std::vector<int>& perm) = 0;  // contiguous result
  virtual Tensor cast(const Tensor& x, DType dtype) = 0;

  // --- Embeddings ---
  // timesteps [N] (any float dtype) -> [N, dim], diffusers get_timestep_embedding:
  // exponent = -ln(max_period) * arange(half) / (half - shift); emb = t * exp(exponent) * scale;
  // [sin, cos] or [cos, sin] when flip_sin_to_cos; zero-padded when dim is odd.
  virtual Tensor timestep_embedding(const Tensor& timesteps, int dim, bool flip_sin_to_cos, float shift,
                                    float scale = 1.0f, float max_period = 10000.0f) = 0;
  // ids [...] (i64 or i32), table [V, D] -> [..., D]; an id outside [0, V) throws.
  virtual Tensor embedding(const Tensor& ids, const Tensor& table) = 0;
};

// Broadcast shape of two shapes (numpy rules); throws naming both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Output size of a conv/pool along one axis.
int64_t conv_out_size(int64_t in, int kernel, int stride, int pad_begin, int pad_end, int dilation, bool ceil_mode);

}  // namespace a2f
