// Inspecting model and array files (`arc2face info FILE`): every tensor's name, dtype, shape and size,
// totals, and the file's metadata. Formats: safetensors, PyTorch zip checkpoints (.bin/.pt/.ckpt, read by the
// safe unpickler: no code in the file is ever run), NumPy .npy.
//
//   arc2face::FileInfo fi = arc2face::inspect_file("encoder/pytorch_model.bin");
//   std::fputs(arc2face::format_file_info(fi, /*as_json=*/false).c_str(), stdout);
//
// Thread safety: both functions are reentrant.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arc2face/arc2face.h"

namespace arc2face {

struct TensorInfo {
  std::string name;
  std::string dtype;  // "f32", "f16", "bf16", "f64", "i64", "i32", "u8", "i8", "bool"
  std::vector<int64_t> shape;
  uint64_t bytes = 0;  // numel * element size
};

struct FileInfo {
  std::string path;
  std::string format;  // "safetensors", "pytorch-zip", "npy"
  uint64_t file_bytes = 0;
  std::map<std::string, std::string> metadata;  // safetensors "__metadata__"; empty for other formats
  std::vector<TensorInfo> tensors;              // sorted by name
  uint64_t total_params = 0;                    // sum of numel
  uint64_t total_bytes = 0;                     // sum of bytes
};

// Reads the file (memory-mapped; tensor data is not copied). The format is chosen by content. Throws
// arc2face::Error naming the file and the problem for anything missing, malformed or not allowed.
FileInfo inspect_file(const std::string& path);

// A table for people, or (as_json) one JSON object:
// {"path", "format", "file_bytes", "metadata": {}, "tensors": [{"name", "dtype", "shape", "bytes"}],
//  "total": {"tensors", "parameters", "bytes"}}.
std::string format_file_info(const FileInfo& info, bool as_json);

}  // namespace arc2face
