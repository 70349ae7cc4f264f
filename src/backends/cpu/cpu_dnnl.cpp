#include "backends/cpu/cpu_dnnl.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <bit>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace a2f::cpu {

namespace {

using ddt = dnnl::memory::data_type;
using dtag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

ddt to_dnnl(DType t) {
  switch (t) {
    case DType::F32: return ddt::f32;
    case DType::BF16: return ddt::bf16;
    default: fail("oneDNN ops take f32 or bf16 tensors, got ", dtype_name(t));
  }
}

// f16 is widened to f32 (oneDNN on CPU has no f16 compute); others unchanged.
Tensor widen_f16(const Tensor& t) { return t.dtype() == DType::F16 ? t.to(DType::F32) : t; }

dims to_dims(const Shape& s) { return dims(s.begin(), s.end()); }

void append_act(dnnl::post_ops& po, Act act) {
  using alg = dnnl::algorithm;
  switch (act) {
    case Act::None: return;
    case Act::Relu: po.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f); return;
    case Act::Silu: po.append_eltwise(1.0f, alg::eltwise_swish, 1.0f, 0.0f); return;
    case Act::GeluErf: po.append_eltwise(1.0f, alg::eltwise_gelu_erf, 0.0f, 0.0f); return;
    case Act::GeluTanh: po.append_eltwise(1.0f, alg::eltwise_gelu_tanh, 0.0f, 0.0f); return;
    case Act::QuickGelu: po.append_eltwise(1.0f, alg::eltwise_swish, 1.702f, 0.0f); return;
    case Act::Sigmoid: po.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f); return;
  }
}

dnnl::primitive_attr make_attr(Act act, float alpha) {
  dnnl::primitive_attr attr;
  if (act != Act::None) {
    dnnl::post_ops po;
    append_act(po, act);
    attr.set_post_ops(po);
  }
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  return attr;
}

// Wraps a host tensor's memory (no copy).
dnnl::memory wrap(const dnnl::memory::desc& md, const dnnl::engine& eng, const Tensor& t) {
  return dnnl::memory(md, eng, t.raw_data());
}

struct ConvEntry {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  dnnl::memory::desc user_src, user_dst, user_w;
  bool reorder_src = false, reorder_dst = false;
  dnnl::reorder src_r, dst_r;
  dnnl::memory src_buf, dst_buf;
};

struct LinearEntry {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
};

struct WeightEntry {
  std::weak_ptr<Storage> owner;
  std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> forms;
};

}  // namespace

struct DnnlContext::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::mutex mu;
  std::unordered_map<std::string, ConvEntry> convs;
  std::unordered_map<std::string, LinearEntry> linears;
  std::unordered_map<std::string, dnnl::matmul> matmuls;
  std::unordered_map<std::string, WeightEntry> weights;

  // The weight w in the layout `target`, reordered (and converted) once. `user_md` describes w (after f16
  // widening) as oneDNN sees it.
  dnnl::memory weight(const Tensor& w, const dnnl::memory::desc& target,
                      const std::function<dnnl::memory::desc(const Tensor&)>& user_md) {
    const std::string key = cat(reinterpret_cast<uintptr_t>(w.storage().get()), ":", w.byte_offset(), ":",
                                w.shape(), ":", w.strides(), ":", dtype_name(w.dtype()));
    auto it = weights.find(key);
    if (it != weights.end() && it->second.owner.lock() != w.storage()) {
      weights.erase(it);  // the storage died and its address was reused
      it = weights.end();
    }
    if (it == weights.end()) {
      for (auto i = weights.begin(); i != weights.end();) i = i->second.owner.expired() ? weights.erase(i) : ++i;
      it = weights.emplace(key, WeightEntry{w.storage(), {}}).first;
    }
    for (auto& [md, mem] : it->second.forms)
      if (md == target) return mem;
    const Tensor src = widen_f16(w);
    dnnl::memory user = wrap(user_md(src), eng, src);
    dnnl::memory out(target, eng);
    dnnl::reorder(user, out).execute(strm, user, out);
    strm.wait();
    it->second.forms.emplace_back(target, out);
    return out;
  }
};

DnnlContext::DnnlContext() : impl_(std::make_unique<Impl>()) {}
DnnlContext::~DnnlContext() = default;

void DnnlContext::clear() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->weights.clear();
}

const char* DnnlContext::isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::sse41: return "sse41";
    default: return "other";
  }
}

Tensor DnnlContext::conv2d(const Tensor& x0, const Tensor& w, const Tensor& bias0, const Conv2dParams& p,
                           const Shape& out_shape) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const Tensor x = widen_f16(x0).contiguous();
  const bool bf16 = x.dtype() == DType::BF16 || w.dtype() == DType::BF16;
  const ddt cdt = bf16 ? ddt::bf16 : ddt::f32;
  const DType out_dt = x.dtype();  // f32 or bf16 here
  const int64_t g = p.groups, o = w.dim(0);
  const dims wdims = g == 1 ? dims{o, w.dim(1), w.dim(2), w.dim(3)} : dims{g, o / g, w.dim(1), w.dim(2), w.dim(3)};
  const std::string key = cat("conv ", x.shape(), dtype_name(x.dtype()), " w", w.shape(), dtype_name(w.dtype()),
                              bias0.defined() ? " b" : "", " s", p.stride_h, ",", p.stride_w, " p", p.pad_top, ",",
                              p.pad_left, ",", p.pad_bottom, ",", p.pad_right, " d", p.dilation_h, ",", p.dilation_w,
                              " g", p.groups, " a", static_cast<int>(p.act));
  auto it = m.convs.find(key);
  if (it == m.convs.end()) {
    ConvEntry e;
    const dnnl::memory::desc src_md(to_dims(x.shape()), cdt, dtag::any);
    const dnnl::memory::desc w_md(wdims, cdt, dtag::any);
    const dnnl::memory::desc b_md = bias0.defined() ? dnnl::memory::desc({o}, ddt::f32, dtag::a) : dnnl::memory::desc();
    const dnnl::memory::desc dst_md(to_dims(out_shape), to_dnnl(out_dt), dtag::any);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                      w_md, b_md, dst_md, {p.stride_h, p.stride_w},
                                      {p.dilation_h - 1, p.dilation_w - 1}, {p.pad_top, p.pad_left},
                                      {p.pad_bottom, p.pad_right});
    e.pd = dnnl::convolution_forward::primitive_desc(d, make_attr(p.act, 1.0f), m.eng);
    e.prim = dnnl::convolution_forward(e.pd);
    e.user_src = dnnl::memory::desc(to_dims(x.shape()), to_dnnl(x.dtype()), dtag::nchw);
    e.user_dst = dnnl::memory::desc(to_dims(out_shape), to_dnnl(out_dt), dtag::nchw);
    e.reorder_src = e.pd.src_desc() != e.user_src;
    e.reorder_dst = e.pd.dst_desc() != e.user_dst;
    if (e.reorder_src) {
      e.src_buf = dnnl::memory(e.pd.src_desc(), m.eng);
      e.src_r = dnnl::reorder(dnnl::reorder::primitive_desc(m.eng, e.user_src, m.eng, e.pd.src_desc()));
    }
    if (e.reorder_dst) {
      e.dst_buf = dnnl::memory(e.pd.dst_desc(), m.eng);
      e.dst_r = dnnl::reorder(dnnl::reorder::primitive_desc(m.eng, e.pd.dst_desc(), m.eng, e.user_dst));
    }
    it = m.convs.emplace(key, std::move(e)).first;
  }
  ConvEntry& e = it->second;
  dnnl::memory wmem = m.weight(w, e.pd.weights_desc(), [&](const Tensor& ws) {
    const auto& st = ws.strides();
    const dims wstrides =
        g == 1 ? dims{st[0], st[1], st[2], st[3]} : dims{st[0] * (o / g), st[0], st[1], st[2], st[3]};
    return dnnl::memory::desc(wdims, to_dnnl(ws.dtype()), wstrides);
  });
  Tensor out = Tensor::empty(out_shape, out_dt);
  dnnl::memory user_src = wrap(e.user_src, m.eng, x), user_dst = wrap(e.user_dst, m.eng, out);
  if (e.reorder_src) e.src_r.execute(m.strm, user_src, e.src_buf);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, e.reorder_src ? e.src_buf : user_src},
                                             {DNNL_ARG_WEIGHTS, wmem},
                                             {DNNL_ARG_DST, e.reorder_dst ? e.dst_buf : user_dst}};
  Tensor bias;
  if (bias0.defined()) {
    bias = bias0.to(DType::F32).contiguous();
    args.emplace(DNNL_ARG_BIAS, wrap(dnnl::memory::desc({o}, ddt::f32, dtag::a), m.eng, bias));
  }
  e.prim.execute(m.strm, args);
  if (e.reorder_dst) e.dst_r.execute(m.strm, e.dst_buf, user_dst);
  m.strm.wait();
  return x0.dtype() == DType::F16 ? out.to(DType::F16) : out;
}

Tensor DnnlContext::linear(const Tensor& x0, const Tensor& w, const Tensor& bias0, Act act) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const bool bf16 = x0.dtype() == DType::BF16 || w.dtype() == DType::BF16;
  const DType cdt = bf16 ? DType::BF16 : DType::F32;
  const Tensor x = x0.to(cdt).contiguous();
  const DType out_dt = x0.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  const int64_t k = w.dim(1), n = w.dim(0), mrows = k ? x.numel() / k : 0;
  Shape out_shape = x0.shape();
  out_shape.back() = n;
  Tensor out = Tensor::empty(out_shape, out_dt);
  if (mrows == 0) return x0.dtype() == DType::F16 ? out.to(DType::F16) : out;
  const std::string key = cat("linear ", mrows, "x", k, "x", n, dtype_name(cdt), dtype_name(out_dt),
                              bias0.defined() ? " b" : "", " a", static_cast<int>(act));
  auto it = m.linears.find(key);
  if (it == m.linears.end()) {
    LinearEntry e;
    const dnnl::memory::desc src_md({mrows, k}, to_dnnl(cdt), dtag::ab);
    const dnnl::memory::desc w_md({k, n}, to_dnnl(cdt), dtag::any);
    const dnnl::memory::desc b_md = bias0.defined() ? dnnl::memory::desc({1, n}, ddt::f32, dtag::ab) : dnnl::memory::desc();
    const dnnl::memory::desc dst_md({mrows, n}, to_dnnl(out_dt), dtag::ab);
    e.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), make_attr(act, 1.0f), m.eng);
    e.prim = dnnl::matmul(e.pd);
    it = m.linears.emplace(key, std::move(e)).first;
  }
  LinearEntry& e = it->second;
  dnnl::memory wmem = m.weight(w, e.pd.weights_desc(), [&](const Tensor& ws) {
    return dnnl::memory::desc({k, n}, to_dnnl(ws.dtype()), dims{ws.strides()[1], ws.strides()[0]});
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(e.pd.src_desc(), m.eng, x)},
                                             {DNNL_ARG_WEIGHTS, wmem},
                                             {DNNL_ARG_DST, wrap(e.pd.dst_desc(), m.eng, out)}};
  Tensor bias;
  if (bias0.defined()) {
    bias = bias0.to(DType::F32).contiguous();
    args.emplace(DNNL_ARG_BIAS, wrap(dnnl::memory::desc({1, n}, ddt::f32, dtag::ab), m.eng, bias));
  }
  e.prim.execute(m.strm, args);
  m.strm.wait();
  return x0.dtype() == DType::F16 ? out.to(DType::F16) : out;
}

Tensor DnnlContext::matmul(const Tensor& a0, const Tensor& b0, bool trans_b, float alpha, const Shape& out_shape) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const bool bf16 = a0.dtype() == DType::BF16 || b0.dtype() == DType::BF16;
  const DType cdt = bf16 ? DType::BF16 : DType::F32;
  const Tensor a = a0.to(cdt).contiguous(), b = b0.to(cdt).contiguous();
  const DType out_dt = a0.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  Tensor out = Tensor::empty(out_shape, out_dt);
  if (out.numel() == 0) return a0.dtype() == DType::F16 ? out.to(DType::F16) : out;
  const size_t nd = out_shape.size();
  // Pads a shape with leading ones to nd dimensions; contiguous strides of the padded shape.
  auto padded = [&](const Shape& s) {
    Shape r(nd - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  const Shape as = padded(a.shape()), bs = padded(b.shape());
  dims bdims = to_dims(bs), bstr = to_dims(contiguous_strides(bs));
  if (trans_b) {  // b holds [..., N, K]: describe it as [..., K, N] with swapped strides
    std::swap(bdims[nd - 1], bdims[nd - 2]);
    std::swap(bstr[nd - 1], bstr[nd - 2]);
  }
  const std::string key = cat("matmul ", as, bdims, bstr, dtype_name(cdt), dtype_name(out_dt), " ",
                              std::bit_cast<uint32_t>(alpha));
  auto it = m.matmuls.find(key);
  const dnnl::memory::desc a_md(to_dims(as), to_dnnl(cdt), to_dims(contiguous_strides(as)));
  const dnnl::memory::desc b_md(bdims, to_dnnl(cdt), bstr);
  const dnnl::memory::desc c_md(to_dims(out_shape), to_dnnl(out_dt), to_dims(contiguous_strides(out_shape)));
  if (it == m.matmuls.end()) {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), make_attr(Act::None, alpha), m.eng);
    it = m.matmuls.emplace(key, dnnl::matmul(pd)).first;
  }
  it->second.execute(m.strm, {{DNNL_ARG_SRC, wrap(a_md, m.eng, a)},
                              {DNNL_ARG_WEIGHTS, wrap(b_md, m.eng, b)},
                              {DNNL_ARG_DST, wrap(c_md, m.eng, out)}});
  m.strm.wait();
  return a0.dtype() == DType::F16 ? out.to(DType::F16) : out;
}

}  // namespace a2f::cpu
