// arc2face generate: ID embedding (or photos) -> PNG images.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>

#include "arc2face/arc2face.h"
#include "arc2face/eval.h"
#include "arc2face/face.h"
#include "arc2face/hub.h"
#include "commands.h"

namespace fs = std::filesystem;

namespace a2f_cli {
namespace {

struct GenerateArgs {
  std::string id_embedding, models, base, antelope, combine = "mean", out = "out", dump, latents, device = "cpu";
  std::string dtype = "fp32";
  std::vector<std::string> images;
  bool download = false;
  std::string scheduler = "dpm++2m";
  int n = 1, steps = 25, width = 512, height = 512, threads = 0;
  float guidance = 3.0f;
  int64_t seed = -1;
  bool per_image_seeds = false, quiet = false;
  // LCM-LoRA and ControlNet
  std::string lcm_lora, controlnet, control_image;
  float control_scale = 1.0f;
  bool steps_given = false, guidance_given = false, scheduler_given = false;
};

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : on_(enabled), tty_(isatty(fileno(stderr))) {}
  bool operator()(const arc2face::Progress& p) {
    if (!on_) return true;
    if (p.stage == "denoise") {
      const int width = 30, filled = p.total ? p.step * width / p.total : 0;
      if (tty_) {
        std::fprintf(stderr, "\rdenoise [%.*s%*s] %d/%d", filled, "##############################", width - filled,
                     "", p.step, p.total);
        if (p.step == p.total) std::fputc('\n', stderr);
      } else if (p.step == p.total || p.step % 5 == 0) {
        std::fprintf(stderr, "denoise %d/%d\n", p.step, p.total);
      }
    } else if (p.stage == "decode" && p.step == p.total) {
      std::fprintf(stderr, "decoded %d image(s)\n", p.total);
    }
    return true;
  }

 private:
  bool on_, tty_;
};

// LCM is on with --scheduler lcm, or with --lcm-lora FILE and no other --scheduler; the defaults then become 3
// steps and guidance 1.0 (the official demo's) unless --steps / --guidance are given. --control-image IMG runs
// the pose ControlNet. The LoRA file and the ControlNet folder are found like the other models (see hub.h).
bool lcm_on(const GenerateArgs& a) {
  if (!a.lcm_lora.empty() && a.scheduler_given && a.scheduler != "lcm")
    throw arc2face::Error("--lcm-lora is used with --scheduler lcm (got --scheduler " + a.scheduler + ")");
  if (!a.controlnet.empty() && a.control_image.empty())
    throw arc2face::Error("--controlnet needs a pose image: --control-image IMG");
  return a.scheduler == "lcm" || !a.lcm_lora.empty();
}

// `lcm`: lcm_on(a), decided (and the flags checked) before the models were looked up.
void apply_lcm_and_control(const GenerateArgs& a, bool lcm, const arc2face::ModelPaths& paths,
                           arc2face::PipelineOptions& o, arc2face::GenerateRequest& r) {
  if (lcm) {
    o.lcm_lora = paths.lcm_lora_file;
    r.lcm = true;
    r.scheduler = "lcm";
    if (!a.steps_given) r.steps = 3;
    if (!a.guidance_given) r.guidance = 1.0f;
  }
  if (a.control_image.empty()) return;
  o.controlnet_dir = paths.controlnet_dir;
  arc2face::RgbImage img = arc2face::read_image_rgb(a.control_image);
  r.control_rgb = std::move(img.rgb);
  r.control_width = img.width;
  r.control_height = img.height;
  r.control_scale = a.control_scale;
}

// The identity: a saved embedding, or the photos (detected, aligned and embedded as insightface does).
std::unique_ptr<arc2face::FaceAnalyzer> make_analyzer(const GenerateArgs& a, const arc2face::ModelPaths& paths) {
  arc2face::FaceAnalyzerOptions fo;
  fo.detector_path = paths.detector_onnx;
  fo.recognizer_path = paths.arcface_onnx;
  fo.backend = a.device == "ref" ? "ref" : "cpu";
  fo.threads = a.threads;
  return arc2face::FaceAnalyzer::create(fo);
}

std::vector<float> identity_of(const GenerateArgs& a, const arc2face::ModelPaths& paths) {
  if (!a.id_embedding.empty()) return arc2face::read_embedding_npy(a.id_embedding);
  auto analyzer = make_analyzer(a, paths);
  arc2face::IdentityOptions io;
  io.method = arc2face::parse_combine_method(a.combine);
  arc2face::Identity id = arc2face::identity_from_images(*analyzer, a.images, io);
  for (int i : id.dropped)
    std::fprintf(stderr, "note: %s left out of the identity (cosine %.3f to the other photos)\n",
                 a.images[i].c_str(), id.cosine_to_rest[i]);
  return id.embedding;
}

// --- ID-similarity scoring: --score prints each image's ID similarity and writes it into the PNG text;
// --best-of K generates K candidates per requested image (image i, candidate c: seed + i*K + c, each from its
// own generator) and keeps the most similar. Both need the face models (--antelope).
struct ScoreArgs {
  bool score = false;
  int best_of = 1;
  bool active() const { return score || best_of > 1; }
};

// r.seed is resolved here when random (and left at the base seed for the final message).
std::vector<arc2face::GeneratedImage> generate_scored(arc2face::Pipeline& pipe, arc2face::GenerateRequest& r,
                                                      const ScoreArgs& s,
                                                      const arc2face::ProgressFn& progress,
                                                      arc2face::FaceAnalyzer& face) {
  arc2face::FaceAnalyzer* fa = &face;
  const int k = s.best_of, n = r.num_images;
  if (r.seed < 0) r.seed = static_cast<int64_t>(std::random_device{}() & 0x7fffffffu);
  const int64_t base = r.seed;
  if (k > 1) {
    if (!r.latents.empty()) throw arc2face::Error("--best-of and --latents cannot be combined");
    r.num_images = k;
    r.per_image_seeds = true;
  }
  std::vector<arc2face::GeneratedImage> out;
  for (int i = 0; i < (k > 1 ? n : 1); ++i) {
    if (k > 1) r.seed = base + int64_t(i) * k;
    std::vector<arc2face::GeneratedImage> cand = pipe.generate(r, progress);
    std::vector<arc2face::ImageScore> sc;
    for (const auto& c : cand) sc.push_back(arc2face::score_image(*fa, r.id_embedding, c));
    for (size_t j = 0; j < cand.size(); ++j) {
      if (k > 1) std::fprintf(stderr, "image %d candidate %zu (seed %lld): ", i, j, (long long)cand[j].seed);
      else std::fprintf(stderr, "image %d (seed %lld): ", cand[j].index, (long long)cand[j].seed);
      if (sc[j].detected) std::fprintf(stderr, "ID similarity %.4f\n", sc[j].similarity);
      else std::fprintf(stderr, "no face found\n");
    }
    const std::vector<size_t> keep = k > 1 ? arc2face::best_of(sc, k) : std::vector<size_t>{};
    for (size_t j = 0; j < cand.size(); ++j) {
      if (k > 1 && j != keep[0]) continue;
      arc2face::GeneratedImage img = std::move(cand[j]);
      if (k > 1) {
        img.index = i;
        img.parameters += ", Best of: " + std::to_string(k);
      }
      img.parameters = arc2face::parameters_with_score(img.parameters, sc[j]);
      out.push_back(std::move(img));
    }
  }
  r.seed = base;
  return out;
}

void run_generate(const GenerateArgs& a, const ScoreArgs& s) {
  if (a.id_embedding.empty() == a.images.empty())
    throw arc2face::Error("give either --id-embedding EMB.npy or --image PHOTO (one or more)");
  arc2face::ModelSearchOptions search;
  search.models_dir = a.models;
  search.base_dir = a.base;
  search.antelope_dir = a.antelope;
  search.controlnet_dir = a.controlnet;
  search.lcm_lora_file = a.lcm_lora;
  arc2face::ModelJob job;
  job.from_photo = !a.images.empty() || s.active();  // scoring needs the face models too
  job.lcm = lcm_on(a);
  job.controlnet = !a.control_image.empty();
  const arc2face::ModelPaths paths =
      arc2face::require_models(search, job, a.download, arc2face::stderr_download_progress());
  arc2face::PipelineOptions o;
  o.unet_dir = paths.unet_dir;
  o.encoder_dir = paths.encoder_dir;
  o.vae_dir = paths.vae_dir;
  o.tokenizer_dir = paths.tokenizer_dir;
  o.scheduler_dir = paths.scheduler_dir;
  o.backend = a.device;
  o.dtype = a.dtype;
  o.threads = a.threads;
  arc2face::GenerateRequest r;
  r.id_embedding = identity_of(a, paths);
  r.num_images = a.n;
  r.steps = a.steps;
  r.guidance = a.guidance;
  r.scheduler = a.scheduler;
  r.seed = a.seed;
  r.per_image_seeds = a.per_image_seeds;
  r.width = a.width;
  r.height = a.height;
  r.dump_dir = a.dump;
  if (!a.latents.empty()) r.latents = arc2face::read_float_npy(a.latents);
  apply_lcm_and_control(a, job.lcm, paths, o, r);
  auto pipe = arc2face::Pipeline::create(o);
  ProgressBar bar(!a.quiet);
  const arc2face::ProgressFn progress = [&](const arc2face::Progress& p) { return bar(p); };
  std::unique_ptr<arc2face::FaceAnalyzer> scorer = s.active() ? make_analyzer(a, paths) : nullptr;
  auto images = s.active() ? generate_scored(*pipe, r, s, progress, *scorer) : pipe->generate(r, progress);
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) throw arc2face::Error("cannot create the output folder " + a.out + ": " + ec.message());
  for (const auto& img : images) {
    const std::string path = (fs::path(a.out) / ("arc2face_" + std::to_string(img.seed) + "_" +
                                                  std::to_string(img.index) + ".png")).string();
    arc2face::write_png(path, img);
    std::printf("%s\n", path.c_str());
  }
  const int64_t first_seed = s.best_of > 1 ? r.seed : images.at(0).seed;  // best-of: the base seed
  std::fprintf(stderr, "seed %lld (repeat with --seed %lld)\n", static_cast<long long>(first_seed),
               static_cast<long long>(first_seed));
}

}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand("generate", "generate images of a person from an ID embedding");
  c->add_option("--id-embedding", a->id_embedding, "float32 .npy [512] or [1,512] (L2-normalised here)")
      ->check(CLI::ExistingFile);
  c->add_option("--image", a->images, "photo(s) of the person (repeat for several; combined into one identity)");
  c->add_option("--combine", a->combine, "how several photos combine: mean | median | trimmed-mean");
  c->add_option("--antelope", a->antelope, "folder with scrfd_10g_bnkps.onnx (or det_10g.onnx) and arcface.onnx");
  c->add_option("--models", a->models,
                "folder with arc2face/ and encoder/ (default: Hugging Face cache, $ARC2FACE_MODELS, ./models)");
  c->add_option("--base", a->base, "SD1.5 folder with vae/, tokenizer/, scheduler/ (default: found like --models)");
  c->add_flag("--download", a->download, "download missing model files first (see arc2face download)");
  c->add_option("-n,--num-images", a->n, "images to generate")->check(CLI::Range(1, 64));
  CLI::Option* steps = c->add_option("--steps", a->steps, "denoising steps (default 25; 3 with lcm)")
                           ->check(CLI::Range(1, 1000));
  CLI::Option* guidance =
      c->add_option("--guidance", a->guidance,
                    "classifier-free guidance scale (<= 1: none; default 3.0, 1.0 with lcm)")
          ->check(CLI::Range(0.0, 100.0));
  CLI::Option* scheduler = c->add_option("--scheduler", a->scheduler,
                                         "dpm++2m | dpm++2m-karras | euler | euler-a | ddim | pndm | lms | "
                                         "unipc | lcm (lcm: with the LCM-LoRA)");
  c->add_option(
       "--lcm-lora", a->lcm_lora,
       "LCM-LoRA file (pytorch_lora_weights.safetensors of latent-consistency/lcm-lora-sdv1-5); implies "
       "--scheduler lcm (default: MODELS/lcm-lora-sdv1-5/ when --scheduler lcm)")
      ->check(CLI::ExistingFile);
  c->add_option("--controlnet", a->controlnet, "pose ControlNet folder (default: found like --models, MODELS/controlnet)")
      ->check(CLI::ExistingDirectory);
  c->add_option(
       "--control-image", a->control_image,
       "pose condition image (a normal-map rendering of a FLAME head; see README), resized to the output")
      ->check(CLI::ExistingFile);
  c->add_option("--control-scale", a->control_scale, "ControlNet conditioning scale")
      ->check(CLI::Range(0.0, 10.0));
  c->add_option("--seed", a->seed, "seed of the torch-compatible generator (default: random)");
  c->add_flag("--per-image-seeds", a->per_image_seeds, "image i uses its own generator seeded seed+i");
  c->add_option("--width", a->width, "image width (multiple of 8)");
  c->add_option("--height", a->height, "image height (multiple of 8)");
  c->add_option("--latents", a->latents, "float32 .npy [N,4,H/8,W/8]: initial latents (diffusers' latents=)")
      ->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "output folder for the PNGs");
  c->add_option("--dump", a->dump, "write every intermediate tensor as .npy into this folder");
  c->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::Range(0, 1024));
  c->add_option("--dtype", a->dtype, "compute dtype of the weights: fp32 | bf16");
  c->add_option("--device", a->device, "cpu | ref | cuda");
  c->add_flag("-q,--quiet", a->quiet, "no progress output");
  // ID similarity (see ScoreArgs)
  auto s = std::make_shared<ScoreArgs>();
  c->add_flag("--score", s->score, "print each image's ID similarity and write it into the PNG text");
  c->add_option("--best-of", s->best_of,
                "generate K candidates per image, keep the most similar (implies --score)")
      ->check(CLI::Range(1, 64));
  c->callback([a, s, steps, guidance, scheduler] {
    a->steps_given = steps->count() > 0;
    a->guidance_given = guidance->count() > 0;
    a->scheduler_given = scheduler->count() > 0;
    run_generate(*a, *s);
  });
}

}  // namespace a2f_cli
