// Read-only view of a whole file through mmap (copy-on-write private mapping: writing into a tensor that
// views the file changes only this process's copy, never the file). Tensors over the mapping keep it alive
// through the storage keepalive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace a2f {

class MappedFile : public std::enable_shared_from_this<MappedFile> {
 public:
  // Throws a2f::Error naming the file when it is missing, not a regular file, or cannot be mapped.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // A storage over the whole mapping that keeps this file mapped while any tensor uses it.
  std::shared_ptr<Storage> storage();

 private:
  MappedFile() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) file into memory; throws naming the file. `max_bytes` bounds what is read.
std::string read_file_bytes(const std::filesystem::path& path, size_t max_bytes = size_t(1) << 30);

}  // namespace a2f
