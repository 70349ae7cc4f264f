// Debug dumps: a TensorHook that writes every named intermediate tensor of a forward pass to `dir`/<name>.npy
// (f32, on the host), to diff against a reference dump of the Python modules with the same names.
#pragma once
#include <filesystem>

#include "nn/layers.h"

namespace a2f::nn {

// Creates `dir` if needed. Each call of the hook (re)writes <dir>/<tensor name>.npy; unnamed tensors are
// skipped.
TensorHook npy_dump_hook(const std::filesystem::path& dir, Backend& backend);

}  // namespace a2f::nn
