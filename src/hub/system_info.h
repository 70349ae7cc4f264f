// What the machine offers, for `arc2face doctor`: CPU model and vector extensions, cores, memory, and NVIDIA
// GPUs seen through the driver library (dlopen("libcuda.so.1"): works in any build, with or without CUDA).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace a2f::hub {

struct CpuInfo {
  std::string model;
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_bf16 = false, avx512_fp16 = false;
  bool amx_bf16 = false;
  unsigned logical_cores = 0;  // online
  unsigned usable_cores = 0;   // in this process's affinity mask
};

struct MemoryInfo {
  uint64_t total = 0;      // bytes, MemTotal
  uint64_t available = 0;  // bytes, MemAvailable
};

struct GpuDevice {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  uint64_t memory = 0;
};

struct GpuInfo {
  bool driver_loaded = false;  // libcuda.so.1 found and cuInit succeeded
  std::string note;            // why not, when not
  int driver_version = 0;      // e.g. 13000 for 13.0
  std::vector<GpuDevice> devices;
};

CpuInfo probe_cpu();
MemoryInfo probe_memory();
GpuInfo probe_gpu();

}  // namespace a2f::hub
