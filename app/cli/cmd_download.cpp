// `arc2face download`: fetches the model files (Hugging Face cache layout by default, --dest DIR for a
// folder).
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "arc2face/hub.h"
#include "commands.h"

namespace a2f_cli {
namespace {

struct DownloadArgs {
  std::string dest;
  std::string only;
  std::string detector_from = "github";
  bool controlnet = false, lcm = false, all = false, dry_run = false, no_progress = false;
};

std::string human(uint64_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf),
                u == 0 || v >= 100 ? "%.0f %s"
                : v < 10           ? "%.2f %s"
                                   : "%.1f %s",
                v, units[u]);
  return buf;
}

void run_download(const DownloadArgs& a) {
  arc2face::ModelDownloadOptions o;
  o.dest_dir = a.dest;
  if (!a.only.empty()) {
    o.core = o.base = o.face = false;
    std::stringstream ss(a.only);
    std::string c;
    while (std::getline(ss, c, ',')) {
      if (c == "core") {
        o.core = true;
      } else if (c == "base") {
        o.base = true;
      } else if (c == "face") {
        o.face = true;
      } else if (c == "controlnet") {
        o.controlnet = true;
      } else if (c == "lcm") {
        o.lcm = true;
      } else if (!c.empty()) {
        throw arc2face::Error("--only: unknown component '" + c +
                              "' (use core, base, face, controlnet, lcm)");
      }
    }
  }
  if (a.all) o.core = o.base = o.face = o.controlnet = o.lcm = true;
  o.controlnet = o.controlnet || a.controlnet;
  o.lcm = o.lcm || a.lcm;
  o.detector_from_hf_mirror = a.detector_from == "hf";
  o.dry_run = a.dry_run;
  if (!a.no_progress) o.progress = arc2face::stderr_download_progress();
  o.note = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
  arc2face::ModelDownloadResult r = arc2face::download_models(o);
  if (a.dry_run) return;
  std::printf("%d files in %s (%d downloaded, %s received)\n", r.files, r.root.c_str(), r.downloaded,
              human(r.bytes_received).c_str());
  if (a.dest.empty()) {
    std::printf("arc2face finds them there by itself; `arc2face doctor` shows what it found.\n");
  } else {
    std::printf(
        "Use them with --models %s (or ARC2FACE_MODELS=%s); `arc2face doctor --models %s` checks them.\n",
        a.dest.c_str(), a.dest.c_str(), a.dest.c_str());
  }
}

}  // namespace

void register_download(CLI::App& app) {
  auto args = std::make_shared<DownloadArgs>();
  CLI::App* cmd = app.add_subcommand("download",
                                     "Fetch the model files (Arc2Face, SD1.5 vae/tokenizer/scheduler, face "
                                     "detector): resumable, verified; into "
                                     "the Hugging Face cache unless --dest DIR");
  cmd->add_option("--dest", args->dest, "write a plain folder layout here instead of the Hugging Face cache");
  cmd->add_flag("--controlnet", args->controlnet, "also fetch Arc2Face's pose ControlNet");
  cmd->add_flag("--lcm", args->lcm, "also fetch the LCM-LoRA for SD1.5 (fast 2-4 step sampling)");
  cmd->add_flag("--all", args->all, "everything: core, base, face, controlnet, lcm");
  cmd->add_option("--only", args->only, "comma-separated components: core, base, face, controlnet, lcm");
  cmd->add_option(
         "--detector-from", args->detector_from,
         "github: insightface's antelopev2 release (default); hf: the DIAMONIK7777/antelopev2 mirror")
      ->check(CLI::IsMember({"github", "hf"}));
  cmd->add_flag("--dry-run", args->dry_run, "ask the hub and show what would be downloaded");
  cmd->add_flag("--no-progress", args->no_progress, "no progress display");
  cmd->callback([args] { run_download(*args); });
}

}  // namespace a2f_cli
