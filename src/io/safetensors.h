// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the raw data. Read
// through mmap; tensors are zero-copy views of the mapping (copied only when a tensor's data is misaligned
// for its type).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"

namespace a2f {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute offset of the data section (8 + header length)
};

struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__" (e.g. {"format": "pt"}); empty when absent
};

// Parses and validates the header against a buffer of `size` bytes: header length sane (< 100 MB, within the
// buffer), valid JSON, supported dtypes (F32 F16 BF16 F64 I64 I32 U8 I8 BOOL), non-negative shapes without
// overflow, data_offsets inside the data section with begin <= end == begin + numel * dtype size, and no two
// tensors overlapping. `what` names the source in errors.
SafetensorsHeader safetensors_parse_header(const void* data, size_t size, const std::string& what);

// Tensors as views of `buffer` (kept alive by them).
SafetensorsFile safetensors_parse(const std::shared_ptr<Storage>& buffer, const std::string& what);

// Maps the file and parses it.
SafetensorsFile safetensors_open(const std::filesystem::path& path);

// Writes tensors (host, any dtype) and metadata as a safetensors file, atomically (temp file + rename).
void safetensors_write(const std::filesystem::path& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The safetensors dtype name ("F32", "BF16", ...) of a DType.
const char* safetensors_dtype_name(DType t);

}  // namespace a2f
