#include "pipeline/generate.h"

#include <cmath>

#include "core/log.h"
#include "io/json.h"
#include "io/npy.h"
#include "pipeline/control_image.h"
#include "pipeline/prompt.h"
#include "pipeline/rng.h"
#include "pipeline/schedulers/scheduler.h"

namespace fs = std::filesystem;

namespace a2f {

ModelDirs ModelDirs::from_roots(const fs::path& models, const fs::path& base) {
  ModelDirs d;
  d.unet = models / "arc2face";
  d.encoder = models / "encoder";
  d.vae = base / "vae";
  d.tokenizer = base / "tokenizer";
  d.scheduler = base / "scheduler";
  return d;
}

void ModelDirs::check() const {
  struct Need {
    fs::path path;
    const char* what;
  };
  const Need needs[] = {
      {unet / "config.json", "Arc2Face UNet config (FoivosPar/Arc2Face arc2face/)"},
      {encoder / "config.json", "Arc2Face encoder config (FoivosPar/Arc2Face encoder/)"},
      {vae / "config.json", "SD1.5 VAE config (stable-diffusion-v1-5 vae/)"},
      {tokenizer / "vocab.json", "SD1.5 tokenizer vocabulary (stable-diffusion-v1-5 tokenizer/)"},
      {tokenizer / "merges.txt", "SD1.5 tokenizer merges (stable-diffusion-v1-5 tokenizer/)"},
      {scheduler / "scheduler_config.json", "SD1.5 scheduler config (stable-diffusion-v1-5 scheduler/)"},
  };
  std::string missing;
  for (const Need& n : needs) {
    std::error_code ec;
    if (!fs::is_regular_file(n.path, ec)) missing += cat("\n  missing ", n.path.string(), "  (", n.what, ")");
  }
  if (!missing.empty()) {
    fail("model files not found:", missing,
         "\nexpected layout: --models DIR holds arc2face/ and encoder/ (huggingface.co/FoivosPar/Arc2Face); "
         "--base DIR holds vae/, tokenizer/, scheduler/ (stable-diffusion-v1-5/stable-diffusion-v1-5)");
  }
}

DiffusionModels DiffusionModels::load(const ModelDirs& dirs, Backend& backend, DType dtype) {
  dirs.check();
  DiffusionModels m;
  m.backend = &backend;
  m.dtype = dtype;
  m.tokenizer = std::make_unique<ClipTokenizer>(ClipTokenizer::load(dirs.tokenizer));
  m.encoder = ClipTextModel::from_pretrained(dirs.encoder, backend, dtype);
  m.unet = UNet2DConditionModel::from_pretrained(dirs.unet, backend, dtype);
  m.vae = AutoencoderKL::from_pretrained(dirs.vae, backend, dtype);
  m.scheduler_config = json_load(dirs.scheduler / "scheduler_config.json");
  load_optional_models(m, dirs);
  return m;
}

void load_optional_models(DiffusionModels& m, const ModelDirs& dirs) {
  if (!dirs.controlnet.empty()) {
    std::error_code ec;
    A2F_CHECK(fs::is_regular_file(dirs.controlnet / "config.json", ec), "ControlNet folder ",
              dirs.controlnet.string(), " has no config.json (expected FoivosPar/Arc2Face controlnet/ with ",
              "config.json and diffusion_pytorch_model.safetensors)");
    m.controlnet = ControlNetModel::from_pretrained(dirs.controlnet, *m.backend, m.dtype);
  }
  if (!dirs.lcm_lora.empty()) {
    std::error_code ec;
    A2F_CHECK(fs::is_regular_file(dirs.lcm_lora, ec), "LCM-LoRA file not found: ", dirs.lcm_lora.string(),
              " (latent-consistency/lcm-lora-sdv1-5 pytorch_lora_weights.safetensors)");
    m.lcm_lora = std::make_unique<LoraAdapter>(*m.unet, lora_load(dirs.lcm_lora));
  }
}

namespace {

class Dumper {
 public:
  explicit Dumper(fs::path dir) : dir_(std::move(dir)) {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::create_directories(dir_, ec);
      A2F_CHECK(!ec, "cannot create the dump folder ", dir_.string(), ": ", ec.message());
    }
  }
  bool on() const { return !dir_.empty(); }
  void operator()(const std::string& name, const Tensor& t) const {
    if (on()) npy_write(dir_ / (name + ".npy"), t.to(DType::F32).contiguous());
  }

 private:
  fs::path dir_;
};

// [B, ...] -> [B * n, ...], each row repeated n times in place (torch repeat(1, n, 1).view(B * n, ...)).
Tensor repeat_rows(Backend& be, const Tensor& x, int n) {
  if (n == 1) return x;
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < x.dim(0); ++i)
    for (int k = 0; k < n; ++k) parts.push_back(x.narrow(0, i, 1));
  return be.concat(parts, 0);
}

// The control image as the ControlNet pipeline feeds it: resized, [0, 1], one row per UNet batch row
// (repeat_interleave over the images, then duplicated for classifier-free guidance). Undefined without one.
Tensor prepare_control_image(const DiffusionModels& m, const GenerationParams& p, int64_t rows) {
  if (p.control_image.pixels.empty()) return Tensor();
  A2F_CHECK(m.controlnet, "a control image was given but no ControlNet is loaded (--controlnet DIR)");
  A2F_CHECK(std::isfinite(p.control_scale) && p.control_scale >= 0.0f && p.control_scale <= 10.0f,
            "control scale must be in [0, 10], got ", p.control_scale);
  Tensor one = control_image_tensor(p.control_image, p.width, p.height);             // [1, 3, H, W]
  return m.backend->concat(std::vector<Tensor>(static_cast<size_t>(rows), one), 0);  // [rows, 3, H, W]
}

// eps = unet(x, t, context[, ControlNet residuals]).
Tensor predict_noise(const DiffusionModels& m, const Tensor& x, const Tensor& t, const Tensor& context,
                     const Tensor& control, float control_scale) {
  if (!control.defined()) return m.unet->forward(x, t, context);  // [B, 4, h, w]
  UNetResiduals res = m.controlnet->forward(x, t, context, control, control_scale);
  return m.unet->forward(x, t, context, &res);  // [B, 4, h, w]
}

void check_params(const DiffusionModels& m, const GenerationParams& p) {
  A2F_CHECK(p.num_images >= 1 && p.num_images <= 64, "number of images must be 1..64, got ", p.num_images);
  A2F_CHECK(p.steps >= 1 && p.steps <= 1000, "steps must be 1..1000, got ", p.steps);
  A2F_CHECK(std::isfinite(p.guidance) && p.guidance >= 0.0f && p.guidance <= 100.0f,
            "guidance must be a number in [0, 100], got ", p.guidance);
  const int64_t f = m.vae->downscale_factor();
  A2F_CHECK(p.width > 0 && p.height > 0 && p.width % f == 0 && p.height % f == 0, "width and height must be ",
            "positive multiples of ", f, ", got ", p.width, "x", p.height);
  A2F_CHECK(int64_t(p.width) * p.height <= 4096LL * 4096LL, "image size ", p.width, "x", p.height, " is too large");
  const int64_t n = p.id_embeddings.defined() ? p.id_embeddings.dim(0) : 0;
  A2F_CHECK(n == 1 || n == p.num_images, "expected 1 or ", p.num_images, " ID embeddings, got ", n);
}

}  // namespace

GenerationResult generate_images(const DiffusionModels& m, const GenerationParams& p) {
  A2F_CHECK(p.id_embeddings.defined(), "no ID embedding given");
  Backend& be = *m.backend;
  check_params(m, p);
  auto stage = [&](const char* s, int step, int total) {
    if (p.on_stage && !p.on_stage(GenerationStage{s, step, total})) throw GenerationCancelled();
  };
  const Dumper dump(p.dump_dir);
  const int n = p.num_images;
  A2F_CHECK(!p.lcm_lora || m.lcm_lora, "LCM-LoRA was requested but none is loaded (--lcm-lora FILE)");
  const LoraScope lora(m.lcm_lora.get(), p.lcm_lora);  // this generation only

  // 1. Prompt: the ID embedding spliced into "photo of a id person", and the empty prompt.
  stage("encode", 0, 1);
  Tensor ids = normalize_id_embeddings(p.id_embeddings.ndim() == 1 ? p.id_embeddings.unsqueeze(0)
                                                                    : p.id_embeddings);  // [1|N, 512]
  IdPrompt prompt = project_face_embs(*m.encoder, *m.tokenizer, ids);
  Tensor negative = encode_negative_prompt(*m.encoder, *m.tokenizer);  // [1, 77, D]
  dump("input_ids", prompt.input_ids);
  dump("id_embedding", ids);
  dump("prompt_embeds", prompt.prompt_embeds);
  dump("negative_prompt_embeds", negative);
  Tensor pos = ids.dim(0) == 1 ? repeat_rows(be, prompt.prompt_embeds, n) : prompt.prompt_embeds;  // [N, 77, D]
  Tensor neg = repeat_rows(be, negative, n);                                                        // [N, 77, D]
  // diffusers: do_classifier_free_guidance = guidance_scale > 1 (and no time_cond_proj_dim).
  const bool cfg = p.guidance > 1.0f && !m.unet->config().time_cond_proj_dim;
  Tensor context = cfg ? be.concat({neg, pos}, 0) : pos;  // [2N | N, 77, D]
  stage("encode", 1, 1);

  // 2. Scheduler(s) and initial latents. One scheduler + generator for the batch (diffusers' way), or one of
  //    each per image so any image can be regenerated alone.
  const int schedulers_n = p.per_image_seeds ? n : 1;
  std::vector<std::unique_ptr<Scheduler>> scheds;
  std::vector<TorchGenerator> gens;
  GenerationResult result;
  for (int i = 0; i < schedulers_n; ++i) {
    scheds.push_back(make_scheduler(p.scheduler, m.scheduler_config));
    scheds.back()->set_timesteps(p.steps);
    gens.emplace_back(p.seed + (p.per_image_seeds ? uint64_t(i) : 0));
  }
  for (int i = 0; i < n; ++i) result.seeds.push_back(p.seed + (p.per_image_seeds ? uint64_t(i) : 0));
  Scheduler& s0 = *scheds[0];
  const int64_t f = m.vae->downscale_factor();
  const Shape lat_shape{n, m.unet->config().in_channels, p.height / f, p.width / f};  // [N, 4, h, w]
  Tensor latents;
  if (p.latents.defined()) {
    A2F_CHECK(p.latents.shape() == lat_shape, "the given latents have shape ", shape_str(p.latents.shape()),
              "; this generation needs ", shape_str(lat_shape));
    latents = p.latents.to(DType::F32).contiguous();
  } else if (p.per_image_seeds) {
    std::vector<Tensor> parts;
    for (int i = 0; i < n; ++i) parts.push_back(gens[i].randn({1, lat_shape[1], lat_shape[2], lat_shape[3]}));
    latents = be.concat(parts, 0);
  } else {
    latents = gens[0].randn(lat_shape);  // one draw of the whole batch, as prepare_latents does
  }
  latents = be.scale(latents, s0.init_noise_sigma());  // latents * init_noise_sigma
  {
    std::vector<float> ts(s0.timesteps().begin(), s0.timesteps().end());
    dump("timesteps", Tensor::from_data({static_cast<int64_t>(ts.size())}, ts));
  }
  dump("latents_init", latents);
  const Tensor control = prepare_control_image(m, p, cfg ? 2 * n : n);  // [2N|N, 3, H, W] or undefined
  if (control.defined()) dump("control_image", control);

  // 3. Denoising loop.
  const int steps = s0.num_steps();
  const Tensor g = Tensor::full({1}, p.guidance);
  for (int k = 0; k < steps; ++k) {
    const float t = static_cast<float>(s0.timesteps()[k]);
    Tensor model_in = s0.scale_model_input(cfg ? be.concat({latents, latents}, 0) : latents, k);  // [2N|N, 4, h, w]
    Tensor tt = Tensor::full({model_in.dim(0)}, t);                                              // [2N|N]
    Tensor eps = predict_noise(m, model_in, tt, context, control, p.control_scale);  // [2N|N, 4, h, w]
    if (cfg) {
      Tensor eu = eps.narrow(0, 0, n), ec = eps.narrow(0, n, n);
      eps = be.add(eu, be.mul(g, be.sub(ec, eu)));  // eu + g * (ec - eu)
    }
    if (schedulers_n == 1) {
      latents = s0.step(eps, k, latents, &gens[0]);
    } else {
      std::vector<Tensor> parts;
      for (int i = 0; i < n; ++i)
        parts.push_back(scheds[i]->step(eps.narrow(0, i, 1).contiguous(), k, latents.narrow(0, i, 1).contiguous(),
                                        &gens[i]));
      latents = be.concat(parts, 0);
    }
    if (dump.on()) {
      dump(cat("noise_pred_", k), eps);
      dump(cat("latents_", k), latents);
    }
    stage("denoise", k + 1, steps);
  }

  // 4. Decode: vae.decode(latents / scaling_factor), then (x / 2 + 0.5).clamp(0, 1), NHWC.
  be.trim_memory();  // the UNet's recycled blocks would otherwise sit next to the decoder's (peak memory)
  stage("decode", 0, n);
  const Tensor sf = Tensor::full({1}, m.vae->scaling_factor());
  std::vector<Tensor> imgs;
  for (int i = 0; i < n; ++i) {  // one image at a time bounds the decoder's memory
    imgs.push_back(m.vae->decode(be.div(latents.narrow(0, i, 1), sf)));  // [1, 3, H, W]
    stage("decode", i + 1, n);
  }
  result.images = vae_postprocess(be.concat(imgs, 0));  // [N, H, W, 3]
  imgs.clear();
  be.trim_memory();  // nothing of this request's intermediates stays resident between requests
  dump("image", result.images);
  return result;
}

std::vector<std::vector<uint8_t>> images_to_rgb8(const Tensor& images) {
  A2F_CHECK(images.ndim() == 4 && images.dim(3) == 3, "images_to_rgb8: expected [N, H, W, 3], got ", images.desc());
  Tensor x = images.to(DType::F32).contiguous();
  const int64_t per = images.dim(1) * images.dim(2) * 3;
  std::vector<std::vector<uint8_t>> out(static_cast<size_t>(images.dim(0)));
  const float* src = x.data<float>();
  for (int64_t i = 0; i < images.dim(0); ++i) {
    out[i].resize(static_cast<size_t>(per));
    for (int64_t j = 0; j < per; ++j) {
      float v = src[i * per + j] * 255.0f;                       // float32 multiply, as numpy does
      float r = std::nearbyint(v);                                // half to even (default rounding mode)
      out[i][j] = static_cast<uint8_t>(r < 0 ? 0 : (r > 255 ? 255 : r));
    }
  }
  return out;
}

}  // namespace a2f
