#include "hub/system_info.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "hub/fs_util.h"

namespace a2f::hub {

CpuInfo probe_cpu() {
  CpuInfo c;
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the vector state (XGETBV).
  c.avx2 = __builtin_cpu_supports("avx2");
  c.fma = __builtin_cpu_supports("fma");
  c.avx512f = __builtin_cpu_supports("avx512f");
  c.avx512bw = __builtin_cpu_supports("avx512bw");
  c.avx512vl = __builtin_cpu_supports("avx512vl");
  unsigned a, b, cx, d;
  if (__get_cpuid(1, &a, &b, &cx, &d)) c.f16c = (cx >> 29) & 1;
  if (c.avx512f && __get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512_bf16 = (a >> 5) & 1;
  if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
    c.avx512_fp16 = c.avx512f && ((d >> 23) & 1);
    c.amx_bf16 = (d >> 22) & 1;
  }
  std::string cpuinfo = read_text_file("/proc/cpuinfo", 1 << 16);
  size_t p = cpuinfo.find("model name");
  if (p != std::string::npos) {
    size_t colon = cpuinfo.find(':', p), eol = cpuinfo.find('\n', p);
    if (colon != std::string::npos && colon < eol) {
      c.model = cpuinfo.substr(colon + 1, eol - colon - 1);
      while (!c.model.empty() && c.model.front() == ' ') c.model.erase(c.model.begin());
    }
  }
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  c.logical_cores = online > 0 ? unsigned(online) : std::thread::hardware_concurrency();
  cpu_set_t set;
  c.usable_cores =
      ::sched_getaffinity(0, sizeof(set), &set) == 0 ? unsigned(CPU_COUNT(&set)) : c.logical_cores;
  return c;
}

MemoryInfo probe_memory() {
  MemoryInfo m;
  std::string s = read_text_file("/proc/meminfo", 1 << 14);
  auto field = [&](const char* name) -> uint64_t {
    size_t p = s.find(name);
    if (p == std::string::npos) return 0;
    return std::strtoull(s.c_str() + p + std::strlen(name), nullptr, 10) * 1024;  // kB
  };
  m.total = field("MemTotal:");
  m.available = field("MemAvailable:");
  if (m.total == 0) m.total = uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE));
  return m;
}

GpuInfo probe_gpu() {
  GpuInfo g;
  void* lib = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) {
    g.note = "no NVIDIA driver library (libcuda.so.1) found";
    return g;
  }
  using InitFn = int (*)(unsigned);
  using IntFn = int (*)(int*);
  using GetFn = int (*)(int*, int);
  using NameFn = int (*)(char*, int, int);
  using MemFn = int (*)(size_t*, int);
  using AttrFn = int (*)(int*, int, int);
  auto sym = [&](const char* n) { return ::dlsym(lib, n); };
  auto init = reinterpret_cast<InitFn>(sym("cuInit"));
  auto version = reinterpret_cast<IntFn>(sym("cuDriverGetVersion"));
  auto count = reinterpret_cast<IntFn>(sym("cuDeviceGetCount"));
  auto get = reinterpret_cast<GetFn>(sym("cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(sym("cuDeviceGetName"));
  auto mem = reinterpret_cast<MemFn>(sym("cuDeviceTotalMem_v2"));
  auto attr = reinterpret_cast<AttrFn>(sym("cuDeviceGetAttribute"));
  if (!init || !count || !get || !name) {
    g.note = "libcuda.so.1 lacks the expected entry points";
    return g;  // the library stays loaded: unloading a driver library is not worth the risk
  }
  int rc = init(0);
  if (rc != 0) {
    g.note = cat("cuInit failed with CUresult ", rc, rc == 100 ? " (no CUDA-capable device)" : "");
    return g;
  }
  g.driver_loaded = true;
  if (version) version(&g.driver_version);
  int n = 0;
  if (count(&n) != 0) n = 0;
  for (int i = 0; i < n; ++i) {
    int dev = 0;
    if (get(&dev, i) != 0) continue;
    GpuDevice d;
    char buf[256] = {0};
    if (name(buf, sizeof(buf) - 1, dev) == 0) d.name = buf;
    size_t bytes = 0;
    if (mem && mem(&bytes, dev) == 0) d.memory = bytes;
    if (attr) {
      attr(&d.cc_major, 75, dev);  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
      attr(&d.cc_minor, 76, dev);  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
    }
    g.devices.push_back(d);
  }
  if (g.devices.empty()) g.note = "the NVIDIA driver reports no device";
  return g;
}

}  // namespace a2f::hub
