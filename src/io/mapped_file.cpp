#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace a2f {

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int open_regular(const std::filesystem::path& path, size_t& size) {
  const std::string p = path.string();
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '", p, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("cannot stat '", p, "': ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'", p, "' is not a regular file");
  }
  size = static_cast<size_t>(st.st_size);
  return fd;
}
}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path.string();
  Fd fd;
  fd.fd = open_regular(path, m->size_);
  if (m->size_ == 0) return m;
  // Read-only: no page is ever dirtied, so MappedStorage::release_pages can drop any page and get the same
  // bytes back from the file.
  void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (p == MAP_FAILED) fail("cannot map '", m->path_, "' (", m->size_, " bytes): ", std::strerror(errno));
  m->data_ = static_cast<uint8_t*>(p);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

namespace {
// A storage over the whole read-only mapping; release_pages drops whole pages from this process's memory.
class MappedStorage final : public Storage {
 public:
  MappedStorage(uint8_t* data, size_t bytes, std::shared_ptr<const MappedFile> file)
      : file_(std::move(file)) {
    data_ = data;
    bytes_ = bytes;
  }
  bool pages_releasable() const override { return true; }
  void release_pages(size_t offset, size_t bytes) const override {
    if (offset >= bytes_ || bytes == 0) return;
    bytes = std::min(bytes, bytes_ - offset);
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data_) + offset;
    const uintptr_t first = (begin + page - 1) / page * page, last = (begin + bytes) / page * page;
    // Only pages wholly inside the range: neighbours (another tensor's bytes) stay resident.
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }

 private:
  std::shared_ptr<const MappedFile> file_;
};
}  // namespace

std::shared_ptr<Storage> MappedFile::storage() {
  return std::make_shared<MappedStorage>(data_, size_, shared_from_this());
}

std::string read_file_bytes(const std::filesystem::path& path, size_t max_bytes) {
  Fd fd;
  size_t size = 0;
  fd.fd = open_regular(path, size);
  A2F_CHECK(size <= max_bytes, "'", path.string(), "' is too large (", size, " bytes; at most ", max_bytes,
            " expected)");
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t r = ::read(fd.fd, out.data() + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read '", path.string(), "': ", std::strerror(errno));
    if (r == 0) fail("cannot read '", path.string(), "': file shrank while reading");
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace a2f
