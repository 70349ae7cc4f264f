// Checkpoint loading: every tensor of a weight file by its own name, zero-copy over an mmap where the format
// allows. Formats: safetensors, PyTorch zip pickles (.bin/.pt/.ckpt) read by a safe unpickler that accepts
// only the globals a state dict needs and never executes code.
#pragma once
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

#include "core/tensor.h"

namespace a2f {

using StateDict = std::map<std::string, Tensor>;

// Chooses the format by content (zip magic / safetensors header). Throws a2f::Error naming the file and the
// problem for anything malformed, truncated or not allowed.
StateDict load_state_dict(const std::filesystem::path& path);
StateDict load_safetensors(const std::filesystem::path& path);
StateDict load_torch_checkpoint(const std::filesystem::path& path);

// File formats recognised from their first bytes (the dispatch used by load_state_dict and `arc2face info`).
enum class FileFormat { Unknown, Safetensors, TorchZip, TorchLegacy, Npy };
FileFormat detect_file_format(const void* data, size_t size);
const char* file_format_name(FileFormat f);

}  // namespace a2f
