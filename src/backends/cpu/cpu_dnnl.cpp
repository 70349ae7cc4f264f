#include "backends/cpu/cpu_dnnl.h"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cpu/cpu_alloc.h"
#include "backends/cpu/cpu_util.h"

namespace a2f::cpu {

namespace {

using ddt = dnnl::memory::data_type;
using dtag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

ddt to_dnnl(DType t) {
  switch (t) {
    case DType::F32:
      return ddt::f32;
    case DType::BF16:
      return ddt::bf16;
    default:
      fail("oneDNN ops take f32 or bf16 tensors, got ", dtype_name(t));
  }
}

DType out_dtype_of(const Tensor& act) {
  return act.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
}
// A result computed in f32 / bf16 back in the activation's dtype (f16 activations were widened).
Tensor restore_f16(const Tensor& out, const Tensor& act) {
  return act.dtype() == DType::F16 ? to_contiguous(out, DType::F16) : out;
}

dims to_dims(const Shape& s) {
  return dims(s.begin(), s.end());
}

void append_act(dnnl::post_ops& po, Act act) {
  using alg = dnnl::algorithm;
  switch (act) {
    case Act::None:
      return;
    case Act::Relu:
      po.append_eltwise(1.0f, alg::eltwise_relu, 0.0f, 0.0f);
      return;
    case Act::Silu:
      po.append_eltwise(1.0f, alg::eltwise_swish, 1.0f, 0.0f);
      return;
    case Act::GeluErf:
      po.append_eltwise(1.0f, alg::eltwise_gelu_erf, 0.0f, 0.0f);
      return;
    case Act::GeluTanh:
      po.append_eltwise(1.0f, alg::eltwise_gelu_tanh, 0.0f, 0.0f);
      return;
    case Act::QuickGelu:
      po.append_eltwise(1.0f, alg::eltwise_swish, 1.702f, 0.0f);
      return;
    case Act::Sigmoid:
      po.append_eltwise(1.0f, alg::eltwise_logistic, 0.0f, 0.0f);
      return;
  }
}

// Every primitive takes its scratchpad from the caller (Impl::scratchpad): oneDNN's library-managed one is
// per thread, so a primitive created on one thread crashed when run from another (Winograd convolutions).
dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::primitive_attr make_attr(Act act, float alpha) {
  dnnl::primitive_attr attr = user_scratchpad_attr();
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

std::string conv_key(const Tensor& x, const Tensor& w, bool bias, const Conv2dParams& p, size_t wino) {
  return cat("conv ", x.shape(), dtype_name(x.dtype()), " w", w.shape(), dtype_name(w.dtype()),
             bias ? " b" : "", " s", p.stride_h, ",", p.stride_w, " p", p.pad_top, ",", p.pad_left, ",",
             p.pad_bottom, ",", p.pad_right, " d", p.dilation_h, ",", p.dilation_w, " g", p.groups, " a",
             static_cast<int>(p.act), " wino<=", wino);
}

struct ConvEntry {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  dnnl::memory::desc user_src, user_dst;
  bool reorder_src = false, reorder_dst = false;
  dnnl::reorder src_r, dst_r;
  dnnl::memory::desc src_r_pad, dst_r_pad;  // the reorders' scratchpads
};

// A growable 64-byte aligned host buffer (one per role, shared by all primitives: calls are serialised).
// Growing it frees the old buffer: memory objects made from an earlier get() are stale after a larger one.
class Scratch {
 public:
  void* get(size_t bytes) {
    if (!buf_ || buf_->bytes() < bytes) buf_ = storage_alloc_host(bytes);
    return buf_->data();
  }
  void reset() { buf_.reset(); }

 private:
  std::shared_ptr<Storage> buf_;
};

struct MatmulEntry {  // linear and matmul
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
  std::unordered_map<std::string, MatmulEntry> linears, matmuls;
  std::unordered_map<std::string, WeightEntry> weights;
  Scratch src_scratch, dst_scratch;  // activations in the primitives' layouts
  Scratch pad_scratch;               // the primitives' scratchpads (user mode)

  // A scratchpad memory for a primitive whose scratchpad is `pad` (executions are serialised by `mu` and run
  // to completion before the next one, so they all share one buffer).
  dnnl::memory scratchpad(const dnnl::memory::desc& pad) {
    return dnnl::memory(pad, eng, pad_scratch.get(pad.get_size()));
  }
  // Runs `prim` with `args` plus its scratchpad (none when `pad` is empty).
  void execute(const dnnl::primitive& prim, const dnnl::memory::desc& pad,
               std::unordered_map<int, dnnl::memory> args) {
    if (pad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad(pad));
    prim.execute(strm, args);
  }

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
      for (auto i = weights.begin(); i != weights.end();)
        i = i->second.owner.expired() ? weights.erase(i) : ++i;
      it = weights.emplace(key, WeightEntry{w.storage(), {}}).first;
    }
    for (auto& [md, mem] : it->second.forms)
      if (md == target) return mem;
    // f16 (no oneDNN compute) and bf16 for an f32 primitive (Winograd) are widened to f32 first; f32 for a
    // bf16 primitive (Backend::prepare_dense_weight) is rounded by our conversion first (the same rounding as
    // Tensor::to, and much faster than oneDNN's converting reorder into a blocked layout).
    const bool widen =
        w.dtype() == DType::F16 || (w.dtype() == DType::BF16 && target.data_type() == ddt::f32);
    const bool narrow = w.dtype() == DType::F32 && target.data_type() == ddt::bf16;
    const Tensor src = widen ? to_contiguous(w, DType::F32) : narrow ? to_contiguous(w, DType::BF16) : w;
    dnnl::memory user = wrap(user_md(src), eng, src);
    dnnl::memory out(target, eng);
    dnnl::reorder(user, out).execute(strm, user, out);
    strm.wait();
    it->second.forms.emplace_back(target, out);
    // The primitives read only the reordered copy from now on: a weight mapped from its file need not stay
    // resident next to it (peak memory = one copy of the weights, as in PyTorch).
    w.release_pages();
    return out;
  }
};

DnnlContext::DnnlContext() : impl_(std::make_unique<Impl>()) {
  // $A2F_CPU_WINOGRAD: "off" / "0" (the default), "all", or a weight-size limit in MB (16: Winograd for
  // convolutions up to 640 -> 640 channels, whose transformed weights take at most 64 MB each).
  winograd_max_weight_bytes_ = 0;
  if (const char* env = std::getenv("A2F_CPU_WINOGRAD")) {
    const std::string v(env);
    if (v == "off" || v == "0")
      winograd_max_weight_bytes_ = 0;
    else if (v == "all")
      winograd_max_weight_bytes_ = SIZE_MAX;
    else {
      size_t mb = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), mb);
      A2F_CHECK(r.ec == std::errc() && r.ptr == v.data() + v.size(), "A2F_CPU_WINOGRAD=", v,
                " is not off, all or a size in MB");
      winograd_max_weight_bytes_ = mb << 20;
    }
  }
}

DnnlContext::~DnnlContext() = default;

void DnnlContext::set_winograd_max_weight_bytes(size_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  winograd_max_weight_bytes_ = bytes;
}

std::string DnnlContext::conv_impl(const Tensor& x, const Tensor& w, bool has_bias, const Conv2dParams& p) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const DType xd = x.dtype() == DType::F16 ? DType::F32 : x.dtype();
  auto it = impl_->convs.find(conv_key(x.to(xd), w, has_bias, p, winograd_max_weight_bytes_));
  return it == impl_->convs.end() ? std::string() : std::string(it->second.pd.impl_info_str());
}

void DnnlContext::clear() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->weights.clear();
  impl_->src_scratch.reset();
  impl_->dst_scratch.reset();
  impl_->pad_scratch.reset();
}

const char* DnnlContext::isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::sse41:
      return "sse41";
    default:
      return "other";
  }
}

Tensor DnnlContext::conv2d(const Tensor& x0, const Tensor& w, const Tensor& bias0, const Conv2dParams& p,
                           const Shape& out_shape) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const Tensor x = to_contiguous(x0, x0.dtype() == DType::F16 ? DType::F32 : x0.dtype());
  const bool bf16 = x.dtype() == DType::BF16 || w.dtype() == DType::BF16;
  const ddt cdt = bf16 ? ddt::bf16 : ddt::f32;
  const DType out_dt = x.dtype();  // f32 or bf16 here
  const int64_t g = p.groups, o = w.dim(0);
  const dims wdims =
      g == 1 ? dims{o, w.dim(1), w.dim(2), w.dim(3)} : dims{g, o / g, w.dim(1), w.dim(2), w.dim(3)};
  const std::string key = conv_key(x, w, bias0.defined(), p, winograd_max_weight_bytes_);
  auto it = m.convs.find(key);
  if (it == m.convs.end()) {
    ConvEntry e;
    // Activation layout: oneDNN's choice (nhwc for its brgconv kernels), except bf16 on images of 64x64 and
    // more: nChw16c with the jit kernels is ~8% faster there. (It is 3-7% faster for f32 too, but f32 keeps
    // oneDNN's default: the other rounding flips pixels of the uint8 aligned face crop downstream of SCRFD
    // and breaks tests/face parity.)
    const dtag act_tag = bf16 && x.dim(2) * x.dim(3) >= 64 * 64 ? dtag::nChw16c : dtag::any;
    const dnnl::memory::desc b_md =
        bias0.defined() ? dnnl::memory::desc({o}, ddt::f32, dtag::a) : dnnl::memory::desc();
    auto make_pd = [&](dnnl::algorithm alg, ddt compute, ddt dst_dt) {
      const dnnl::memory::desc src_md(to_dims(x.shape()), compute, act_tag);
      const dnnl::memory::desc w_md(wdims, compute, dtag::any);
      const dnnl::memory::desc dst_md(to_dims(out_shape), dst_dt, act_tag);
      const dnnl::convolution_forward::desc d(
          dnnl::prop_kind::forward_inference, alg, src_md, w_md, b_md, dst_md, {p.stride_h, p.stride_w},
          {p.dilation_h - 1, p.dilation_w - 1}, {p.pad_top, p.pad_left}, {p.pad_bottom, p.pad_right});
      return dnnl::convolution_forward::primitive_desc(d, make_attr(p.act, 1.0f), m.eng);
    };
    // 3x3 stride-1 convolutions: oneDNN's f32 Winograd F(4x4, 3x3) (about 3x fewer multiplications) when
    // oneDNN has it for this CPU, the f32 weights are small enough (winograd_max_weight_bytes) for their
    // transformed copy, 4x their f32 size, to be cached, and the image is large enough for it to pay: f32
    // from 16x16 (at 8x8 it ties with direct), bf16 inputs (widened exactly to f32) from 32x32 (below that
    // bf16 direct convolution is faster). Measured on the UNet's shapes, single core.
    const int64_t pixels = out_shape[2] * out_shape[3];
    const bool wino = g == 1 && w.dim(2) == 3 && w.dim(3) == 3 && p.stride_h == 1 && p.stride_w == 1 &&
                      p.dilation_h == 1 && p.dilation_w == 1 && pixels >= (bf16 ? 32 * 32 : 16 * 16) &&
                      static_cast<double>(w.numel()) * 4 <= static_cast<double>(winograd_max_weight_bytes_);
    bool have = false;
    if (wino) {
      try {
        e.pd = make_pd(dnnl::algorithm::convolution_winograd, ddt::f32, ddt::f32);
        have = true;
      } catch (const dnnl::error&) {
        have = false;  // not available for this shape / CPU / post-op: direct below
      }
    }
    if (!have) e.pd = make_pd(dnnl::algorithm::convolution_direct, cdt, to_dnnl(out_dt));
    e.prim = dnnl::convolution_forward(e.pd);
    e.user_src = dnnl::memory::desc(to_dims(x.shape()), to_dnnl(x.dtype()), dtag::nchw);
    e.user_dst = dnnl::memory::desc(to_dims(out_shape), to_dnnl(out_dt), dtag::nchw);
    e.reorder_src = e.pd.src_desc() != e.user_src;
    e.reorder_dst = e.pd.dst_desc() != e.user_dst;
    if (e.reorder_src) {
      const dnnl::reorder::primitive_desc rpd(m.eng, e.user_src, m.eng, e.pd.src_desc(),
                                              user_scratchpad_attr());
      e.src_r = dnnl::reorder(rpd);
      e.src_r_pad = rpd.scratchpad_desc();
    }
    if (e.reorder_dst) {
      const dnnl::reorder::primitive_desc rpd(m.eng, e.pd.dst_desc(), m.eng, e.user_dst,
                                              user_scratchpad_attr());
      e.dst_r = dnnl::reorder(rpd);
      e.dst_r_pad = rpd.scratchpad_desc();
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
  Tensor out = new_tensor(out_shape, out_dt);
  dnnl::memory user_src = wrap(e.user_src, m.eng, x), user_dst = wrap(e.user_dst, m.eng, out);
  dnnl::memory src = user_src, dst = user_dst;
  if (e.reorder_src) {
    src = dnnl::memory(e.pd.src_desc(), m.eng, m.src_scratch.get(e.pd.src_desc().get_size()));
    m.execute(e.src_r, e.src_r_pad, {{DNNL_ARG_FROM, user_src}, {DNNL_ARG_TO, src}});
  }
  if (e.reorder_dst)
    dst = dnnl::memory(e.pd.dst_desc(), m.eng, m.dst_scratch.get(e.pd.dst_desc().get_size()));
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, dst}};
  Tensor bias;
  if (bias0.defined()) {
    bias = to_contiguous(bias0, DType::F32);
    args.emplace(DNNL_ARG_BIAS, wrap(dnnl::memory::desc({o}, ddt::f32, dtag::a), m.eng, bias));
  }
  m.execute(e.prim, e.pd.scratchpad_desc(), std::move(args));
  if (e.reorder_dst) m.execute(e.dst_r, e.dst_r_pad, {{DNNL_ARG_FROM, dst}, {DNNL_ARG_TO, user_dst}});
  m.strm.wait();
  return restore_f16(out, x0);
}

Tensor DnnlContext::linear(const Tensor& x0, const Tensor& w, const Tensor& bias0, Act act) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const bool bf16 = x0.dtype() == DType::BF16 || w.dtype() == DType::BF16;
  const DType cdt = bf16 ? DType::BF16 : DType::F32;
  const Tensor x = to_contiguous(x0, cdt);
  const DType out_dt = out_dtype_of(x0);
  const int64_t k = w.dim(1), n = w.dim(0), mrows = k ? x.numel() / k : 0;
  Shape out_shape = x0.shape();
  out_shape.back() = n;
  Tensor out = new_tensor(out_shape, out_dt);
  if (mrows == 0) return restore_f16(out, x0);
  const std::string key = cat("linear ", mrows, "x", k, "x", n, dtype_name(cdt), dtype_name(out_dt),
                              bias0.defined() ? " b" : "", " a", static_cast<int>(act));
  auto it = m.linears.find(key);
  if (it == m.linears.end()) {
    MatmulEntry e;
    const dnnl::memory::desc src_md({mrows, k}, to_dnnl(cdt), dtag::ab);
    const dnnl::memory::desc w_md({k, n}, to_dnnl(cdt), dtag::any);
    const dnnl::memory::desc b_md =
        bias0.defined() ? dnnl::memory::desc({1, n}, ddt::f32, dtag::ab) : dnnl::memory::desc();
    const dnnl::memory::desc dst_md({mrows, n}, to_dnnl(out_dt), dtag::ab);
    e.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), make_attr(act, 1.0f),
                                        m.eng);
    e.prim = dnnl::matmul(e.pd);
    it = m.linears.emplace(key, std::move(e)).first;
  }
  MatmulEntry& e = it->second;
  dnnl::memory wmem = m.weight(w, e.pd.weights_desc(), [&](const Tensor& ws) {
    return dnnl::memory::desc({k, n}, to_dnnl(ws.dtype()), dims{ws.strides()[1], ws.strides()[0]});
  });
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(e.pd.src_desc(), m.eng, x)},
                                             {DNNL_ARG_WEIGHTS, wmem},
                                             {DNNL_ARG_DST, wrap(e.pd.dst_desc(), m.eng, out)}};
  Tensor bias;
  if (bias0.defined()) {
    bias = to_contiguous(bias0, DType::F32);
    args.emplace(DNNL_ARG_BIAS, wrap(dnnl::memory::desc({1, n}, ddt::f32, dtag::ab), m.eng, bias));
  }
  m.execute(e.prim, e.pd.scratchpad_desc(), std::move(args));
  m.strm.wait();
  return restore_f16(out, x0);
}

Tensor DnnlContext::matmul(const Tensor& a0, const Tensor& b0, bool trans_b, float alpha,
                           const Shape& out_shape) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  const bool bf16 = a0.dtype() == DType::BF16 || b0.dtype() == DType::BF16;
  const DType cdt = bf16 ? DType::BF16 : DType::F32;
  const Tensor a = to_contiguous(a0, cdt), b = to_contiguous(b0, cdt);
  const DType out_dt = out_dtype_of(a0);
  Tensor out = new_tensor(out_shape, out_dt);
  if (out.numel() == 0) return restore_f16(out, a0);
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
    MatmulEntry e;
    e.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), make_attr(Act::None, alpha),
                                        m.eng);
    e.prim = dnnl::matmul(e.pd);
    it = m.matmuls.emplace(key, std::move(e)).first;
  }
  m.execute(it->second.prim, it->second.pd.scratchpad_desc(),
            {{DNNL_ARG_SRC, wrap(a_md, m.eng, a)},
             {DNNL_ARG_WEIGHTS, wrap(b_md, m.eng, b)},
             {DNNL_ARG_DST, wrap(c_md, m.eng, out)}});
  m.strm.wait();
  return restore_f16(out, a0);
}

}  // namespace a2f::cpu
