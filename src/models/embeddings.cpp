// diffusers 0.29.2 Timesteps / TimestepEmbedding; see embeddings.h.
#include "models/embeddings.h"

namespace a2f {

Tensor Timesteps::operator()(const nn::Ctx& c, const Tensor& timesteps) const {
  return c.be.timestep_embedding(timesteps, num_channels, flip_sin_to_cos, downscale_freq_shift);  // [N, C]
}

TimestepEmbedding TimestepEmbedding::load(nn::WeightLoader& w, const std::string& prefix, int64_t in_channels,
                                          int64_t time_embed_dim, Act act, Act post_act,
                                          int64_t cond_proj_dim) {
  TimestepEmbedding t;
  t.act = act;
  t.post_act = post_act;
  t.linear_1 = nn::Linear::load(w, prefix + ".linear_1", in_channels, time_embed_dim);
  if (cond_proj_dim > 0)
    t.cond_proj = nn::Linear::load(w, prefix + ".cond_proj", cond_proj_dim, in_channels, false);
  t.linear_2 = nn::Linear::load(w, prefix + ".linear_2", time_embed_dim, time_embed_dim);
  return t;
}

Tensor TimestepEmbedding::operator()(const nn::Ctx& c, const Tensor& sample, const Tensor& condition) const {
  Tensor x = sample;
  if (cond_proj.weight.defined()) {
    A2F_CHECK(condition.defined(), "this UNet has time_cond_proj_dim = ", cond_proj.in,
              " and needs a timestep condition [batch, ", cond_proj.in,
              "] (e.g. the guidance embedding of an ", "LCM-distilled model)");
    x = c.be.add(x, cond_proj(c, condition));  // [N, in]
  }
  x = linear_1(c, x, act);          // [N, D]
  return linear_2(c, x, post_act);  // [N, D]
}

Tensor timesteps_for_batch(const Tensor& timesteps, int64_t batch, const std::string& what) {
  A2F_CHECK(timesteps.defined(), what, ": timesteps are required");
  const int64_t n = timesteps.numel();
  A2F_CHECK(timesteps.ndim() <= 1 && (n == 1 || n == batch), what, ": timesteps must be a scalar, [1] or [",
            batch, "], got ", shape_str(timesteps.shape()));
  Tensor host = timesteps.contiguous();
  std::vector<float> v(static_cast<size_t>(n));
  switch (host.dtype()) {
    case DType::I64:
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(host.data<int64_t>()[i]);
      break;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(host.data<int32_t>()[i]);
      break;
    default:
      A2F_CHECK(dtype_is_float(host.dtype()), what, ": timesteps have dtype ", dtype_name(host.dtype()));
      v = host.to_vector();
  }
  std::vector<float> out(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) out[static_cast<size_t>(i)] = v[static_cast<size_t>(n == 1 ? 0 : i)];
  return Tensor::from_data({batch}, out);  // [N]
}

}  // namespace a2f
