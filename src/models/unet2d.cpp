// diffusers 0.29.2 UNet2DConditionModel; see unet2d.h.
#include "models/unet2d.h"

#include <algorithm>

namespace a2f {

namespace {

// diffusers get_down_block / get_up_block strip a "UNetRes" prefix.
std::string strip_unetres(const std::string& s) {
  return s.rfind("UNetRes", 0) == 0 ? s.substr(7) : s;
}

// transformer_layers_per_block-style value: an int (repeated) or a list with one int-or-list entry per block.
// Returns one raw entry per block (each an int or a list).
std::vector<nlohmann::json> per_block_entries(const ConfigReader& r, const std::string& key, size_t n) {
  const auto& j = r.json();
  auto it = j.find(key);
  if (it == j.end() || it->is_null() || it->is_number()) {
    nlohmann::json v = (it == j.end() || it->is_null()) ? nlohmann::json(1) : *it;
    return std::vector<nlohmann::json>(n, v);
  }
  if (!it->is_array() || it->size() != n)
    r.unsupported(key, cat("expected an int or one entry per block (", n, ")"));
  return std::vector<nlohmann::json>(it->begin(), it->end());
}

std::vector<int64_t> expand_layers(const ConfigReader& r, const std::string& key, const nlohmann::json& e,
                                   int64_t layers) {
  if (e.is_number_integer()) return std::vector<int64_t>(static_cast<size_t>(layers), e.get<int64_t>());
  if (e.is_array() && static_cast<int64_t>(e.size()) == layers) {
    std::vector<int64_t> out;
    for (const auto& x : e) {
      if (!x.is_number_integer()) r.unsupported(key, "entries must be integers");
      out.push_back(x.get<int64_t>());
    }
    return out;
  }
  r.unsupported(key, cat("entry ", e.dump(), " does not match a block of ", layers, " layers"));
}

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::from_reader(const ConfigReader& r) {
  UNet2DConditionConfig c;
  const std::string cls = r.get_string("_class_name", "UNet2DConditionModel");
  if (cls != "UNet2DConditionModel") r.unsupported("_class_name", "expected UNet2DConditionModel");
  c.in_channels = r.get_int("in_channels", 4);
  c.out_channels = r.get_int("out_channels", 4);
  c.center_input_sample = r.get_bool("center_input_sample", false);
  c.flip_sin_to_cos = r.get_bool("flip_sin_to_cos", true);
  c.freq_shift = r.get_float("freq_shift", 0.0);
  c.down_block_types = r.get_string_list(
      "down_block_types", std::vector<std::string>{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                   "CrossAttnDownBlock2D", "DownBlock2D"});
  c.up_block_types = r.get_string_list(
      "up_block_types", std::vector<std::string>{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                                 "CrossAttnUpBlock2D"});
  const auto& j = r.json();
  if (j.contains("mid_block_type") && j["mid_block_type"].is_null())
    c.mid_block_type = "";
  else
    c.mid_block_type = r.get_string("mid_block_type", "UNetMidBlock2DCrossAttn");
  c.block_out_channels = r.get_int_list("block_out_channels", std::vector<int64_t>{320, 640, 1280, 1280});
  const size_t n = c.down_block_types.size();
  if (n == 0) r.unsupported("down_block_types", "at least one block is needed");
  if (c.up_block_types.size() != n)
    r.unsupported("up_block_types", cat("must have as many entries as down_block_types (", n, ")"));
  if (c.block_out_channels.size() != n)
    r.unsupported("block_out_channels", cat("must have as many entries as down_block_types (", n, ")"));
  for (auto& t : c.down_block_types) {
    t = strip_unetres(t);
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
      r.unsupported("down_block_types",
                    cat("block type ", t, " (supported: CrossAttnDownBlock2D, DownBlock2D)"));
  }
  for (auto& t : c.up_block_types) {
    t = strip_unetres(t);
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D")
      r.unsupported("up_block_types", cat("block type ", t, " (supported: CrossAttnUpBlock2D, UpBlock2D)"));
  }
  if (!c.mid_block_type.empty() && c.mid_block_type != "UNetMidBlock2DCrossAttn" &&
      c.mid_block_type != "UNetMidBlock2D")
    r.unsupported("mid_block_type", "supported: UNetMidBlock2DCrossAttn, UNetMidBlock2D, null");

  c.only_cross_attention = r.get_bool_or_list("only_cross_attention", n, false);
  c.layers_per_block = r.get_int_or_list("layers_per_block", n, 2);
  c.downsample_padding = r.get_int("downsample_padding", 1);
  c.mid_block_scale_factor = r.get_float("mid_block_scale_factor", 1.0);
  c.act_fn = r.get_string("act_fn", "silu");
  nn::act_from_name(c.act_fn, r.file() + ": act_fn");
  if (j.contains("norm_num_groups") && j["norm_num_groups"].is_null())
    r.unsupported("norm_num_groups", "UNets without output GroupNorm are not supported");
  c.norm_num_groups = r.get_int("norm_num_groups", 32);
  c.norm_eps = r.get_float("norm_eps", 1e-5);
  c.cross_attention_dim = r.get_int_or_list("cross_attention_dim", n, 1280);

  // Heads: diffusers raises on num_attention_heads, then uses `num_attention_heads or attention_head_dim`.
  r.require_null("num_attention_heads",
                 "diffusers 0.29 rejects it too; SD configs give heads as attention_head_dim");
  c.num_attention_heads = r.get_int_or_list("attention_head_dim", n, 8);

  // transformer_layers_per_block (+ reverse_transformer_layers_per_block), expanded per layer.
  const auto down_entries = per_block_entries(r, "transformer_layers_per_block", n);
  for (size_t i = 0; i < n; ++i)
    c.transformer_layers_per_block.push_back(
        expand_layers(r, "transformer_layers_per_block", down_entries[i], c.layers_per_block[i]));
  const bool down_has_lists =
      std::any_of(down_entries.begin(), down_entries.end(), [](auto& e) { return e.is_array(); });
  std::vector<nlohmann::json> up_entries;
  if (r.has("reverse_transformer_layers_per_block")) {
    up_entries = per_block_entries(r, "reverse_transformer_layers_per_block", n);
  } else {
    if (down_has_lists)
      r.unsupported("transformer_layers_per_block",
                    "per-layer lists need reverse_transformer_layers_per_block (as diffusers requires)");
    up_entries.assign(down_entries.rbegin(), down_entries.rend());
  }
  for (size_t i = 0; i < n; ++i)
    c.reverse_transformer_layers_per_block.push_back(
        expand_layers(r,
                      r.has("reverse_transformer_layers_per_block") ? "reverse_transformer_layers_per_block"
                                                                    : "transformer_layers_per_block",
                      up_entries[i], c.layers_per_block[n - 1 - i] + 1));

  c.use_linear_projection = r.get_bool("use_linear_projection", false);
  c.upcast_attention = r.get_bool("upcast_attention", false);
  c.resnet_time_scale_shift = r.get_string("resnet_time_scale_shift", "default");
  if (c.resnet_time_scale_shift != "default" && c.resnet_time_scale_shift != "scale_shift")
    r.unsupported("resnet_time_scale_shift", "supported: default, scale_shift");
  const std::string tet = r.get_string("time_embedding_type", "positional");
  if (tet != "positional") r.unsupported("time_embedding_type", "only positional is supported");
  c.time_embedding_dim = r.get_opt_int("time_embedding_dim").value_or(0);
  c.time_embedding_act_fn = r.get_opt_string("time_embedding_act_fn").value_or("");
  if (!c.time_embedding_act_fn.empty())
    nn::act_from_name(c.time_embedding_act_fn, r.file() + ": time_embedding_act_fn");
  c.timestep_post_act = r.get_opt_string("timestep_post_act").value_or("");
  if (!c.timestep_post_act.empty()) nn::act_from_name(c.timestep_post_act, r.file() + ": timestep_post_act");
  c.time_cond_proj_dim = r.get_opt_int("time_cond_proj_dim").value_or(0);
  c.conv_in_kernel = r.get_int("conv_in_kernel", 3);
  c.conv_out_kernel = r.get_int("conv_out_kernel", 3);
  if (c.conv_in_kernel < 1 || c.conv_in_kernel % 2 == 0) r.unsupported("conv_in_kernel", "must be odd");
  if (c.conv_out_kernel < 1 || c.conv_out_kernel % 2 == 0) r.unsupported("conv_out_kernel", "must be odd");

  // Families this port does not implement.
  r.require_null("class_embed_type");
  r.require_null("num_class_embeds");
  r.require_null("addition_embed_type");
  r.require_null("encoder_hid_dim");
  r.require_null("encoder_hid_dim_type");
  r.require_null("cross_attention_norm");
  if (r.get_bool("dual_cross_attention", false)) r.unsupported("dual_cross_attention");
  if (r.get_bool("class_embeddings_concat", false)) r.unsupported("class_embeddings_concat");
  if (r.get_string("attention_type", "default") != "default") r.unsupported("attention_type", "only default");

  for (size_t i = 0; i < n; ++i) {
    if (c.block_out_channels[i] <= 0) r.unsupported("block_out_channels");
    if (c.layers_per_block[i] <= 0) r.unsupported("layers_per_block");
    if (c.num_attention_heads[i] <= 0) r.unsupported("attention_head_dim");
  }
  if (c.in_channels <= 0) r.unsupported("in_channels");
  if (c.out_channels <= 0) r.unsupported("out_channels");
  return c;
}

BlockOptions UNet2DConditionConfig::down_block_options(size_t i) const {
  const size_t n = down_block_types.size();
  BlockOptions o;
  o.num_layers = static_cast<int>(layers_per_block[i]);
  o.in_channels = block_out_channels[i == 0 ? 0 : i - 1];
  o.out_channels = block_out_channels[i];
  o.temb_channels = time_embed_dim();
  o.resnet_eps = static_cast<float>(norm_eps);
  o.resnet_act = nn::act_from_name(act_fn, "act_fn");
  o.resnet_groups = static_cast<int>(norm_num_groups);
  o.resnet_scale_shift = resnet_time_scale_shift == "scale_shift";
  o.add_sample = i + 1 < n;
  o.downsample_padding = static_cast<int>(downsample_padding);
  o.cross_attention = down_block_types[i] == "CrossAttnDownBlock2D";
  o.transformer_layers = transformer_layers_per_block[i];
  o.num_attention_heads = static_cast<int>(num_attention_heads[i]);
  o.cross_attention_dim = cross_attention_dim[i];
  o.use_linear_projection = use_linear_projection;
  o.only_cross_attention = only_cross_attention[i];
  return o;
}

BlockOptions UNet2DConditionConfig::mid_block_options() const {
  BlockOptions o;
  o.num_layers = mid_block_type == "UNetMidBlock2D" ? 0 : 1;
  o.in_channels = o.out_channels = block_out_channels.back();
  o.temb_channels = time_embed_dim();
  o.resnet_eps = static_cast<float>(norm_eps);
  o.resnet_act = nn::act_from_name(act_fn, "act_fn");
  o.resnet_groups = static_cast<int>(norm_num_groups);
  o.resnet_scale_shift = resnet_time_scale_shift == "scale_shift";
  o.output_scale_factor = static_cast<float>(mid_block_scale_factor);
  o.cross_attention = mid_block_type == "UNetMidBlock2DCrossAttn";
  // UNetMidBlock2DCrossAttn(transformer_layers_per_block=transformer_layers_per_block[-1]): an int is
  // repeated, a per-layer list gives its first entry to the single layer.
  o.transformer_layers = {transformer_layers_per_block.back().front()};
  o.num_attention_heads = static_cast<int>(num_attention_heads.back());
  o.cross_attention_dim = cross_attention_dim.back();
  o.use_linear_projection = use_linear_projection;
  return o;
}

BlockOptions UNet2DConditionConfig::up_block_options(size_t i) const {
  const size_t n = up_block_types.size();
  const size_t r = n - 1 - i;  // index into the down-block lists
  BlockOptions o;
  o.num_layers = static_cast<int>(layers_per_block[r] + 1);
  o.out_channels = block_out_channels[r];
  o.prev_output_channel = block_out_channels[i == 0 ? n - 1 : r + 1];
  o.in_channels = block_out_channels[r == 0 ? 0 : r - 1];
  o.temb_channels = time_embed_dim();
  o.resnet_eps = static_cast<float>(norm_eps);
  o.resnet_act = nn::act_from_name(act_fn, "act_fn");
  o.resnet_groups = static_cast<int>(norm_num_groups);
  o.resnet_scale_shift = resnet_time_scale_shift == "scale_shift";
  o.add_sample = i + 1 < n;
  o.cross_attention = up_block_types[i] == "CrossAttnUpBlock2D";
  o.transformer_layers = reverse_transformer_layers_per_block[i];
  o.num_attention_heads = static_cast<int>(num_attention_heads[r]);
  o.cross_attention_dim = cross_attention_dim[r];
  o.use_linear_projection = use_linear_projection;
  o.only_cross_attention = only_cross_attention[r];
  return o;
}

std::unique_ptr<UNet2DConditionModel> UNet2DConditionModel::from_pretrained(const std::filesystem::path& dir,
                                                                            Backend& backend, DType dtype) {
  ConfigReader r = ConfigReader::load(dir / "config.json");
  auto cfg = UNet2DConditionConfig::from_reader(r);
  auto file = find_weight_file(dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"});
  StateDict sd = load_state_dict(file);
  return std::make_unique<UNet2DConditionModel>(cfg, sd, file.string(), backend, dtype);
}

UNet2DConditionModel::UNet2DConditionModel(const UNet2DConditionConfig& config, const StateDict& weights,
                                           const std::string& file, Backend& backend, DType dtype)
    : UNet2DConditionModel(config, *std::make_unique<nn::WeightLoader>(weights, file, backend, dtype)) {}

UNet2DConditionModel::UNet2DConditionModel(const UNet2DConditionConfig& config, nn::WeightLoader& w)
    : cfg_(config), be_(w.backend()), dtype_(w.dtype()) {
  const std::string& file = w.file();
  const auto& boc = cfg_.block_out_channels;
  const size_t n = boc.size();
  act_ = nn::act_from_name(cfg_.act_fn, file + ": act_fn");
  if (!cfg_.time_embedding_act_fn.empty())
    time_embed_act_ = nn::act_from_name(cfg_.time_embedding_act_fn, file);
  const int in_pad = static_cast<int>((cfg_.conv_in_kernel - 1) / 2);
  conv_in_ = nn::Conv2d::load(w, "conv_in", cfg_.in_channels, boc[0], static_cast<int>(cfg_.conv_in_kernel),
                              Conv2dParams::same(1, in_pad));
  time_proj_ = Timesteps{static_cast<int>(boc[0]), cfg_.flip_sin_to_cos, static_cast<float>(cfg_.freq_shift)};
  const Act post =
      cfg_.timestep_post_act.empty() ? Act::None : nn::act_from_name(cfg_.timestep_post_act, file);
  time_embedding_ = TimestepEmbedding::load(w, "time_embedding", boc[0], cfg_.time_embed_dim(), act_, post,
                                            cfg_.time_cond_proj_dim);
  for (size_t i = 0; i < n; ++i)
    down_blocks_.push_back(DownBlock2D::load(w, cat("down_blocks.", i), cfg_.down_block_options(i)));
  if (cfg_.mid_block_type == "UNetMidBlock2DCrossAttn")
    mid_cross_ = UNetMidBlock2DCrossAttn::load(w, "mid_block", cfg_.mid_block_options());
  else if (cfg_.mid_block_type == "UNetMidBlock2D")
    mid_plain_ = UNetMidBlock2D::load(w, "mid_block", cfg_.mid_block_options(), false, 1);
  for (size_t i = 0; i < n; ++i) {
    up_blocks_.push_back(UpBlock2D::load(w, cat("up_blocks.", i), cfg_.up_block_options(i)));
    if (i + 1 < n) ++num_upsamplers_;
  }
  conv_norm_out_ = nn::GroupNorm::load(w, "conv_norm_out", static_cast<int>(cfg_.norm_num_groups), boc[0],
                                       static_cast<float>(cfg_.norm_eps));
  const int out_pad = static_cast<int>((cfg_.conv_out_kernel - 1) / 2);
  conv_out_ = nn::Conv2d::load(w, "conv_out", boc[0], cfg_.out_channels,
                               static_cast<int>(cfg_.conv_out_kernel), Conv2dParams::same(1, out_pad));
  w.warn_unused("UNet2DConditionModel");
}

Tensor UNet2DConditionModel::forward(const Tensor& sample, const Tensor& timesteps,
                                     const Tensor& encoder_hidden_states, const UNetResiduals* controlnet,
                                     const Tensor& timestep_cond) const {
  A2F_CHECK(sample.ndim() == 4 && sample.dim(1) == cfg_.in_channels, "UNet: sample must be [batch, ",
            cfg_.in_channels, ", h, w], got ", shape_str(sample.shape()));
  const int64_t b = sample.dim(0);
  A2F_CHECK(encoder_hidden_states.ndim() == 3 && encoder_hidden_states.dim(0) == b &&
                encoder_hidden_states.dim(2) == cfg_.cross_attention_dim[0],
            "UNet: encoder_hidden_states must be [", b, ", length, ", cfg_.cross_attention_dim[0], "], got ",
            shape_str(encoder_hidden_states.shape()));
  nn::Ctx c{be_, &hook_};
  Backend& be = be_;

  // Upsample to the skip sizes when the input is not a multiple of 2^num_upsamplers (diffusers).
  const int64_t up_factor = int64_t(1) << num_upsamplers_;
  const bool forward_upsample_size = sample.dim(2) % up_factor != 0 || sample.dim(3) % up_factor != 0;

  Tensor x = be.cast(be.to_device(sample), dtype_);            // [B, in, h, w]
  if (cfg_.center_input_sample) x = be.scale(x, 2.0f, -1.0f);  // [B, in, h, w]

  // time
  Tensor t = be.to_device(timesteps_for_batch(timesteps, b, "UNet"));  // [B]
  Tensor t_emb = be.cast(time_proj_(c, t), dtype_);                    // [B, C0]
  c.mark(t_emb, "time_proj");
  Tensor cond;
  if (timestep_cond.defined()) {
    A2F_CHECK(cfg_.time_cond_proj_dim > 0, "UNet: a timestep condition was given but the UNet config has no ",
              "time_cond_proj_dim");
    A2F_CHECK(timestep_cond.shape() == (Shape{b, cfg_.time_cond_proj_dim}), "UNet: timestep_cond must be ",
              shape_str({b, cfg_.time_cond_proj_dim}), ", got ", shape_str(timestep_cond.shape()));
    cond = be.cast(be.to_device(timestep_cond), dtype_);  // [B, Dc]
  }
  Tensor emb = time_embedding_(c, t_emb, cond);                            // [B, T]
  if (time_embed_act_ != Act::None) emb = be.unary(time_embed_act_, emb);  // [B, T]
  c.mark(emb, "time_embedding");
  const Tensor temb_act = be.unary(act_, emb);  // [B, T], the resnets' nonlinearity(temb)

  const Tensor context = be.cast(be.to_device(encoder_hidden_states), dtype_);  // [B, L, C]

  x = conv_in_(c, x);  // [B, C0, h, w]
  c.mark(x, "conv_in");
  std::vector<Tensor> skips{x};
  for (const auto& blk : down_blocks_) x = blk(c, x, temb_act, context, &skips);  // [B, Cn, h', w']

  if (controlnet) {
    A2F_CHECK(controlnet->down.size() == skips.size() && controlnet->mid.defined(), "UNet: ControlNet gave ",
              controlnet->down.size(), " down residuals",
              controlnet->mid.defined() ? "" : " and no mid residual", ", expected ", skips.size(),
              " and one mid residual");
    for (size_t i = 0; i < skips.size(); ++i) {
      A2F_CHECK(controlnet->down[i].shape() == skips[i].shape(), "UNet: ControlNet down residual ", i, " is ",
                shape_str(controlnet->down[i].shape()), ", expected ", shape_str(skips[i].shape()));
      skips[i] = be.add(skips[i], controlnet->down[i]);  // [B, C, h', w']
    }
  }

  if (mid_cross_) x = (*mid_cross_)(c, x, temb_act, context);  // [B, Cn, h', w']
  if (mid_plain_) x = (*mid_plain_)(c, x, temb_act);           // [B, Cn, h', w']
  if (controlnet) {
    A2F_CHECK(controlnet->mid.shape() == x.shape(), "UNet: ControlNet mid residual is ",
              shape_str(controlnet->mid.shape()), ", expected ", shape_str(x.shape()));
    x = be.add(x, controlnet->mid);  // [B, Cn, h', w']
  }

  for (size_t i = 0; i < up_blocks_.size(); ++i) {
    const auto& blk = up_blocks_[i];
    const bool final_block = i + 1 == up_blocks_.size();
    int64_t uh = 0, uw = 0;
    if (!final_block && forward_upsample_size) {
      const Tensor& s = skips.at(skips.size() - blk.resnets.size() - 1);
      uh = s.dim(2);
      uw = s.dim(3);
    }
    x = blk(c, x, temb_act, context, skips, uh, uw);  // [B, C, h'', w'']
  }

  x = conv_norm_out_(c, x, act_);  // [B, C0, h, w]
  c.mark(x, "conv_norm_out");
  x = conv_out_(c, x);  // [B, out, h, w]
  c.mark(x, "conv_out");
  return x.dtype() == DType::F32 ? x : be.cast(x, DType::F32);  // [B, out, h, w]
}

}  // namespace a2f
