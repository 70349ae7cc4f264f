// The CPU backend's inner kernels on contiguous f32 (and bf16) arrays, one table per instruction set. The
// same portable source (cpu_kernels_impl.h) is compiled once per ISA (cpu_kernels_{generic,avx2,avx512}.cpp
// get their -m flags from cmake/a2f.cmake); the AVX-512 table also holds hand-written microkernels. The table
// is chosen at run time from what the CPU supports (__builtin_cpu_supports), so one binary runs everywhere.
//
// ISA translation units expose only this C-style table: no std templates or other inline code shared with
// the rest of the program is instantiated there (the linker could otherwise pick an AVX-512 copy of it).
#pragma once
#include <cstdint>

#include "core/backend.h"

namespace a2f::cpu {

enum class Isa : uint8_t { Generic, Avx2, Avx512 };

// Flags of Kernels::binary.
constexpr unsigned kBinaryABf16 = 1, kBinaryBBf16 = 2, kBinaryYBf16 = 4, kBinaryAScalar = 8,
                   kBinaryBScalar = 16;

struct Kernels {
  Isa isa;
  const char* name;
  // y = act(x), n elements (y may alias x).
  void (*act)(Act act, const float* x, float* y, int64_t n);
  // y = act((x - shift) * mul + add) (y may alias x).
  void (*affine_act)(const float* x, float* y, int64_t n, float shift, float mul, float add, Act act);
  // y[i] = a[i] op b[i], i < n. `flags` (kBinary*): a, b, y each f32 or bf16 (uint16_t); a or b a scalar
  // (one f32 value, whatever the tensor's dtype) broadcast over the n outputs.
  void (*binary)(BinaryOp op, const void* a, const void* b, void* y, int64_t n, unsigned flags);
  // Mean and biased variance of n values (two passes, f32, 32 partial sums added in an order fixed by the
  // code, not by the vectoriser: bf16 values give exactly what their widened f32 copies give).
  void (*mean_var)(const float* x, int64_t n, float* mean, float* var);
  // (x - mean) * rstd * gamma + beta over one row; gamma / beta may be null.
  void (*layer_norm_row)(const float* x, float* y, int64_t n, const float* gamma, const float* beta,
                         float eps);
  void (*softmax_row)(const float* x, float* y, int64_t n);
  // y[j] = x[j] * gelu_erf(x[h + j]), j < h.
  void (*geglu_row)(const float* x, float* y, int64_t h);

  // The same on bf16 arrays (uint16_t; gamma / beta stay f32): each widens its inputs exactly, computes what
  // its f32 version computes and rounds each output to nearest even, so its results are bit for bit those
  // of the f32 kernel on the widened values, rounded.
  void (*act_bf16)(Act act, const uint16_t* x, uint16_t* y, int64_t n);
  void (*affine_act_bf16)(const uint16_t* x, uint16_t* y, int64_t n, float shift, float mul, float add,
                          Act act);
  void (*mean_var_bf16)(const uint16_t* x, int64_t n, float* mean, float* var);
  void (*layer_norm_row_bf16)(const uint16_t* x, uint16_t* y, int64_t n, const float* gamma,
                              const float* beta, float eps);
  void (*geglu_row_bf16)(const uint16_t* x, uint16_t* y, int64_t h);

  // Attention tiles (flash-style). s[r][c] = sum_t q[r][t] * kt[t][c] for r < rows, c < cols (cols a multiple
  // of 16; kt is K transposed, ld = its row length).
  void (*qk_tile)(const float* q, int64_t ldq, const float* kt, int64_t ldk, float* s, int64_t lds,
                  int64_t rows, int64_t cols, int64_t d);
  // One online-softmax step on a row of scores: m = max(m, max s); s = exp(s - m); l = l * c + sum s, where
  // c = exp(m_old - m) is returned (the factor the row's partial output must be scaled by).
  float (*softmax_online)(float* s, int64_t n, float* m, float* l);
  // o[r][c] = o[r][c] * corr[r] + sum_j p[r][j] * v[j][c] for r < rows, c < dv (dv a multiple of 16).
  void (*pv_tile)(const float* p, int64_t ldp, const float* v, int64_t ldv, float* o, int64_t ldo,
                  const float* corr, int64_t rows, int64_t keys, int64_t dv);

  // bf16 attention tiles (products exact in f32, f32 accumulation; AVX512_BF16 dot products where the CPU has
  // them). Operands are packed in pairs along the reduction dimension: q2 [rows][d2] pairs (as uint32),
  // kt2 [d2][ldk][2], p2 [rows][keys2] pairs, v2 [keys2][ldv][2].
  // s[r][c] = scale * sum_t q[r][t] k[c][t], cols a multiple of 16.
  void (*qk_tile_bf16)(const uint32_t* q2, int64_t ldq, const uint16_t* kt2, int64_t ldk, float* s,
                       int64_t lds, int64_t rows, int64_t cols, int64_t d2, float scale);
  // o[r][c] = o[r][c] * corr[r] + sum_j p[r][j] v[j][c], dv a multiple of 16.
  void (*pv_tile_bf16)(const uint32_t* p2, int64_t ldp, const uint16_t* v2, int64_t ldv, float* o,
                       int64_t ldo, const float* corr, int64_t rows, int64_t keys2, int64_t dv);
  // y = bf16(x), round to nearest even, n elements; and the exact widening back.
  void (*to_bf16)(const float* x, uint16_t* y, int64_t n);
  void (*from_bf16)(const uint16_t* x, float* y, int64_t n);
};

const Kernels* kernels_generic();
const Kernels* kernels_avx2();    // only call when the CPU has AVX2 + FMA
const Kernels* kernels_avx512();  // only call when the CPU has AVX-512 F/BW/VL/DQ

bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
// The best table this CPU supports, or the one named by the environment variable A2F_CPU_ISA
// (generic / avx2 / avx512) when it is set.
const Kernels* kernels_best();
const Kernels* kernels_for(Isa isa);  // throws a2f::Error when the CPU lacks it

}  // namespace a2f::cpu
