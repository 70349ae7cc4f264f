#include "hub/hub_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "hub/fs_util.h"
#include "hub/manifest.h"

namespace a2f::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string read_token_file(const std::filesystem::path& p) {
  std::error_code ec;
  if (p.empty() || !std::filesystem::is_regular_file(p, ec)) return {};
  return trim(read_text_file(p, 64 * 1024));
}

std::filesystem::path expand_user(const std::string& p) {
  if (p.size() >= 1 && p[0] == '~' && (p.size() == 1 || p[1] == '/')) {
    std::string home = env("HOME");
    if (!home.empty()) return std::filesystem::path(home + p.substr(1));
  }
  return std::filesystem::path(p);
}

}  // namespace

bool env_flag_is_true(const char* value) {
  if (!value) return false;
  std::string v = trim(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return char(std::toupper(c)); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

std::filesystem::path user_cache_dir() {
  std::string xdg = env("XDG_CACHE_HOME");
  if (!xdg.empty()) return expand_user(xdg);
  std::string home = env("HOME");
  if (!home.empty()) return std::filesystem::path(home) / ".cache";
  return std::filesystem::path(".cache");
}

HubConfig hub_config_from_env() {
  HubConfig c;
  c.detector_sha256 = kDetectorSha256;
  std::string endpoint = env("HF_ENDPOINT");
  if (!endpoint.empty()) c.endpoint = endpoint;
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();

  std::string home = env("HF_HOME");
  c.hf_home = home.empty() ? user_cache_dir() / "huggingface" : expand_user(home);
  std::string cache = env("HF_HUB_CACHE");
  if (cache.empty()) cache = env("HUGGINGFACE_HUB_CACHE");
  c.hub_cache = cache.empty() ? c.hf_home / "hub" : expand_user(cache);

  std::string a2f_cache = env("ARC2FACE_CACHE");
  c.arc2face_cache = a2f_cache.empty() ? user_cache_dir() / "arc2face" : expand_user(a2f_cache);

  c.offline = env_flag_is_true(std::getenv("HF_HUB_OFFLINE"));

  c.token = trim(env("HF_TOKEN"));
  if (c.token.empty()) c.token = trim(env("HUGGING_FACE_HUB_TOKEN"));
  if (c.token.empty()) {
    std::string token_path = env("HF_TOKEN_PATH");
    c.token = read_token_file(token_path.empty() ? c.hf_home / "token" : expand_user(token_path));
  }

  std::string zip_url = env("ARC2FACE_ANTELOPEV2_URL");
  if (!zip_url.empty()) c.antelopev2_url = zip_url;
  return c;
}

}  // namespace a2f::hub
