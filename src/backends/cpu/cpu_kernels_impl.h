// Portable implementations of the kernel table (cpu_kernels.h), written as plain loops the compiler
// vectorises for the ISA of the including translation unit. Include only from cpu_kernels_<isa>.cpp after
// defining A2F_CPU_ISA (the namespace). Everything here has internal linkage and uses no std templates (see
// cpu_kernels.h for why).
#pragma once
#include <cmath>
#include <cstdint>

#include "backends/cpu/cpu_kernels.h"

#ifndef A2F_CPU_ISA
#error "define A2F_CPU_ISA before including cpu_kernels_impl.h"
#endif

namespace a2f::cpu::A2F_CPU_ISA {
namespace {

inline float bf16_(uint16_t h) {
  return __builtin_bit_cast(float, static_cast<uint32_t>(h) << 16);
}
inline uint16_t to_bf16_(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u = __builtin_bit_cast(uint32_t, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Element access of the typed kernels: f32 as is; bf16 (uint16_t) widened exactly on load and rounded to
// nearest even on store, so a bf16 kernel computes exactly what the f32 kernel computes on the widened values
// and rounds each output once.
inline float ld_(const float* p, int64_t i) {
  return p[i];
}
inline float ld_(const uint16_t* p, int64_t i) {
  return bf16_(p[i]);
}

// y[0, n) = bf16(x[0, n)). An ISA may supply a faster exact version (A2F_CPU_STORE_BF16, declared by the
// including translation unit).
inline void store_bf16_(const float* x, uint16_t* y, int64_t n) {
#ifdef A2F_CPU_STORE_BF16
  A2F_CPU_STORE_BF16(x, y, n);
#else
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16_(x[i]);
#endif
}

// y[i] = f(i) for i < n: the f32 values straight into an f32 array; for bf16, blocks of f32 values in a
// small buffer rounded by store_bf16_ (cheaper than vectorised rounding inside every kernel loop).
constexpr int64_t kEmitBlock = 256;
template <class F>
inline void emit_(float* y, int64_t n, const F& f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(i);
}
template <class F>
inline void emit_(uint16_t* y, int64_t n, const F& f) {
  float buf[kEmitBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kEmitBlock) {
    const int64_t len = n - i0 < kEmitBlock ? n - i0 : kEmitBlock;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) buf[j] = f(i0 + j);
    store_bf16_(buf, y + i0, len);
  }
}

inline float fmax_(float a, float b) {
  return a > b ? a : b;
}
inline float fmin_(float a, float b) {
  return a < b ? a : b;
}

// e^x to ~2 ulp: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation 5e-9),
// 2^n built in the exponent bits. Inputs below -87 give 0 (e^-87 = 1.6e-38, the edge of the normal
// range); inputs above 88 are clamped (e^88 = 1.65e38).
inline float exp_(float x) {
  const float xc = fmin_(fmax_(x, -87.0f), 88.0f);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float nf = (xc * 1.44269504088896341f + shifter) - shifter;
  const float r = (xc - nf * 0.693145751953125f) - nf * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(nf) + 127) << 23;
  const float scale = __builtin_bit_cast(float, bits);
  return x < -87.0f ? 0.0f : p * scale;
}

// erf to ~1.5e-7 absolute: |z| < 1: z P(z^2); 1 <= |z| < 4: 1 - e^{-z^2} R(1/z) (R fits erfc(z) e^{z^2});
// |z| >= 4: 1. Coefficients: least-squares fits on Chebyshev nodes (numpy), made for this project.
inline float erf_(float z) {
  const float a = z < 0.0f ? -z : z;
  const float t = a * a;
  float p = 7.933493901636217e-05f;
  p = p * t - 0.0008034846654275703f;
  p = p * t + 0.005191218377892595f;
  p = p * t - 0.02685539945238852f;
  p = p * t + 0.11283625725095256f;
  p = p * t - 0.3761262987767697f;
  p = p * t + 1.1283791665931542f;
  const float small = a * p;
  const float u = 1.0f / fmax_(a, 1.0f);
  float q = -0.01813566914714397f;
  q = q * u + 0.12200977554102703f;
  q = q * u - 0.35671499615948177f;
  q = q * u + 0.5782348999576538f;
  q = q * u - 0.5072547916102952f;
  q = q * u + 0.05141485684937125f;
  q = q * u + 0.5576755451705853f;
  q = q * u + 0.0003539744572548492f;
  const float large = 1.0f - exp_(-t) * q;
  const float r = a < 1.0f ? small : (a < 4.0f ? large : 1.0f);
  return z < 0.0f ? -r : r;
}

template <Act A>
inline float act_(float x) {
  if constexpr (A == Act::None) return x;
  if constexpr (A == Act::Relu) return fmax_(x, 0.0f);
  if constexpr (A == Act::Silu) return x / (1.0f + exp_(-x));
  if constexpr (A == Act::GeluErf) return 0.5f * x * (1.0f + erf_(x * 0.70710678118654752f));
  if constexpr (A == Act::GeluTanh) {
    const float y = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    const float th = 1.0f - 2.0f / (exp_(2.0f * y) + 1.0f);  // tanh(y)
    return 0.5f * x * (1.0f + th);
  }
  if constexpr (A == Act::QuickGelu) return x / (1.0f + exp_(-1.702f * x));
  if constexpr (A == Act::Sigmoid) return 1.0f / (1.0f + exp_(-x));
  return x;
}

template <Act A, class T>
void act_loop(const T* x, T* y, int64_t n) {
  emit_(y, n, [x](int64_t i) { return act_<A>(ld_(x, i)); });
}

template <class T>
void act_t(Act a, const T* x, T* y, int64_t n) {
  switch (a) {
    case Act::None:
      act_loop<Act::None>(x, y, n);
      break;
    case Act::Relu:
      act_loop<Act::Relu>(x, y, n);
      break;
    case Act::Silu:
      act_loop<Act::Silu>(x, y, n);
      break;
    case Act::GeluErf:
      act_loop<Act::GeluErf>(x, y, n);
      break;
    case Act::GeluTanh:
      act_loop<Act::GeluTanh>(x, y, n);
      break;
    case Act::QuickGelu:
      act_loop<Act::QuickGelu>(x, y, n);
      break;
    case Act::Sigmoid:
      act_loop<Act::Sigmoid>(x, y, n);
      break;
  }
}
void act(Act a, const float* x, float* y, int64_t n) {
  act_t(a, x, y, n);
}
void act_bf16(Act a, const uint16_t* x, uint16_t* y, int64_t n) {
  act_t(a, x, y, n);
}

template <Act A, class T>
void affine_loop(const T* x, T* y, int64_t n, float shift, float mul, float add) {
  emit_(y, n, [=](int64_t i) { return act_<A>((ld_(x, i) - shift) * mul + add); });
}

template <class T>
void affine_act_t(const T* x, T* y, int64_t n, float shift, float mul, float add, Act a) {
  switch (a) {
    case Act::None:
      affine_loop<Act::None>(x, y, n, shift, mul, add);
      break;
    case Act::Relu:
      affine_loop<Act::Relu>(x, y, n, shift, mul, add);
      break;
    case Act::Silu:
      affine_loop<Act::Silu>(x, y, n, shift, mul, add);
      break;
    case Act::GeluErf:
      affine_loop<Act::GeluErf>(x, y, n, shift, mul, add);
      break;
    case Act::GeluTanh:
      affine_loop<Act::GeluTanh>(x, y, n, shift, mul, add);
      break;
    case Act::QuickGelu:
      affine_loop<Act::QuickGelu>(x, y, n, shift, mul, add);
      break;
    case Act::Sigmoid:
      affine_loop<Act::Sigmoid>(x, y, n, shift, mul, add);
      break;
  }
}
void affine_act(const float* x, float* y, int64_t n, float shift, float mul, float add, Act a) {
  affine_act_t(x, y, n, shift, mul, add, a);
}
void affine_act_bf16(const uint16_t* x, uint16_t* y, int64_t n, float shift, float mul, float add, Act a) {
  affine_act_t(x, y, n, shift, mul, add, a);
}

#define A2F_BINARY_LOOPS(EXPR)                         \
  switch (op) {                                        \
    case BinaryOp::Add: {                              \
      emit_(y, n, [&](int64_t i) { return EXPR(+); }); \
    } break;                                           \
    case BinaryOp::Sub: {                              \
      emit_(y, n, [&](int64_t i) { return EXPR(-); }); \
    } break;                                           \
    case BinaryOp::Mul: {                              \
      emit_(y, n, [&](int64_t i) { return EXPR(*); }); \
    } break;                                           \
    case BinaryOp::Div: {                              \
      emit_(y, n, [&](int64_t i) { return EXPR(/); }); \
    } break;                                           \
  }

template <class TA, class TB, class TY>
void binary_vv(BinaryOp op, const TA* a, const TB* b, TY* y, int64_t n) {
#define A2F_E(OP) ld_(a, i) OP ld_(b, i)
  A2F_BINARY_LOOPS(A2F_E)
#undef A2F_E
}
template <class TA, class TY>
void binary_vs(BinaryOp op, const TA* a, float b, TY* y, int64_t n) {
#define A2F_E(OP) ld_(a, i) OP b
  A2F_BINARY_LOOPS(A2F_E)
#undef A2F_E
}
template <class TB, class TY>
void binary_sv(BinaryOp op, float a, const TB* b, TY* y, int64_t n) {
#define A2F_E(OP) a OP ld_(b, i)
  A2F_BINARY_LOOPS(A2F_E)
#undef A2F_E
}
#undef A2F_BINARY_LOOPS

template <class TY>
void binary_to(BinaryOp op, const void* a, const void* b, TY* y, int64_t n, unsigned f) {
  const bool ab = f & kBinaryABf16, bb = f & kBinaryBBf16;
  if (f & kBinaryAScalar) {
    const float av = *static_cast<const float*>(a);
    if (bb)
      binary_sv(op, av, static_cast<const uint16_t*>(b), y, n);
    else
      binary_sv(op, av, static_cast<const float*>(b), y, n);
  } else if (f & kBinaryBScalar) {
    const float bv = *static_cast<const float*>(b);
    if (ab)
      binary_vs(op, static_cast<const uint16_t*>(a), bv, y, n);
    else
      binary_vs(op, static_cast<const float*>(a), bv, y, n);
  } else if (ab && bb) {
    binary_vv(op, static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), y, n);
  } else if (ab) {
    binary_vv(op, static_cast<const uint16_t*>(a), static_cast<const float*>(b), y, n);
  } else if (bb) {
    binary_vv(op, static_cast<const float*>(a), static_cast<const uint16_t*>(b), y, n);
  } else {
    binary_vv(op, static_cast<const float*>(a), static_cast<const float*>(b), y, n);
  }
}

void binary(BinaryOp op, const void* a, const void* b, void* y, int64_t n, unsigned flags) {
  if (flags & kBinaryYBf16)
    binary_to(op, a, b, static_cast<uint16_t*>(y), n, flags);
  else
    binary_to(op, a, b, static_cast<float*>(y), n, flags);
}

// Sum of x[i] (Sq: of (x[i] - m)^2) over i < n in an order fixed by this code, not by the vectoriser, so a
// bf16 row sums exactly like its widened f32 copy: 32 lane sums over i mod 32 (two 16-wide accumulators, GCC
// vector extensions: zmm on AVX-512, ymm pairs on AVX2, xmm quadruples on SSE2; the tail padded with values
// that add exactly 0), then the lanes added pairwise. Vectors are passed by reference only (no ABI
// differences between the ISA builds).
typedef float f32x16_ __attribute__((vector_size(64)));
typedef uint32_t u32x16_ __attribute__((vector_size(64)));
inline void ld16_(const float* p, f32x16_& v) {
  __builtin_memcpy(&v, p, sizeof(v));
}
inline void ld16_(const uint16_t* p, f32x16_& v) {  // written out: GCC makes this a vpmovzxwd + vpslld
  const u32x16_ w = {p[0], p[1], p[2],  p[3],  p[4],  p[5],  p[6],  p[7],
                     p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]};
  v = reinterpret_cast<f32x16_>(w << 16);
}
constexpr int kSumLanes = 32;
template <bool Sq, class T>
inline void lane_add_(const T* p, float m, f32x16_& acc) {
  f32x16_ v;
  ld16_(p, v);
  if constexpr (Sq) v = (v - m) * (v - m);
  acc += v;
}
template <bool Sq, class T>
inline float lane_sum_(const T* x, int64_t n, float m) {
  f32x16_ a0 = {}, a1 = {};  // +0: a lane never becomes -0, so adding +0 leaves it exact
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    lane_add_<Sq>(x + i, m, a0);
    lane_add_<Sq>(x + i + 16, m, a1);
  }
  if (i < n) {  // the tail, widened, padded with 0 (sum) or m (squares: (m - m)^2 = 0)
    float t[kSumLanes];
    int j = 0;
    for (; i + j < n; ++j) t[j] = ld_(x, i + j);
    for (; j < kSumLanes; ++j) t[j] = Sq ? m : 0.0f;
    lane_add_<Sq>(t, m, a0);
    lane_add_<Sq>(t + 16, m, a1);
  }
  f32x16_ s = a0 + a1;  // lanes j and j + 16, then j + 8, j + 4, j + 2, j + 1
  s += __builtin_shufflevector(s, s, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
  s += __builtin_shufflevector(s, s, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  s += __builtin_shufflevector(s, s, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  s += __builtin_shufflevector(s, s, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  return s[0];
}

template <class T>
void mean_var_t(const T* x, int64_t n, float* mean, float* var) {
  if (n <= 0) {
    *mean = 0.0f;
    *var = 0.0f;
    return;
  }
  const float m = lane_sum_<false>(x, n, 0.0f) / static_cast<float>(n);
  const float q = lane_sum_<true>(x, n, m);
  *mean = m;
  *var = q / static_cast<float>(n);
}
void mean_var(const float* x, int64_t n, float* mean, float* var) {
  mean_var_t(x, n, mean, var);
}
void mean_var_bf16(const uint16_t* x, int64_t n, float* mean, float* var) {
  mean_var_t(x, n, mean, var);
}

template <class T>
void layer_norm_row_t(const T* x, T* y, int64_t n, const float* gamma, const float* beta, float eps) {
  float m, v;
  mean_var_t(x, n, &m, &v);
  const float rstd = 1.0f / std::sqrt(v + eps);
  if (gamma && beta) {
    emit_(y, n, [&](int64_t i) { return (ld_(x, i) - m) * rstd * gamma[i] + beta[i]; });
  } else {
    emit_(y, n, [&](int64_t i) {
      return (ld_(x, i) - m) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    });
  }
}
void layer_norm_row(const float* x, float* y, int64_t n, const float* gamma, const float* beta, float eps) {
  layer_norm_row_t(x, y, n, gamma, beta, eps);
}
// Rows up to kWidenRow values are widened once into a stack buffer and read three times from there (the
// same values, so the same result as reading the bf16 row each time).
constexpr int64_t kWidenRow = 2048;
void layer_norm_row_bf16(const uint16_t* x, uint16_t* y, int64_t n, const float* gamma, const float* beta,
                         float eps) {
  if (n > kWidenRow) return layer_norm_row_t(x, y, n, gamma, beta, eps);
  float w[kWidenRow];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) w[i] = bf16_(x[i]);
  const float* wp = w;
  float m, v;
  mean_var_t(wp, n, &m, &v);
  const float rstd = 1.0f / std::sqrt(v + eps);
  if (gamma && beta) {
    emit_(y, n, [&](int64_t i) { return (wp[i] - m) * rstd * gamma[i] + beta[i]; });
  } else {
    emit_(y, n, [&](int64_t i) {
      return (wp[i] - m) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    });
  }
}

void softmax_row(const float* x, float* y, int64_t n) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = fmax_(m, x[i]);
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    y[i] = exp_(x[i] - m);
    s += y[i];
  }
  const float inv = 1.0f / s;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

template <class T>
void geglu_row_t(const T* x, T* y, int64_t h) {
  emit_(y, h, [&](int64_t j) { return ld_(x, j) * act_<Act::GeluErf>(ld_(x, h + j)); });
}
void geglu_row(const float* x, float* y, int64_t h) {
  geglu_row_t(x, y, h);
}
void geglu_row_bf16(const uint16_t* x, uint16_t* y, int64_t h) {
  geglu_row_t(x, y, h);
}

void qk_tile(const float* q, int64_t ldq, const float* kt, int64_t ldk, float* s, int64_t lds, int64_t rows,
             int64_t cols, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) sr[c] = 0.0f;
    for (int64_t t = 0; t < d; ++t) {
      const float qv = q[r * ldq + t];
      const float* kr = kt + t * ldk;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) sr[c] += qv * kr[c];
    }
  }
}

float softmax_online(float* s, int64_t n, float* m, float* l) {
  float mx = *m;
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) mx = fmax_(mx, s[i]);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    s[i] = exp_(s[i] - mx);
    sum += s[i];
  }
  const float corr = exp_(*m - mx);  // m = -inf on the first block: 0
  *l = *l * corr + sum;
  *m = mx;
  return corr;
}

void pv_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, float* o, int64_t ldo,
             const float* corr, int64_t rows, int64_t keys, int64_t dv) {
  for (int64_t r = 0; r < rows; ++r) {
    float* orow = o + r * ldo;
    const float cr = corr[r];
#pragma omp simd
    for (int64_t c = 0; c < dv; ++c) orow[c] *= cr;
    for (int64_t j = 0; j < keys; ++j) {
      const float pj = p[r * ldp + j];
      const float* vr = v + j * ldv;
#pragma omp simd
      for (int64_t c = 0; c < dv; ++c) orow[c] += pj * vr[c];
    }
  }
}

void to_bf16(const float* x, uint16_t* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16_(x[i]);
}

void from_bf16(const uint16_t* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_(x[i]);
}

void qk_tile_bf16(const uint32_t* q2, int64_t ldq, const uint16_t* kt2, int64_t ldk, float* s, int64_t lds,
                  int64_t rows, int64_t cols, int64_t d2, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) sr[c] = 0.0f;
    for (int64_t t = 0; t < d2; ++t) {
      const uint32_t qp = q2[r * ldq + t];
      const float q0 = bf16_(static_cast<uint16_t>(qp & 0xffffu)),
                  q1 = bf16_(static_cast<uint16_t>(qp >> 16));
      const uint16_t* kr = kt2 + t * ldk * 2;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) sr[c] += q0 * bf16_(kr[2 * c]) + q1 * bf16_(kr[2 * c + 1]);
    }
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) sr[c] *= scale;
  }
}

void pv_tile_bf16(const uint32_t* p2, int64_t ldp, const uint16_t* v2, int64_t ldv, float* o, int64_t ldo,
                  const float* corr, int64_t rows, int64_t keys2, int64_t dv) {
  for (int64_t r = 0; r < rows; ++r) {
    float* orow = o + r * ldo;
    const float cr = corr[r];
#pragma omp simd
    for (int64_t c = 0; c < dv; ++c) orow[c] *= cr;
    for (int64_t j = 0; j < keys2; ++j) {
      const uint32_t pp = p2[r * ldp + j];
      const float p0 = bf16_(static_cast<uint16_t>(pp & 0xffffu)),
                  p1 = bf16_(static_cast<uint16_t>(pp >> 16));
      const uint16_t* vr = v2 + j * ldv * 2;
#pragma omp simd
      for (int64_t c = 0; c < dv; ++c) orow[c] += p0 * bf16_(vr[2 * c]) + p1 * bf16_(vr[2 * c + 1]);
    }
  }
}

}  // namespace

// The portable table for this ISA.
inline Kernels portable_kernels(Isa isa, const char* name) {
  Kernels k{};
  k.isa = isa;
  k.name = name;
  k.act = act;
  k.affine_act = affine_act;
  k.binary = binary;
  k.mean_var = mean_var;
  k.layer_norm_row = layer_norm_row;
  k.softmax_row = softmax_row;
  k.geglu_row = geglu_row;
  k.act_bf16 = act_bf16;
  k.affine_act_bf16 = affine_act_bf16;
  k.mean_var_bf16 = mean_var_bf16;
  k.layer_norm_row_bf16 = layer_norm_row_bf16;
  k.geglu_row_bf16 = geglu_row_bf16;
  k.qk_tile = qk_tile;
  k.softmax_online = softmax_online;
  k.pv_tile = pv_tile;
  k.qk_tile_bf16 = qk_tile_bf16;
  k.pv_tile_bf16 = pv_tile_bf16;
  k.to_bf16 = to_bf16;
  k.from_bf16 = from_bf16;
  return k;
}

}  // namespace a2f::cpu::A2F_CPU_ISA
