#include "hub/manifest.h"

#include "core/error.h"

namespace a2f::hub {

const std::vector<RoleSpec>& model_roles() {
  static const std::vector<RoleSpec> roles = {
      {Role::Unet,
       "unet",
       "Arc2Face UNet (UNet2DConditionModel)",
       Component::Core,
       true,
       kArc2FaceRepo,
       "arc2face",
       "arc2face",
       {"config.json", "diffusion_pytorch_model.safetensors"}},
      {Role::Encoder,
       "encoder",
       "Arc2Face ID encoder (CLIPTextModel)",
       Component::Core,
       true,
       kArc2FaceRepo,
       "encoder",
       "encoder",
       {"config.json", "pytorch_model.bin"}},
      {Role::Vae,
       "vae",
       "SD1.5 VAE (AutoencoderKL)",
       Component::Base,
       true,
       kSd15Repo,
       "vae",
       "stable-diffusion-v1-5/vae",
       {"config.json", "diffusion_pytorch_model.safetensors"}},
      {Role::Tokenizer,
       "tokenizer",
       "SD1.5 CLIP tokenizer",
       Component::Base,
       true,
       kSd15Repo,
       "tokenizer",
       "stable-diffusion-v1-5/tokenizer",
       {"merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"}},
      {Role::Scheduler,
       "scheduler",
       "SD1.5 scheduler config",
       Component::Base,
       true,
       kSd15Repo,
       "scheduler",
       "stable-diffusion-v1-5/scheduler",
       {"scheduler_config.json"}},
      {Role::Detector,
       "detector",
       "SCRFD-10G face detector (insightface antelopev2)",
       Component::Face,
       false,
       "",
       "",
       "antelopev2",
       {kDetectorFile}},
      {Role::Arcface,
       "arcface",
       "Arc2Face ArcFace recognizer (IResNet100, WebFace42M)",
       Component::Face,
       false,
       kArc2FaceRepo,
       "",
       "antelopev2",
       {kArcfaceFile}},
      {Role::ControlNet,
       "controlnet",
       "Arc2Face pose ControlNet",
       Component::ControlNet,
       true,
       kArc2FaceRepo,
       "controlnet",
       "controlnet",
       {"config.json", "diffusion_pytorch_model.safetensors"}},
      {Role::LcmLora,
       "lcm_lora",
       "LCM-LoRA for SD1.5",
       Component::Lcm,
       false,
       kLcmLoraRepo,
       "",
       "lcm-lora-sdv1-5",
       {"pytorch_lora_weights.safetensors"}},
  };
  return roles;
}

const RoleSpec& role_spec(Role r) {
  for (const auto& s : model_roles())
    if (s.role == r) return s;
  fail("internal: unknown model role ", int(r));
}

const char* component_name(Component c) {
  switch (c) {
    case Component::Core:
      return "core";
    case Component::Base:
      return "base";
    case Component::Face:
      return "face";
    case Component::ControlNet:
      return "controlnet";
    case Component::Lcm:
      return "lcm";
  }
  return "?";
}

std::optional<Component> component_from_name(const std::string& name) {
  for (Component c :
       {Component::Core, Component::Base, Component::Face, Component::ControlNet, Component::Lcm})
    if (name == component_name(c)) return c;
  return std::nullopt;
}

const char* component_download_flag(Component c) {
  switch (c) {
    case Component::ControlNet:
      return " --controlnet";
    case Component::Lcm:
      return " --lcm";
    default:
      return "";
  }
}

std::vector<ManifestFile> role_hub_files(const RoleSpec& spec) {
  std::vector<ManifestFile> out;
  if (spec.repo[0] == '\0') return out;
  for (const char* f : spec.files) {
    std::string rp = spec.repo_dir[0] ? std::string(spec.repo_dir) + "/" + f : std::string(f);
    out.push_back({spec.role, spec.repo, rp, std::string(spec.dest_dir) + "/" + f});
  }
  return out;
}

}  // namespace a2f::hub
