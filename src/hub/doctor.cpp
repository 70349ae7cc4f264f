#include "hub/doctor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "core/error.h"
#include "hub/fs_util.h"
#include "hub/hash.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The sha256 the hub gave for a file: the blob name in the HF cache, or the etag recorded by
// hf_hub_download(local_dir=...) in DIR/.cache/huggingface/download/<rel>.metadata.
std::pair<std::string, std::string> recorded_sha256(const fs::path& file) {
  std::error_code ec;
  fs::path real = fs::canonical(file, ec);
  if (!ec && real.parent_path().filename() == "blobs" && is_hex(real.filename().string(), 64))
    return {real.filename().string(), "HF cache blob name (sha256 from the hub)"};
  fs::path dir = file.parent_path();
  fs::path rel = file.filename();
  for (int up = 0; up < 4 && !dir.empty(); ++up) {
    fs::path meta = dir / ".cache" / "huggingface" / "download" / rel;
    meta += ".metadata";
    std::string s = read_text_file(meta, 4096);
    size_t a = s.find('\n');
    if (a != std::string::npos) {
      size_t b = s.find('\n', a + 1);
      std::string etag = s.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
      if (is_hex(etag, 64)) return {etag, "huggingface_hub download metadata (sha256 from the hub)"};
      return {};
    }
    if (dir == dir.parent_path()) break;
    rel = dir.filename() / rel;
    dir = dir.parent_path();
  }
  return {};
}

std::string task_of(const std::string& name) {
  if (name == kArcfaceFile || name == kGlintr100File || name.rfind("w600k", 0) == 0) return "recognition";
  if (name.rfind("scrfd", 0) == 0 || name.rfind("det_", 0) == 0) return "detection";
  if (name == "1k3d68.onnx" || name == "2d106det.onnx") return "landmark";
  if (name == "genderage.onnx") return "genderage";
  return "";
}

DoctorFile inspect_file(const fs::path& p, bool checksums, Role role, const std::string& detector_sha256) {
  DoctorFile f;
  std::error_code ec;
  f.path = p.string();
  f.size = fs::file_size(p, ec);
  if (ends_with(f.path, ".safetensors")) f.dtype = safetensors_dtype_summary(f.path);
  if (role == Role::Detector) {
    f.expected_sha256 = detector_sha256;
    f.expected_from = "insightface's published checksum";
  } else {
    auto [sha, from] = recorded_sha256(p);
    f.expected_sha256 = sha;
    f.expected_from = from;
  }
  if (checksums) {
    f.sha256 = sha256_file(p);
    if (!f.expected_sha256.empty()) f.check = f.sha256 == f.expected_sha256 ? "ok" : "MISMATCH";
  }
  return f;
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string(fallback);
}

}  // namespace

std::string safetensors_dtype_summary(const std::string& path) {
  // The io layer's parser validates the whole header (dtypes, shapes, offsets) without reading the data.
  try {
    auto file = MappedFile::open(path);
    SafetensorsHeader h = safetensors_parse_header(file->data(), file->size(), path);
    std::map<std::string, int> counts;
    for (const auto& e : h.entries) counts[safetensors_dtype_name(e.dtype)]++;
    std::string s;
    for (const auto& [dt, c] : counts) s += cat(s.empty() ? "" : ", ", dt, " (", c, " tensors)");
    return s.empty() ? "no tensors" : s;
  } catch (const Error& e) {
    return cat("INVALID: ", e.what());
  }
}

PythonFolderCheck check_python_folder(const std::string& dir) {
  PythonFolderCheck c;
  c.dir = dir;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (ends_with(n, ".onnx")) c.onnx.push_back(n);
  }
  std::sort(c.onnx.begin(), c.onnx.end());  // Python's sorted(glob(...)): code-point order
  bool unknown_before = false;
  for (const auto& n : c.onnx) {
    std::string t = task_of(n);
    if (t.empty()) unknown_before = true;
    if (t == "recognition") {
      c.recognizer = n;
      break;
    }
  }
  bool has_glint = std::count(c.onnx.begin(), c.onnx.end(), std::string(kGlintr100File)) > 0;
  bool has_detector = std::any_of(c.onnx.begin(), c.onnx.end(),
                                  [](const std::string& n) { return task_of(n) == "detection"; });
  fs::path nested = fs::path(dir) / "antelopev2";
  if (c.onnx.empty() || !has_detector) {
    if (fs::is_directory(nested, ec)) {
      c.level = "problem";
      c.message = "the models are in the nested folder " + nested.string() +
                  " (how GitHub's antelopev2.zip unpacks); insightface's FaceAnalysis(name='antelopev2') "
                  "only reads " +
                  dir + ": move the files up one level";
      return c;
    }
  }
  if (c.recognizer.empty()) {
    c.level = "warning";
    c.message = "no recognition model here; Arc2Face's Python demo needs arcface.onnx in this folder";
  } else if (c.recognizer != kArcfaceFile) {
    c.level = "problem";
    c.message = "a Python setup using this folder would compute ID embeddings with " + c.recognizer +
                " instead of Arc2Face's arcface.onnx (wrong identities): put arcface.onnx here and delete " +
                c.recognizer;
  } else if (has_glint) {
    c.level = "warning";
    c.message =
        "glintr100.onnx is still here: insightface keeps the first recognition model of sorted(*.onnx), "
        "so arcface.onnx wins today, but the Arc2Face README says to delete glintr100.onnx (if arcface.onnx "
        "goes missing, glintr100 would be used silently)";
  } else {
    c.level = "ok";
    c.message = "insightface would use arcface.onnx for recognition";
  }
  if (unknown_before && c.level == "ok") {
    c.level = "warning";
    c.message += "; some .onnx files sorted before it have unknown roles";
  }
  return c;
}

DoctorReport run_doctor(const DoctorOptions& opts, const SearchEnv& env, const HubConfig& cfg) {
  DoctorReport r;
  r.build_has_cuda = opts.build_has_cuda;
  Discovery d = discover_models(opts.search, env);
  for (const auto& st : d.roles) {
    const RoleSpec& spec = role_spec(st.role);
    DoctorRole dr;
    dr.role = st.role;
    dr.found = st.found;
    dr.path = st.path.string();
    dr.source = st.source;
    dr.partial = st.partial;
    dr.searched = st.searched;
    if (st.found) {
      if (spec.is_dir) {
        for (const char* f : spec.files)
          dr.files.push_back(inspect_file(st.path / f, opts.checksums, st.role, cfg.detector_sha256));
      } else {
        dr.files.push_back(inspect_file(st.path, opts.checksums, st.role, cfg.detector_sha256));
      }
    }
    r.roles.push_back(std::move(dr));
  }

  // Python setups: the antelopev2-like folders around the face models, and the demo's ./models/antelopev2.
  std::set<std::string> dirs;
  std::error_code ec;
  for (Role role : {Role::Detector, Role::Arcface}) {
    const RoleStatus& st = d.status(role);
    if (st.found && st.source.rfind("HF cache", 0) != 0) dirs.insert(st.path.parent_path().string());
  }
  for (const fs::path& root : {env.models_env, env.cwd_models})
    if (!root.empty() && fs::is_directory(root / "antelopev2", ec))
      dirs.insert((root / "antelopev2").string());
  for (const auto& dir : dirs) r.python_folders.push_back(check_python_folder(dir));

  r.cpu = probe_cpu();
  r.memory = probe_memory();
  r.gpu = probe_gpu();

  struct JobDef {
    const char* key;
    const char* title;
    Job job;
  };
  const JobDef defs[] = {{"from_embedding", "generate from an ID embedding", {}},
                         {"from_photo", "generate from a photo", {true, false, false}},
                         {"lcm", "LCM-LoRA (2-4 steps)", {false, true, false}},
                         {"controlnet", "pose ControlNet", {false, false, true}}};
  for (const auto& jd : defs) {
    JobVerdict v;
    v.key = jd.key;
    v.title = jd.title;
    auto missing = missing_for(d, jd.job);
    v.ready = missing.empty();
    for (const auto* m : missing) v.missing.push_back(role_spec(m->role).name);
    if (!v.ready) v.fetch_command = download_command_for(missing);
    r.jobs.push_back(std::move(v));
  }

  // Memory for the fp32 weights of a generation (UNet + encoder + VAE), as found on disk.
  uint64_t weights = 0;
  for (const auto& dr : r.roles) {
    if (dr.role != Role::Unet && dr.role != Role::Encoder && dr.role != Role::Vae) continue;
    for (const auto& f : dr.files)
      if (ends_with(f.path, ".safetensors") || ends_with(f.path, ".bin")) weights += f.size;
  }
  if (weights > 0 && r.memory.available > 0) {
    r.notes.push_back(cat("the UNet, encoder and VAE weights take ", human_bytes(weights),
                          " in fp32 (half in bf16); ", human_bytes(r.memory.available),
                          " of memory is available",
                          weights > r.memory.available ? ": NOT ENOUGH for fp32" : ""));
  }
  if (r.cpu.avx512_bf16) {
    r.notes.push_back("the CPU has AVX512_BF16: bf16 matrix products run natively");
  } else if (r.cpu.avx512f) {
    r.notes.push_back("the CPU has AVX-512 but not AVX512_BF16");
  } else if (r.cpu.avx2 && r.cpu.fma) {
    r.notes.push_back("the CPU has AVX2+FMA (no AVX-512): generation runs, slower than on AVX-512 machines");
  } else {
    r.notes.push_back("the CPU lacks AVX2/FMA: generation will be very slow");
  }
  if (!r.gpu.devices.empty() && !r.build_has_cuda) {
    r.notes.push_back(
        "an NVIDIA GPU is present but this build has no CUDA: rebuild with -DA2F_CUDA=ON to use it");
  } else if (r.gpu.devices.empty() && r.build_has_cuda) {
    r.notes.push_back("this build has CUDA but no usable GPU was found: it will run on the CPU");
  }

  r.environment = {{"HF_HOME", cfg.hf_home.string()},
                   {"HF_HUB_CACHE", cfg.hub_cache.string()},
                   {"HF_ENDPOINT", cfg.endpoint},
                   {"HF_HUB_OFFLINE", cfg.offline ? "1" : "0"},
                   {"HF_TOKEN", cfg.token.empty() ? "not set" : "set"},
                   {"ARC2FACE_MODELS", env_or("ARC2FACE_MODELS", "not set")},
                   {"ARC2FACE_CACHE", cfg.arc2face_cache.string()}};
  return r;
}

}  // namespace a2f::hub
