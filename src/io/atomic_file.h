// Atomic file replacement: readers see the old file or the complete new one, never a part of it.
#pragma once
#include <cstddef>
#include <filesystem>
#include <initializer_list>
#include <string>

namespace a2f {

struct ByteRange {
  const void* data;
  size_t size;
};

// Writes the concatenation of `parts` to a temporary file in the folder of `path` (so that the rename stays
// on one file system), flushes it to disk (fsync) and renames it over `path`. On failure the temporary file
// is removed and a2f::Error names the file and the system error. The temporary is `path` + `tmp_suffix`; the
// default ".tmp.<pid>.<n>" is unique per process and call. A caller that removes leftovers of a crash by name
// passes a fixed suffix (and must then be the only writer of `path`).
void write_file_atomic(const std::filesystem::path& path, std::initializer_list<ByteRange> parts,
                       const std::string& tmp_suffix = {});
void write_file_atomic(const std::filesystem::path& path, const ByteRange* parts, size_t count,
                       const std::string& tmp_suffix = {});

}  // namespace a2f
