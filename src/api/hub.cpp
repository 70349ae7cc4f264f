// The public model-files API (include/arc2face/hub.h) over the hub layer (src/hub).
#include "arc2face/hub.h"

#include <memory>

#include "core/error.h"
#include "hub/discovery.h"
#include "hub/doctor.h"
#include "hub/fetch_models.h"
#include "hub/progress.h"

namespace arc2face {
namespace a2f = ::a2f;
namespace hub = ::a2f::hub;
namespace {

hub::SearchOptions to_hub(const ModelSearchOptions& s) {
  hub::SearchOptions o;
  o.models_dir = s.models_dir;
  o.base_dir = s.base_dir;
  o.antelope_dir = s.antelope_dir;
  o.controlnet_dir = s.controlnet_dir;
  o.lcm_lora_file = s.lcm_lora_file;
  return o;
}

hub::Job to_hub(const ModelJob& j) {
  return hub::Job{j.from_photo, j.lcm, j.controlnet};
}

ModelPaths from_hub(const hub::ModelPaths& p) {
  ModelPaths r;
  r.unet_dir = p.unet_dir.string();
  r.encoder_dir = p.encoder_dir.string();
  r.vae_dir = p.vae_dir.string();
  r.tokenizer_dir = p.tokenizer_dir.string();
  r.scheduler_dir = p.scheduler_dir.string();
  r.detector_onnx = p.detector_onnx.string();
  r.arcface_onnx = p.arcface_onnx.string();
  r.controlnet_dir = p.controlnet_dir.string();
  r.lcm_lora_file = p.lcm_lora_file.string();
  return r;
}

hub::ProgressFn to_hub(const DownloadProgressCallback& cb) {
  if (!cb) return {};
  return [cb](const hub::TransferProgress& p) {
    cb(DownloadProgress{p.name, p.done, p.total, p.index, p.count, p.finished});
  };
}

ModelDiscovery discover(const ModelSearchOptions& search, const ModelJob& job, const hub::HubConfig& cfg) {
  hub::Discovery d = hub::discover_models(to_hub(search), hub::SearchEnv::from_env(cfg));
  ModelDiscovery r;
  r.paths = from_hub(d.paths);
  auto missing = hub::missing_for(d, to_hub(job));
  for (const auto* st : missing) {
    const hub::RoleSpec& spec = hub::role_spec(st->role);
    MissingModel m;
    m.role = spec.name;
    m.title = spec.title;
    for (const char* f : spec.files) m.files.push_back(f);
    m.searched = st->searched;
    r.missing.push_back(std::move(m));
  }
  r.message = hub::missing_message(missing, to_hub(job));
  if (!missing.empty()) r.download_command = hub::download_command_for(missing);
  return r;
}

// Library errors cross the public boundary as arc2face::Error.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const a2f::Error& e) {
    throw Error(e.what());
  }
}

}  // namespace

ModelDiscovery find_models(const ModelSearchOptions& search, const ModelJob& job) {
  return guarded([&] { return discover(search, job, hub::hub_config_from_env()); });
}

DownloadProgressCallback stderr_download_progress() {
  auto fn = std::make_shared<hub::ProgressFn>(hub::stderr_progress());
  return [fn](const DownloadProgress& p) {
    (*fn)(hub::TransferProgress{p.file, p.done, p.total, p.index, p.count, p.finished});
  };
}

ModelDownloadResult download_models(const ModelDownloadOptions& o) {
  return guarded([&] {
    hub::HubConfig cfg = hub::hub_config_from_env();
    hub::FetchRequest req;
    if (!o.dest_dir.empty()) req.dest = std::filesystem::absolute(o.dest_dir);
    req.components.clear();
    if (o.core) req.components.insert(hub::Component::Core);
    if (o.base) req.components.insert(hub::Component::Base);
    if (o.face) req.components.insert(hub::Component::Face);
    if (o.controlnet) req.components.insert(hub::Component::ControlNet);
    if (o.lcm) req.components.insert(hub::Component::Lcm);
    if (req.components.empty()) throw Error("nothing to download: every component is switched off");
    req.detector_source =
        o.detector_from_hf_mirror ? hub::DetectorSource::HfMirror : hub::DetectorSource::GithubRelease;
    req.dry_run = o.dry_run;
    std::unique_ptr<hub::HttpClient> http;
    if (!cfg.offline) {
      hub::HttpClientOptions ho;
      ho.connect_timeout_s = cfg.connect_timeout_s;
      ho.stall_timeout_s = cfg.stall_timeout_s;
      http = std::make_unique<hub::HttpClient>(ho);
    }
    hub::FetchSummary s =
        hub::fetch_models(http.get(), cfg, req, hub::FetchObserver{to_hub(o.progress), o.note});
    ModelDownloadResult r;
    r.root = s.root.string();
    r.files = int(s.files.size());
    r.bytes_received = s.bytes_received;
    r.bytes_planned = s.bytes_planned;
    for (const auto& f : s.files) {
      if (f.outcome == hub::FetchOutcome::Downloaded) ++r.downloaded;
      r.paths.push_back(f.path.string());
    }
    return r;
  });
}

ModelPaths require_models(const ModelSearchOptions& search, const ModelJob& job, bool download,
                          const DownloadProgressCallback& progress) {
  hub::HubConfig cfg = guarded([] { return hub::hub_config_from_env(); });
  ModelDiscovery d = guarded([&] { return discover(search, job, cfg); });
  if (d.missing.empty()) return d.paths;
  if (!download) throw Error(d.message);
  // A role pinned by an explicit flag is looked for there only: downloading into the cache would not help.
  for (const auto& m : d.missing) {
    bool all_explicit = !m.searched.empty();
    for (const auto& s : m.searched) all_explicit = all_explicit && s.rfind("--", 0) == 0;
    if (all_explicit) {
      throw Error(a2f::cat(
          d.message, "\n(", m.role,
          " is looked for only where a flag points; --download writes to the Hugging Face cache: drop "
          "the flag, or fill that folder with `arc2face download --dest DIR`)"));
    }
  }
  ModelDownloadOptions o;
  o.core = o.base = false;
  for (const auto& m : d.missing) {
    if (m.role == "unet" || m.role == "encoder") o.core = true;
    if (m.role == "vae" || m.role == "tokenizer" || m.role == "scheduler") o.base = true;
  }
  o.face = job.from_photo && (!d.paths.detector_onnx.size() || !d.paths.arcface_onnx.size());
  o.controlnet = job.controlnet && d.paths.controlnet_dir.empty();
  o.lcm = job.lcm && d.paths.lcm_lora_file.empty();
  o.progress = progress;
  download_models(o);
  ModelDiscovery again = guarded([&] { return discover(search, job, cfg); });
  if (!again.missing.empty()) throw Error(again.message);
  return again.paths;
}

std::string model_doctor_report(const ModelSearchOptions& search, bool checksums, bool json) {
  return guarded([&] {
    hub::HubConfig cfg = hub::hub_config_from_env();
    hub::DoctorOptions o;
    o.search = to_hub(search);
    o.checksums = checksums;
#ifdef A2F_HAVE_CUDA
    o.build_has_cuda = true;
#endif
    hub::DoctorReport r = hub::run_doctor(o, hub::SearchEnv::from_env(cfg), cfg);
    return json ? hub::doctor_json(r) : hub::doctor_text(r);
  });
}

}  // namespace arc2face
