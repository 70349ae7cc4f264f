// The Hugging Face hub protocol and cache layout, as huggingface_hub (file_download.py) implements them:
//   HEAD {endpoint}/{repo}/resolve/{revision}/{path}  (relative redirects followed, the 302 to the CDN not)
//     -> X-Repo-Commit, X-Linked-Etag (LFS: the sha256) or ETag (git blob sha1), X-Linked-Size or
//        Content-Length, Location (the CDN URL of an LFS file; downloaded without the token)
//   {HF_HUB_CACHE}/models--{owner}--{name}/
//     refs/{revision}                  the commit the revision pointed to (no newline)
//     blobs/{etag}                     the file; blobs/{etag}.incomplete while it downloads
//     snapshots/{commit}/{path}        relative symlink to ../../blobs/{etag}
//   {HF_HUB_CACHE}/.locks/models--{owner}--{name}/{etag}.lock   (flock, shared with Python)
// and the plain-folder layout of hf_hub_download(local_dir=...):
//   {dir}/{path}, {dir}/.cache/huggingface/download/{path}.metadata = "commit\netag\ntimestamp\n",
//   {dir}/.cache/huggingface/download/{path}.{etag}.incomplete while it downloads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hub/download.h"
#include "hub/http.h"
#include "hub/hub_config.h"

namespace a2f::hub {

struct RepoFile {
  std::string repo;  // "owner/name"
  std::string revision = "main";
  std::string path;          // path inside the repository, '/'-separated
  std::string known_sha256;  // when set, the file must have this sha256 whatever the hub says
};

struct HubFileMetadata {
  std::string url;       // the resolve URL (after relative redirects)
  std::string commit;    // X-Repo-Commit
  std::string etag;      // normalised (no quotes, no W/)
  std::string location;  // where to GET the bytes (the CDN for LFS files, else == url)
  std::optional<uint64_t> size;
};

enum class FetchOutcome { AlreadyPresent, LinkedExistingBlob, Downloaded };

struct FetchResult {
  std::filesystem::path path;
  FetchOutcome outcome = FetchOutcome::AlreadyPresent;
  uint64_t bytes_received = 0;
};

// "models--owner--name"
std::string repo_folder_name(const std::string& repo);
std::string resolve_url(const HubConfig& cfg, const RepoFile& f);
std::string normalize_etag(std::string etag);

// Snapshot folders of a cached repository, best first: the one refs/{revision} names (or the revision itself
// when it is a commit hash), then the others, newest first. Empty when the repository is not cached.
std::vector<std::filesystem::path> cached_snapshots(const std::filesystem::path& hub_cache,
                                                    const std::string& repo,
                                                    const std::string& revision = "main");
// A file of a cached repository (first snapshot that has it), as huggingface_hub's try_to_load_from_cache
// but also accepting older snapshots.
std::optional<std::filesystem::path> cached_file(const std::filesystem::path& hub_cache, const RepoFile& f);

// HEAD on the resolve URL; throws a2f::Error with an actionable message (401 -> HF_TOKEN, 404 -> which file).
HubFileMetadata get_file_metadata(HttpClient& http, const HubConfig& cfg, const RepoFile& f);

// Bytes still to fetch for the file (0 when present), given its metadata; for plans and free-space checks.
uint64_t bytes_missing_in_cache(const HubConfig& cfg, const RepoFile& f, const HubFileMetadata& m);
uint64_t bytes_missing_in_dir(const std::filesystem::path& dir, const std::string& local_rel,
                              const HubFileMetadata& m);

// Into the cache layout (blobs + snapshots symlink + refs). Returns the snapshot path.
FetchResult hf_download_to_cache(HttpClient& http, const HubConfig& cfg, const RepoFile& f,
                                 const HubFileMetadata& m, const ProgressContext& progress = {});
// Into a plain folder at dir/local_rel, with huggingface_hub's local_dir metadata.
FetchResult hf_download_to_dir(HttpClient& http, const HubConfig& cfg, const RepoFile& f,
                               const HubFileMetadata& m, const std::filesystem::path& dir,
                               const std::string& local_rel, const ProgressContext& progress = {});

}  // namespace a2f::hub
