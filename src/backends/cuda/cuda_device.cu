// Device-side part of GPU discovery: plain C++17 (CMake 3.25 cannot ask nvcc for C++20), status strings out.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "backends/cuda/cuda_runtime_shim.h"

namespace a2f::cuda_detail {
namespace {

__global__ void iota_kernel(float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<float>(i) * 0.5f;
}

std::string err(cudaError_t e, const char* what) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

}  // namespace

std::string list_devices(std::vector<RawDeviceInfo>* out) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorNoDevice) return "";
  if (e != cudaSuccess) return err(e, "cudaGetDeviceCount");
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess) return err(e, "cudaGetDeviceProperties");
    RawDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.total_bytes = p.totalGlobalMem;
    if (cudaSetDevice(i) == cudaSuccess) {
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) d.free_bytes = free_b;
    }
    out->push_back(d);
  }
  return "";
}

std::string selftest(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return err(e, "cudaSetDevice");
  const int n = 1000;
  float* d = nullptr;
  e = cudaMalloc(&d, n * sizeof(float));
  if (e != cudaSuccess) return err(e, "cudaMalloc");
  iota_kernel<<<(n + 255) / 256, 256>>>(d, n);
  std::vector<float> h(n);
  e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (e != cudaSuccess) return err(e, "kernel");
  for (int i = 0; i < n; ++i)
    if (h[i] != static_cast<float>(i) * 0.5f) return "kernel produced a wrong value";
  return "";
}

}  // namespace a2f::cuda_detail
