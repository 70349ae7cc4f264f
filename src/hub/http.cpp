#include "hub/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace a2f::hub {
namespace {

constexpr size_t kMaxKeptBody = 64 * 1024;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return r;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace((unsigned char)s[b])) ++b;
  while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

struct Transfer {
  HttpResponse* resp = nullptr;
  const BodyHandler* handler = nullptr;
  CURL* curl = nullptr;
  bool started = false;
  bool streaming = false;
};

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirect hop, 100-continue): start over
    t->resp->headers.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers.emplace_back(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  return n;
}

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (!t->started) {
    t->started = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->resp->status = code;
    t->streaming = t->handler && t->handler->on_start && t->handler->on_start(*t->resp);
  }
  if (t->streaming) {
    if (!t->handler->on_data(data, n)) {
      t->resp->aborted_by_handler = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    return n;
  }
  if (t->resp->body.size() < kMaxKeptBody) {
    t->resp->body.append(data, std::min(n, kMaxKeptBody - t->resp->body.size()));
  }
  return n;
}

}  // namespace

std::string HttpResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

bool HttpResponse::has_header(std::string_view lower_name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& kv) { return kv.first == lower_name; });
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  global_init();
  curl_ = curl_easy_init();
  A2F_CHECK(curl_, "curl_easy_init failed");
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResponse HttpClient::head(const std::string& url, const HeaderList& headers) {
  return perform(url, headers, true, false, nullptr);
}

HttpResponse HttpClient::get(const std::string& url, const HeaderList& headers, bool follow_redirects,
                             const BodyHandler& handler) {
  return perform(url, headers, false, follow_redirects, &handler);
}

HttpResponse HttpClient::perform(const std::string& url, const HeaderList& headers, bool head, bool follow,
                                 const BodyHandler* handler) {
  // Offline mode is checked by every caller; this is the last line of defence.
  A2F_CHECK(!options_.offline, "offline mode (HF_HUB_OFFLINE) is on: refusing to request ", url);
  ++requests_;
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  HttpResponse resp;
  Transfer t{&resp, handler, c};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Accept-Encoding: identity");

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  resp.status = code;
  char* eff = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) resp.effective_url = eff;
  resp.curl_code = int(rc);
  if (rc != CURLE_OK) resp.curl_error = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  return resp;
}

std::string url_origin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  size_t path = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, path);
}

std::string resolve_location(const std::string& base_url, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  if (location.rfind("//", 0) == 0) {
    size_t scheme = base_url.find("://");
    return base_url.substr(0, scheme + 1) + location;
  }
  if (!location.empty() && location[0] == '/') return url_origin(base_url) + location;
  std::string base = base_url.substr(0, base_url.find_first_of("?#"));
  size_t slash = base.rfind('/');
  return base.substr(0, slash + 1) + location;
}

std::string url_quote_all(std::string_view s) {
  static const char* digits = "0123456789ABCDEF";
  std::string r;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      r.push_back(char(c));
    } else {
      r.push_back('%');
      r.push_back(digits[c >> 4]);
      r.push_back(digits[c & 15]);
    }
  }
  return r;
}

std::string url_quote_path(std::string_view path) {
  std::string r;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    r += url_quote_all(
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    r.push_back('/');
    start = slash + 1;
  }
  return r;
}

double retry_after_seconds(const HttpResponse& r) {
  std::string v = r.header("retry-after");
  if (v.empty() || !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }))
    return -1;
  return std::atof(v.c_str());
}

}  // namespace a2f::hub
