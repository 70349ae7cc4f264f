#include "io/weights.h"

#include <cstring>

#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/zip_reader.h"

namespace a2f {

FileFormat detect_file_format(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size == 0) return FileFormat::Unknown;
  if (zip_has_magic(p, size)) return FileFormat::TorchZip;
  if (torch_legacy_magic(p, size)) return FileFormat::TorchLegacy;
  if (size >= 6 && std::memcmp(p, "\x93NUMPY", 6) == 0) return FileFormat::Npy;
  if (size >= 9 && p[8] == '{' && p[7] == 0 && p[6] == 0 && p[5] == 0) {  // header length < 2^40, then '{'
    return FileFormat::Safetensors;
  }
  return FileFormat::Unknown;
}

const char* file_format_name(FileFormat f) {
  switch (f) {
    case FileFormat::Safetensors:
      return "safetensors";
    case FileFormat::TorchZip:
      return "pytorch-zip";
    case FileFormat::TorchLegacy:
      return "pytorch-legacy";
    case FileFormat::Npy:
      return "npy";
    case FileFormat::Unknown:
      break;
  }
  return "unknown";
}

StateDict load_state_dict(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  const std::string what = cat("'", path.string(), "'");
  switch (detect_file_format(file->data(), file->size())) {
    case FileFormat::Safetensors:
      return safetensors_parse(file->storage(), what).tensors;
    case FileFormat::TorchZip:
    case FileFormat::TorchLegacy:
      return torch_checkpoint_parse(file->storage(), what);
    case FileFormat::Npy:
      fail(what, ": is a .npy array, not a weight file");
    case FileFormat::Unknown:
      break;
  }
  fail(what, ": unknown weight file format (expected safetensors or a PyTorch zip checkpoint; ", file->size(),
       " bytes)");
}

}  // namespace a2f
