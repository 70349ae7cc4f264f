// diffusers 0.29.2 unet_2d_blocks.py blocks; see unet2d_blocks.h.
#include "models/unet2d_blocks.h"

namespace a2f {

namespace {

ResnetBlock2D::Options resnet_options(const BlockOptions& o, int64_t in, int64_t out) {
  ResnetBlock2D::Options r;
  r.in_channels = in;
  r.out_channels = out;
  r.temb_channels = o.temb_channels;
  r.groups = o.resnet_groups;
  r.eps = o.resnet_eps;
  r.act = o.resnet_act;
  r.scale_shift = o.resnet_scale_shift;
  r.output_scale_factor = o.output_scale_factor;
  return r;
}

Transformer2DModel::Options transformer_options(const BlockOptions& o, int64_t channels, int layer) {
  Transformer2DModel::Options t;
  t.num_attention_heads = o.num_attention_heads;
  t.attention_head_dim = channels / o.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = static_cast<int>(o.transformer_layers.at(static_cast<size_t>(layer)));
  t.cross_attention_dim = o.cross_attention_dim;
  t.norm_num_groups = o.resnet_groups;
  t.use_linear_projection = o.use_linear_projection;
  t.only_cross_attention = o.only_cross_attention;
  return t;
}

void check_heads(const nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o,
                 int64_t channels) {
  A2F_CHECK(o.num_attention_heads > 0 && channels % o.num_attention_heads == 0, w.file(), ": ", prefix,
            " has ", channels, " channels, not divisible into ", o.num_attention_heads,
            " attention heads (attention_head_dim / num_attention_heads in config.json)");
  A2F_CHECK(o.transformer_layers.size() >= static_cast<size_t>(o.num_layers), w.file(), ": ", prefix,
            ": transformer_layers_per_block has ", o.transformer_layers.size(), " entries for ", o.num_layers,
            " layers");
}

}  // namespace

DownBlock2D DownBlock2D::load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o) {
  DownBlock2D b;
  b.name = prefix;
  if (o.cross_attention) check_heads(w, prefix, o, o.out_channels);
  for (int i = 0; i < o.num_layers; ++i) {
    const int64_t in = i == 0 ? o.in_channels : o.out_channels;
    b.resnets.push_back(
        ResnetBlock2D::load(w, cat(prefix, ".resnets.", i), resnet_options(o, in, o.out_channels)));
    if (o.cross_attention)
      b.attentions.push_back(Transformer2DModel::load(w, cat(prefix, ".attentions.", i),
                                                      transformer_options(o, o.out_channels, i)));
  }
  if (o.add_sample)
    b.downsampler = Downsample2D::load(w, prefix + ".downsamplers.0", o.out_channels, o.out_channels,
                                       o.downsample_padding);
  return b;
}

Tensor DownBlock2D::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act,
                               const Tensor& context, std::vector<Tensor>* states) const {
  Tensor h = x;
  for (size_t i = 0; i < resnets.size(); ++i) {
    h = resnets[i](c, h, temb_act);                             // [N, out, H, W]
    if (!attentions.empty()) h = attentions[i](c, h, context);  // [N, out, H, W]
    if (states) states->push_back(h);
  }
  if (downsampler) {
    h = (*downsampler)(c, h);  // [N, out, H/2, W/2]
    if (states) states->push_back(h);
  }
  c.mark(h, name);
  return h;
}

UpBlock2D UpBlock2D::load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o) {
  UpBlock2D b;
  b.name = prefix;
  if (o.cross_attention) check_heads(w, prefix, o, o.out_channels);
  for (int i = 0; i < o.num_layers; ++i) {
    const int64_t res_skip = i == o.num_layers - 1 ? o.in_channels : o.out_channels;
    const int64_t res_in = i == 0 ? o.prev_output_channel : o.out_channels;
    b.resnets.push_back(ResnetBlock2D::load(w, cat(prefix, ".resnets.", i),
                                            resnet_options(o, res_in + res_skip, o.out_channels)));
    if (o.cross_attention)
      b.attentions.push_back(Transformer2DModel::load(w, cat(prefix, ".attentions.", i),
                                                      transformer_options(o, o.out_channels, i)));
  }
  if (o.add_sample)
    b.upsampler = Upsample2D::load(w, prefix + ".upsamplers.0", o.out_channels, o.out_channels);
  return b;
}

Tensor UpBlock2D::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act, const Tensor& context,
                             std::vector<Tensor>& skips, int64_t upsample_h, int64_t upsample_w) const {
  Tensor h = x;
  for (size_t i = 0; i < resnets.size(); ++i) {
    A2F_CHECK(!skips.empty(), name, ": no skip connection left");
    Tensor skip = std::move(skips.back());
    skips.pop_back();
    h = c.be.concat({h, skip}, 1);                              // [N, C + Cskip, H, W]
    h = resnets[i](c, h, temb_act);                             // [N, out, H, W]
    if (!attentions.empty()) h = attentions[i](c, h, context);  // [N, out, H, W]
  }
  if (upsampler) h = (*upsampler)(c, h, upsample_h, upsample_w);  // [N, out, 2H, 2W]
  c.mark(h, name);
  return h;
}

UpDecoderBlock2D UpDecoderBlock2D::load(nn::WeightLoader& w, const std::string& prefix,
                                        const BlockOptions& o) {
  UpDecoderBlock2D b;
  b.name = prefix;
  for (int i = 0; i < o.num_layers; ++i) {
    const int64_t in = i == 0 ? o.in_channels : o.out_channels;
    b.resnets.push_back(
        ResnetBlock2D::load(w, cat(prefix, ".resnets.", i), resnet_options(o, in, o.out_channels)));
  }
  if (o.add_sample)
    b.upsampler = Upsample2D::load(w, prefix + ".upsamplers.0", o.out_channels, o.out_channels);
  return b;
}

Tensor UpDecoderBlock2D::operator()(const nn::Ctx& c, const Tensor& x) const {
  Tensor h = x;
  for (const auto& r : resnets) h = r(c, h, Tensor());  // [N, out, H, W]
  if (upsampler) h = (*upsampler)(c, h);                // [N, out, 2H, 2W]
  c.mark(h, name);
  return h;
}

UNetMidBlock2DCrossAttn UNetMidBlock2DCrossAttn::load(nn::WeightLoader& w, const std::string& prefix,
                                                      const BlockOptions& o) {
  UNetMidBlock2DCrossAttn b;
  b.name = prefix;
  const int64_t ch = o.in_channels;
  check_heads(w, prefix, o, ch);
  b.resnets.push_back(ResnetBlock2D::load(w, prefix + ".resnets.0", resnet_options(o, ch, ch)));
  for (int i = 0; i < o.num_layers; ++i) {
    b.attentions.push_back(
        Transformer2DModel::load(w, cat(prefix, ".attentions.", i), transformer_options(o, ch, i)));
    b.resnets.push_back(ResnetBlock2D::load(w, cat(prefix, ".resnets.", i + 1), resnet_options(o, ch, ch)));
  }
  return b;
}

Tensor UNetMidBlock2DCrossAttn::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act,
                                           const Tensor& context) const {
  Tensor h = resnets[0](c, x, temb_act);  // [N, C, H, W]
  for (size_t i = 0; i < attentions.size(); ++i) {
    h = attentions[i](c, h, context);    // [N, C, H, W]
    h = resnets[i + 1](c, h, temb_act);  // [N, C, H, W]
  }
  c.mark(h, name);
  return h;
}

SpatialAttention SpatialAttention::load(nn::WeightLoader& w, const std::string& prefix, int64_t channels,
                                        int64_t attention_head_dim, int groups, float eps,
                                        float rescale_output_factor) {
  A2F_CHECK(attention_head_dim > 0 && channels % attention_head_dim == 0, w.file(), ": ", prefix, " has ",
            channels, " channels, not divisible into heads of ", attention_head_dim);
  SpatialAttention a;
  a.name = prefix;
  a.rescale_output_factor = rescale_output_factor;
  a.group_norm = nn::GroupNorm::load(w, prefix + ".group_norm", groups, channels, eps);
  nn::Attention::Options o;
  o.query_dim = channels;
  o.heads = static_cast<int>(channels / attention_head_dim);
  o.dim_head = attention_head_dim;
  o.bias = true;
  o.out_bias = true;
  a.attn = nn::Attention::load(w, prefix, o);
  return a;
}

Tensor SpatialAttention::operator()(const nn::Ctx& c, const Tensor& x) const {
  Backend& be = c.be;
  const int64_t n = x.dim(0), ch = x.dim(1), hh = x.dim(2), ww = x.dim(3);
  Tensor h = group_norm(c, x);                                                       // [N, C, H, W]
  h = be.permute(h, {0, 2, 3, 1}).reshape({n, hh * ww, ch});                         // [N, HW, C]
  h = attn(c, h);                                                                    // [N, HW, C]
  h = be.permute(h.reshape({n, hh, ww, ch}), {0, 3, 1, 2});                          // [N, C, H, W]
  h = be.add(h, x);                                                                  // [N, C, H, W]
  if (rescale_output_factor != 1.0f) h = be.scale(h, 1.0f / rescale_output_factor);  // [N, C, H, W]
  c.mark(h, name);
  return h;
}

UNetMidBlock2D UNetMidBlock2D::load(nn::WeightLoader& w, const std::string& prefix, const BlockOptions& o,
                                    bool add_attention, int64_t attention_head_dim) {
  UNetMidBlock2D b;
  b.name = prefix;
  const int64_t ch = o.in_channels;
  b.resnets.push_back(ResnetBlock2D::load(w, prefix + ".resnets.0", resnet_options(o, ch, ch)));
  for (int i = 0; i < o.num_layers; ++i) {
    if (add_attention)
      b.attentions.push_back(SpatialAttention::load(w, cat(prefix, ".attentions.", i), ch, attention_head_dim,
                                                    o.resnet_groups, o.resnet_eps, o.output_scale_factor));
    b.resnets.push_back(ResnetBlock2D::load(w, cat(prefix, ".resnets.", i + 1), resnet_options(o, ch, ch)));
  }
  return b;
}

Tensor UNetMidBlock2D::operator()(const nn::Ctx& c, const Tensor& x, const Tensor& temb_act) const {
  Tensor h = resnets[0](c, x, temb_act);  // [N, C, H, W]
  for (size_t i = 1; i < resnets.size(); ++i) {
    if (!attentions.empty()) h = attentions[i - 1](c, h);  // [N, C, H, W]
    h = resnets[i](c, h, temb_act);                        // [N, C, H, W]
  }
  c.mark(h, name);
  return h;
}

}  // namespace a2f
