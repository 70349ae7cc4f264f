// A test fixture run once per CPU kernel ISA (generic, AVX2, AVX-512): `cpu` is a cpu backend forced to that
// ISA (skipped when the machine lacks it), `ref` the reference backend.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"

namespace a2f::test {

class CpuIsaTest : public ::testing::TestWithParam<a2f::cpu::Isa> {
 protected:
  void SetUp() override {
    if (!a2f::cpu::isa_supported(GetParam())) GTEST_SKIP() << "CPU lacks " << a2f::cpu::isa_name(GetParam());
    cpu = a2f::make_cpu_backend(GetParam());
  }
  std::unique_ptr<a2f::Backend> ref = a2f::make_ref_backend();
  std::unique_ptr<a2f::Backend> cpu;
};

inline const auto kAllIsas =
    ::testing::Values(a2f::cpu::Isa::Generic, a2f::cpu::Isa::Avx2, a2f::cpu::Isa::Avx512);

inline std::string isa_test_name(const ::testing::TestParamInfo<a2f::cpu::Isa>& info) {
  return a2f::cpu::isa_name(info.param);
}

}  // namespace a2f::test
