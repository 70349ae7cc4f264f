// A small HTTP client over libcurl's easy API, just what the model downloader needs: HEAD without following
// redirects (to read the hub's metadata headers on the 302 to the CDN), and GET with the body streamed to a
// handler. One easy handle per client, so connections are reused. Not thread-safe: one client per thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace a2f::hub {

using HeaderList = std::vector<std::string>;  // "Name: value" lines

struct HttpResponse {
  long status = 0;                                           // 0 when no response arrived
  std::vector<std::pair<std::string, std::string>> headers;  // of the final response; names lower-case
  std::string body;                                          // kept only when not streamed (capped at 64 kB)
  std::string effective_url;                                 // after redirects curl followed
  int curl_code = 0;                                         // CURLcode; 0 = the exchange completed
  std::string curl_error;                                    // curl's message when curl_code != 0
  bool aborted_by_handler = false;                           // the body handler stopped the transfer
  std::string header(std::string_view lower_name) const;     // first value or ""
  bool has_header(std::string_view lower_name) const;
};

// Streaming body: on_start sees the final status and headers before the first body byte and returns true to
// receive the body via on_data (which returns false to abort), false to have it kept in HttpResponse::body.
struct BodyHandler {
  std::function<bool(const HttpResponse&)> on_start;
  std::function<bool(const char*, size_t)> on_data;
};

struct HttpClientOptions {
  long connect_timeout_s = 15;
  long stall_timeout_s = 60;
  bool offline = false;  // every request throws: offline mode must never reach the network
  std::string user_agent = "arc2face.cpp/0.1.0";
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse head(const std::string& url, const HeaderList& headers);
  HttpResponse get(const std::string& url, const HeaderList& headers, bool follow_redirects,
                   const BodyHandler& handler = {});
  uint64_t requests_made() const { return requests_; }

 private:
  HttpResponse perform(const std::string& url, const HeaderList& headers, bool head, bool follow,
                       const BodyHandler* handler);
  HttpClientOptions options_;
  void* curl_ = nullptr;
  uint64_t requests_ = 0;
};

// Resolves a Location header against the URL it came from ("/x" or "x" relative, or absolute).
std::string resolve_location(const std::string& base_url, const std::string& location);
// scheme://host[:port] of a URL ("" when it has none).
std::string url_origin(const std::string& url);
// Percent-encodes each '/'-separated segment of a repository path (like urllib.parse.quote with safe='/').
std::string url_quote_path(std::string_view path);
// Percent-encodes everything but unreserved characters (quote with safe='').
std::string url_quote_all(std::string_view s);

// Retry-After in seconds (delta-seconds form); negative when absent or in HTTP-date form.
double retry_after_seconds(const HttpResponse& r);

}  // namespace a2f::hub
