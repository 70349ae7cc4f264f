// NumPy .npy read/write (format versions 1.0-3.0; little-endian; C order; Fortran order rejected).
#pragma once
#include <filesystem>

#include "core/tensor.h"

namespace a2f {

// Reads f4/f8/f2/i8/i4/u1/b1 arrays (dtype kept; f2 -> F16). Throws a2f::Error naming the file and the problem
// for a malformed header, an unsupported dtype, or a size that does not match the file.
Tensor npy_read(const std::filesystem::path& path);
Tensor npy_parse(const void* data, size_t size, const std::string& what = "npy buffer");
// Writes a host tensor (any dtype above; bf16 is written as float32), atomically (io/atomic_file.h).
void npy_write(const std::filesystem::path& path, const Tensor& t);

}  // namespace a2f
