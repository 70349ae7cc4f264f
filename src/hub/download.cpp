#include "hub/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/log.h"
#include "hub/fs_util.h"

namespace a2f::hub {
namespace {

// "bytes START-END/TOTAL" -> START and TOTAL (TOTAL < 0 when "*").
bool parse_content_range(const std::string& v, uint64_t& start, int64_t& total) {
  unsigned long long a = 0, b = 0;
  char tot[32] = {0};
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/%31s", &a, &b, tot) != 3) return false;
  start = a;
  total = tot[0] == '*' ? -1 : std::atoll(tot);
  return true;
}

std::string one_line(std::string s, size_t max_len = 300) {
  for (char& c : s)
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  if (s.size() > max_len) s = s.substr(0, max_len) + "...";
  return s;
}

void sleep_s(double s) {
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

class OutFile {
 public:
  explicit OutFile(const std::filesystem::path& p) : path_(p) {
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) fail("cannot create ", p.string(), ": ", std::strerror(errno));
    off_t end = ::lseek(fd_, 0, SEEK_END);
    size_ = end < 0 ? 0 : uint64_t(end);
  }
  ~OutFile() { close(); }
  uint64_t size() const { return size_; }
  void truncate(uint64_t n) {
    if (::ftruncate(fd_, off_t(n)) != 0 || ::lseek(fd_, off_t(n), SEEK_SET) < 0)
      fail("cannot truncate ", path_.string(), ": ", std::strerror(errno));
    size_ = n;
  }
  // Returns "" or the error text.
  std::string write(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return std::strerror(errno);
      }
      p += w;
      n -= size_t(w);
      size_ += uint64_t(w);
    }
    return {};
  }
  void hash_prefix(FileHasher& h, uint64_t n) {
    std::string buf(1 << 20, '\0');
    uint64_t off = 0;
    while (off < n) {
      ssize_t r = ::pread(fd_, buf.data(), size_t(std::min<uint64_t>(buf.size(), n - off)), off_t(off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        fail("cannot read back ", path_.string(), ": ", r < 0 ? std::strerror(errno) : "short read");
      h.update(buf.data(), size_t(r));
      off += uint64_t(r);
    }
  }
  void sync() {
    if (::fsync(fd_) != 0) fail("cannot flush ", path_.string(), " to disk: ", std::strerror(errno));
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace

bool is_transient_status(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

bool is_transient_transport(int curl_code) {
  switch (curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

double backoff_delay_s(const RetryPolicy& policy, int failures, double retry_after_s) {
  if (retry_after_s >= 0) return std::min(retry_after_s, policy.max_delay_s);
  double d = policy.base_delay_s * std::pow(2.0, std::max(0, failures - 1));
  return std::min(d, policy.max_delay_s);
}

std::string describe_failure(const HttpResponse& r, const std::string& what, bool token_sent) {
  if (r.curl_code != 0 && r.status == 0) {
    std::string s = cat("cannot download ", what, ": ", r.curl_error);
    if (r.curl_code == CURLE_COULDNT_RESOLVE_HOST || r.curl_code == CURLE_COULDNT_RESOLVE_PROXY)
      s += " (no network? To use only files already on disk, set HF_HUB_OFFLINE=1)";
    if (r.curl_code == CURLE_PEER_FAILED_VERIFICATION || r.curl_code == CURLE_SSL_CACERT_BADFILE)
      s += " (TLS certificate problem: check the system CA certificates or a proxy that rewrites TLS)";
    return s;
  }
  std::string code = r.header("x-error-code");
  std::string msg = one_line(r.header("x-error-message"));
  std::string s;
  switch (r.status) {
    case 401:
      if (token_sent) {
        s = cat("HTTP 401 Unauthorized for ", what,
                ": the token in HF_TOKEN was refused or has no access to this repository");
      } else {
        s = cat(
            "HTTP 401 Unauthorized for ", what,
            ": the repository is private or gated, or does not exist. If you have access, create a token at "
            "https://huggingface.co/settings/tokens and set HF_TOKEN");
      }
      break;
    case 403:
      if (code == "GatedRepo") {
        s = cat("HTTP 403 for ", what,
                ": this is a gated repository; accept its conditions on its Hugging Face page (logged in) "
                "and set "
                "HF_TOKEN to a token of that account");
      } else {
        s = cat("HTTP 403 Forbidden for ", what, token_sent ? " (with the token from HF_TOKEN)" : "");
      }
      break;
    case 404:
      if (code == "EntryNotFound") {
        s = cat("HTTP 404 for ", what, ": the file does not exist in the repository at this revision");
      } else if (code == "RevisionNotFound") {
        s = cat("HTTP 404 for ", what, ": the revision does not exist in the repository");
      } else if (code == "RepoNotFound") {
        s = cat("HTTP 404 for ", what, ": the repository does not exist");
      } else {
        s = cat("HTTP 404 Not Found for ", what);
      }
      break;
    case 416:
      s = cat("HTTP 416 Range Not Satisfiable for ", what);
      break;
    case 429:
      s = cat("HTTP 429 Too Many Requests for ", what, ": rate limited by the server");
      break;
    default:
      s = cat("HTTP ", r.status, " for ", what);
      if (r.status >= 500) s += " (server error)";
  }
  if (!msg.empty()) s += cat(" [server: ", msg, "]");
  if (r.curl_code != 0) s += cat(" (", r.curl_error, ")");
  return s;
}

HttpResponse request_with_retry(const std::function<HttpResponse()>& request, const RetryPolicy& policy,
                                const std::string& what) {
  for (int failures = 1;; ++failures) {
    HttpResponse r = request();
    bool transient = (r.curl_code != 0 && r.status == 0) ? is_transient_transport(r.curl_code)
                                                         : is_transient_status(r.status);
    if (!transient) return r;
    std::string why = describe_failure(r, what, false);
    if (failures >= policy.max_attempts) fail(why, "; gave up after ", failures, " attempts");
    double d = backoff_delay_s(policy, failures, retry_after_seconds(r));
    log_warn(why, "; retrying in ", d, " s");
    sleep_s(d);
  }
}

DownloadResult download_file(HttpClient& http, const DownloadTarget& t, const RetryPolicy& policy,
                             const ProgressContext& progress) {
  A2F_ASSERT(!t.range_mode || t.size.has_value());
  std::error_code ec;
  if (t.incomplete.has_parent_path()) std::filesystem::create_directories(t.incomplete.parent_path(), ec);
  DownloadResult result;
  bool restarted = false;

  auto report = [&](uint64_t done, bool finished) {
    if (progress.fn)
      progress.fn({t.name, done, t.size.value_or(0), progress.index, progress.count, finished});
  };

  for (;;) {
    OutFile out(t.incomplete);
    if (t.size && out.size() > *t.size) out.truncate(0);
    // The git blob hash needs the size up front; without a size the hash is computed from the file at the
    // end.
    ExpectedHash::Kind stream_kind =
        (t.hash.kind == ExpectedHash::Kind::GitBlobSha1 && !t.size) ? ExpectedHash::Kind::None : t.hash.kind;
    FileHasher hasher(stream_kind, t.size.value_or(0));
    uint64_t have = out.size();
    bool resumed = have > 0;
    result.resumed = result.resumed || resumed;
    if (have > 0) {
      log_info("resuming ", t.name, " from ", human_bytes(have));
      out.hash_prefix(hasher, have);
    }
    report(have, false);

    int failures = 0;
    while (!(t.size && have == *t.size)) {
      ++result.attempts;
      HeaderList headers = t.headers;
      if (t.range_mode) {
        headers.push_back(cat("Range: bytes=", t.range_begin + have, "-", t.range_begin + *t.size - 1));
      } else if (have > 0) {
        headers.push_back(cat("Range: bytes=", have, "-"));
      }
      uint64_t have_before = have;
      std::string fatal;
      bool delete_partial = false, range_ignored = false;

      BodyHandler handler;
      handler.on_start = [&](const HttpResponse& r) {
        std::string len = r.header("content-length");
        if (r.status == 206) {
          uint64_t start = 0;
          int64_t total = -1;
          if (!parse_content_range(r.header("content-range"), start, total) ||
              start != t.range_begin + have) {
            fatal = cat("unexpected Content-Range '", r.header("content-range"), "' for ", t.what,
                        " (asked from byte ", t.range_begin + have, ")");
            return false;
          }
          if (!t.range_mode && t.size && total >= 0 && uint64_t(total) != *t.size) {
            fatal = cat("the server reports ", total, " bytes for ", t.what, " but the hub metadata says ",
                        *t.size);
            delete_partial = true;
            return false;
          }
          return true;
        }
        if (r.status == 200) {
          if (t.range_mode) {
            range_ignored = true;
            return true;  // on_data stops the transfer at once
          }
          if (have > 0) {
            log_info("the server ignored the Range request; restarting ", t.name, " from the beginning");
            out.truncate(0);
            hasher.reset();
            have = 0;
          }
          if (t.size && !len.empty() && std::strtoull(len.c_str(), nullptr, 10) != *t.size) {
            fatal =
                cat("the server sends ", len, " bytes for ", t.what, " but the hub metadata says ", *t.size);
            return false;
          }
          return true;
        }
        return false;  // an error: the body is kept for the message
      };
      handler.on_data = [&](const char* p, size_t n) {
        if (range_ignored) return false;
        if (t.size && have + n > *t.size) {
          fatal = cat("the server sent more than the expected ", *t.size, " bytes for ", t.what);
          delete_partial = true;
          return false;
        }
        std::string err = out.write(p, n);
        if (!err.empty()) {
          fatal = cat("cannot write ", t.incomplete.string(), ": ", err,
                      " (the partial file is kept; free space and "
                      "run again to resume)");
          return false;
        }
        hasher.update(p, n);
        have += n;
        result.bytes_received += n;
        report(have, false);
        return true;
      };

      HttpResponse r = http.get(t.url, headers, t.follow_redirects, handler);
      if (range_ignored)
        throw RangeNotSupported(cat("the server of ", t.what, " does not support Range requests"));
      if (!fatal.empty()) {
        out.close();
        if (delete_partial) std::filesystem::remove(t.incomplete, ec);
        fail(fatal);
      }
      std::string why;
      if (r.curl_code == 0 && (r.status == 200 || r.status == 206)) {
        if (!t.size) break;  // the server says the body is complete
        if (have == *t.size) break;
        why = cat("the transfer of ", t.what, " ended at ", have, " of ", *t.size, " bytes");
      } else if (r.curl_code == 0 && r.status == 416 && !t.range_mode) {
        why = cat("the server refused to resume ", t.what, " (HTTP 416); restarting from the beginning");
        out.truncate(0);
        hasher.reset();
        have = 0;
      } else {
        bool http_ok = r.status == 200 || r.status == 206 || r.status == 0;
        bool transient = http_ok ? is_transient_transport(r.curl_code) : is_transient_status(r.status);
        why = describe_failure(http_ok ? HttpResponse{0, {}, {}, {}, r.curl_code, r.curl_error} : r, t.what,
                               t.token_sent);
        if (!transient) fail(why);
      }
      failures = have > have_before ? 1 : failures + 1;
      if (failures >= policy.max_attempts) {
        fail(why, "; gave up after ", failures, " attempts without progress. The partial file ",
             t.incomplete.string(), " is kept: run again to resume");
      }
      double d = backoff_delay_s(policy, failures, retry_after_seconds(r));
      log_warn(why, "; retrying in ", d, " s");
      sleep_s(d);
    }

    out.sync();
    out.close();
    std::string got, expected = t.hash.hex;
    if (t.hash.kind != ExpectedHash::Kind::None) {
      got = stream_kind == ExpectedHash::Kind::None ? git_blob_sha1_file(t.incomplete) : hasher.hex();
    }
    if (got != expected) {
      std::filesystem::remove(t.incomplete, ec);
      if (resumed && !restarted) {
        log_warn(t.name, ": ", t.hash.name(),
                 " mismatch after resuming a partial download (stale partial file?); "
                 "downloading it again from the beginning");
        restarted = true;
        continue;
      }
      fail("checksum mismatch for ", t.what, ": expected ", t.hash.name(), " ", expected, ", got ", got,
           ". The damaged download was deleted; run the command again to retry");
    }
    if (!t.final_path.empty()) {
      if (t.final_path.has_parent_path()) std::filesystem::create_directories(t.final_path.parent_path(), ec);
      if (::rename(t.incomplete.c_str(), t.final_path.c_str()) != 0) {
        fail("cannot move ", t.incomplete.string(), " to ", t.final_path.string(), ": ",
             std::strerror(errno));
      }
      sync_dir(t.final_path.parent_path());
    }
    report(have, true);
    return result;
  }
}

}  // namespace a2f::hub
