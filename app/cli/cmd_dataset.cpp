// `arc2face dataset --identities N --per-identity K --out DIR [--seed S] [--shard I/N]`: a synthetic face
// dataset, one folder per identity, resumable and sharded with no coordinator; `arc2face dataset merge --out
// DIR` checks completeness across shards and writes the final index. See docs/dataset.md.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "arc2face/dataset.h"
#include "commands.h"

namespace fs = std::filesystem;

namespace a2f_cli {

namespace {

struct DatasetArgs {
  int identities = 0, per_identity = 0;
  std::string out, identities_from, shard;
  int shard_count = 0;
  int64_t seed = 0;
  double identity_max_cosine = arc2face::kDefaultIdentityMaxCosine;
  double min_similarity = std::numeric_limits<double>::quiet_NaN();
  int batch = 4, steps = 25, width = 512, height = 512, threads = 0;
  float guidance = 3.0f;
  std::string scheduler = "dpm++2m", dtype = "fp32", device = "cpu";
  std::string models, base, antelope;
  bool no_score = false, quiet = false;
};

struct MergeArgs {
  std::string out;
  bool no_verify = false, json = false;
};

std::string models_dir(const DatasetArgs& a) {
  if (!a.models.empty()) return a.models;
  if (const char* e = std::getenv("ARC2FACE_MODELS"); e && *e) return e;
  return "models";
}

void run_dataset(const DatasetArgs& a) {
  if (a.out.empty()) throw arc2face::Error("--out DIR is required");
  arc2face::DatasetRunOptions o;
  o.out_dir = a.out;
  arc2face::DatasetSpec& s = o.spec;
  s.identities = a.identities;
  s.per_identity = a.per_identity;
  s.seed = a.seed;
  s.identities_from = a.identities_from;
  s.identity_max_cosine = a.identity_max_cosine;
  s.batch = a.batch;
  s.steps = a.steps;
  s.guidance = a.guidance;
  s.scheduler = a.scheduler;
  s.width = a.width;
  s.height = a.height;
  s.min_similarity = a.min_similarity;
  if (s.per_identity < 1) throw arc2face::Error("--per-identity K is required (images per identity)");
  o.shard = arc2face::resolve_shard(a.shard, a.shard_count);
  o.pipeline.models_dir = models_dir(a);
  o.pipeline.base_dir = a.base.empty() ? (fs::path(o.pipeline.models_dir) / "stable-diffusion-v1-5").string() : a.base;
  o.pipeline.backend = a.device;
  o.pipeline.dtype = a.dtype;
  o.pipeline.threads = a.threads;
  if (!a.no_score) {
    std::string dir = a.antelope;
    if (dir.empty()) {
      const fs::path d = fs::path(o.pipeline.models_dir) / "antelopev2";
      std::error_code ec;
      if (fs::is_directory(d, ec)) dir = d.string();
    }
    if (dir.empty()) {
      std::fprintf(stderr, "note: no face models (--antelope DIR): images are not scored\n");
    }
    o.face.antelope_dir = dir;
    o.face.threads = a.threads;
  } else if (!std::isnan(a.min_similarity)) {
    throw arc2face::Error("--min-similarity needs scoring; drop --no-score");
  }
  const std::string tag = std::to_string(o.shard.index) + "/" + std::to_string(o.shard.count);
  if (!a.quiet) {
    o.progress = [tag](const arc2face::DatasetProgress& p) {
      std::fprintf(stderr, "shard %s: %lld/%lld images (%lld made now, %.0f images/hour)\n", tag.c_str(),
                   (long long)p.done, (long long)p.total, (long long)p.generated, p.images_per_hour);
    };
  }
  const arc2face::DatasetRunReport r = arc2face::run_dataset_shard(o);
  std::printf("shard %s: %lld images, %lld already complete, %lld made (%lld filtered), %lld recovered, %lld "
              "temporary and %lld damaged files removed, %.1f s generating",
              tag.c_str(), (long long)r.images, (long long)r.verified, (long long)r.generated,
              (long long)r.filtered, (long long)r.recovered, (long long)r.removed_tmp, (long long)r.removed_corrupt,
              r.seconds);
  if (r.generated > 0 && r.seconds > 0) std::printf(" (%.0f images/hour)", 3600.0 * double(r.generated) / r.seconds);
  std::printf("\n");
}

void run_merge(const MergeArgs& a) {
  const arc2face::DatasetMergeReport r = arc2face::merge_dataset(a.out, !a.no_verify);
  if (a.json) {
    nlohmann::ordered_json j;
    j["ok"] = r.ok;
    j["expected"] = r.expected;
    j["complete"] = r.complete;
    j["kept"] = r.kept;
    j["filtered"] = r.filtered;
    j["missing_count"] = r.missing_count;
    j["missing"] = r.missing;
    j["problems"] = r.problems;
    if (r.scored) {
      j["detected"] = r.similarity.detected;
      j["detection_rate"] = r.similarity.detection_rate;
      if (r.similarity.detected > 0) j["mean_similarity"] = r.similarity.mean;
    }
    std::printf("%s\n", j.dump(1).c_str());
  } else {
    for (const auto& p : r.problems) std::fprintf(stderr, "problem: %s\n", p.c_str());
    for (const auto& m : r.missing) std::fprintf(stderr, "missing: %s\n", m.c_str());
    if (r.missing_count > int64_t(r.missing.size()))
      std::fprintf(stderr, "missing: ... %lld more\n", (long long)(r.missing_count - int64_t(r.missing.size())));
    std::printf("%lld of %lld images complete (%lld kept, %lld filtered)\n", (long long)r.complete,
                (long long)r.expected, (long long)r.kept, (long long)r.filtered);
    if (r.scored && r.similarity.images > 0) {
      std::printf("face detected in %d of %d (%.1f%%)", r.similarity.detected, r.similarity.readable,
                  100.0 * r.similarity.detection_rate);
      if (r.similarity.detected > 0)
        std::printf("; ID similarity mean %.4f, std %.4f, median %.4f", r.similarity.mean, r.similarity.std,
                    r.similarity.median);
      std::printf("\n");
    }
    if (r.ok) std::printf("wrote %s and %s\n", (fs::path(a.out) / "index.jsonl").c_str(),
                          (fs::path(a.out) / "summary.json").c_str());
  }
  if (!r.ok) {
    throw arc2face::Error("the dataset is not complete: " + std::to_string(r.missing_count) +
                          " image(s) missing; rerun the shards named above, then merge again");
  }
}

}  // namespace

void register_dataset(CLI::App& app) {
  auto* c = app.add_subcommand("dataset", "make a synthetic face dataset: N identities x K images (resumable, sharded)");
  auto a = std::make_shared<DatasetArgs>();
  c->add_option("--identities", a->identities, "number of identities N (sampled; with --identities-from: first N)");
  c->add_option("--per-identity", a->per_identity, "images per identity K");
  c->add_option("--out,-o", a->out, "dataset folder");
  c->add_option("--seed", a->seed, "dataset seed: identities and image seeds (image g = i*K+k uses seed+g)")
      ->capture_default_str();
  c->add_option("--shard", a->shard, "I/N: this process makes shard I of N (default: from SLURM_ARRAY_TASK_ID / "
                "JOB_COMPLETION_INDEX, else 0/1)");
  c->add_option("--shard-count", a->shard_count, "N, with the index from the environment (Kubernetes Indexed Job)");
  c->add_option("--identities-from", a->identities_from,
                "real identities: a .npy [N,512], or a folder (one identity per photo / per sub-folder of photos)");
  c->add_option("--identity-max-cosine", a->identity_max_cosine,
                "sampled identities: largest cosine allowed between two of them (>= 1: no check)")
      ->capture_default_str();
  c->add_option("--min-similarity", a->min_similarity,
                "images with a lower ID similarity (or no face) go to DIR/filtered/ instead of DIR/images/");
  c->add_option("--batch", a->batch, "images per UNet call (part of the dataset's settings)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  c->add_option("--steps", a->steps, "denoising steps")->capture_default_str();
  c->add_option("--guidance", a->guidance, "classifier-free guidance")->capture_default_str();
  c->add_option("--scheduler", a->scheduler, "dpm++2m | dpm++2m-karras | euler | euler-a | ddim | pndm | lms | unipc")
      ->capture_default_str();
  c->add_option("--width", a->width, "image width")->capture_default_str();
  c->add_option("--height", a->height, "image height")->capture_default_str();
  c->add_option("--models", a->models, "folder with arc2face/ and encoder/ (default: $ARC2FACE_MODELS or ./models)");
  c->add_option("--base", a->base, "SD1.5 folder with vae/, tokenizer/, scheduler/ (default: MODELS/stable-diffusion-v1-5)");
  c->add_option("--antelope", a->antelope, "face models for scoring (default: MODELS/antelopev2 when present)");
  c->add_flag("--no-score", a->no_score, "do not detect faces / compute ID similarity");
  c->add_option("--dtype", a->dtype, "fp32 | bf16")->capture_default_str();
  c->add_option("--device", a->device, "cpu | ref | cuda")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0: all cores)")->capture_default_str();
  c->add_flag("-q,--quiet", a->quiet, "no progress output");

  auto* m = c->add_subcommand("merge", "check that every image of every shard is complete; write index.jsonl");
  auto ma = std::make_shared<MergeArgs>();
  m->add_option("--out,-o", ma->out, "dataset folder")->required();
  m->add_flag("--no-verify", ma->no_verify, "do not decode every PNG (only check that the files exist)");
  m->add_flag("--json", ma->json, "print the report as JSON");
  m->callback([ma] { run_merge(*ma); });
  c->callback([a, m] {
    if (!m->parsed()) run_dataset(*a);
  });
}

}  // namespace a2f_cli
