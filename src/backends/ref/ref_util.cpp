#include "backends/ref/ref_util.h"

#include <cmath>

#include "backends/ref/ref_backend.h"

namespace a2f {

float act_apply(Act act, float x) {
  switch (act) {
    case Act::None: return x;
    case Act::Relu: return x > 0.0f ? x : 0.0f;
    case Act::Silu: return x / (1.0f + std::exp(-x));
    case Act::GeluErf: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Act::GeluTanh: {
      const float k = 0.79788456080286536f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case Act::QuickGelu: return x / (1.0f + std::exp(-1.702f * x));
    case Act::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
  }
  return x;
}

std::unique_ptr<Backend> make_ref_backend() { return std::make_unique<RefBackend>(); }

namespace ref {

std::vector<float> to_f32(const Tensor& t) { return t.to_vector(); }

Tensor from_f32(const std::vector<float>& v, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, DType::F32);
  A2F_ASSERT(static_cast<int64_t>(v.size()) == t.numel());
  float* p = t.data<float>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  return dtype == DType::F32 ? t : t.to(dtype);
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  A2F_CHECK(t.defined(), op, ": ", arg, " is undefined");
  A2F_CHECK(dtype_is_float(t.dtype()), op, ": ", arg, " must be a float tensor, got ", t.desc());
  A2F_CHECK(t.device() == Device::CPU, op, ": ", arg, " is on ", device_name(t.device()),
            ", the CPU backend needs host tensors");
}

int norm_dim(int dim, int ndim, const char* op) {
  int d = dim < 0 ? dim + ndim : dim;
  A2F_CHECK(d >= 0 && d < ndim, op, ": dimension ", dim, " out of range for ", ndim, " dimensions");
  return d;
}

}  // namespace ref
}  // namespace a2f
