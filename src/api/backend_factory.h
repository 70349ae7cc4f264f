// Backend selection for the public API (the api layer is the one that knows every backend).
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"

namespace a2f {

// "cpu" (oneDNN + own kernels), "ref" (scalar reference), "cuda" (when built with -DA2F_CUDA=ON).
// `threads`: the CPU backend's worker threads per op, on whichever thread runs it (0: all cores); the ref
// backend is single-threaded. Throws a2f::Error for an unknown or unavailable backend.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads);

}  // namespace a2f
