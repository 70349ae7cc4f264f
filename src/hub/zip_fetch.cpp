#include "hub/zip_fetch.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/log.h"
#include "hub/fs_util.h"
#include "hub/zip_reader.h"

namespace a2f::hub {
namespace fs = std::filesystem;

namespace {

struct RangeBytes {
  std::string data;
  uint64_t begin = 0;  // offset of data[0] in the resource
  uint64_t total = 0;  // size of the resource
};

// Reads bytes [begin, begin+len) of the resource, or its last `len` bytes when suffix is true. nullopt when
// the server ignores Range requests.
std::optional<RangeBytes> fetch_range(HttpClient& http, const HubConfig& cfg, const std::string& url,
                                      uint64_t begin, uint64_t len, bool suffix, const std::string& what) {
  std::string range = suffix ? cat("Range: bytes=-", len) : cat("Range: bytes=", begin, "-", begin + len - 1);
  bool ignored = false;
  std::string data, content_range;
  HttpResponse r = request_with_retry(
      [&] {
        data.clear();
        ignored = false;
        BodyHandler h;
        h.on_start = [&](const HttpResponse& resp) {
          if (resp.status == 200) ignored = true;
          content_range = resp.header("content-range");
          return resp.status == 200 || resp.status == 206;
        };
        h.on_data = [&](const char* p, size_t n) {
          if (ignored || data.size() + n > len) return false;
          data.append(p, n);
          return true;
        };
        return http.get(url, {range}, true, h);
      },
      cfg.retry, what);
  if (ignored) return std::nullopt;
  if (r.curl_code != 0 || r.status != 206) fail(describe_failure(r, what, false));
  unsigned long long a = 0, b = 0, total = 0;
  A2F_CHECK(std::sscanf(content_range.c_str(), "bytes %llu-%llu/%llu", &a, &b, &total) == 3 &&
                b + 1 == a + data.size(),
            what, ": unexpected Content-Range '", content_range, "' for ", data.size(), " bytes");
  A2F_CHECK(suffix ? b + 1 == total : a == begin, what, ": the server sent bytes ", a, "-", b, " for '",
            range, "'");
  return RangeBytes{std::move(data), a, total};
}

void verify_and_place(const fs::path& tmp, const std::string& sha, const ZipMemberSource& src,
                      const fs::path& final_path, const std::string& what) {
  std::error_code ec;
  if (!src.known_sha256.empty() && sha != src.known_sha256) {
    fs::remove(tmp, ec);
    fail("checksum mismatch for ", src.member, " from ", what, ": expected sha256 ", src.known_sha256,
         ", got ", sha, ". The damaged file was deleted; run the command again to retry");
  }
  fs::create_directories(final_path.parent_path(), ec);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0)
    fail("cannot move ", tmp.string(), " to ", final_path.string(), ": ", std::strerror(errno));
  sync_dir(final_path.parent_path());
}

}  // namespace

FetchResult fetch_zip_member(HttpClient& http, const HubConfig& cfg, const ZipMemberSource& src,
                             const fs::path& final_path, const fs::path& work_dir,
                             const ProgressContext& progress) {
  A2F_CHECK(!cfg.offline, "offline mode (HF_HUB_OFFLINE=1): cannot download ", src.url);
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  FileLock lock(work_dir / (src.member + ".lock"));
  FetchResult res;
  res.path = final_path;
  if (fs::is_regular_file(final_path, ec)) return res;
  res.outcome = FetchOutcome::Downloaded;
  std::string what = src.url;
  fs::path packed = work_dir / (src.member + ".packed.incomplete");
  fs::path tmp = work_dir / (src.member + ".incomplete");

  // 1. Range path: end of archive -> central directory -> local header -> the member's bytes.
  try {
    auto tail = fetch_range(http, cfg, src.url, 0, kZipTailBytes, true, what);
    if (tail) {
      ZipDirectoryLocation loc = zip_locate_directory(tail->data, tail->begin, tail->total, what);
      std::string cd;
      if (loc.offset >= tail->begin) {
        cd = tail->data.substr(size_t(loc.offset - tail->begin), size_t(loc.size));
      } else {
        auto r = fetch_range(http, cfg, src.url, loc.offset, loc.size, false, what);
        if (!r) throw RangeNotSupported("range requests stopped working");
        cd = std::move(r->data);
      }
      auto entries = zip_parse_directory(cd, loc, what);
      const ZipEntry e = zip_find_member(entries, src.member, what);
      auto lh = fetch_range(http, cfg, src.url, e.local_header_offset, 30, false, what);
      if (!lh) throw RangeNotSupported("range requests stopped working");
      uint64_t data_begin = e.local_header_offset + zip_local_header_size(lh->data, what);
      A2F_CHECK(data_begin + e.compressed_size <= tail->total, what, ": ", e.name,
                " extends past the archive");
      log_info("fetching ", e.name, " (", human_bytes(e.compressed_size), " compressed) out of ", src.url);
      DownloadTarget t;
      t.url = src.url;
      t.incomplete = packed;
      t.size = e.compressed_size;
      t.range_mode = true;
      t.range_begin = data_begin;
      t.name = src.member;
      t.what = cat(e.name, " in ", what);
      res.bytes_received = download_file(http, t, cfg.retry, progress).bytes_received;
      std::string sha;
      try {
        sha = zip_inflate_to_file(packed, e, tmp);
      } catch (...) {
        fs::remove(packed, ec);  // damaged compressed bytes: start over next time
        throw;
      }
      fs::remove(packed, ec);
      verify_and_place(tmp, sha, src, final_path, what);
      return res;
    }
  } catch (const RangeNotSupported&) {
  }

  // 2. The server ignores ranges: the whole archive, then the member out of it.
  log_info(src.url, " does not support partial downloads: downloading the whole archive to extract ",
           src.member);
  fs::path zip = work_dir / "archive.zip";
  DownloadTarget t;
  t.url = src.url;
  t.incomplete = work_dir / "archive.zip.incomplete";
  t.final_path = zip;
  t.name = fs::path(src.url.substr(0, src.url.find('?'))).filename().string();
  t.what = what;
  res.bytes_received += download_file(http, t, cfg.retry, progress).bytes_received;
  std::string sha;
  try {
    sha = zip_extract_member(zip, src.member, tmp);
  } catch (...) {
    fs::remove(zip, ec);
    throw;
  }
  fs::remove(zip, ec);
  verify_and_place(tmp, sha, src, final_path, what);
  return res;
}

}  // namespace a2f::hub
