// arc2face.cpp public API: getting the model files.
//
//   arc2face::ModelJob job;  job.from_photo = true;
//   arc2face::ModelDiscovery d = arc2face::find_models({}, job);        // flags > HF cache >
//   $ARC2FACE_MODELS >
//   ./models if (!d.missing.empty()) { fputs(d.message.c_str(), stderr); return 1; }   // names files +
//   `arc2face download` load(d.paths.unet_dir, d.paths.encoder_dir, ...);
//
//   arc2face::ModelDownloadOptions o;  o.progress = arc2face::stderr_download_progress();
//   arc2face::download_models(o);   // into the Hugging Face cache ($HF_HOME/hub), shared with the Python
//   stack
//
// Environment honoured (as huggingface_hub reads it): HF_ENDPOINT, HF_TOKEN (or HF_HOME/token), HF_HOME,
// HF_HUB_CACHE, HF_HUB_OFFLINE=1 (never touch the network); plus ARC2FACE_MODELS (a models folder),
// ARC2FACE_CACHE (where the face detector taken out of insightface's zip is kept, default ~/.cache/arc2face)
// and ARC2FACE_ANTELOPEV2_URL (a mirror of insightface's antelopev2.zip). See docs/download.md.
//
// Errors are thrown as arc2face::Error with a message meant for the user.
// Thread-safety: every function may be called from any thread; downloads into the same place by several
// processes (or by Python's huggingface_hub) are serialised by lock files.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arc2face/arc2face.h"

namespace arc2face {

// Resolved locations, one per role; "" when not found.
struct ModelPaths {
  std::string unet_dir;        // Arc2Face UNet: config.json + diffusion_pytorch_model.safetensors
  std::string encoder_dir;     // Arc2Face CLIP text encoder: config.json + pytorch_model.bin
  std::string vae_dir;         // SD1.5 vae/
  std::string tokenizer_dir;   // SD1.5 tokenizer/ (vocab.json, merges.txt, ...)
  std::string scheduler_dir;   // SD1.5 scheduler/ (scheduler_config.json)
  std::string detector_onnx;   // scrfd_10g_bnkps.onnx (or the identical det_10g.onnx)
  std::string arcface_onnx;    // Arc2Face's arcface.onnx
  std::string controlnet_dir;  // Arc2Face pose ControlNet
  std::string lcm_lora_file;   // LCM-LoRA pytorch_lora_weights.safetensors
};

// Explicit locations (command-line flags); empty = search.
struct ModelSearchOptions {
  std::string models_dir;      // --models: arc2face/, encoder/, arcface.onnx or antelopev2/arcface.onnx, ...
  std::string base_dir;        // --base: an SD1.5 folder with vae/, tokenizer/, scheduler/
  std::string antelope_dir;    // --antelope: scrfd_10g_bnkps.onnx + arcface.onnx
  std::string controlnet_dir;  // --controlnet
  std::string lcm_lora_file;   // --lcm-lora
};

// What the run will do; every generation needs unet, encoder, vae, tokenizer, scheduler.
struct ModelJob {
  bool from_photo = false;  // + detector + arcface
  bool lcm = false;         // + LCM-LoRA
  bool controlnet = false;  // + ControlNet
};

struct MissingModel {
  std::string role;                   // "unet", "detector", ...
  std::string title;                  // "Arc2Face UNet (UNet2DConditionModel)"
  std::vector<std::string> files;     // the files the role needs
  std::vector<std::string> searched;  // "source: path", in search order
};

struct ModelDiscovery {
  ModelPaths paths;
  std::vector<MissingModel> missing;  // for the job asked
  std::string message;                // "" when nothing is missing; else names each file and the command
  std::string download_command;       // e.g. "arc2face download --lcm"
};

ModelDiscovery find_models(const ModelSearchOptions& search, const ModelJob& job);

struct DownloadProgress {
  std::string file;    // path in its repository
  uint64_t done = 0;   // bytes on disk
  uint64_t total = 0;  // 0 when unknown
  int index = 0;       // 1-based
  int count = 0;
  bool finished = false;
};
using DownloadProgressCallback = std::function<void(const DownloadProgress&)>;

// Progress on stderr: a bar on a terminal, a line every 10 s otherwise.
DownloadProgressCallback stderr_download_progress();

struct ModelDownloadOptions {
  std::string dest_dir;  // "" = the Hugging Face cache layout; else a plain folder (see docs/download.md)
  bool core = true;      // Arc2Face UNet + encoder
  bool base = true;      // SD1.5 vae/, tokenizer/, scheduler/
  bool face = true;      // arcface.onnx + the SCRFD detector
  bool controlnet = false;
  bool lcm = false;
  bool detector_from_hf_mirror = false;  // DIAMONIK7777/antelopev2 instead of insightface's GitHub release
  bool dry_run = false;                  // ask the hub and report, download nothing
  DownloadProgressCallback progress;
  std::function<void(const std::string&)> note;  // plan and per-file lines
};

struct ModelDownloadResult {
  std::string root;  // the cache or dest folder
  int files = 0;
  int downloaded = 0;  // files fetched in this run (others were present)
  uint64_t bytes_received = 0;
  uint64_t bytes_planned = 0;      // known bytes missing before the run
  std::vector<std::string> paths;  // every file, in manifest order
};

// Fetches the files; resumable, verified, atomic. Throws with a clear message on failure (401 -> set
// HF_TOKEN, 404 -> which file, checksum mismatch, no disk space, offline mode with files missing).
ModelDownloadResult download_models(const ModelDownloadOptions& options);

// For `arc2face generate`: the paths when everything the job needs is found; otherwise, with download=true,
// fetches the missing components into the Hugging Face cache and looks again; else throws the message of
// find_models (which names each missing file and the `arc2face download` command).
ModelPaths require_models(const ModelSearchOptions& search, const ModelJob& job, bool download,
                          const DownloadProgressCallback& progress = {});

// `arc2face doctor`: found files, checksums (when asked: hashing reads every byte), the glintr100 check,
// CPU/GPU, and what can run. Text or JSON.
std::string model_doctor_report(const ModelSearchOptions& search, bool checksums, bool json);

}  // namespace arc2face
