// The model files arc2face.cpp uses: where each comes from, where it goes in the `--dest DIR` layout, and
// what is known about it. This is data; the code that discovers or downloads files reads it from here only.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace a2f::hub {

// A role is one thing the pipeline loads: a diffusers/transformers folder (config + weights) or one file.
enum class Role { Unet, Encoder, Vae, Tokenizer, Scheduler, Detector, Arcface, ControlNet, LcmLora };
// What `arc2face download` fetches by default (core, base, face) or when asked (controlnet, lcm).
enum class Component { Core, Base, Face, ControlNet, Lcm };

struct RoleSpec {
  Role role;
  const char* name;   // "unet" (also the JSON key)
  const char* title;  // "Arc2Face UNet"
  Component component;
  bool is_dir;           // a folder holding `files`, or a single file (files[0])
  const char* repo;      // Hugging Face repository; "" for the detector (insightface release)
  const char* repo_dir;  // folder in the repository ("" = root)
  const char* dest_dir;  // folder in the `--dest DIR` layout
  std::vector<const char*> files;
};

inline constexpr const char* kArc2FaceRepo = "FoivosPar/Arc2Face";
inline constexpr const char* kSd15Repo = "stable-diffusion-v1-5/stable-diffusion-v1-5";
// The former home of SD1.5 (removed from the hub in 2024); Python users may still have it in their cache.
inline constexpr const char* kSd15LegacyRepo = "runwayml/stable-diffusion-v1-5";
inline constexpr const char* kLcmLoraRepo = "latent-consistency/lcm-lora-sdv1-5";
// The most used Hugging Face mirror of insightface's antelopev2 pack (PuLID's code fetches it with
// snapshot_download). Its scrfd_10g_bnkps.onnx is verified against insightface's own checksum.
inline constexpr const char* kAntelopeMirrorRepo = "DIAMONIK7777/antelopev2";
inline constexpr const char* kDetectorFile = "scrfd_10g_bnkps.onnx";
// buffalo_l's det_10g.onnx is the same file (same sha256), so an insightface buffalo_l install works too.
inline constexpr const char* kDetectorAltFile = "det_10g.onnx";
// sha256 of scrfd_10g_bnkps.onnx (= det_10g.onnx) as insightface publishes it (server/.../packages.py).
inline constexpr const char* kDetectorSha256 =
    "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91";
inline constexpr const char* kArcfaceFile = "arcface.onnx";
inline constexpr const char* kGlintr100File = "glintr100.onnx";

const std::vector<RoleSpec>& model_roles();
const RoleSpec& role_spec(Role r);
const char* component_name(Component c);
std::optional<Component> component_from_name(const std::string& name);
// The `arc2face download` flags that fetch a component ("" for the default set).
const char* component_download_flag(Component c);

// One file to fetch from the hub: repository path and --dest layout path.
struct ManifestFile {
  Role role;
  std::string repo;
  std::string repo_path;  // e.g. "vae/config.json"
  std::string dest_path;  // e.g. "stable-diffusion-v1-5/vae/config.json"
};
// Every hub file of a role (the detector has none: it comes from the insightface release, or a mirror).
std::vector<ManifestFile> role_hub_files(const RoleSpec& spec);

}  // namespace a2f::hub
