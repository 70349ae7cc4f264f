// diffusers 0.29.2 ControlNetModel; see controlnet.h.
#include "models/controlnet.h"

namespace a2f {

ControlNetConfig ControlNetConfig::from_reader(const ConfigReader& r) {
  ControlNetConfig out;
  UNet2DConditionConfig& c = out.unet;
  const std::string cls = r.get_string("_class_name", "ControlNetModel");
  if (cls != "ControlNetModel") r.unsupported("_class_name", "expected ControlNetModel");
  c.in_channels = r.get_int("in_channels", 4);
  out.conditioning_channels = r.get_int("conditioning_channels", 3);
  c.flip_sin_to_cos = r.get_bool("flip_sin_to_cos", true);
  c.freq_shift = r.get_float("freq_shift", 0.0);
  c.down_block_types = r.get_string_list(
      "down_block_types", std::vector<std::string>{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                   "CrossAttnDownBlock2D", "DownBlock2D"});
  const size_t n = c.down_block_types.size();
  if (n == 0) r.unsupported("down_block_types", "at least one block is needed");
  for (auto& t : c.down_block_types) {
    if (t.rfind("UNetRes", 0) == 0) t = t.substr(7);  // get_down_block strips it
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
      r.unsupported("down_block_types",
                    cat("block type ", t, " (supported: CrossAttnDownBlock2D, DownBlock2D)"));
  }
  // ControlNetModel raises on a null or unknown mid_block_type.
  if (r.json().contains("mid_block_type") && r.json()["mid_block_type"].is_null())
    r.unsupported("mid_block_type", "ControlNetModel needs a mid block");
  c.mid_block_type = r.get_string("mid_block_type", "UNetMidBlock2DCrossAttn");
  if (c.mid_block_type != "UNetMidBlock2DCrossAttn" && c.mid_block_type != "UNetMidBlock2D")
    r.unsupported("mid_block_type", "supported: UNetMidBlock2DCrossAttn, UNetMidBlock2D");
  c.block_out_channels = r.get_int_list("block_out_channels", std::vector<int64_t>{320, 640, 1280, 1280});
  if (c.block_out_channels.size() != n)
    r.unsupported("block_out_channels", cat("must have as many entries as down_block_types (", n, ")"));
  c.only_cross_attention = r.get_bool_or_list("only_cross_attention", n, false);
  const int64_t layers = r.get_int("layers_per_block", 2);  // an int in ControlNetModel
  if (layers <= 0) r.unsupported("layers_per_block");
  c.layers_per_block.assign(n, layers);
  c.downsample_padding = r.get_int("downsample_padding", 1);
  c.mid_block_scale_factor = r.get_float("mid_block_scale_factor", 1.0);
  c.act_fn = r.get_string("act_fn", "silu");
  nn::act_from_name(c.act_fn, r.file() + ": act_fn");
  if (r.json().contains("norm_num_groups") && r.json()["norm_num_groups"].is_null())
    r.unsupported("norm_num_groups", "ControlNets without GroupNorm are not supported");
  c.norm_num_groups = r.get_int("norm_num_groups", 32);
  c.norm_eps = r.get_float("norm_eps", 1e-5);
  c.cross_attention_dim.assign(n, r.get_int("cross_attention_dim", 1280));
  // num_attention_heads = num_attention_heads or attention_head_dim (the SD1.5 naming quirk).
  c.num_attention_heads = r.has("num_attention_heads")
                              ? r.get_int_or_list("num_attention_heads", n, std::nullopt)
                              : r.get_int_or_list("attention_head_dim", n, 8);
  const std::vector<int64_t> tl = r.get_int_or_list("transformer_layers_per_block", n, 1);
  for (size_t i = 0; i < n; ++i)
    c.transformer_layers_per_block.push_back(std::vector<int64_t>(layers, tl[i]));
  c.use_linear_projection = r.get_bool("use_linear_projection", false);
  c.upcast_attention = r.get_bool("upcast_attention", false);
  c.resnet_time_scale_shift = r.get_string("resnet_time_scale_shift", "default");
  if (c.resnet_time_scale_shift != "default" && c.resnet_time_scale_shift != "scale_shift")
    r.unsupported("resnet_time_scale_shift", "supported: default, scale_shift");

  const std::string order = r.get_string("controlnet_conditioning_channel_order", "rgb");
  if (order != "rgb" && order != "bgr") r.unsupported("controlnet_conditioning_channel_order", "rgb or bgr");
  out.bgr = order == "bgr";
  out.conditioning_embedding_out_channels =
      r.get_int_list("conditioning_embedding_out_channels", std::vector<int64_t>{16, 32, 96, 256});
  if (out.conditioning_embedding_out_channels.empty()) r.unsupported("conditioning_embedding_out_channels");
  if (r.get_bool("global_pool_conditions", false))
    r.unsupported("global_pool_conditions", "only ControlNets without pooled conditions are supported");
  r.require_null("class_embed_type");
  r.require_null("num_class_embeds");
  r.require_null("addition_embed_type");
  r.require_null("encoder_hid_dim");
  r.require_null("encoder_hid_dim_type");

  for (size_t i = 0; i < n; ++i) {
    if (c.block_out_channels[i] <= 0) r.unsupported("block_out_channels");
    if (c.num_attention_heads[i] <= 0) r.unsupported("attention_head_dim");
    if (tl[i] <= 0) r.unsupported("transformer_layers_per_block");
  }
  for (int64_t ch : out.conditioning_embedding_out_channels)
    if (ch <= 0) r.unsupported("conditioning_embedding_out_channels");
  if (c.in_channels <= 0) r.unsupported("in_channels");
  if (out.conditioning_channels <= 0) r.unsupported("conditioning_channels");
  return out;
}

std::unique_ptr<ControlNetModel> ControlNetModel::from_pretrained(const std::filesystem::path& dir,
                                                                  Backend& backend, DType dtype) {
  ConfigReader r = ConfigReader::load(dir / "config.json");
  auto cfg = ControlNetConfig::from_reader(r);
  auto file = find_weight_file(dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"});
  StateDict sd = load_state_dict(file);
  nn::WeightLoader w(sd, file.string(), backend, dtype);
  return std::make_unique<ControlNetModel>(cfg, w);
}

ControlNetModel::ControlNetModel(const ControlNetConfig& config, nn::WeightLoader& w)
    : cfg_(config), be_(w.backend()), dtype_(w.dtype()) {
  const UNet2DConditionConfig& u = cfg_.unet;
  const auto& boc = u.block_out_channels;
  const size_t n = boc.size();
  act_ = nn::act_from_name(u.act_fn, w.file() + ": act_fn");
  const auto same = Conv2dParams::same;
  conv_in_ = nn::Conv2d::load(w, "conv_in", u.in_channels, boc[0], 3, same(1, 1));
  time_proj_ = Timesteps{static_cast<int>(boc[0]), u.flip_sin_to_cos, static_cast<float>(u.freq_shift)};
  time_embedding_ = TimestepEmbedding::load(w, "time_embedding", boc[0], u.time_embed_dim(), act_, Act::None);

  const auto& ce = cfg_.conditioning_embedding_out_channels;
  cond_conv_in_ = nn::Conv2d::load(w, "controlnet_cond_embedding.conv_in", cfg_.conditioning_channels, ce[0],
                                   3, same(1, 1));
  for (size_t i = 0; i + 1 < ce.size(); ++i) {
    cond_blocks_.push_back(
        nn::Conv2d::load(w, cat("controlnet_cond_embedding.blocks.", 2 * i), ce[i], ce[i], 3, same(1, 1)));
    cond_blocks_.push_back(nn::Conv2d::load(w, cat("controlnet_cond_embedding.blocks.", 2 * i + 1), ce[i],
                                            ce[i + 1], 3, same(2, 1)));
  }
  cond_conv_out_ =
      nn::Conv2d::load(w, "controlnet_cond_embedding.conv_out", ce.back(), boc[0], 3, same(1, 1));

  controlnet_down_blocks_.push_back(
      nn::Conv2d::load(w, "controlnet_down_blocks.0", boc[0], boc[0], 1, same(1, 0)));
  for (size_t i = 0; i < n; ++i) {
    down_blocks_.push_back(DownBlock2D::load(w, cat("down_blocks.", i), u.down_block_options(i)));
    for (size_t k = 0; k < down_blocks_.back().num_states(); ++k) {
      const size_t idx = controlnet_down_blocks_.size();
      controlnet_down_blocks_.push_back(
          nn::Conv2d::load(w, cat("controlnet_down_blocks.", idx), boc[i], boc[i], 1, same(1, 0)));
    }
  }
  if (u.mid_block_type == "UNetMidBlock2DCrossAttn")
    mid_cross_ = UNetMidBlock2DCrossAttn::load(w, "mid_block", u.mid_block_options());
  else
    mid_plain_ = UNetMidBlock2D::load(w, "mid_block", u.mid_block_options(), false, 1);
  controlnet_mid_block_ = nn::Conv2d::load(w, "controlnet_mid_block", boc.back(), boc.back(), 1, same(1, 0));
  w.warn_unused("ControlNetModel");
}

UNetResiduals ControlNetModel::forward(const Tensor& sample, const Tensor& timesteps,
                                       const Tensor& encoder_hidden_states, const Tensor& cond,
                                       float conditioning_scale) const {
  const UNet2DConditionConfig& u = cfg_.unet;
  A2F_CHECK(sample.ndim() == 4 && sample.dim(1) == u.in_channels, "ControlNet: sample must be [batch, ",
            u.in_channels, ", h, w], got ", shape_str(sample.shape()));
  const int64_t b = sample.dim(0);
  A2F_CHECK(encoder_hidden_states.ndim() == 3 && encoder_hidden_states.dim(0) == b &&
                encoder_hidden_states.dim(2) == u.cross_attention_dim[0],
            "ControlNet: encoder_hidden_states must be [", b, ", length, ", u.cross_attention_dim[0],
            "], got ", shape_str(encoder_hidden_states.shape()));
  const int64_t f = int64_t(1) << (cfg_.conditioning_embedding_out_channels.size() - 1);
  A2F_CHECK(cond.ndim() == 4 && cond.dim(0) == b && cond.dim(1) == cfg_.conditioning_channels &&
                cond.dim(2) == sample.dim(2) * f && cond.dim(3) == sample.dim(3) * f,
            "ControlNet: the condition image must be [", b, ", ", cfg_.conditioning_channels, ", ",
            sample.dim(2) * f, ", ", sample.dim(3) * f, "] for a sample of ", shape_str(sample.shape()),
            ", got ", shape_str(cond.shape()));
  nn::Ctx c{be_, &hook_};
  Backend& be = be_;

  // time
  Tensor t = be.to_device(timesteps_for_batch(timesteps, b, "ControlNet"));  // [B]
  Tensor t_emb = be.cast(time_proj_(c, t), dtype_);                          // [B, C0]
  Tensor emb = time_embedding_(c, t_emb);                                    // [B, T]
  c.mark(emb, "time_embedding");
  const Tensor temb_act = be.unary(act_, emb);                                  // [B, T]
  const Tensor context = be.cast(be.to_device(encoder_hidden_states), dtype_);  // [B, L, C]

  // controlnet_cond_embedding(cond), in the channel order the model was trained with
  Tensor h = be.cast(be.to_device(cond), dtype_);  // [B, Cc, H, W]
  if (cfg_.bgr) {
    std::vector<Tensor> ch;
    for (int64_t i = h.dim(1) - 1; i >= 0; --i) ch.push_back(be.slice(h, 1, i, i + 1));
    h = be.concat(ch, 1);  // [B, Cc, H, W] (torch.flip(cond, dims=[1]))
  }
  h = cond_conv_in_(c, h, Act::Silu);                               // [B, c0, H, W]
  for (const auto& conv : cond_blocks_) h = conv(c, h, Act::Silu);  // [B, ci, H / 2^k, W / 2^k]
  h = cond_conv_out_(c, h);                                         // [B, C0, h, w]
  c.mark(h, "controlnet_cond_embedding");

  Tensor x = be.cast(be.to_device(sample), dtype_);  // [B, in, h, w]
  x = conv_in_(c, x);                                // [B, C0, h, w]
  A2F_CHECK(x.shape() == h.shape(), "ControlNet: the condition embedding ", shape_str(h.shape()),
            " does not match conv_in's output ", shape_str(x.shape()));
  x = be.add(x, h);  // [B, C0, h, w]
  c.mark(x, "conv_in");
  std::vector<Tensor> states{x};
  for (const auto& blk : down_blocks_) x = blk(c, x, temb_act, context, &states);  // [B, Cn, h', w']
  if (mid_cross_) x = (*mid_cross_)(c, x, temb_act, context);                      // [B, Cn, h', w']
  if (mid_plain_) x = (*mid_plain_)(c, x, temb_act);                               // [B, Cn, h', w']

  A2F_ASSERT(states.size() == controlnet_down_blocks_.size());
  UNetResiduals out;
  for (size_t i = 0; i < states.size(); ++i) {
    Tensor r = controlnet_down_blocks_[i](c, states[i]);  // [B, C, h', w']
    r = be.scale(r, conditioning_scale);                  // [B, C, h', w']
    c.mark(r, cat("down_block_res_samples.", i));
    out.down.push_back(r);
  }
  out.mid = be.scale(controlnet_mid_block_(c, x), conditioning_scale);  // [B, Cn, h', w']
  c.mark(out.mid, "mid_block_res_sample");
  return out;
}

}  // namespace a2f
