// diffusers 0.29.2 Transformer2DModel + BasicTransformerBlock; see transformer_2d.h.
#include "models/transformer_2d.h"

namespace a2f {

Tensor BasicTransformerBlock::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& context) const {
  Backend& be = c.be;
  Tensor n = norm1(c, x);                                                        // [N, L, C]
  Tensor h = be.add(attn1(c, n, only_cross_attention ? context : Tensor()), x);  // [N, L, C]
  n = norm2(c, h);                                                               // [N, L, C]
  h = be.add(attn2(c, n, context), h);                                           // [N, L, C]
  n = norm3(c, h);                                                               // [N, L, C]
  h = be.add(ff(c, n), h);                                                       // [N, L, C]
  c.mark(h, name);
  return h;
}

Transformer2DModel Transformer2DModel::load(nn::WeightLoader& w, const std::string& prefix,
                                            const Options& o) {
  Transformer2DModel t;
  t.name = prefix;
  const int64_t inner = o.attention_head_dim * o.num_attention_heads;
  t.norm = nn::GroupNorm::load(w, prefix + ".norm", o.norm_num_groups, o.in_channels, 1e-6f);
  if (o.use_linear_projection) {
    t.proj_in = nn::Linear::load(w, prefix + ".proj_in", o.in_channels, inner);
    t.proj_out = nn::Linear::load(w, prefix + ".proj_out", inner, o.in_channels);
  } else {
    t.proj_in = nn::Linear::load_conv1x1(w, prefix + ".proj_in", o.in_channels, inner);
    t.proj_out = nn::Linear::load_conv1x1(w, prefix + ".proj_out", inner, o.in_channels);
  }
  for (int i = 0; i < o.num_layers; ++i) {
    const std::string p = cat(prefix, ".transformer_blocks.", i);
    BasicTransformerBlock b;
    b.name = p;
    b.only_cross_attention = o.only_cross_attention;
    nn::Attention::Options a;
    a.query_dim = inner;
    a.heads = o.num_attention_heads;
    a.dim_head = o.attention_head_dim;
    a.bias = false;
    a.out_bias = true;
    b.norm1 = nn::LayerNorm::load(w, p + ".norm1", inner, 1e-5f);
    a.cross_attention_dim = o.only_cross_attention ? o.cross_attention_dim : 0;
    b.attn1 = nn::Attention::load(w, p + ".attn1", a);
    b.norm2 = nn::LayerNorm::load(w, p + ".norm2", inner, 1e-5f);
    a.cross_attention_dim = o.cross_attention_dim;
    b.attn2 = nn::Attention::load(w, p + ".attn2", a);
    b.norm3 = nn::LayerNorm::load(w, p + ".norm3", inner, 1e-5f);
    b.ff = nn::FeedForward::load(w, p + ".ff", inner, 4 * inner, inner);
    t.transformer_blocks.push_back(std::move(b));
  }
  return t;
}

Tensor Transformer2DModel::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& context) const {
  Backend& be = c.be;
  const int64_t n = x.dim(0), ch = x.dim(1), hh = x.dim(2), ww = x.dim(3);
  Tensor h = norm(c, x);                                          // [N, C, H, W]
  h = be.permute(h, {0, 2, 3, 1}).reshape({n, hh * ww, ch});      // [N, HW, C]
  h = proj_in(c, h);                                              // [N, HW, inner]
  for (const auto& b : transformer_blocks) h = b(c, h, context);  // [N, HW, inner]
  h = proj_out(c, h);                                             // [N, HW, C]
  h = be.permute(h.reshape({n, hh, ww, ch}), {0, 3, 1, 2});       // [N, C, H, W]
  h = be.add(h, x);                                               // [N, C, H, W]
  c.mark(h, name);
  return h;
}

}  // namespace a2f
