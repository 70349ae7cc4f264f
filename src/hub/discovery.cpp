#include "hub/discovery.h"

#include <cstdlib>

#include "core/error.h"
#include "hub/hf_cache.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

struct Candidate {
  std::string label;
  fs::path path;
};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows symlinks (HF cache snapshots)
}

// Folder-layout candidates of a role under a models root (the --dest layout / the Python demo's models/).
std::vector<fs::path> root_candidates(Role r, const fs::path& root) {
  switch (r) {
    case Role::Unet:
      return {root / "arc2face"};
    case Role::Encoder:
      return {root / "encoder"};
    case Role::ControlNet:
      return {root / "controlnet"};
    case Role::Vae:
      return {root / "stable-diffusion-v1-5" / "vae", root / "vae"};
    case Role::Tokenizer:
      return {root / "stable-diffusion-v1-5" / "tokenizer", root / "tokenizer"};
    case Role::Scheduler:
      return {root / "stable-diffusion-v1-5" / "scheduler", root / "scheduler"};
    case Role::Arcface:
      return {root / "antelopev2" / kArcfaceFile, root / kArcfaceFile};
    case Role::LcmLora:
      return {root / "lcm-lora-sdv1-5" / "pytorch_lora_weights.safetensors"};
    case Role::Detector: {
      std::vector<fs::path> out;
      // antelopev2/antelopev2/ is how GitHub's antelopev2.zip unpacks.
      for (const fs::path& d : {root / "antelopev2", root / "antelopev2" / "antelopev2", root})
        for (const char* f : {kDetectorFile, kDetectorAltFile}) out.push_back(d / f);
      return out;
    }
  }
  return {};
}

std::vector<fs::path> antelope_candidates(Role r, const fs::path& dir) {
  std::vector<fs::path> out;
  for (const fs::path& d : {dir, dir / "antelopev2"}) {
    if (r == Role::Arcface) {
      out.push_back(d / kArcfaceFile);
    } else {
      for (const char* f : {kDetectorFile, kDetectorAltFile}) out.push_back(d / f);
    }
  }
  return out;
}

std::vector<fs::path> base_candidates(Role r, const fs::path& base) {
  return {base / role_spec(r).repo_dir};
}

void add(std::vector<Candidate>& v, const std::string& label, const std::vector<fs::path>& paths) {
  for (const auto& p : paths) v.push_back({label, p});
}

// HF cache candidates: each snapshot of each repository that may hold the role.
void add_hf_cache(std::vector<Candidate>& v, const RoleSpec& spec, const SearchEnv& env) {
  if (env.hub_cache.empty()) return;
  std::vector<std::string> repos;
  if (spec.role == Role::Detector) {
    repos = {kAntelopeMirrorRepo};
  } else if (std::string(spec.repo) == kSd15Repo) {
    repos = {kSd15Repo, kSd15LegacyRepo};
  } else {
    repos = {spec.repo};
  }
  for (const auto& repo : repos) {
    auto snaps = cached_snapshots(env.hub_cache, repo);
    // Not cached: still named in "looked in" (the path does not exist, so it never matches).
    if (snaps.empty())
      v.push_back({"HF cache (" + repo + ")", env.hub_cache / repo_folder_name(repo) / "snapshots"});
    for (const auto& snap : snaps) {
      fs::path p = spec.repo_dir[0] ? snap / spec.repo_dir : snap;
      if (!spec.is_dir) p /= spec.files[0];
      v.push_back({"HF cache (" + repo + ")", p});
    }
  }
}

std::vector<Candidate> candidates(const RoleSpec& spec, const SearchOptions& o, const SearchEnv& env,
                                  bool& explicit_only) {
  std::vector<Candidate> v;
  Role r = spec.role;
  explicit_only = false;
  switch (r) {
    case Role::Unet:
    case Role::Encoder:
      if (!o.models_dir.empty()) {
        add(v, "--models", root_candidates(r, o.models_dir));
        explicit_only = true;
      }
      break;
    case Role::ControlNet:
      if (!o.controlnet_dir.empty()) {
        add(v, "--controlnet", {o.controlnet_dir});
        explicit_only = true;
      } else if (!o.models_dir.empty()) {
        add(v, "--models", root_candidates(r, o.models_dir));
      }
      break;
    case Role::LcmLora:
      if (!o.lcm_lora_file.empty()) {
        add(v, "--lcm-lora", {o.lcm_lora_file});
        explicit_only = true;
      } else if (!o.models_dir.empty()) {
        add(v, "--models", root_candidates(r, o.models_dir));
      }
      break;
    case Role::Vae:
    case Role::Tokenizer:
    case Role::Scheduler:
      if (!o.base_dir.empty()) {
        add(v, "--base", base_candidates(r, o.base_dir));
        explicit_only = true;
      } else if (!o.models_dir.empty()) {
        add(v, "--models", root_candidates(r, o.models_dir));
      }
      break;
    case Role::Detector:
    case Role::Arcface:
      if (!o.antelope_dir.empty()) {
        add(v, "--antelope", antelope_candidates(r, o.antelope_dir));
        explicit_only = true;
      }
      if (!o.models_dir.empty()) {
        add(v, "--models", root_candidates(r, o.models_dir));
        if (r == Role::Arcface) explicit_only = true;  // arcface.onnx must come with the models given
      }
      break;
  }
  if (explicit_only) return v;
  add_hf_cache(v, spec, env);
  if (r == Role::Detector && !env.arc2face_cache.empty())
    add(v, "arc2face cache", {env.arc2face_cache / "antelopev2" / kDetectorFile});
  if (!env.models_env.empty()) add(v, "$ARC2FACE_MODELS", root_candidates(r, env.models_env));
  if (!env.cwd_models.empty()) add(v, "./models", root_candidates(r, env.cwd_models));
  if (r == Role::Detector && !env.insightface_root.empty()) {
    fs::path m = env.insightface_root / "models";
    add(v, "insightface", antelope_candidates(r, m / "antelopev2"));
    add(v, "insightface", {m / "buffalo_l" / kDetectorAltFile});
  }
  return v;
}

}  // namespace

fs::path& ModelPaths::operator[](Role r) {
  switch (r) {
    case Role::Unet:
      return unet_dir;
    case Role::Encoder:
      return encoder_dir;
    case Role::Vae:
      return vae_dir;
    case Role::Tokenizer:
      return tokenizer_dir;
    case Role::Scheduler:
      return scheduler_dir;
    case Role::Detector:
      return detector_onnx;
    case Role::Arcface:
      return arcface_onnx;
    case Role::ControlNet:
      return controlnet_dir;
    case Role::LcmLora:
      return lcm_lora_file;
  }
  fail("internal: unknown model role");
}

const fs::path& ModelPaths::operator[](Role r) const {
  return const_cast<ModelPaths&>(*this)[r];
}

SearchEnv SearchEnv::from_env(const HubConfig& cfg) {
  SearchEnv e;
  e.hub_cache = cfg.hub_cache;
  e.arc2face_cache = cfg.arc2face_cache;
  const char* m = std::getenv("ARC2FACE_MODELS");
  if (m && *m) e.models_env = m;
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  if (!ec) e.cwd_models = cwd / "models";
  const char* home = std::getenv("HOME");
  if (home && *home) e.insightface_root = fs::path(home) / ".insightface";
  return e;
}

const RoleStatus& Discovery::status(Role r) const {
  for (const auto& s : roles)
    if (s.role == r) return s;
  fail("internal: role not discovered");
}

Discovery discover_models(const SearchOptions& opts, const SearchEnv& env) {
  Discovery d;
  for (const auto& spec : model_roles()) {
    RoleStatus st;
    st.role = spec.role;
    bool explicit_only = false;
    for (const auto& c : candidates(spec, opts, env, explicit_only)) {
      st.searched.push_back(c.label + ": " + c.path.string());
      if (!spec.is_dir) {
        if (is_file(c.path)) {
          st.found = true;
          st.path = c.path;
          st.source = c.label;
          break;
        }
        continue;
      }
      std::vector<std::string> missing;
      for (const char* f : spec.files)
        if (!is_file(c.path / f)) missing.push_back((c.path / f).string());
      if (missing.empty()) {
        st.found = true;
        st.path = c.path;
        st.source = c.label;
        break;
      }
      if (missing.size() < spec.files.size() && st.partial.empty()) st.partial = missing;
    }
    if (st.found) {
      st.partial.clear();
      d.paths[spec.role] = st.path;
    }
    d.roles.push_back(std::move(st));
  }
  return d;
}

std::vector<Role> roles_for(const Job& job) {
  std::vector<Role> r = {Role::Unet, Role::Encoder, Role::Vae, Role::Tokenizer, Role::Scheduler};
  if (job.from_photo) {
    r.push_back(Role::Detector);
    r.push_back(Role::Arcface);
  }
  if (job.controlnet) r.push_back(Role::ControlNet);
  if (job.lcm) r.push_back(Role::LcmLora);
  return r;
}

std::vector<const RoleStatus*> missing_for(const Discovery& d, const Job& job) {
  std::vector<const RoleStatus*> out;
  for (Role r : roles_for(job)) {
    const RoleStatus& s = d.status(r);
    if (!s.found) out.push_back(&s);
  }
  return out;
}

std::string job_description(const Job& job) {
  std::string s = job.from_photo ? "generating from a photo" : "generating from an ID embedding";
  if (job.lcm) s += " with LCM-LoRA";
  if (job.controlnet) s += " with the pose ControlNet";
  return s;
}

std::string download_command_for(const std::vector<const RoleStatus*>& missing) {
  bool controlnet = false, lcm = false;
  for (const auto* s : missing) {
    controlnet = controlnet || s->role == Role::ControlNet;
    lcm = lcm || s->role == Role::LcmLora;
  }
  std::string cmd = "arc2face download";
  if (controlnet) cmd += component_download_flag(Component::ControlNet);
  if (lcm) cmd += component_download_flag(Component::Lcm);
  return cmd;
}

std::string missing_message(const std::vector<const RoleStatus*>& missing, const Job& job) {
  if (missing.empty()) return {};
  std::string s = cat("model files needed for ", job_description(job), " are missing:\n");
  for (const auto* st : missing) {
    const RoleSpec& spec = role_spec(st->role);
    std::string files;
    for (const char* f : spec.files) files += (files.empty() ? "" : ", ") + std::string(f);
    std::string from = spec.repo[0] ? cat(spec.repo, " ", spec.repo_dir, spec.repo_dir[0] ? "/" : "")
                                    : std::string("insightface antelopev2: ");
    s += cat("  - ", spec.name, " (", spec.title, "): ", from, spec.is_dir ? "{" : "", files,
             spec.is_dir ? "}" : "", "\n");
    for (const auto& p : st->partial) s += cat("      incomplete folder, missing ", p, "\n");
    s += "      looked in: ";
    std::string last;
    bool first = true;
    for (const auto& where : st->searched) {
      std::string label = where.substr(0, where.find(':'));
      if (label == last) continue;  // one mention per source
      s += cat(first ? "" : "; ", where);
      last = label;
      first = false;
    }
    if (st->searched.empty()) s += "(nowhere: no search location is set)";
    s += "\n";
  }
  s += cat("Fetch them with:  ", download_command_for(missing),
           "   (into the Hugging Face cache; --dest DIR for a plain folder),\nor run again with --download.");
  return s;
}

}  // namespace a2f::hub
