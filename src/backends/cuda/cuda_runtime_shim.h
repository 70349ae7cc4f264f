// C++17 interface between the .cu translation units and the C++20 host code of the CUDA backend.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace a2f::cuda_detail {

struct RawDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_bytes = 0, free_bytes = 0;
};

// Each returns "" on success, else the CUDA runtime's error.
std::string list_devices(std::vector<RawDeviceInfo>* out);
std::string selftest(int device);

}  // namespace a2f::cuda_detail
