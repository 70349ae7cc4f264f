// The kernel table for AVX2 + FMA CPUs: the portable loops compiled with -mavx2 -mfma -mf16c.
#define A2F_CPU_ISA avx2
#include "backends/cpu/cpu_kernels_impl.h"

namespace a2f::cpu {
const Kernels* kernels_avx2() {
  static const Kernels k = avx2::portable_kernels(Isa::Avx2, "avx2");
  return &k;
}
}  // namespace a2f::cpu
