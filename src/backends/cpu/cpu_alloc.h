// Host memory for the CPU backend's outputs and large scratch. Blocks of 1 MiB and more are recycled through
// a process-wide cache of freed blocks (exact size classes, rounded up to 256 KiB) instead of going back to
// the OS: glibc serves such sizes with fresh mmap pages, and first-touch page faults then cost more than the
// op itself (measured: a 42 MB linear output took 51 ms instead of 30). The UNet asks for the same shapes
// every step, so steady-state passes reuse warm blocks. Up to kIdleCap bytes of idle blocks are kept.
#pragma once
#include <cstddef>

#include "core/tensor.h"

namespace a2f::cpu {

inline constexpr size_t kIdleCap = size_t(2) << 30;

// A new contiguous host tensor (uninitialised).
Tensor new_tensor(const Shape& shape, DType dtype);
// Frees every idle cached block.
void release_idle_blocks();
// Bytes currently held idle in the cache (tests).
size_t idle_block_bytes();

}  // namespace a2f::cpu
