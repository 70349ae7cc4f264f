// `arc2face download`: fetches exactly the files of the chosen components (manifest.h), into the Hugging Face
// cache layout (default: shared with the Python stack) or a plain folder (--dest DIR). Asks the hub about
// every file first (HEAD: sizes, checksums), checks free space, then downloads what is missing one file at a
// time. In offline mode (HF_HUB_OFFLINE=1) it never touches the network: it reports what is on disk and fails
// naming what is not.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hub/download.h"
#include "hub/hf_cache.h"
#include "hub/hub_config.h"
#include "hub/manifest.h"

namespace a2f::hub {

enum class DetectorSource { GithubRelease, HfMirror };

struct FetchRequest {
  std::optional<std::filesystem::path> dest;  // plain folder layout; nullopt: HF cache layout
  std::set<Component> components = {Component::Core, Component::Base, Component::Face};
  DetectorSource detector_source = DetectorSource::GithubRelease;
  bool dry_run = false;  // ask the hub, print the plan, download nothing
};

struct FetchItem {
  Role role;
  std::string label;      // "FoivosPar/Arc2Face arc2face/config.json"
  bool from_zip = false;  // the detector out of insightface's antelopev2.zip
  RepoFile file;          // hub items
  std::string dest_path;  // path in the --dest layout
};

struct FetchedFile {
  std::string label;
  std::filesystem::path path;
  FetchOutcome outcome = FetchOutcome::AlreadyPresent;
  uint64_t bytes_received = 0;
  std::optional<uint64_t> size;
};

struct FetchSummary {
  std::vector<FetchedFile> files;
  uint64_t bytes_received = 0;
  uint64_t bytes_planned = 0;  // known bytes still missing before the run
  std::filesystem::path root;  // the HF cache or the --dest folder
};

struct FetchObserver {
  ProgressFn progress;                           // per-file transfer progress
  std::function<void(const std::string&)> note;  // plan and per-file lines
};

std::vector<FetchItem> plan_fetch(const FetchRequest& req, const std::string& detector_sha256);
// http may be null in offline mode.
FetchSummary fetch_models(HttpClient* http, const HubConfig& cfg, const FetchRequest& req,
                          const FetchObserver& obs = {});

}  // namespace a2f::hub
