// The reference backend: every op of core/backend.h as plain scalar loops in f32 (sums in double where a
// reduction is long). It is the ground truth of the op tests and is never optimised; backends/cpu derives
// from it and overrides the ops it makes fast.
#pragma once
#include <memory>

#include "core/backend.h"

namespace a2f {

class RefBackend : public Backend {
 public:
  std::string name() const override { return "ref"; }

  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) override;
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, Act act = Act::None) override;
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_b = false, float alpha = 1.0f) override;

  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor scale(const Tensor& x, float alpha, float beta = 0.0f) override;
  Tensor unary(Act act, const Tensor& x) override;
  Tensor prelu(const Tensor& x, const Tensor& slope) override;
  Tensor geglu(const Tensor& x) override;

  Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                    Act act = Act::None) override;
  Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) override;
  Tensor batch_norm(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
                    const Tensor& beta, float eps) override;
  Tensor softmax(const Tensor& x) override;

  Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) override;

  Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) override;
  Tensor pool2d(const Tensor& x, const Pool2dParams& p) override;

  Tensor concat(const std::vector<Tensor>& xs, int dim) override;
  Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1) override;
  Tensor permute(const Tensor& x, const std::vector<int>& perm) override;
  Tensor cast(const Tensor& x, DType dtype) override;

  Tensor timestep_embedding(const Tensor& timesteps, int dim, bool flip_sin_to_cos, float shift,
                            float scale = 1.0f, float max_period = 10000.0f) override;
  Tensor embedding(const Tensor& ids, const Tensor& table) override;
};

std::unique_ptr<Backend> make_ref_backend();

// The scalar activation functions (also the fallback of faster backends).
float act_apply(Act act, float x);

}  // namespace a2f
