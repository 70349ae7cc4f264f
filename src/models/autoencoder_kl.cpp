// diffusers 0.29.2 AutoencoderKL (Encoder, Decoder, DiagonalGaussianDistribution); see autoencoder_kl.h.
#include "models/autoencoder_kl.h"

#include <algorithm>

namespace a2f {

AutoencoderKLConfig AutoencoderKLConfig::from_reader(const ConfigReader& r) {
  AutoencoderKLConfig c;
  const std::string cls = r.get_string("_class_name", "AutoencoderKL");
  if (cls != "AutoencoderKL") r.unsupported("_class_name", "expected AutoencoderKL");
  c.in_channels = r.get_int("in_channels", 3);
  c.out_channels = r.get_int("out_channels", 3);
  c.latent_channels = r.get_int("latent_channels", 4);
  c.block_out_channels = r.get_int_list("block_out_channels", std::vector<int64_t>{64});
  const size_t n = c.block_out_channels.size();
  if (n == 0) r.unsupported("block_out_channels", "at least one level is needed");
  const auto down = r.get_string_list("down_block_types", std::vector<std::string>{"DownEncoderBlock2D"});
  const auto up = r.get_string_list("up_block_types", std::vector<std::string>{"UpDecoderBlock2D"});
  if (down.size() != n)
    r.unsupported("down_block_types", cat("expected ", n, " entries (block_out_channels)"));
  if (up.size() != n) r.unsupported("up_block_types", cat("expected ", n, " entries (block_out_channels)"));
  for (const auto& t : down)
    if (t != "DownEncoderBlock2D") r.unsupported("down_block_types", cat("block type ", t));
  for (const auto& t : up)
    if (t != "UpDecoderBlock2D") r.unsupported("up_block_types", cat("block type ", t));
  c.layers_per_block = r.get_int("layers_per_block", 1);
  c.act_fn = r.get_string("act_fn", "silu");
  nn::act_from_name(c.act_fn, r.file() + ": act_fn");
  c.norm_num_groups = r.get_int("norm_num_groups", 32);
  c.scaling_factor = r.get_float("scaling_factor", 0.18215);
  c.shift_factor = r.get_opt_float("shift_factor");
  c.use_quant_conv = r.get_bool("use_quant_conv", true);
  c.use_post_quant_conv = r.get_bool("use_post_quant_conv", true);
  if (c.layers_per_block <= 0) r.unsupported("layers_per_block");
  if (c.latent_channels <= 0) r.unsupported("latent_channels");
  for (auto v : c.block_out_channels)
    if (v <= 0) r.unsupported("block_out_channels");
  return c;
}

std::unique_ptr<AutoencoderKL> AutoencoderKL::from_pretrained(const std::filesystem::path& dir,
                                                              Backend& backend, DType dtype) {
  ConfigReader r = ConfigReader::load(dir / "config.json");
  auto cfg = AutoencoderKLConfig::from_reader(r);
  auto file = find_weight_file(dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"});
  StateDict sd = load_state_dict(file);
  return std::make_unique<AutoencoderKL>(cfg, sd, file.string(), backend, dtype);
}

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& config, const StateDict& weights,
                             const std::string& file, Backend& backend, DType dtype)
    : cfg_(config), be_(backend), dtype_(dtype) {
  nn::WeightLoader w(weights, file, backend, dtype);
  act_ = nn::act_from_name(cfg_.act_fn, file + ": act_fn");
  const auto& boc = cfg_.block_out_channels;
  const size_t n = boc.size();
  const int groups = static_cast<int>(cfg_.norm_num_groups);
  const int layers = static_cast<int>(cfg_.layers_per_block);
  const int64_t lat = cfg_.latent_channels;

  BlockOptions base;  // resnet_eps 1e-6, no temb
  base.resnet_eps = 1e-6f;
  base.resnet_act = act_;
  base.resnet_groups = groups;

  // Encoder(double_z=True)
  enc_conv_in_ =
      nn::Conv2d::load(w, "encoder.conv_in", cfg_.in_channels, boc[0], 3, Conv2dParams::same(1, 1));
  for (size_t i = 0; i < n; ++i) {
    BlockOptions o = base;
    o.num_layers = layers;
    o.in_channels = boc[i == 0 ? 0 : i - 1];
    o.out_channels = boc[i];
    o.add_sample = i + 1 < n;
    o.downsample_padding = 0;
    enc_down_.push_back(DownBlock2D::load(w, cat("encoder.down_blocks.", i), o));
  }
  BlockOptions mid = base;
  mid.in_channels = mid.out_channels = boc.back();
  enc_mid_ = UNetMidBlock2D::load(w, "encoder.mid_block", mid, true, boc.back());
  enc_norm_out_ = nn::GroupNorm::load(w, "encoder.conv_norm_out", groups, boc.back(), 1e-6f);
  enc_conv_out_ = nn::Conv2d::load(w, "encoder.conv_out", boc.back(), 2 * lat, 3, Conv2dParams::same(1, 1));
  if (cfg_.use_quant_conv)
    quant_conv_ = nn::Conv2d::load(w, "quant_conv", 2 * lat, 2 * lat, 1, Conv2dParams::same(1, 0));

  // Decoder
  if (cfg_.use_post_quant_conv)
    post_quant_conv_ = nn::Conv2d::load(w, "post_quant_conv", lat, lat, 1, Conv2dParams::same(1, 0));
  dec_conv_in_ = nn::Conv2d::load(w, "decoder.conv_in", lat, boc.back(), 3, Conv2dParams::same(1, 1));
  dec_mid_ = UNetMidBlock2D::load(w, "decoder.mid_block", mid, true, boc.back());
  int64_t out_ch = boc.back();
  for (size_t i = 0; i < n; ++i) {
    const int64_t prev = out_ch;
    out_ch = boc[n - 1 - i];
    BlockOptions o = base;
    o.num_layers = layers + 1;
    o.in_channels = prev;
    o.out_channels = out_ch;
    o.add_sample = i + 1 < n;
    dec_up_.push_back(UpDecoderBlock2D::load(w, cat("decoder.up_blocks.", i), o));
  }
  dec_norm_out_ = nn::GroupNorm::load(w, "decoder.conv_norm_out", groups, boc[0], 1e-6f);
  dec_conv_out_ =
      nn::Conv2d::load(w, "decoder.conv_out", boc[0], cfg_.out_channels, 3, Conv2dParams::same(1, 1));
  w.warn_unused("AutoencoderKL");
}

Tensor AutoencoderKL::decode(const Tensor& z) const {
  A2F_CHECK(z.ndim() == 4 && z.dim(1) == cfg_.latent_channels, "VAE decode: latents must be [batch, ",
            cfg_.latent_channels, ", h, w], got ", shape_str(z.shape()));
  nn::Ctx c{be_, &hook_};
  Tensor x = be_.cast(be_.to_device(z), dtype_);        // [B, L, h, w]
  if (post_quant_conv_) x = (*post_quant_conv_)(c, x);  // [B, L, h, w]
  x = dec_conv_in_(c, x);                               // [B, Cn, h, w]
  c.mark(x, "decoder.conv_in");
  x = dec_mid_(c, x, Tensor());                   // [B, Cn, h, w]
  for (const auto& blk : dec_up_) x = blk(c, x);  // [B, C, H, W]
  x = dec_norm_out_(c, x, Act::Silu);             // [B, C0, H, W]
  x = dec_conv_out_(c, x);                        // [B, out, H, W]
  c.mark(x, "decoder.conv_out");
  return x.dtype() == DType::F32 ? x : be_.cast(x, DType::F32);  // [B, out, H, W]
}

AutoencoderKL::LatentDist AutoencoderKL::encode(const Tensor& image) const {
  const int64_t f = downscale_factor();
  A2F_CHECK(image.ndim() == 4 && image.dim(1) == cfg_.in_channels, "VAE encode: images must be [batch, ",
            cfg_.in_channels, ", H, W], got ", shape_str(image.shape()));
  A2F_CHECK(image.dim(2) % f == 0 && image.dim(3) % f == 0, "VAE encode: image size ", image.dim(2), "x",
            image.dim(3), " is not a multiple of ", f);
  nn::Ctx c{be_, &hook_};
  Tensor x = be_.cast(be_.to_device(image), dtype_);  // [B, in, H, W]
  x = enc_conv_in_(c, x);                             // [B, C0, H, W]
  c.mark(x, "encoder.conv_in");
  for (const auto& blk : enc_down_) x = blk(c, x, Tensor(), Tensor(), nullptr);  // [B, C, H', W']
  x = enc_mid_(c, x, Tensor());                                                  // [B, Cn, h, w]
  x = enc_norm_out_(c, x, Act::Silu);                                            // [B, Cn, h, w]
  x = enc_conv_out_(c, x);                                                       // [B, 2L, h, w]
  c.mark(x, "encoder.conv_out");
  if (quant_conv_) x = (*quant_conv_)(c, x);  // [B, 2L, h, w]
  c.mark(x, "moments");
  const int64_t lat = cfg_.latent_channels;
  LatentDist d;
  d.mean = be_.to_host(be_.cast(be_.slice(x, 1, 0, lat), DType::F32));               // [B, L, h, w]
  Tensor logvar = be_.to_host(be_.cast(be_.slice(x, 1, lat, 2 * lat), DType::F32));  // [B, L, h, w]
  d.logvar = Tensor::empty(logvar.shape());                                          // [B, L, h, w]
  const float* src = logvar.data<float>();
  float* dst = d.logvar.data<float>();
  for (int64_t i = 0; i < logvar.numel(); ++i) dst[i] = std::clamp(src[i], -30.0f, 20.0f);
  return d;
}

Tensor vae_postprocess(const Tensor& x) {
  A2F_CHECK(x.ndim() == 4, "vae_postprocess: expected [B, C, H, W], got ", shape_str(x.shape()));
  const int64_t b = x.dim(0), ch = x.dim(1), h = x.dim(2), w = x.dim(3);
  std::vector<float> v = x.to_vector();
  Tensor out = Tensor::empty({b, h, w, ch});  // [B, H, W, C]
  float* o = out.data<float>();
  for (int64_t n = 0; n < b; ++n)
    for (int64_t k = 0; k < ch; ++k)
      for (int64_t i = 0; i < h * w; ++i) {
        const float y = v[static_cast<size_t>((n * ch + k) * h * w + i)] / 2.0f + 0.5f;
        o[(n * h * w + i) * ch + k] = std::clamp(y, 0.0f, 1.0f);
      }
  return out;
}

}  // namespace a2f
