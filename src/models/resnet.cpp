// diffusers 0.29.2 ResnetBlock2D / Downsample2D / Upsample2D; see resnet.h.
#include "models/resnet.h"

namespace a2f {

ResnetBlock2D ResnetBlock2D::load(nn::WeightLoader& w, const std::string& prefix, const Options& o) {
  ResnetBlock2D r;
  r.name = prefix;
  r.act = o.act;
  r.scale_shift = o.scale_shift;
  r.output_scale_factor = o.output_scale_factor;
  const int groups_out = o.groups_out > 0 ? o.groups_out : o.groups;
  r.norm1 = nn::GroupNorm::load(w, prefix + ".norm1", o.groups, o.in_channels, o.eps);
  r.conv1 =
      nn::Conv2d::load(w, prefix + ".conv1", o.in_channels, o.out_channels, 3, Conv2dParams::same(1, 1));
  if (o.temb_channels > 0)
    r.time_emb_proj = nn::Linear::load(w, prefix + ".time_emb_proj", o.temb_channels,
                                       (o.scale_shift ? 2 : 1) * o.out_channels);
  r.norm2 = nn::GroupNorm::load(w, prefix + ".norm2", groups_out, o.out_channels, o.eps);
  r.conv2 =
      nn::Conv2d::load(w, prefix + ".conv2", o.out_channels, o.out_channels, 3, Conv2dParams::same(1, 1));
  if (o.in_channels != o.out_channels)
    r.conv_shortcut = nn::Conv2d::load(w, prefix + ".conv_shortcut", o.in_channels, o.out_channels, 1,
                                       Conv2dParams::same(1, 0));
  return r;
}

Tensor ResnetBlock2D::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act) const {
  Backend& be = c.be;
  Tensor h = norm1(c, x, act);  // [N, in, H, W]
  h = conv1(c, h);              // [N, out, H, W]
  const int64_t n = h.dim(0), ch = h.dim(1);
  if (time_emb_proj.weight.defined()) {
    A2F_CHECK(temb_act.defined(), name, ": a time embedding is required");
    Tensor t = time_emb_proj(c, temb_act);  // [N, out] or [N, 2*out]
    if (!scale_shift) {
      h = be.add(h, t.reshape({n, ch, 1, 1}));  // [N, out, H, W]
      h = norm2(c, h, act);                     // [N, out, H, W]
    } else {
      Tensor scale = be.slice(t, 1, 0, ch).reshape({n, ch, 1, 1});       // [N, out, 1, 1]
      Tensor shift = be.slice(t, 1, ch, 2 * ch).reshape({n, ch, 1, 1});  // [N, out, 1, 1]
      h = norm2(c, h);                                                   // [N, out, H, W]
      h = be.add(be.mul(h, be.scale(scale, 1.0f, 1.0f)), shift);         // [N, out, H, W]
      h = be.unary(act, h);                                              // [N, out, H, W]
    }
  } else {
    h = norm2(c, h, act);  // [N, out, H, W]
  }
  h = conv2(c, h);                                                                   // [N, out, H, W]
  Tensor out = be.add(conv_shortcut ? (*conv_shortcut)(c, x) : x, h);                // [N, out, H, W]
  if (output_scale_factor != 1.0f) out = be.scale(out, 1.0f / output_scale_factor);  // [N, out, H, W]
  c.mark(out, name);
  return out;
}

Downsample2D Downsample2D::load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                                int64_t out_channels, int padding) {
  Downsample2D d;
  d.name = prefix;
  Conv2dParams p = Conv2dParams::same(2, padding);
  if (padding == 0) p.pad_bottom = p.pad_right = 1;  // F.pad(x, (0, 1, 0, 1))
  d.conv = nn::Conv2d::load(w, prefix + ".conv", channels, out_channels, 3, p);
  return d;
}

Tensor Downsample2D::operator()(const nn::Ctx& c, const Tensor& x) const {
  Tensor y = conv(c, x);  // [N, out, Ho, Wo]
  c.mark(y, name);
  return y;
}

Upsample2D Upsample2D::load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                            int64_t out_channels) {
  Upsample2D u;
  u.name = prefix;
  u.conv = nn::Conv2d::load(w, prefix + ".conv", channels, out_channels, 3, Conv2dParams::same(1, 1));
  return u;
}

Tensor Upsample2D::operator()(const nn::Ctx& c, const Tensor& x, int64_t out_h, int64_t out_w) const {
  if (out_h <= 0 || out_w <= 0) {
    out_h = 2 * x.dim(2);
    out_w = 2 * x.dim(3);
  }
  Tensor y = c.be.upsample_nearest(x, out_h, out_w);  // [N, C, out_h, out_w]
  y = conv(c, y);                                     // [N, out, out_h, out_w]
  c.mark(y, name);
  return y;
}

}  // namespace a2f
