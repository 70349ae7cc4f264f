// `arc2face doctor`: which model files are found where, the Python-setup check, the machine, and what can
// run.
#include <cstdio>
#include <memory>
#include <string>

#include "arc2face/hub.h"
#include "commands.h"

namespace a2f_cli {
namespace {

struct DoctorArgs {
  arc2face::ModelSearchOptions search;
  bool checksums = false, json = false;
};

}  // namespace

void register_doctor(CLI::App& app) {
  auto args = std::make_shared<DoctorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "doctor", "Show which model files are found where, the CPU/GPU, and what this setup can run");
  cmd->add_option("--models", args->search.models_dir,
                  "a models folder (arc2face/, encoder/, antelopev2/, ...)");
  cmd->add_option("--base", args->search.base_dir, "an SD1.5 folder with vae/, tokenizer/, scheduler/");
  cmd->add_option("--antelope", args->search.antelope_dir,
                  "a folder with scrfd_10g_bnkps.onnx and arcface.onnx");
  cmd->add_option("--controlnet", args->search.controlnet_dir, "the ControlNet folder");
  cmd->add_option("--lcm-lora", args->search.lcm_lora_file, "the LCM-LoRA .safetensors file");
  cmd->add_flag("--checksums", args->checksums, "compute the sha256 of every file (reads all ~4.5 GB)");
  cmd->add_flag("--json", args->json, "machine-readable output");
  cmd->callback([args] {
    std::string report = arc2face::model_doctor_report(args->search, args->checksums, args->json);
    std::fputs(report.c_str(), stdout);
  });
}

}  // namespace a2f_cli
