// A minimal, strictly validated ZIP reader for PyTorch checkpoints (torch.save's zip format, written by
// miniz): central directory (with ZIP64 records), local headers, STORED entries only. Entries are byte ranges
// of the caller's buffer (an mmap), so tensor data is never copied. Compressed, encrypted, multi-disk or
// inconsistent archives are refused with an a2f::Error naming the archive and the entry.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace a2f {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // absolute offset of the entry's bytes in the buffer
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

class ZipArchive {
 public:
  // Validates the whole directory against a buffer of `size` bytes; `what` names the source in errors.
  static ZipArchive parse(const void* data, size_t size, const std::string& what);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;  // nullptr when absent
  const uint8_t* entry_data(const ZipEntry& e) const { return base_ + e.data_offset; }

 private:
  const uint8_t* base_ = nullptr;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// True when the buffer starts with a ZIP local file header ("PK\3\4") or is an empty archive ("PK\5\6").
bool zip_has_magic(const void* data, size_t size);

}  // namespace a2f
