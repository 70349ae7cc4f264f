// Helpers of the hub tests: a temporary folder, scoped environment variables, a config pointing at a FakeHub.
#pragma once
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "hub/fake_hub.h"
#include "hub/hub_config.h"

namespace a2f::test {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("a2f_hub_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

// Sets (or unsets, with nullopt) environment variables for a scope, restoring them afterwards.
class ScopedEnv {
 public:
  ScopedEnv& set(const std::string& name, std::optional<std::string> value) {
    const char* old = std::getenv(name.c_str());
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
    return *this;
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

inline void write_file(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << content;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A hub client configuration for the fake hub, with caches under root and millisecond retries.
inline hub::HubConfig test_config(const FakeHub& fake, const std::filesystem::path& root) {
  hub::HubConfig c;
  c.endpoint = fake.endpoint();
  c.hf_home = root / "hf";
  c.hub_cache = root / "hf" / "hub";
  c.arc2face_cache = root / "a2f_cache";
  c.antelopev2_url = fake.endpoint() + "/dl/files/antelopev2.zip";
  c.retry = hub::RetryPolicy{4, 0.001, 0.004};
  c.connect_timeout_s = 5;
  c.stall_timeout_s = 5;
  return c;
}

inline size_t count_requests(const FakeHub& fake, const std::string& method, const std::string& path_prefix) {
  size_t n = 0;
  for (const auto& r : fake.requests())
    if (r.method == method && r.path.rfind(path_prefix, 0) == 0) ++n;
  return n;
}

}  // namespace a2f::test
