// NVIDIA GPU discovery and a self-test kernel. Built only with -DA2F_CUDA=ON. The CUDA op backend itself is
// not written yet (it needs a GPU to develop and measure; see the CUDA issue).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace a2f {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_bytes = 0, free_bytes = 0;
};

// Devices visible to the CUDA runtime. Throws a2f::Error with the runtime's message when the driver is
// missing or broken; returns an empty list when there is simply no GPU.
std::vector<CudaDeviceInfo> cuda_devices();

// Runs a small kernel on `device` and checks its result; returns "" when it works, else what failed.
std::string cuda_selftest(int device);

}  // namespace a2f
