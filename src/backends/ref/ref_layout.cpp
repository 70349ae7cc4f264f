// Reference spatial, layout and embedding ops.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/ref/ref_backend.h"
#include "backends/ref/ref_util.h"

namespace a2f {

using ref::check_float;
using ref::from_f32;
using ref::norm_dim;
using ref::to_f32;

Tensor RefBackend::upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_float(x, "upsample_nearest", "x");
  A2F_CHECK(x.ndim() == 4 && out_h > 0 && out_w > 0, "upsample_nearest: x ", x.desc(), " to ", out_h, "x",
            out_w, " (expected x [N, C, H, W] and a positive size)");
  const int64_t nc = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  A2F_CHECK(h > 0 && w > 0, "upsample_nearest: empty input ", x.desc());
  const auto v = to_f32(x);
  std::vector<float> out(nc * out_h * out_w);
  for (int64_t i = 0; i < nc; ++i)
    for (int64_t y = 0; y < out_h; ++y) {
      const int64_t sy = std::min(y * h / out_h, h - 1);
      for (int64_t xx = 0; xx < out_w; ++xx) {
        const int64_t sx = std::min(xx * w / out_w, w - 1);
        out[(i * out_h + y) * out_w + xx] = v[(i * h + sy) * w + sx];
      }
    }
  return from_f32(out, {x.dim(0), x.dim(1), out_h, out_w}, x.dtype());
}

Tensor RefBackend::pool2d(const Tensor& x, const Pool2dParams& p) {
  check_float(x, "pool2d", "x");
  A2F_CHECK(x.ndim() == 4, "pool2d: expected x [N, C, H, W], got ", x.desc());
  A2F_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_top >= 0 &&
                p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0,
            "pool2d: bad kernel/stride/padding for x ", x.desc());
  const int64_t nc = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t ho = conv_out_size(h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1, p.ceil_mode);
  const int64_t wo = conv_out_size(w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1, p.ceil_mode);
  A2F_CHECK(ho > 0 && wo > 0, "pool2d: kernel ", p.kernel_h, "x", p.kernel_w, " larger than padded input ",
            x.desc());
  const auto v = to_f32(x);
  std::vector<float> out(nc * ho * wo);
  for (int64_t i = 0; i < nc; ++i)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        // Window in padded coordinates, clipped to the padded extent (PyTorch's divisor with
        // count_include_pad), then to the input.
        const int64_t y0 = oy * p.stride_h - p.pad_top, x0 = ox * p.stride_w - p.pad_left;
        const int64_t y1 = std::min<int64_t>(y0 + p.kernel_h, h + p.pad_bottom);
        const int64_t x1 = std::min<int64_t>(x0 + p.kernel_w, w + p.pad_right);
        const int64_t padded_count = (y1 - y0) * (x1 - x0);
        const int64_t ya = std::max<int64_t>(y0, 0), yb = std::min(y1, h);
        const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min(x1, w);
        float r;
        if (p.kind == PoolKind::Max) {
          r = -std::numeric_limits<float>::infinity();
          for (int64_t y = ya; y < yb; ++y)
            for (int64_t xx = xa; xx < xb; ++xx) r = std::max(r, v[(i * h + y) * w + xx]);
        } else {
          double sum = 0;
          for (int64_t y = ya; y < yb; ++y)
            for (int64_t xx = xa; xx < xb; ++xx) sum += v[(i * h + y) * w + xx];
          const int64_t count = p.count_include_pad ? padded_count : (yb - ya) * (xb - xa);
          r = count > 0 ? static_cast<float>(sum / count) : 0.0f;
        }
        out[(i * ho + oy) * wo + ox] = r;
      }
  return from_f32(out, {x.dim(0), x.dim(1), ho, wo}, x.dtype());
}

Tensor RefBackend::concat(const std::vector<Tensor>& xs, int dim) {
  A2F_CHECK(!xs.empty(), "concat: no inputs");
  for (const Tensor& t : xs) check_float(t, "concat", "input");
  const int nd = xs[0].ndim();
  const int d = norm_dim(dim, nd, "concat");
  Shape os = xs[0].shape();
  os[d] = 0;
  for (const Tensor& t : xs) {
    bool ok = t.ndim() == nd;
    for (int i = 0; ok && i < nd; ++i) ok = i == d || t.dim(i) == xs[0].dim(i);
    A2F_CHECK(ok, "concat: ", t.desc(), " does not match ", xs[0].desc(), " along dimension ", dim);
    os[d] += t.dim(d);
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= os[i];
  for (int i = d + 1; i < nd; ++i) inner *= os[i];
  std::vector<float> out(shape_numel(os));
  int64_t offset = 0;  // along d
  for (const Tensor& t : xs) {
    const auto v = to_f32(t);
    const int64_t len = t.dim(d);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < len * inner; ++j)
        out[(o * os[d] + offset) * inner + j] = v[o * len * inner + j];
    offset += len;
  }
  return from_f32(out, os, xs[0].dtype());
}

Tensor RefBackend::slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  A2F_CHECK(x.defined(), "slice: undefined input");
  const int d = norm_dim(dim, x.ndim(), "slice");
  A2F_CHECK(step > 0, "slice: step ", step, " must be positive (", x.desc(), ")");
  const int64_t n = x.dim(d);
  // Python semantics: negative indices count from the end; both ends clamped to [0, n].
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  const int64_t len = end > start ? (end - start + step - 1) / step : 0;
  Shape os = x.shape();
  os[d] = len;
  Tensor out = Tensor::empty(os, x.dtype());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= os[i];
  for (int i = d + 1; i < x.ndim(); ++i) inner *= os[i];
  // Element by element through the strided view (works for any dtype, floats and integers alike).
  Tensor src = x.contiguous();
  const size_t es = dtype_size(x.dtype());
  const char* sp = static_cast<const char*>(src.raw_data());
  char* dp = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < len; ++j)
      for (int64_t t = 0; t < inner; ++t) {
        const int64_t si = (o * n + start + j * step) * inner + t, di = (o * len + j) * inner + t;
        std::copy(sp + si * es, sp + (si + 1) * es, dp + di * es);
      }
  return out;
}

Tensor RefBackend::permute(const Tensor& x, const std::vector<int>& perm) {
  A2F_CHECK(x.defined(), "permute: undefined input");
  return x.permute(perm).clone();
}

Tensor RefBackend::cast(const Tensor& x, DType dtype) {
  A2F_CHECK(x.defined(), "cast: undefined input");
  Tensor out = Tensor::empty(x.shape(), dtype);
  out.copy_from(x);
  return out;
}

Tensor RefBackend::timestep_embedding(const Tensor& timesteps, int dim, bool flip_sin_to_cos, float shift,
                                      float scale, float max_period) {
  A2F_CHECK(timesteps.defined() && timesteps.ndim() == 1, "timestep_embedding: timesteps must be [N], got ",
            timesteps.defined() ? timesteps.desc() : std::string("undefined"));
  A2F_CHECK(dim >= 1, "timestep_embedding: dim ", dim, " must be positive");
  const int64_t n = timesteps.dim(0), half = dim / 2;
  A2F_CHECK(half == 0 || static_cast<float>(half) != shift, "timestep_embedding: half dim ", half,
            " equals the frequency shift");
  const auto tv = timesteps.to(DType::F32).to_vector();
  // The same f32 operations in the same order as diffusers 0.29.2 embeddings.get_timestep_embedding.
  const float neg_log = static_cast<float>(-std::log(static_cast<double>(max_period)));
  const float denom = static_cast<float>(half) - shift;
  std::vector<float> freq(half);
  for (int64_t j = 0; j < half; ++j) freq[j] = std::exp(neg_log * static_cast<float>(j) / denom);
  std::vector<float> out(n * dim, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < half; ++j) {
      const float arg = scale * (tv[i] * freq[j]);
      const float s = std::sin(arg), c = std::cos(arg);
      out[i * dim + j] = flip_sin_to_cos ? c : s;
      out[i * dim + half + j] = flip_sin_to_cos ? s : c;
    }
  const DType od = dtype_is_float(timesteps.dtype()) ? timesteps.dtype() : DType::F32;
  return from_f32(out, {n, static_cast<int64_t>(dim)}, od);
}

Tensor RefBackend::embedding(const Tensor& ids, const Tensor& table) {
  A2F_CHECK(ids.defined() && (ids.dtype() == DType::I64 || ids.dtype() == DType::I32),
            "embedding: ids must be i64 or i32, got ", ids.defined() ? ids.desc() : std::string("undefined"));
  check_float(table, "embedding", "table");
  A2F_CHECK(table.ndim() == 2, "embedding: table must be [V, D], got ", table.desc());
  const int64_t vocab = table.dim(0), d = table.dim(1);
  const Tensor id64 = ids.to(DType::I64).contiguous();
  const int64_t* ip = id64.data<int64_t>();
  const auto tv = to_f32(table);
  std::vector<float> out(ids.numel() * d);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    A2F_CHECK(ip[i] >= 0 && ip[i] < vocab, "embedding: id ", ip[i], " at position ", i, " is outside [0, ",
              vocab, ") of table ", table.desc());
    for (int64_t t = 0; t < d; ++t) out[i * d + t] = tv[ip[i] * d + t];
  }
  Shape os = ids.shape();
  os.push_back(d);
  return from_f32(out, os, table.dtype());
}

}  // namespace a2f
