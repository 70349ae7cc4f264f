// The kernel table for AVX-512 CPUs: the portable loops compiled with AVX-512 flags, plus hand-written
// register-blocked microkernels for the attention tiles and a vector exp for the online softmax.
// GCC 12 reports its own _mm512_undefined_ps() inside the max/min/reduce intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

namespace a2f::cpu::avx512 {
namespace {
void store_bf16_512(const float* x, uint16_t* y, int64_t n);
}
}  // namespace a2f::cpu::avx512

#define A2F_CPU_ISA avx512
#define A2F_CPU_STORE_BF16 store_bf16_512
#include "backends/cpu/cpu_kernels_impl.h"

namespace a2f::cpu::avx512 {
namespace {

// e^x, same method and accuracy as exp_ in cpu_kernels_impl.h; 2^n applied with scalef (no overflow path).
inline __m512 exp512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.0f);
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~tiny), _mm512_scalef_ps(p, n));
}

// s[R rows][NV * 16 cols] = q[R][d] * kt[d][NV * 16]
template <int R, int NV>
inline void qk_micro(const float* q, int64_t ldq, const float* kt, int64_t ldk, float* s, int64_t lds,
                     int64_t d) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < d; ++t) {
    __m512 kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(kt + t * ldk + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * ldq + t]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(qb, kv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, acc[r][v]);
}

template <int NV>
inline void qk_rows(const float* q, int64_t ldq, const float* kt, int64_t ldk, float* s, int64_t lds,
                    int64_t rows, int64_t d) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) qk_micro<6, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
  switch (rows - r) {
    case 5:
      qk_micro<5, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
      break;
    case 4:
      qk_micro<4, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
      break;
    case 3:
      qk_micro<3, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
      break;
    case 2:
      qk_micro<2, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
      break;
    case 1:
      qk_micro<1, NV>(q + r * ldq, ldq, kt, ldk, s + r * lds, lds, d);
      break;
    default:
      break;
  }
}

void qk_tile512(const float* q, int64_t ldq, const float* kt, int64_t ldk, float* s, int64_t lds,
                int64_t rows, int64_t cols, int64_t d) {
  int64_t c = 0;
  for (; c + 64 <= cols; c += 64) qk_rows<4>(q, ldq, kt + c, ldk, s + c, lds, rows, d);
  switch ((cols - c) / 16) {
    case 3:
      qk_rows<3>(q, ldq, kt + c, ldk, s + c, lds, rows, d);
      break;
    case 2:
      qk_rows<2>(q, ldq, kt + c, ldk, s + c, lds, rows, d);
      break;
    case 1:
      qk_rows<1>(q, ldq, kt + c, ldk, s + c, lds, rows, d);
      break;
    default:
      break;
  }
}

float softmax_online512(float* s, int64_t n, float* m, float* l) {
  __m512 mv = _mm512_set1_ps(*m);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(s + i));
  float mx = _mm512_reduce_max_ps(mv);
  for (; i < n; ++i) mx = fmax_(mx, s[i]);
  const __m512 mb = _mm512_set1_ps(mx);
  __m512 sv = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + i), mb));
    _mm512_storeu_ps(s + i, e);
    sv = _mm512_add_ps(sv, e);
  }
  float sum = _mm512_reduce_add_ps(sv);
  for (; i < n; ++i) {
    s[i] = exp_(s[i] - mx);
    sum += s[i];
  }
  const float corr = exp_(*m - mx);
  *l = *l * corr + sum;
  *m = mx;
  return corr;
}

// o[R rows][NV * 16] = o * corr + p[R][keys] * v[keys][NV * 16]
template <int R, int NV>
inline void pv_micro(const float* p, int64_t ldp, const float* v, int64_t ldv, float* o, int64_t ldo,
                     const float* corr, int64_t keys) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r) {
    const __m512 c = _mm512_set1_ps(corr[r]);
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_mul_ps(_mm512_loadu_ps(o + r * ldo + 16 * x), c);
  }
  for (int64_t j = 0; j < keys; ++j) {
    __m512 vv[NV];
    for (int x = 0; x < NV; ++x) vv[x] = _mm512_loadu_ps(v + j * ldv + 16 * x);
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * ldp + j]);
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_fmadd_ps(pb, vv[x], acc[r][x]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < NV; ++x) _mm512_storeu_ps(o + r * ldo + 16 * x, acc[r][x]);
}

template <int RB, int NV>
inline void pv_rows(const float* p, int64_t ldp, const float* v, int64_t ldv, float* o, int64_t ldo,
                    const float* corr, int64_t rows, int64_t keys) {
  int64_t r = 0;
  for (; r + RB <= rows; r += RB)
    pv_micro<RB, NV>(p + r * ldp, ldp, v, ldv, o + r * ldo, ldo, corr + r, keys);
  for (; r < rows; ++r) pv_micro<1, NV>(p + r * ldp, ldp, v, ldv, o + r * ldo, ldo, corr + r, keys);
}

void pv_tile512(const float* p, int64_t ldp, const float* v, int64_t ldv, float* o, int64_t ldo,
                const float* corr, int64_t rows, int64_t keys, int64_t dv) {
  int64_t c = 0;
  if (dv % 64 == 0) {
    for (; c < dv; c += 64) pv_rows<6, 4>(p, ldp, v + c, ldv, o + c, ldo, corr, rows, keys);
    return;
  }
  for (; c + 48 <= dv; c += 48) pv_rows<8, 3>(p, ldp, v + c, ldv, o + c, ldo, corr, rows, keys);
  switch ((dv - c) / 16) {
    case 2:
      pv_rows<8, 2>(p, ldp, v + c, ldv, o + c, ldo, corr, rows, keys);
      break;
    case 1:
      pv_rows<8, 1>(p, ldp, v + c, ldv, o + c, ldo, corr, rows, keys);
      break;
    default:
      break;
  }
}

// --- bf16 tiles with AVX512_BF16 dot products (vdpbf16ps: 16 lanes, each += a pair of bf16 products) ---

inline __m512bh bcast_pair(uint32_t pair) {
  return (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
}
inline __m512bh load_pairs(const uint16_t* p) {
  return (__m512bh)_mm512_loadu_si512(p);
}

template <int R, int NV>
inline void qk_micro_bf16(const uint32_t* q2, int64_t ldq, const uint16_t* kt2, int64_t ldk, float* s,
                          int64_t lds, int64_t d2, float scale) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < d2; ++t) {
    __m512bh kv[NV];
    for (int v = 0; v < NV; ++v) kv[v] = load_pairs(kt2 + (t * ldk + 16 * v) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh qb = bcast_pair(q2[r * ldq + t]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qb, kv[v]);
    }
  }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(s + r * lds + 16 * v, _mm512_mul_ps(acc[r][v], sc));
}

template <int NV>
inline void qk_rows_bf16(const uint32_t* q2, int64_t ldq, const uint16_t* kt2, int64_t ldk, float* s,
                         int64_t lds, int64_t rows, int64_t d2, float scale) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6)
    qk_micro_bf16<6, NV>(q2 + r * ldq, ldq, kt2, ldk, s + r * lds, lds, d2, scale);
  for (; r < rows; ++r) qk_micro_bf16<1, NV>(q2 + r * ldq, ldq, kt2, ldk, s + r * lds, lds, d2, scale);
}

void qk_tile_bf16_512(const uint32_t* q2, int64_t ldq, const uint16_t* kt2, int64_t ldk, float* s,
                      int64_t lds, int64_t rows, int64_t cols, int64_t d2, float scale) {
  int64_t c = 0;
  for (; c + 64 <= cols; c += 64) qk_rows_bf16<4>(q2, ldq, kt2 + 2 * c, ldk, s + c, lds, rows, d2, scale);
  switch ((cols - c) / 16) {
    case 3:
      qk_rows_bf16<3>(q2, ldq, kt2 + 2 * c, ldk, s + c, lds, rows, d2, scale);
      break;
    case 2:
      qk_rows_bf16<2>(q2, ldq, kt2 + 2 * c, ldk, s + c, lds, rows, d2, scale);
      break;
    case 1:
      qk_rows_bf16<1>(q2, ldq, kt2 + 2 * c, ldk, s + c, lds, rows, d2, scale);
      break;
    default:
      break;
  }
}

template <int R, int NV>
inline void pv_micro_bf16(const uint32_t* p2, int64_t ldp, const uint16_t* v2, int64_t ldv, float* o,
                          int64_t ldo, const float* corr, int64_t keys2) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r) {
    const __m512 c = _mm512_set1_ps(corr[r]);
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_mul_ps(_mm512_loadu_ps(o + r * ldo + 16 * x), c);
  }
  for (int64_t j = 0; j < keys2; ++j) {
    __m512bh vv[NV];
    for (int x = 0; x < NV; ++x) vv[x] = load_pairs(v2 + (j * ldv + 16 * x) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh pb = bcast_pair(p2[r * ldp + j]);
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], pb, vv[x]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < NV; ++x) _mm512_storeu_ps(o + r * ldo + 16 * x, acc[r][x]);
}

template <int RB, int NV>
inline void pv_rows_bf16(const uint32_t* p2, int64_t ldp, const uint16_t* v2, int64_t ldv, float* o,
                         int64_t ldo, const float* corr, int64_t rows, int64_t keys2) {
  int64_t r = 0;
  for (; r + RB <= rows; r += RB)
    pv_micro_bf16<RB, NV>(p2 + r * ldp, ldp, v2, ldv, o + r * ldo, ldo, corr + r, keys2);
  for (; r < rows; ++r) pv_micro_bf16<1, NV>(p2 + r * ldp, ldp, v2, ldv, o + r * ldo, ldo, corr + r, keys2);
}

void pv_tile_bf16_512(const uint32_t* p2, int64_t ldp, const uint16_t* v2, int64_t ldv, float* o, int64_t ldo,
                      const float* corr, int64_t rows, int64_t keys2, int64_t dv) {
  int64_t c = 0;
  if (dv % 64 == 0) {
    for (; c < dv; c += 64) pv_rows_bf16<6, 4>(p2, ldp, v2 + 2 * c, ldv, o + c, ldo, corr, rows, keys2);
    return;
  }
  for (; c + 48 <= dv; c += 48) pv_rows_bf16<8, 3>(p2, ldp, v2 + 2 * c, ldv, o + c, ldo, corr, rows, keys2);
  switch ((dv - c) / 16) {
    case 2:
      pv_rows_bf16<8, 2>(p2, ldp, v2 + 2 * c, ldv, o + c, ldo, corr, rows, keys2);
      break;
    case 1:
      pv_rows_bf16<8, 1>(p2, ldp, v2 + 2 * c, ldv, o + c, ldo, corr, rows, keys2);
      break;
    default:
      break;
  }
}

// f32 -> bf16 on 16 lanes, exactly as to_bf16_: round to nearest even, NaN kept quiet. With AVX512_BF16
// (g_bf16_hw) vcvtneps2bf16, which does the same except that it flushes f32 subnormals to (signed) zero:
// lanes with a zero exponent take the integer rounding instead.
bool g_bf16_hw = false;  // set with the table, before any kernel runs

inline __m512i round_bits(__m512i u) {  // (u + 0x7fff + ((u >> 16) & 1)) >> 16
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  return _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
}

inline __m256i to_bf16_16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  if (g_bf16_hw) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    const __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));  // zeros, subnormals
    if (tiny) h = _mm256_mask_mov_epi16(h, tiny, _mm512_cvtepi32_epi16(round_bits(u)));
    return h;
  }
  __m256i h = _mm512_cvtepi32_epi16(round_bits(u));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  if (nan) {
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    h = _mm256_mask_mov_epi16(h, nan, _mm512_cvtepi32_epi16(q));
  }
  return h;
}

void store_bf16_512(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), to_bf16_16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(y + i, m, to_bf16_16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace
}  // namespace a2f::cpu::avx512

namespace a2f::cpu {
const Kernels* kernels_avx512() {
  static const Kernels k = [] {
    Kernels t = avx512::portable_kernels(Isa::Avx512, "avx512");
    t.qk_tile = avx512::qk_tile512;
    t.softmax_online = avx512::softmax_online512;
    t.pv_tile = avx512::pv_tile512;
    t.to_bf16 = avx512::store_bf16_512;
    if (__builtin_cpu_supports("avx512bf16")) {
      avx512::g_bf16_hw = true;
      t.qk_tile_bf16 = avx512::qk_tile_bf16_512;
      t.pv_tile_bf16 = avx512::pv_tile_bf16_512;
    }
    return t;
  }();
  return &k;
}
}  // namespace a2f::cpu
