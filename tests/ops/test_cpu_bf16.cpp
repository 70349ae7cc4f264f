// The CPU backend's native bf16 elementwise, normalisation and GEGLU kernels, once per ISA this CPU supports.
// A bf16 op reads and writes bf16 directly, but its result is defined as the f32 op on the exactly widened
// inputs, rounded once to bf16 (round to nearest even, NaN kept quiet): the reference backend's semantics and
// what the backend computed before through f32 copies. The tests compare the bits of the two, so a kernel
// that rounds twice, flushes subnormals, or sums in another order than its f32 twin fails. Binary ops (one
// f32 operation per element) are compared with the reference backend exactly; the others with the backend's
// own f32 op, whose results test_cpu_ops.cpp checks against the reference backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "core/dtype.h"
#include "ops/cpu_isa_test.h"
#include "ops/op_util.h"

namespace {
using a2f::Act;
using a2f::BinaryOp;
using a2f::DType;
using a2f::Shape;
using a2f::Tensor;
using a2f::test::non_contiguous;
using a2f::test::randn;

const Act kActs[] = {Act::None,     Act::Relu,      Act::Silu,   Act::GeluErf,
                     Act::GeluTanh, Act::QuickGelu, Act::Sigmoid};
const BinaryOp kOps[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};

// The bits of a bf16 tensor, every NaN as 0x7fc0: which NaN operand's sign and payload an f32 operation
// passes on (x86 keeps the first source's) depends on the operand order the compiler picks for a commutative
// operation, which IEEE 754 leaves open.
std::vector<uint16_t> bits(const Tensor& t) {
  EXPECT_EQ(t.dtype(), DType::BF16);
  if (t.dtype() != DType::BF16) return {};
  const Tensor c = t.contiguous();
  const uint16_t* p = c.data<uint16_t>();
  std::vector<uint16_t> v(p, p + c.numel());
  for (uint16_t& e : v)
    if ((e & 0x7fffu) > 0x7f80u) e = 0x7fc0;
  return v;
}
// The same for f32 (every NaN as 0x7fc00000).
std::vector<uint32_t> bits32(const Tensor& t) {
  std::vector<uint32_t> v;
  for (float f : t.to_vector()) v.push_back(f != f ? 0x7fc00000u : __builtin_bit_cast(uint32_t, f));
  return v;
}
// The f32 result rounded once to bf16.
std::vector<uint16_t> rounded(const Tensor& f32) {
  EXPECT_EQ(f32.dtype(), DType::F32);
  return bits(f32.to(DType::BF16));
}
Tensor widen(const Tensor& t) {
  return t.to(DType::F32);
}

// bf16 values of shape `shape`: seeded normal values with NaN, infinities, signed zeros, subnormals, the
// largest finite values and their neighbours spread over them.
Tensor with_specials(const Shape& shape, uint32_t seed, float scale) {
  Tensor t = randn(shape, seed, scale, 0.0f, DType::BF16);
  const uint16_t sp[] = {0x7fc1, 0xffc0, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0001, 0x8001, 0x0040,
                         0x807f, 0x0080, 0x7f7f, 0xff7f, 0x3f81, 0x1f80, 0x2000, 0x9fff};
  uint16_t* p = t.data<uint16_t>();
  const int64_t n = t.numel(), k = static_cast<int64_t>(sizeof(sp) / sizeof(sp[0]));
  for (int64_t i = 0; i < k && i * 7 < n; ++i) p[(i * 7 + seed) % n] = sp[i];
  return t;
}

class CpuBf16 : public a2f::test::CpuIsaTest {};

TEST_P(CpuBf16, ConversionKernelsRoundToNearestEven) {
  // f32 values whose bf16 rounding is easy to get wrong: ties (to even), subnormals (hardware conversion
  // flushes them), NaN payloads (kept quiet), overflow to infinity.
  const uint32_t in[] = {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x3f807fffu, 0x00000001u, 0x00400000u,
                         0x007fffffu, 0x80400000u, 0x00018000u, 0x007f8000u, 0x80008000u, 0x7fc00001u,
                         0x7f800001u, 0xffa00000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu, 0x7f7f8000u,
                         0x00000000u, 0x80000000u, 0x3f800000u, 0xc0490fdbu, 0x0001ffffu, 0x00008001u};
  std::vector<float> x;
  for (int rep = 0; rep < 2; ++rep)  // 48 values: full vectors and a tail
    for (uint32_t u : in) x.push_back(__builtin_bit_cast(float, u));
  const a2f::cpu::Kernels& k = *a2f::cpu::kernels_for(GetParam());
  std::vector<uint16_t> y(x.size());
  k.to_bf16(x.data(), y.data(), static_cast<int64_t>(x.size()));
  std::vector<float> back(x.size());
  k.from_bf16(y.data(), back.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(y[i], a2f::f32_to_bf16(x[i])) << "f32 bits " << std::hex << __builtin_bit_cast(uint32_t, x[i]);
    EXPECT_EQ(__builtin_bit_cast(uint32_t, back[i]), uint32_t{y[i]} << 16);
  }
}

TEST_P(CpuBf16, BinaryIsTheF32OpRounded) {
  const std::pair<Shape, Shape> cases[] = {
      {{2, 320, 3, 5}, {2, 320, 3, 5}},  // residual add
      {{2, 320, 3, 5}, {2, 320, 1, 1}},  // + time embedding per channel
      {{2, 77, 320}, {320}},             // + bias over the last dim
      {{7, 23}, {1}},                    // scalar b
      {{1}, {7, 23}},                    // scalar a
      {{1, 5}, {3, 1}},                  // both broadcast
      {{3, 1, 7}, {1, 5, 1}},            // inner scalar, outer vector
      {{4, 1}, {1}},                     // one value per row
      {{1}, {1}},
      {{3, 4099}, {3, 4099}},  // long rows: vector body and tail
  };
  int i = 0;
  for (const auto& [sa, sb] : cases) {
    const Tensor a = with_specials(sa, 100 + i, 2.0f), b = with_specials(sb, 200 + i, 1.5f);
    const Tensor af = widen(a), bf = widen(b);
    for (BinaryOp op : kOps) {
      // One f32 operation per element: the reference backend's result is exact.
      const std::vector<uint16_t> r = bits(ref->binary(op, a, b));
      EXPECT_EQ(bits(cpu->binary(op, a, b)), r) << "case " << i << " op " << int(op);
      EXPECT_EQ(bits(cpu->binary(op, non_contiguous(a), non_contiguous(b))), r)
          << "case " << i << " op " << int(op);
      EXPECT_EQ(bits(cpu->binary(op, a, b)), rounded(cpu->binary(op, af, bf)))
          << "case " << i << " op " << int(op);
      // Mixed dtypes: the result takes a's dtype.
      EXPECT_EQ(bits(cpu->binary(op, a, bf)), r) << "case " << i << " op " << int(op);
      EXPECT_EQ(bits32(cpu->binary(op, af, b)), bits32(ref->binary(op, af, b)))
          << "case " << i << " op " << int(op);
    }
    ++i;
  }
  // Subnormal results: products and differences of tiny values round in the subnormal range.
  const Tensor tiny = randn({2, 333}, 7, 1e-20f, 0.0f, DType::BF16),
               tiny2 = randn({2, 333}, 8, 1e-19f, 0.0f, DType::BF16);
  for (BinaryOp op : kOps) EXPECT_EQ(bits(cpu->binary(op, tiny, tiny2)), bits(ref->binary(op, tiny, tiny2)));
  // f16 operands still go through f32.
  const Tensor h = randn({2, 5}, 9, 1.0f, 0.0f, DType::F16), g = randn({2, 5}, 10, 1.0f, 0.0f, DType::BF16);
  EXPECT_EQ(bits(cpu->add(g, h)), rounded(cpu->add(widen(g), widen(h))));
  EXPECT_EQ(cpu->add(h, g).dtype(), DType::F16);
}

TEST_P(CpuBf16, UnaryScaleGegluAreTheF32OpsRounded) {
  for (const Shape& s : {Shape{7, 23}, Shape{40000}}) {  // a tail; several parallel blocks
    const Tensor x = with_specials(s, 1, 4.0f), xf = widen(x);
    for (Act a : kActs) {
      EXPECT_EQ(bits(cpu->unary(a, x)), rounded(cpu->unary(a, xf))) << a2f::act_name(a);
      EXPECT_EQ(bits(cpu->unary(a, non_contiguous(x))), rounded(cpu->unary(a, xf))) << a2f::act_name(a);
    }
    EXPECT_EQ(bits(cpu->scale(x, -0.7f, 0.25f)), rounded(cpu->scale(xf, -0.7f, 0.25f)));
  }
  for (const Shape& s : {Shape{2, 7, 46}, Shape{3, 2 * 1280}, Shape{5, 2}}) {
    const Tensor x = with_specials(s, 2, 3.0f), xf = widen(x);
    EXPECT_EQ(bits(cpu->geglu(x)), rounded(cpu->geglu(xf)));
    EXPECT_EQ(bits(cpu->geglu(non_contiguous(x))), rounded(cpu->geglu(xf)));
  }
}

TEST_P(CpuBf16, NormsAreTheF32OpsRounded) {
  struct G {
    Shape x;
    int groups;
    Act act;
  };
  // Group lengths below, at and above the 32 partial sums, and not multiples of them.
  const G gcases[] = {{{2, 320, 3, 5}, 32, Act::Silu},   {{1, 7, 23}, 7, Act::None},
                      {{2, 64, 1, 1}, 32, Act::Silu},    {{1, 23, 77}, 1, Act::GeluErf},
                      {{2, 96, 9, 7}, 32, Act::None},    {{1, 32, 16, 16}, 8, Act::QuickGelu},
                      {{2, 320, 16, 16}, 32, Act::Silu}, {{3, 4}, 2, Act::Relu}};
  int i = 0;
  for (const G& c : gcases) {
    const Tensor x = randn(c.x, 300 + i, 2.0f, 5.0f, DType::BF16), xf = widen(x);
    const Tensor g = randn({c.x[1]}, 310 + i, 0.5f, 1.0f), b = randn({c.x[1]}, 320 + i);
    EXPECT_EQ(bits(cpu->group_norm(x, c.groups, g, b, 1e-5f, c.act)),
              rounded(cpu->group_norm(xf, c.groups, g, b, 1e-5f, c.act)))
        << "case " << i;
    const Tensor gb = g.to(DType::BF16), bb = b.to(DType::BF16);  // bf16 weights, as a bf16 model has
    EXPECT_EQ(bits(cpu->group_norm(non_contiguous(x), c.groups, gb, bb, 1e-6f, c.act)),
              rounded(cpu->group_norm(xf, c.groups, gb, bb, 1e-6f, c.act)))
        << "case " << i;
    EXPECT_EQ(bits(cpu->group_norm(x, c.groups, Tensor(), Tensor(), 1e-5f)),
              rounded(cpu->group_norm(xf, c.groups, Tensor(), Tensor(), 1e-5f)))
        << "case " << i;
    ++i;
  }
  for (const Shape& s :
       {Shape{2, 77, 320}, Shape{3, 7}, Shape{1, 768}, Shape{5, 1}, Shape{2, 33, 1000},
        Shape{3, 2100}}) {  // rows widened into a buffer up to 2048 values, read directly above
    const Tensor x = randn(s, 400, 3.0f, -2.0f, DType::BF16), xf = widen(x);
    const Tensor g = randn({s.back()}, 401, 1.0f, 0.0f, DType::BF16), b = randn({s.back()}, 402);
    EXPECT_EQ(bits(cpu->layer_norm(x, g, b, 1e-5f)), rounded(cpu->layer_norm(xf, g, b, 1e-5f)));
    EXPECT_EQ(bits(cpu->layer_norm(non_contiguous(x), Tensor(), b, 1e-5f)),
              rounded(cpu->layer_norm(xf, Tensor(), b, 1e-5f)));
    EXPECT_EQ(bits(cpu->layer_norm(x, Tensor(), Tensor(), 1e-6f)),
              rounded(cpu->layer_norm(xf, Tensor(), Tensor(), 1e-6f)));
  }
  for (const Shape& s : {Shape{7, 23}, Shape{2, 4096}}) {
    const Tensor x = randn(s, 500, 8.0f, 50.0f, DType::BF16);
    EXPECT_EQ(bits(cpu->softmax(x)), rounded(cpu->softmax(widen(x))));
  }
}

TEST_P(CpuBf16, MeanVarOfBf16IsThatOfTheWidenedValues) {
  const a2f::cpu::Kernels& k = *a2f::cpu::kernels_for(GetParam());
  for (int64_t n : {1, 2, 31, 32, 33, 95, 1000, 40960}) {
    const Tensor x = randn({n}, static_cast<uint32_t>(n), 3.0f, 7.0f, DType::BF16), xf = widen(x);
    float m0, v0, m1, v1;
    k.mean_var_bf16(x.data<uint16_t>(), n, &m0, &v0);
    k.mean_var(xf.data<float>(), n, &m1, &v1);
    EXPECT_EQ(__builtin_bit_cast(uint32_t, m0), __builtin_bit_cast(uint32_t, m1)) << n;
    EXPECT_EQ(__builtin_bit_cast(uint32_t, v0), __builtin_bit_cast(uint32_t, v1)) << n;
    // and they are the mean and variance (independent double computation)
    double s = 0, q = 0;
    const std::vector<float> v = xf.to_vector();
    for (float e : v) s += e;
    const double mean = s / n;
    for (float e : v) q += (e - mean) * (e - mean);
    EXPECT_NEAR(m1, mean, 1e-5 * 7.0) << n;
    EXPECT_NEAR(v1, q / n, 1e-4 * 9.0) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, CpuBf16, a2f::test::kAllIsas, a2f::test::isa_test_name);

}  // namespace
