#include "nn/attention.h"

#include <cmath>

namespace a2f::nn {

Attention Attention::load(WeightLoader& w, const std::string& prefix, const Options& o) {
  A2F_CHECK(o.heads > 0 && o.dim_head > 0, w.file(), ": attention '", prefix, "' has ", o.heads,
            " heads of dim ", o.dim_head);
  Attention a;
  a.heads = o.heads;
  a.dim_head = o.dim_head;
  a.scale = 1.0f / std::sqrt(static_cast<float>(o.dim_head));
  const int64_t inner = o.dim_head * o.heads;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  // Legacy VAE attention blocks (diffusers _convert_deprecated_attention_blocks).
  const bool legacy = !w.has(prefix + ".to_q.weight") && w.has(prefix + ".query.weight");
  const std::string q = legacy ? ".query" : ".to_q", k = legacy ? ".key" : ".to_k",
                    v = legacy ? ".value" : ".to_v", out = legacy ? ".proj_attn" : ".to_out.0";
  a.to_q = Linear::load(w, prefix + q, o.query_dim, inner, o.bias);
  a.to_k = Linear::load(w, prefix + k, kv_dim, inner, o.bias);
  a.to_v = Linear::load(w, prefix + v, kv_dim, inner, o.bias);
  a.to_out = Linear::load(w, prefix + out, inner, o.query_dim, o.out_bias);
  return a;
}

Tensor Attention::operator()(const Ctx& c, const Tensor& x, const Tensor& context) const {
  const Tensor& kv = context.defined() ? context : x;
  Tensor q = to_q(c, x);   // [B, Lq, H*D]
  Tensor k = to_k(c, kv);  // [B, Lk, H*D]
  Tensor v = to_v(c, kv);  // [B, Lk, H*D]
  AttentionParams p;
  p.heads = heads;
  p.scale = scale;
  Tensor h = c.be.attention(q, k, v, p);  // [B, Lq, H*D]
  return to_out(c, h);                    // [B, Lq, query_dim]
}

FeedForward FeedForward::load(WeightLoader& w, const std::string& prefix, int64_t dim, int64_t inner_dim,
                              int64_t dim_out) {
  FeedForward f;
  f.proj = Linear::load(w, prefix + ".net.0.proj", dim, 2 * inner_dim);
  f.out = Linear::load(w, prefix + ".net.2", inner_dim, dim_out);
  return f;
}

Tensor FeedForward::operator()(const Ctx& c, const Tensor& x) const {
  Tensor h = proj(c, x);  // [..., 2*inner]
  h = c.be.geglu(h);      // [..., inner]
  return out(c, h);       // [..., dim_out]
}

}  // namespace a2f::nn
