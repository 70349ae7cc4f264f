#include "backends/cpu/cpu_kernels.h"

#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace a2f::cpu {

bool isa_supported(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Generic:
      return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == Isa::Generic;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Generic:
      return "generic";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

const Kernels* kernels_for(Isa isa) {
  A2F_CHECK(isa_supported(isa), "this CPU does not support the ", isa_name(isa), " kernels");
  switch (isa) {
    case Isa::Avx512:
      return kernels_avx512();
    case Isa::Avx2:
      return kernels_avx2();
    case Isa::Generic:
      break;
  }
  return kernels_generic();
}

const Kernels* kernels_best() {
  if (const char* env = std::getenv("A2F_CPU_ISA")) {
    const std::string_view s(env);
    if (s == "generic") return kernels_for(Isa::Generic);
    if (s == "avx2") return kernels_for(Isa::Avx2);
    if (s == "avx512") return kernels_for(Isa::Avx512);
    fail("A2F_CPU_ISA=", s, " is not one of generic, avx2, avx512");
  }
  if (isa_supported(Isa::Avx512)) return kernels_avx512();
  if (isa_supported(Isa::Avx2)) return kernels_avx2();
  return kernels_generic();
}

}  // namespace a2f::cpu
