// Shared helpers of the model tests: the reference backend, fixture arrays, expected-error checks.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "common/test_util.h"
#include "io/npy.h"

namespace a2f::test {

inline Backend& ref_backend() {
  static std::unique_ptr<Backend> be = make_ref_backend();
  return *be;
}

inline Backend& cpu_backend() {
  static std::unique_ptr<Backend> be = make_cpu_backend();
  return *be;
}

// "ref" or "cpu": the parity tests run on both.
inline Backend& backend_named(const std::string& name) {
  return name == "cpu" ? cpu_backend() : ref_backend();
}

inline Tensor ref_array(const std::string& name) {
  return npy_read(fixture("ref/" + name + ".npy"));
}

// Runs f, expects an a2f::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected an a2f::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace a2f::test
