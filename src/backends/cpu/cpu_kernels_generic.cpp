// The kernel table for any x86-64 (or other) CPU: the portable loops at the baseline ISA.
#define A2F_CPU_ISA generic
#include "backends/cpu/cpu_kernels_impl.h"

namespace a2f::cpu {
const Kernels* kernels_generic() {
  static const Kernels k = generic::portable_kernels(Isa::Generic, "generic");
  return &k;
}
}  // namespace a2f::cpu
