#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace a2f {

namespace {

std::atomic<uint64_t> g_counter{0};

// Writes all of [p, p + n) to fd; false with errno set on failure.
bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const ByteRange* parts, size_t count,
                       const std::string& tmp_suffix) {
  const std::string final_path = path.string();
  const std::string tmp =
      final_path +
      (tmp_suffix.empty() ? cat(".tmp.", static_cast<int64_t>(::getpid()), ".", g_counter++) : tmp_suffix);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write '", final_path, "': ", std::strerror(errno), " (creating '", tmp, "')");
  bool ok = true;
  for (size_t i = 0; ok && i < count; ++i)
    if (parts[i].size) ok = write_all(fd, static_cast<const char*>(parts[i].data), parts[i].size);
  if (ok) ok = ::fsync(fd) == 0;
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), final_path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    fail("cannot write '", final_path, "': renaming '", tmp, "' over it failed: ", std::strerror(err));
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    fail("cannot write '", final_path, "': ", std::strerror(err));
  }
}

void write_file_atomic(const std::filesystem::path& path, std::initializer_list<ByteRange> parts,
                       const std::string& tmp_suffix) {
  write_file_atomic(path, parts.begin(), parts.size(), tmp_suffix);
}

}  // namespace a2f
