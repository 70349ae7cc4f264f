// The generation orchestrator: a short, linear mirror of diffusers 0.29.2 StableDiffusionPipeline.__call__
// (pipelines/stable_diffusion/pipeline_stable_diffusion.py) as Arc2Face drives it with prompt_embeds from
// project_face_embs:
//   latents = randn([N, 4, H/8, W/8], generator) * init_noise_sigma     (or the given latents * init_noise_sigma)
//   for t: eps = unet(scale_model_input(cat([x, x]), t), t, cat([neg, pos]));  eps = eu + g (ec - eu);
//          x = scheduler.step(eps, t, x)
//   image = clamp(vae.decode(x / scaling_factor) / 2 + 0.5, 0, 1)
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/backend.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/unet2d.h"
#include "pipeline/tokenizer.h"

namespace a2f {

// Where the model files are: the FoivosPar/Arc2Face layout for the UNet and encoder, SD1.5's for the rest.
struct ModelDirs {
  std::filesystem::path unet;       // arc2face/
  std::filesystem::path encoder;    // encoder/
  std::filesystem::path vae;        // vae/
  std::filesystem::path tokenizer;  // tokenizer/
  std::filesystem::path scheduler;  // scheduler/ (scheduler_config.json)
  // From --models DIR (arc2face/, encoder/) and --base DIR (vae/, tokenizer/, scheduler/).
  static ModelDirs from_roots(const std::filesystem::path& models, const std::filesystem::path& base);
  // Throws naming every missing file and the expected layout.
  void check() const;
};

// Everything loaded once and reused by every generation.
struct DiffusionModels {
  Backend* backend = nullptr;
  DType dtype = DType::F32;
  std::unique_ptr<ClipTokenizer> tokenizer;
  std::unique_ptr<ClipTextModel> encoder;
  std::unique_ptr<UNet2DConditionModel> unet;
  std::unique_ptr<AutoencoderKL> vae;
  nlohmann::json scheduler_config;

  static DiffusionModels load(const ModelDirs& dirs, Backend& backend, DType dtype);
};

struct GenerationStage {
  const char* stage;  // "encode", "denoise", "decode"
  int step, total;
};
// Returns false to cancel.
using StageCallback = std::function<bool(const GenerationStage&)>;

struct GenerationParams {
  Tensor id_embeddings;  // [1, 512] or [N, 512] (one per image), raw; normalised here
  int num_images = 1;
  int steps = 25;
  float guidance = 3.0f;
  std::string scheduler = "dpm++2m";
  uint64_t seed = 0;
  bool per_image_seeds = false;  // image i from its own generator seed + i (noise and scheduler noise)
  int width = 512, height = 512;
  Tensor latents;                     // optional [N, C, h, w]
  std::filesystem::path dump_dir;     // optional: every intermediate as float32 .npy
  StageCallback on_stage;
};

struct GenerationResult {
  Tensor images;  // [N, H, W, 3] f32 in [0, 1]
  std::vector<uint64_t> seeds;  // per image
};

// Thrown when the stage callback returns false.
class GenerationCancelled : public Error {
 public:
  GenerationCancelled() : Error("generation cancelled") {}
};

GenerationResult generate_images(const DiffusionModels& models, const GenerationParams& params);

// round(255 * x) with round-half-to-even as numpy does, for [N, H, W, 3] in [0, 1] -> N buffers of H*W*3 bytes.
std::vector<std::vector<uint8_t>> images_to_rgb8(const Tensor& images);

}  // namespace a2f
