#include "backends/cuda/cuda_device.h"

#include "backends/cuda/cuda_runtime_shim.h"
#include "core/error.h"

namespace a2f {

std::vector<CudaDeviceInfo> cuda_devices() {
  std::vector<cuda_detail::RawDeviceInfo> raw;
  std::string e = cuda_detail::list_devices(&raw);
  A2F_CHECK(e.empty(), "CUDA: ", e);
  std::vector<CudaDeviceInfo> out;
  for (const auto& r : raw) out.push_back({r.index, r.name, r.cc_major, r.cc_minor, r.total_bytes, r.free_bytes});
  return out;
}

std::string cuda_selftest(int device) { return cuda_detail::selftest(device); }

}  // namespace a2f
