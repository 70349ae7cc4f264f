#include "hub/hf_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "hub/fs_util.h"
#include "hub/hash.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

fs::path path_from_repo(const std::string& p) {
  fs::path r;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string seg = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    A2F_CHECK(!seg.empty() && seg != "." && seg != "..", "invalid repository path '", p, "'");
    r /= seg;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return r;
}

bool is_commit_hash(const std::string& s) {
  return is_hex(s, 40);
}

// Commit ids and ETags from the server become file names in the cache: one plain path component only.
bool safe_name(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 255) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c != '/' && c != '\\' && c != '\0'; });
}

HeaderList auth_headers(const HubConfig& cfg) {
  HeaderList h;
  if (!cfg.token.empty()) h.push_back("Authorization: Bearer " + cfg.token);
  return h;
}

std::string describe(const RepoFile& f, const std::string& url) {
  return cat(f.repo, " ", f.path, " (", url, ")");
}

ExpectedHash expected_hash(const RepoFile& f, const HubFileMetadata& m) {
  if (!f.known_sha256.empty()) return {ExpectedHash::Kind::Sha256, f.known_sha256};
  ExpectedHash h = ExpectedHash::from_etag(m.etag);
  if (h.kind == ExpectedHash::Kind::None)
    log_debug(f.path, ": etag '", m.etag, "' is not a sha256 or git sha1; only the size is verified");
  return h;
}

DownloadTarget make_target(const HubConfig& cfg, const RepoFile& f, const HubFileMetadata& m) {
  DownloadTarget t;
  t.url = m.location;
  // The token goes to the hub only, never to the CDN the hub redirects to (as huggingface_hub does).
  if (m.location == m.url) t.headers = auth_headers(cfg);
  t.token_sent = !t.headers.empty();
  t.size = m.size;
  t.hash = expected_hash(f, m);
  t.name = f.path;
  t.what = describe(f, m.url);
  return t;
}

// Relative symlink target from snapshots/{commit}/{path} to blobs/{etag}.
std::string blob_link_target(const std::string& repo_path, const std::string& etag) {
  std::string up = "../../";
  for (char c : repo_path)
    if (c == '/') up += "../";
  return up + "blobs/" + etag;
}

void link_pointer(const fs::path& blob, const fs::path& pointer, const std::string& target) {
  std::error_code ec;
  fs::create_directories(pointer.parent_path(), ec);
  fs::path tmp = pointer;
  tmp += ".tmp." + std::to_string(::getpid());
  fs::remove(tmp, ec);
  if (::symlink(target.c_str(), tmp.c_str()) == 0) {
    if (::rename(tmp.c_str(), pointer.c_str()) == 0) return;
    int e = errno;
    fs::remove(tmp, ec);
    fail("cannot create ", pointer.string(), ": ", std::strerror(e));
  }
  // File systems without symlinks: a copy (huggingface_hub does the same, with a warning).
  log_warn("symlinks are not supported in ", pointer.parent_path().string(), "; copying ", blob.string());
  fs::copy_file(blob, pointer, fs::copy_options::overwrite_existing, ec);
  if (ec) fail("cannot copy ", blob.string(), " to ", pointer.string(), ": ", ec.message());
}

void write_ref(const fs::path& repo_dir, const std::string& revision, const std::string& commit) {
  if (revision == commit) return;
  fs::path ref = repo_dir / "refs" / path_from_repo(revision);
  std::string old = read_text_file(ref, 256);
  while (!old.empty() && (old.back() == '\n' || old.back() == ' ')) old.pop_back();
  if (old != commit) write_file_atomic(ref, commit);
}

struct LocalMetadata {
  std::string commit, etag;
  double timestamp = 0;
};

fs::path local_meta_path(const fs::path& dir, const std::string& local_rel) {
  fs::path p = dir / ".cache" / "huggingface" / "download" / path_from_repo(local_rel);
  p += ".metadata";
  return p;
}

std::optional<LocalMetadata> read_local_metadata(const fs::path& meta) {
  std::string s = read_text_file(meta, 4096);
  if (s.empty()) return std::nullopt;
  LocalMetadata m;
  size_t a = s.find('\n');
  size_t b = a == std::string::npos ? a : s.find('\n', a + 1);
  if (b == std::string::npos) return std::nullopt;
  m.commit = s.substr(0, a);
  m.etag = s.substr(a + 1, b - a - 1);
  m.timestamp = std::atof(s.c_str() + b + 1);
  return m;
}

void write_local_metadata(const fs::path& meta, const std::string& commit, const std::string& etag) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%.3f", now);
  write_file_atomic(meta, commit + "\n" + etag + "\n" + ts + "\n");
}

double mtime_of(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return 0;
  return double(st.st_mtim.tv_sec) + double(st.st_mtim.tv_nsec) * 1e-9;
}

// Is the plain-folder file already the one the hub describes? Metadata first (cheap), then the content hash.
bool local_file_is_current(const fs::path& file, const fs::path& meta, const RepoFile& f,
                           const HubFileMetadata& m) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return false;
  uint64_t size = fs::file_size(file, ec);
  if (m.size && size != *m.size) return false;
  auto md = read_local_metadata(meta);
  if (md && md->etag == m.etag && mtime_of(file) - 1 <= md->timestamp) return true;
  ExpectedHash h = expected_hash(f, m);
  if (h.kind == ExpectedHash::Kind::None) return false;
  log_info("checking the ", h.name(), " of the existing ", file.string());
  std::string got = h.kind == ExpectedHash::Kind::Sha256 ? sha256_file(file) : git_blob_sha1_file(file);
  if (got != h.hex) return false;
  write_local_metadata(meta, m.commit, m.etag);
  return true;
}

}  // namespace

std::string repo_folder_name(const std::string& repo) {
  std::string r = "models--";
  for (char c : repo) {
    if (c == '/') {
      r += "--";
    } else {
      r.push_back(c);
    }
  }
  return r;
}

std::string resolve_url(const HubConfig& cfg, const RepoFile& f) {
  return cat(cfg.endpoint, "/", f.repo, "/resolve/", url_quote_all(f.revision), "/", url_quote_path(f.path));
}

std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  return etag;
}

std::vector<fs::path> cached_snapshots(const fs::path& hub_cache, const std::string& repo,
                                       const std::string& revision) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::path repo_dir = hub_cache / repo_folder_name(repo);
  fs::path snaps = repo_dir / "snapshots";
  if (!fs::is_directory(snaps, ec)) return out;
  std::string commit = revision;
  if (!is_commit_hash(revision)) {
    commit = read_text_file(repo_dir / "refs" / revision, 256);
    while (!commit.empty() && (commit.back() == '\n' || commit.back() == ' ')) commit.pop_back();
  }
  if (!commit.empty() && fs::is_directory(snaps / commit, ec)) out.push_back(snaps / commit);
  std::vector<std::pair<double, fs::path>> others;
  for (const auto& e : fs::directory_iterator(snaps, ec)) {
    if (!e.is_directory(ec) || e.path().filename() == commit) continue;
    others.emplace_back(mtime_of(e.path()), e.path());
  }
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& o : others) out.push_back(o.second);
  return out;
}

std::optional<fs::path> cached_file(const fs::path& hub_cache, const RepoFile& f) {
  std::error_code ec;
  for (const auto& snap : cached_snapshots(hub_cache, f.repo, f.revision)) {
    fs::path p = snap / path_from_repo(f.path);
    if (fs::is_regular_file(p, ec)) return p;  // follows the symlink: a dangling link does not count
  }
  return std::nullopt;
}

HubFileMetadata get_file_metadata(HttpClient& http, const HubConfig& cfg, const RepoFile& f) {
  A2F_CHECK(!cfg.offline, "offline mode (HF_HUB_OFFLINE=1): cannot ask the hub about ", f.repo, " ", f.path);
  HubFileMetadata m;
  m.url = resolve_url(cfg, f);
  HeaderList headers = auth_headers(cfg);
  HttpResponse r;
  for (int hop = 0;; ++hop) {
    r = request_with_retry([&] { return http.head(m.url, headers); }, cfg.retry, describe(f, m.url));
    std::string loc = r.header("location");
    bool relative = !loc.empty() && loc.find("://") == std::string::npos && loc.rfind("//", 0) != 0;
    // Relative redirects (a renamed repository) are followed; the absolute one to the CDN is not.
    if (r.status >= 300 && r.status <= 399 && relative && hop < 5) {
      m.url = resolve_location(m.url, loc);
      continue;
    }
    break;
  }
  if (r.curl_code != 0 || r.status < 200 || r.status > 399)
    fail(describe_failure(r, describe(f, m.url), !headers.empty()));
  m.commit = r.header("x-repo-commit");
  m.etag = normalize_etag(r.has_header("x-linked-etag") ? r.header("x-linked-etag") : r.header("etag"));
  std::string size = r.has_header("x-linked-size") ? r.header("x-linked-size") : r.header("content-length");
  if (!size.empty()) m.size = std::strtoull(size.c_str(), nullptr, 10);
  m.location =
      (r.status >= 300 && r.has_header("location")) ? resolve_location(m.url, r.header("location")) : m.url;
  A2F_CHECK(!m.commit.empty(), "the server at ", cfg.endpoint, " answered ", f.repo, " ", f.path,
            " without an X-Repo-Commit header: is HF_ENDPOINT a Hugging Face hub?");
  A2F_CHECK(!m.etag.empty(), "the hub sent no ETag for ", describe(f, m.url), ": cannot verify the download");
  if (!f.known_sha256.empty() && is_hex(m.etag, 64) && m.etag != f.known_sha256) {
    fail("the hub reports sha256 ", m.etag, " for ", describe(f, m.url), " but arc2face.cpp expects ",
         f.known_sha256, " (a different file); not downloading it");
  }
  return m;
}

uint64_t bytes_missing_in_cache(const HubConfig& cfg, const RepoFile& f, const HubFileMetadata& m) {
  std::error_code ec;
  fs::path repo_dir = cfg.hub_cache / repo_folder_name(f.repo);
  if (fs::is_regular_file(repo_dir / "snapshots" / m.commit / path_from_repo(f.path), ec)) return 0;
  fs::path blob = repo_dir / "blobs" / m.etag;
  if (fs::is_regular_file(blob, ec)) return 0;
  uint64_t have = 0;
  fs::path inc = blob;
  inc += ".incomplete";
  if (fs::is_regular_file(inc, ec)) have = fs::file_size(inc, ec);
  uint64_t size = m.size.value_or(0);
  return size > have ? size - have : 0;
}

uint64_t bytes_missing_in_dir(const fs::path& dir, const std::string& local_rel, const HubFileMetadata& m) {
  std::error_code ec;
  fs::path file = dir / path_from_repo(local_rel);
  fs::path meta = local_meta_path(dir, local_rel);
  auto md = read_local_metadata(meta);
  if (fs::is_regular_file(file, ec) && md && md->etag == m.etag) return 0;
  fs::path inc = meta;
  inc.replace_extension("." + m.etag + ".incomplete");
  uint64_t have = fs::is_regular_file(inc, ec) ? fs::file_size(inc, ec) : 0;
  uint64_t size = m.size.value_or(0);
  return size > have ? size - have : 0;
}

FetchResult hf_download_to_cache(HttpClient& http, const HubConfig& cfg, const RepoFile& f,
                                 const HubFileMetadata& m, const ProgressContext& progress) {
  std::error_code ec;
  A2F_CHECK(safe_name(m.commit), "the hub sent an unusable commit id '", m.commit, "'");
  A2F_CHECK(safe_name(m.etag), "the hub sent an unusable ETag '", m.etag, "'");
  fs::path repo_dir = cfg.hub_cache / repo_folder_name(f.repo);
  fs::path pointer = repo_dir / "snapshots" / m.commit / path_from_repo(f.path);
  fs::path blob = repo_dir / "blobs" / m.etag;
  write_ref(repo_dir, f.revision, m.commit);
  FetchResult res;
  res.path = pointer;
  if (fs::is_regular_file(pointer, ec)) return res;
  if (fs::is_regular_file(blob, ec)) {
    link_pointer(blob, pointer, blob_link_target(f.path, m.etag));
    res.outcome = FetchOutcome::LinkedExistingBlob;
    return res;
  }
  FileLock lock(cfg.hub_cache / ".locks" / repo_folder_name(f.repo) / (m.etag + ".lock"));
  if (!fs::is_regular_file(blob, ec)) {  // another process may have finished it while we waited
    DownloadTarget t = make_target(cfg, f, m);
    t.incomplete = blob;
    t.incomplete += ".incomplete";
    t.final_path = blob;
    res.bytes_received = download_file(http, t, cfg.retry, progress).bytes_received;
    res.outcome = FetchOutcome::Downloaded;
  } else {
    res.outcome = FetchOutcome::LinkedExistingBlob;
  }
  link_pointer(blob, pointer, blob_link_target(f.path, m.etag));
  return res;
}

FetchResult hf_download_to_dir(HttpClient& http, const HubConfig& cfg, const RepoFile& f,
                               const HubFileMetadata& m, const fs::path& dir, const std::string& local_rel,
                               const ProgressContext& progress) {
  A2F_CHECK(safe_name(m.etag), "the hub sent an unusable ETag '", m.etag, "'");
  fs::path file = dir / path_from_repo(local_rel);
  fs::path meta = local_meta_path(dir, local_rel);
  FetchResult res;
  res.path = file;
  fs::path lock_path = meta;
  lock_path.replace_extension(".lock");
  FileLock lock(lock_path);
  if (local_file_is_current(file, meta, f, m)) return res;
  DownloadTarget t = make_target(cfg, f, m);
  t.incomplete = meta;
  t.incomplete.replace_extension("." + m.etag + ".incomplete");
  t.final_path = file;
  res.bytes_received = download_file(http, t, cfg.retry, progress).bytes_received;
  res.outcome = FetchOutcome::Downloaded;
  write_local_metadata(meta, m.commit, m.etag);
  return res;
}

}  // namespace a2f::hub
