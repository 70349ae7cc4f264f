// The full-width SCRFD-10G-bnkps / IResNet100 graphs of scripts/make_full_width_onnx.py, generated once into
// the build folder (about 280 MB; never committed). Shared by the full-width test and usable by bench_face.
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace a2f::test {

constexpr int kFullWidthVersion = 6;  // scripts/make_full_width_onnx.py VERSION

struct FullWidth {
  std::filesystem::path dir;
  bool available = false;
  std::string why;  // when not available
};

inline bool full_width_current(const std::filesystem::path& dir) {
  std::ifstream f(dir / "manifest.json");
  if (!f.good()) return false;
  try {
    return nlohmann::json::parse(f).value("version", 0) == kFullWidthVersion;
  } catch (...) {
    return false;
  }
}

// Generates the graphs when missing or stale (serialised across processes with a lock file). Not available
// when /usr/bin/python3 has no torch/onnx (the script exits 77) or generation fails.
inline FullWidth full_width_models() {
  FullWidth fw;
  fw.dir = std::filesystem::path(A2F_BIN_DIR).parent_path() / "face_full_width";
  const std::filesystem::path lock = fw.dir.string() + ".lock";
  const int fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd >= 0) ::flock(fd, LOCK_EX);
  if (!full_width_current(fw.dir)) {
    const std::string cmd = "/usr/bin/python3 '" + std::string(A2F_SOURCE_DIR) +
                            "/scripts/make_full_width_onnx.py' --out '" + fw.dir.string() + "' > '" +
                            fw.dir.string() + ".log' 2>&1";
    const int st = std::system(cmd.c_str());
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc == 77)
      fw.why = "/usr/bin/python3 has no torch/onnx: cannot generate the full-width graphs";
    else if (rc != 0)
      fw.why = "scripts/make_full_width_onnx.py failed (see " + fw.dir.string() + ".log)";
  }
  fw.available = fw.why.empty() && full_width_current(fw.dir);
  if (fw.why.empty() && !fw.available) fw.why = "full-width graphs missing after generation";
  if (fd >= 0) {
    ::flock(fd, LOCK_UN);
    ::close(fd);
  }
  return fw;
}

}  // namespace a2f::test
