// Synthetic face-recognition datasets at scale: N identities x K images, deterministic, resumable and sharded
// across machines with no coordinator. The full description (layout, seeds, manifest, sharding, throughput) is
// docs/dataset.md.
//
//   arc2face::DatasetRunOptions o;
//   o.out_dir = "ds";  o.spec.identities = 1000;  o.spec.per_identity = 20;  o.spec.seed = 0;
//   o.pipeline.models_dir = "models";  o.pipeline.base_dir = "models/stable-diffusion-v1-5";
//   o.face.antelope_dir = "models/antelopev2";                   // ID similarity of every image (optional)
//   o.shard = arc2face::resolve_shard("", 0);                     // --shard I/N, Slurm array or k8s index
//   arc2face::run_dataset_shard(o);                               // any number of processes, restartable
//   arc2face::DatasetMergeReport m = arc2face::merge_dataset("ds");  // once all shards are done: index.jsonl
//
// Determinism: image k of identity i (global number g = i*K + k) comes from its own torch generator seeded
// seed + g. Images are generated in fixed groups ("units") of `batch` consecutive global numbers, one UNet
// call per unit; unit u belongs to shard u mod N. A unit's composition never depends on the shard count, on
// restarts or on what is already on disk, so every image is byte-identical whichever process makes it.
//
// Thread safety: run_dataset_shard and merge_dataset may run in several processes on one folder at once (that
// is the point); within one process, call them from one thread at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "arc2face/arc2face.h"
#include "arc2face/eval.h"
#include "arc2face/face.h"

namespace arc2face {

// ---- Identities ------------------------------------------------------------------------------------------

// The default largest cosine similarity allowed between two sampled identities (see docs/dataset.md: about
// 6.8 standard deviations of the cosine of two independent random unit vectors in R^512, so it almost never
// rejects a uniform draw, but it guarantees that no two identities are near-duplicates).
constexpr double kDefaultIdentityMaxCosine = 0.3;

// `count` random unit vectors in R^512. Candidate j is torch.randn(512, generator=g) (float32, one draw after
// another from g = torch.Generator().manual_seed(seed)) divided by its norm (computed in double, rounded to
// float32); it is accepted when its cosine to every identity accepted so far is <= max_cosine. max_cosine >= 1
// accepts every candidate. Throws Error when max_cosine is so small that accepting `count` identities takes
// too many draws. Costs O(count^2 * 512) with the check.
std::vector<std::vector<float>> sample_identities(int count, int64_t seed,
                                                  double max_cosine = kDefaultIdentityMaxCosine);

struct SourceIdentity {
  std::string name;              // file stem, folder name or "row <i>"
  std::vector<float> embedding;  // [512], unit length
};
// Real identities: a float .npy of shape [N, 512] (one row each; [512] is one identity), or a folder where
// every image file at its top level is one identity and every sub-folder is one identity combined from its
// photos (identity_from_images, mean). Folders need `analyzer`. Sorted by name; throws Error naming every
// photo in which no face was found.
std::vector<SourceIdentity> load_identities(const std::string& path, FaceAnalyzer* analyzer);

// The largest cosine between two of the given identities, and which pair (for warnings about near-duplicates).
struct ClosestPair {
  double cosine = -1.0;
  int a = -1, b = -1;
};
ClosestPair closest_identities(const std::vector<std::vector<float>>& identities);

// ---- Shards -------------------------------------------------------------------------------------------------

struct Shard {
  int index = 0;  // 0 <= index < count
  int count = 1;
};
// "I/N" with 0 <= I < N.
Shard parse_shard(const std::string& text);
// The shard of this process: `shard_arg` ("I/N") when given; otherwise from the environment:
// Slurm job arrays (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, divided by SLURM_ARRAY_TASK_STEP, of
// SLURM_ARRAY_TASK_COUNT), or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of `count`, or of
// $ARC2FACE_SHARD_COUNT when count is 0). `count` > 0 with no index in the environment is an error; nothing
// at all gives 0/1.
Shard resolve_shard(const std::string& shard_arg, int count);

// ---- The dataset --------------------------------------------------------------------------------------------

// Everything that decides the bytes of the images. Stored in OUT/dataset.json by the first process; every
// later process (any shard, any restart) must ask for the same or it stops with an error naming the field.
struct DatasetSpec {
  int identities = 0;    // N (with identities_from: the first N of the source; 0 = all of them)
  int per_identity = 0;  // K
  int64_t seed = 0;      // identities (when sampled) and image seeds: image g = i*K + k uses seed + g
  std::string identities_from;  // "" = sampled; else a .npy or a folder of photos (see load_identities)
  double identity_max_cosine = kDefaultIdentityMaxCosine;  // sampling only
  int batch = 4;                 // images per UNet call (a unit); see the determinism note at the top
  int steps = 25;
  float guidance = 3.0f;
  std::string scheduler = "dpm++2m";
  int width = 512, height = 512;
  // Filtering (needs scoring): an image whose ID similarity is below this (or with no face) goes to
  // OUT/filtered/ instead of OUT/images/. NaN (default): no filtering.
  double min_similarity = std::numeric_limits<double>::quiet_NaN();
};

// The generator seed of image k of identity i.
int64_t dataset_image_seed(const DatasetSpec& spec, int identity, int index);
// Paths relative to the dataset folder: "images/000012/0003.png" (or "filtered/...").
std::string dataset_image_path(const DatasetSpec& spec, int identity, int index, bool kept = true);

struct DatasetProgress {
  int64_t done = 0;       // images of this shard that are complete (including those found on disk)
  int64_t total = 0;      // images of this shard
  int64_t generated = 0;  // made by this run
  double images_per_hour = 0.0;  // generation rate of this run
};

struct DatasetRunOptions {
  std::string out_dir;
  DatasetSpec spec;
  Shard shard;
  PipelineOptions pipeline;  // models, backend, dtype (part of the dataset's identity), threads
  // Scoring of every image (ID similarity, face detected) with these face models; empty antelope_dir and
  // detector/recognizer paths: no scoring (the manifest then says null). Filtering needs scoring.
  FaceAnalyzerOptions face;
  std::function<void(const DatasetProgress&)> progress;  // after every unit
};

struct DatasetRunReport {
  int64_t images = 0;     // images of this shard
  int64_t verified = 0;   // found complete on disk (skipped)
  int64_t recovered = 0;  // found on disk without a manifest line (line written)
  int64_t generated = 0;
  int64_t filtered = 0;   // of the generated, below min_similarity
  int64_t removed_tmp = 0;      // temporary files of an interrupted run removed
  int64_t removed_corrupt = 0;  // final files that failed verification, removed and regenerated
  int units_generated = 0;
  double seconds = 0.0;   // generation time of this run (model loading excluded)
};

// Makes every image of one shard that is not complete yet. Safe to run again at any time (kill -9 included):
// complete images are verified (the PNG decodes, has the size and the parameters text it should have) and
// skipped; temporary files are removed; a manifest line is written only after its PNG is in place.
DatasetRunReport run_dataset_shard(const DatasetRunOptions& options);

struct DatasetMergeReport {
  int64_t expected = 0;  // N * K
  int64_t complete = 0;  // verified images with their manifest line
  int64_t kept = 0, filtered = 0;
  std::vector<std::string> missing;   // "identity 12 image 3 (shard 1/3)", at most 100 listed
  int64_t missing_count = 0;
  std::vector<std::string> problems;  // stray files, leftovers, conflicting manifest lines
  ScoreSummary similarity;            // over all images that were scored (kept and filtered)
  bool scored = false;
  bool ok = false;                    // complete: index.jsonl and summary.json written
};

// Checks completeness across all shards (every (identity, image) exactly once, verified on disk unless
// `verify` is false) and, when complete, writes OUT/index.jsonl (one line per image, sorted by identity and
// image) and OUT/summary.json atomically. Never modifies images; safe to run while shards are still working
// (it then reports what is missing).
DatasetMergeReport merge_dataset(const std::string& out_dir, bool verify = true);

}  // namespace arc2face
