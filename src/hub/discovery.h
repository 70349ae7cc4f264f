// Finding the model files already on disk, so that users who ran the Python demo download nothing.
// Each role (see manifest.h) is looked up, first complete location wins:
//   1. explicit flags (--models DIR, --base DIR, --antelope DIR, --controlnet DIR, --lcm-lora FILE);
//      a role-specific flag is final (no fallback), --models is final for unet/encoder;
//   2. the Hugging Face cache ($HF_HUB_CACHE or $HF_HOME/hub): models--OWNER--NAME/snapshots/REV/...;
//      for the detector also the antelopev2 mirror repository and arc2face's own cache;
//   3. $ARC2FACE_MODELS, 4. ./models  (folder layouts: the `arc2face download --dest` layout, which is the
//      Arc2Face Python demo's models/ layout plus stable-diffusion-v1-5/ and lcm-lora-sdv1-5/);
//   5. for the detector, insightface's own ~/.insightface/models/{antelopev2,buffalo_l}.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "hub/hub_config.h"
#include "hub/manifest.h"

namespace a2f::hub {

struct ModelPaths {
  std::filesystem::path unet_dir, encoder_dir, vae_dir, tokenizer_dir, scheduler_dir;
  std::filesystem::path detector_onnx, arcface_onnx, controlnet_dir, lcm_lora_file;
  std::filesystem::path& operator[](Role r);
  const std::filesystem::path& operator[](Role r) const;
};

struct SearchOptions {
  std::filesystem::path models_dir;      // --models: arc2face/, encoder/, arcface.onnx (or antelopev2/...)
  std::filesystem::path base_dir;        // --base: SD1.5's vae/, tokenizer/, scheduler/
  std::filesystem::path antelope_dir;    // --antelope: scrfd_10g_bnkps.onnx + arcface.onnx
  std::filesystem::path controlnet_dir;  // --controlnet
  std::filesystem::path lcm_lora_file;   // --lcm-lora
};

// Where to look besides the flags; from_env reads HF_HOME/HF_HUB_CACHE (via the config), ARC2FACE_MODELS,
// the current folder and HOME.
struct SearchEnv {
  std::filesystem::path hub_cache;
  std::filesystem::path arc2face_cache;
  std::filesystem::path models_env;        // $ARC2FACE_MODELS (empty when unset)
  std::filesystem::path cwd_models;        // ./models, absolute
  std::filesystem::path insightface_root;  // ~/.insightface
  static SearchEnv from_env(const HubConfig& cfg);
};

struct RoleStatus {
  Role role;
  bool found = false;
  std::filesystem::path path;         // the folder or the file
  std::string source;                 // "--models", "HF cache", "$ARC2FACE_MODELS", "./models", ...
  std::vector<std::string> searched;  // "label: path" of every place looked at, in order
  std::vector<std::string> partial;   // files missing in a folder that holds some of the role's files
};

struct Discovery {
  ModelPaths paths;
  std::vector<RoleStatus> roles;  // in manifest order
  const RoleStatus& status(Role r) const;
};

Discovery discover_models(const SearchOptions& opts, const SearchEnv& env);

// What a job needs: every generation needs unet, encoder, vae, tokenizer, scheduler.
struct Job {
  bool from_photo = false;  // + detector, arcface
  bool lcm = false;         // + lcm_lora
  bool controlnet = false;  // + controlnet
};
std::vector<Role> roles_for(const Job& job);
std::vector<const RoleStatus*> missing_for(const Discovery& d, const Job& job);
// A message naming each missing file, where it was looked for, and the command that fetches it.
std::string missing_message(const std::vector<const RoleStatus*>& missing, const Job& job);
std::string job_description(const Job& job);
// The `arc2face download ...` command that fetches the given roles.
std::string download_command_for(const std::vector<const RoleStatus*>& missing);

}  // namespace a2f::hub
