#include "hub/fs_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"

namespace a2f::hub {

std::string read_text_file(const std::filesystem::path& p, size_t max_bytes) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return {};
  std::string s;
  char buf[8192];
  size_t n;
  while (s.size() < max_bytes && (n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  std::fclose(f);
  if (s.size() > max_bytes) s.resize(max_bytes);
  return s;
}

void write_file_atomic(const std::filesystem::path& p, const std::string& content) {
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  a2f::write_file_atomic(p, {{content.data(), content.size()}});
  sync_dir(p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path());
}

void sync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

uint64_t free_bytes(const std::filesystem::path& p) {
  std::filesystem::path q = p;
  std::error_code ec;
  while (!q.empty() && !std::filesystem::exists(q, ec)) {
    if (q == q.parent_path()) break;
    q = q.parent_path();
  }
  if (q.empty()) q = ".";
  struct statvfs st;
  if (::statvfs(q.c_str(), &st) != 0) return UINT64_MAX;
  return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 999.5 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  }
  return buf;
}

FileLock::FileLock(const std::filesystem::path& lock_path) {
  std::error_code ec;
  if (lock_path.has_parent_path()) std::filesystem::create_directories(lock_path.parent_path(), ec);
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) fail("cannot open lock file ", lock_path.string(), ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  log_info("waiting for another process downloading the same file (lock ", lock_path.string(), ")");
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      fail("cannot lock ", lock_path.string(), ": ", std::strerror(e));
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace a2f::hub
