// arc2face.cpp public API: ID vector (or photos) in, images out.
//
//   arc2face::PipelineOptions o;
//   o.models_dir = "models";                               // holds arc2face/ and encoder/
//   o.base_dir = "models/stable-diffusion-v1-5";           // holds vae/, tokenizer/, scheduler/
//   auto pipe = arc2face::Pipeline::create(o);             // loads weights once (throws arc2face::Error)
//   arc2face::GenerateRequest r;
//   r.id_embedding = embedding;                            // 512 floats (normalised inside)
//   r.num_images = 2; r.seed = 42;
//   for (auto& img : pipe->generate(r)) arc2face::write_png("out.png", img);
//
// Thread safety: a Pipeline runs one generate() at a time (calls from several threads are serialised
// internally); separate Pipelines are independent. Callbacks run on the calling thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace arc2face {

// Every failure the library reports: bad input, missing or malformed files, cancelled jobs.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& m) : std::runtime_error(m) {}
};
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

struct PipelineOptions {
  std::string models_dir;  // FoivosPar/Arc2Face layout: arc2face/ (UNet), encoder/ (CLIP text encoder)
  std::string base_dir;    // SD1.5 layout: vae/, tokenizer/, scheduler/
  // Optional per-model folders (e.g. from arc2face::find_models in a Hugging Face cache); each one given
  // overrides the folder under models_dir / base_dir.
  std::string unet_dir, encoder_dir, vae_dir, tokenizer_dir, scheduler_dir;
  std::string backend = "cpu";  // "cpu" (oneDNN, fast), "ref" (scalar reference), "cuda" (when built with it)
  std::string dtype = "fp32";   // compute dtype of the weights: fp32 | bf16 (| fp16 on cuda)
  int threads = 0;              // 0: all cores
  std::string lcm_lora;         // optional: LCM-LoRA file (pytorch_lora_weights.safetensors), enables request.lcm
  std::string controlnet_dir;   // optional: ControlNetModel folder (config.json + weights), enables control images
};

struct Progress {
  std::string stage;  // "encode", "denoise", "decode"
  int step = 0;       // within the stage (denoise: 1..total)
  int total = 0;
};
// Return false to cancel the job (generate() then throws arc2face::Cancelled).
using ProgressFn = std::function<bool(const Progress&)>;

struct GenerateRequest {
  std::vector<float> id_embedding;  // [512], L2-normalised by the pipeline like the reference does
  // Optional, instead of id_embedding: one identity per image, num_images x 512 values (row i conditions image
  // i), so several identities share one UNet batch. With per_image_seeds, image i depends only on its row and
  // seed + i: the rows do not interact (checked bit-exact on the cpu backend; see docs/dataset.md).
  std::vector<float> id_embeddings;
  int num_images = 1;
  int steps = 25;
  float guidance = 3.0f;             // classifier-free guidance; <= 1 runs no unconditional batch
  std::string scheduler = "dpm++2m";  // dpm++2m | dpm++2m-karras | euler | euler-a | ddim | pndm | lms | unipc | lcm
  int64_t seed = -1;                 // < 0: random (the seed used is reported in each GeneratedImage)
  bool per_image_seeds = false;      // false: one torch generator draws [N,4,h,w] (diffusers' way);
                                     // true: image i uses its own generator seeded seed + i
  int width = 512, height = 512;     // multiples of 8
  std::vector<float> latents;        // optional initial latents [N,4,H/8,W/8] (diffusers' latents=)
  std::string dump_dir;              // optional: write every intermediate tensor as .npy
  // LCM-LoRA (needs PipelineOptions::lcm_lora): LCMScheduler with the LoRA applied to the UNet for this request
  // only. The official demo's defaults with it: 3 steps, guidance 1.0.
  bool lcm = false;
  // ControlNet pose condition (needs PipelineOptions::controlnet_dir): 8-bit RGB, resized to width x height.
  std::vector<uint8_t> control_rgb;
  int control_width = 0, control_height = 0;
  float control_scale = 1.0f;
};

struct GeneratedImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, row-major
  int64_t seed = 0;          // the generator seed this image came from
  int index = 0;             // position in the request
  std::string parameters;    // the generation parameters as text (also written into the PNG)
};

class Pipeline {
 public:
  static std::unique_ptr<Pipeline> create(const PipelineOptions& options);
  virtual ~Pipeline() = default;
  virtual std::vector<GeneratedImage> generate(const GenerateRequest& request, const ProgressFn& progress = {}) = 0;
  virtual const PipelineOptions& options() const = 0;
};

// PNG with the parameters in a tEXt "parameters" chunk (atomic: temp file + rename).
void write_png(const std::string& path, const GeneratedImage& image);
// The same PNG bytes, in memory (for HTTP responses).
std::vector<uint8_t> encode_png(const GeneratedImage& image);

// Reads a float .npy (f32/f64/f16) as float32 values; `shape` (optional) receives its shape.
std::vector<float> read_float_npy(const std::string& path, std::vector<int64_t>* shape = nullptr);

// Reads a float32 .npy of 512 values ([512] or [1,512]); throws Error for anything else or non-finite values.
std::vector<float> read_embedding_npy(const std::string& path);

}  // namespace arc2face
