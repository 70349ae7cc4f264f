#include "hub/fetch_models.h"

#include "core/error.h"
#include "core/log.h"
#include "hub/fs_util.h"
#include "hub/zip_fetch.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

fs::path zip_final_path(const HubConfig& cfg, const FetchRequest& req, const FetchItem& it) {
  return req.dest ? *req.dest / it.dest_path : cfg.arc2face_cache / it.dest_path;
}

fs::path zip_work_dir(const HubConfig& cfg, const FetchRequest& req) {
  return req.dest ? *req.dest / ".cache" / "arc2face" : cfg.arc2face_cache / ".partial";
}

// Where the item is on disk now (offline check), or empty.
fs::path present_path(const HubConfig& cfg, const FetchRequest& req, const FetchItem& it) {
  std::error_code ec;
  if (it.from_zip) {
    fs::path p = zip_final_path(cfg, req, it);
    return fs::is_regular_file(p, ec) ? p : fs::path();
  }
  if (req.dest) {
    fs::path p = *req.dest / it.dest_path;
    return fs::is_regular_file(p, ec) ? p : fs::path();
  }
  auto p = cached_file(cfg.hub_cache, it.file);
  return p ? *p : fs::path();
}

}  // namespace

std::vector<FetchItem> plan_fetch(const FetchRequest& req, const std::string& detector_sha256) {
  std::vector<FetchItem> items;
  for (const auto& spec : model_roles()) {
    if (!req.components.count(spec.component)) continue;
    if (spec.role == Role::Detector) {
      FetchItem it;
      it.role = spec.role;
      it.dest_path = std::string(spec.dest_dir) + "/" + kDetectorFile;
      if (req.detector_source == DetectorSource::GithubRelease) {
        it.from_zip = true;
        it.label = cat("insightface antelopev2.zip: ", kDetectorFile);
      } else {
        it.file = RepoFile{kAntelopeMirrorRepo, "main", kDetectorFile, detector_sha256};
        it.label = cat(kAntelopeMirrorRepo, " ", kDetectorFile);
      }
      items.push_back(std::move(it));
      continue;
    }
    for (const auto& mf : role_hub_files(spec)) {
      FetchItem it;
      it.role = spec.role;
      it.file = RepoFile{mf.repo, "main", mf.repo_path, ""};
      it.label = mf.repo + " " + mf.repo_path;
      it.dest_path = mf.dest_path;
      items.push_back(std::move(it));
    }
  }
  return items;
}

FetchSummary fetch_models(HttpClient* http, const HubConfig& cfg, const FetchRequest& req,
                          const FetchObserver& obs) {
  auto note = [&](const std::string& s) {
    if (obs.note) obs.note(s);
  };
  std::vector<FetchItem> items = plan_fetch(req, cfg.detector_sha256);
  FetchSummary sum;
  sum.root = req.dest ? *req.dest : cfg.hub_cache;
  const int n = int(items.size());

  if (cfg.offline) {
    std::string missing;
    int count = 0;
    for (const auto& it : items) {
      fs::path p = present_path(cfg, req, it);
      if (p.empty()) {
        missing += cat("\n  - ", it.label);
        ++count;
      } else {
        sum.files.push_back({it.label, p, FetchOutcome::AlreadyPresent, 0, std::nullopt});
      }
    }
    if (count > 0) {
      fail("offline mode (HF_HUB_OFFLINE=1): ", count, " of ", n, " files are not in ", sum.root.string(),
           " and cannot be downloaded:", missing,
           "\nUnset HF_HUB_OFFLINE to download them (`arc2face doctor` shows model files found elsewhere).");
    }
    note(cat("offline mode: all ", n, " files are in ", sum.root.string()));
    return sum;
  }
  A2F_CHECK(http, "internal: no HTTP client in online mode");
  if (!cfg.token.empty() && cfg.endpoint.rfind("http://", 0) == 0 &&
      cfg.endpoint.rfind("http://127.0.0.1", 0) != 0 && cfg.endpoint.rfind("http://localhost", 0) != 0) {
    log_warn("HF_ENDPOINT ", cfg.endpoint, " is plain http: the token in HF_TOKEN travels unencrypted");
  }

  // 1. Ask the hub about every file (sizes and checksums) before downloading anything.
  std::vector<HubFileMetadata> meta(items.size());
  std::vector<uint64_t> missing(items.size(), 0);
  int unknown = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const FetchItem& it = items[i];
    if (it.from_zip) {
      if (present_path(cfg, req, it).empty()) ++unknown;
      continue;
    }
    meta[i] = get_file_metadata(*http, cfg, it.file);
    missing[i] = req.dest ? bytes_missing_in_dir(*req.dest, it.dest_path, meta[i])
                          : bytes_missing_in_cache(cfg, it.file, meta[i]);
    sum.bytes_planned += missing[i];
  }
  uint64_t free = free_bytes(sum.root);
  note(cat(n, " files for ", req.dest ? "the folder " : "the Hugging Face cache ", sum.root.string(), ": ",
           human_bytes(sum.bytes_planned), " to download",
           unknown ? " (+ the face detector, about 17 MB)" : "",
           free != UINT64_MAX ? cat(", ", human_bytes(free), " free") : std::string()));
  if (sum.bytes_planned > 0 && free != UINT64_MAX && sum.bytes_planned + (64u << 20) > free) {
    fail("not enough disk space in ", sum.root.string(), ": ", human_bytes(sum.bytes_planned),
         " to download, ", human_bytes(free),
         " free. Free some space or choose another place with --dest DIR or HF_HOME");
  }
  if (req.dry_run) {
    for (size_t i = 0; i < items.size(); ++i) {
      const FetchItem& it = items[i];
      std::string state;
      if (it.from_zip) {
        state = present_path(cfg, req, it).empty() ? "to download" : "present";
      } else {
        state = missing[i] ? cat("to download, ", human_bytes(missing[i])) : std::string("present");
        if (meta[i].size) state += cat(" (", human_bytes(*meta[i].size), ")");
      }
      note(cat("  ", it.label, ": ", state));
    }
    return sum;
  }

  // 2. Download what is missing, one file at a time.
  for (size_t i = 0; i < items.size(); ++i) {
    const FetchItem& it = items[i];
    ProgressContext pc{obs.progress, int(i) + 1, n};
    FetchResult r;
    if (it.from_zip) {
      fs::path final_path = zip_final_path(cfg, req, it);
      std::error_code ec;
      if (fs::is_regular_file(final_path, ec)) {
        r.path = final_path;
      } else {
        r = fetch_zip_member(*http, cfg,
                             ZipMemberSource{cfg.antelopev2_url, kDetectorFile, cfg.detector_sha256},
                             final_path, zip_work_dir(cfg, req), pc);
      }
    } else if (req.dest) {
      r = hf_download_to_dir(*http, cfg, it.file, meta[i], *req.dest, it.dest_path, pc);
    } else {
      r = hf_download_to_cache(*http, cfg, it.file, meta[i], pc);
    }
    sum.bytes_received += r.bytes_received;
    sum.files.push_back(
        {it.label, r.path, r.outcome, r.bytes_received, it.from_zip ? std::nullopt : meta[i].size});
    if (r.outcome != FetchOutcome::Downloaded) {
      note(cat("[", i + 1, "/", n, "] ", it.label, ": already present"));
    }
  }
  return sum;
}

}  // namespace a2f::hub
