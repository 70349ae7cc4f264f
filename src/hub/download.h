// One resumable, verified, atomic file download over HTTP:
//  - bytes go to an `.incomplete` file that a later run resumes with a Range request (also across restarts);
//  - transient failures (connection reset or dropped, timeouts, HTTP 5xx, 408, 429 with Retry-After) are
//    retried with exponential backoff, resuming where the data stopped; 401/403/404 are not retried;
//  - after the last byte the size and the hash (sha256, or git's blob sha1 for small non-LFS files) are
//    checked; on a mismatch the `.incomplete` file is deleted (a resumed download whose old prefix was stale
//    is restarted once from zero), so no damaged file is ever left in place;
//  - the file is fsync'ed and renamed into its final path.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/error.h"
#include "hub/hash.h"
#include "hub/http.h"
#include "hub/hub_config.h"

namespace a2f::hub {

struct TransferProgress {
  std::string name;    // what is being fetched (a repository path)
  uint64_t done = 0;   // bytes of this file on disk
  uint64_t total = 0;  // 0 when unknown
  int index = 0;       // 1-based position in the batch
  int count = 0;       // files in the batch
  bool finished = false;
};
using ProgressFn = std::function<void(const TransferProgress&)>;

struct ProgressContext {
  ProgressFn fn;
  int index = 1;
  int count = 1;
};

struct DownloadTarget {
  std::string url;
  HeaderList headers;  // never logged (may hold the token)
  bool follow_redirects = true;
  std::filesystem::path incomplete;  // bytes accumulate here
  std::filesystem::path final_path;  // renamed here after verification; empty: stays at `incomplete`
  std::optional<uint64_t> size;      // expected size, when known
  ExpectedHash hash;                 // verified after the last byte
  bool range_mode = false;           // the file is bytes [range_begin, range_begin + size) of the resource
  uint64_t range_begin = 0;
  std::string name;         // for progress and messages, e.g. "arc2face/config.json"
  std::string what;         // for messages, e.g. "FoivosPar/Arc2Face arc2face/config.json (<url>)"
  bool token_sent = false;  // shapes the message of a 401
};

struct DownloadResult {
  uint64_t bytes_received = 0;
  bool resumed = false;  // started from an existing .incomplete
  int attempts = 0;
};

// Thrown in range_mode when the server answers a Range request with the whole resource (200).
class RangeNotSupported : public Error {
 public:
  using Error::Error;
};

DownloadResult download_file(HttpClient& http, const DownloadTarget& target, const RetryPolicy& policy,
                             const ProgressContext& progress = {});

// A request that is retried on transient failures (HEAD of the hub metadata, small ranged reads). Returns the
// last response; throws a2f::Error when every attempt failed transiently.
HttpResponse request_with_retry(const std::function<HttpResponse()>& request, const RetryPolicy& policy,
                                const std::string& what);

// Classification and messages shared by the downloader and the hub client.
bool is_transient_status(long status);
bool is_transient_transport(int curl_code);
std::string describe_failure(const HttpResponse& r, const std::string& what, bool token_sent);
double backoff_delay_s(const RetryPolicy& policy, int failures, double retry_after_s);

}  // namespace a2f::hub
