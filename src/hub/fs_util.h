// Small POSIX file helpers for the hub layer: whole-file reads of small files, atomic writes (temp + fsync +
// rename), an exclusive advisory lock compatible with Python's filelock (flock), free-space queries.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace a2f::hub {

// Reads at most max_bytes of a small text file; "" when it does not exist or cannot be read.
std::string read_text_file(const std::filesystem::path& p, size_t max_bytes = 1 << 20);

// Writes content to p atomically (io/atomic_file.h), creating parent folders, and syncs the folder. Throws
// a2f::Error.
void write_file_atomic(const std::filesystem::path& p, const std::string& content);

// fsync of a folder, so that a rename in it survives a power loss (errors ignored).
void sync_dir(const std::filesystem::path& dir);

// Bytes free for an unprivileged user on the file system holding p (or its nearest existing parent);
// UINT64_MAX when unknown.
uint64_t free_bytes(const std::filesystem::path& p);

// "1.23 GB", "512 kB", "17 B" (decimal units, as download tools print them).
std::string human_bytes(uint64_t n);

// Exclusive lock on a lock file (created with its folders), held until destruction. Uses flock(), which is
// what Python's filelock.FileLock uses on Unix, so a concurrent huggingface_hub download of the same blob
// waits for us and we for it.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& lock_path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace a2f::hub
