// ONNX operators on float activations (Conv, BatchNormalization, PRelu, Relu, Sigmoid, Add/Sub/Mul/Div,
// MaxPool, AveragePool, Resize/Upsample nearest, Gemm) through a2f::Backend. Semantics follow the ONNX
// operator specification (onnx/docs/Operators.md) for opsets 7..18; attributes outside what is implemented
// are errors.
#include "models/onnx_ops.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace a2f::onnx_ops {

// ---------------------------------------------------------------------------------------------------------
// Attributes and shared helpers

Attrs::Attrs(const NodeInfo& info, std::initializer_list<const char*> allowed) : info_(info) {
  for (const auto& a : info.node->attributes) {
    bool ok = false;
    for (const char* n : allowed) ok = ok || a.name == n;
    if (!ok) fail(info.where, ": attribute '", a.name, "' is not supported for ", info.node->op_type);
  }
}

const OnnxAttribute* Attrs::get(const char* name, OnnxAttribute::Type type) const {
  const OnnxAttribute* a = info_.node->attribute(name);
  if (a && a->type != type) {
    fail(info_.where, ": attribute '", name, "' has type ", onnx_attribute_type_name(a->type), ", expected ",
         onnx_attribute_type_name(type));
  }
  return a;
}

bool Attrs::has(const char* name) const {
  return info_.node->attribute(name) != nullptr;
}
int64_t Attrs::i(const char* name, int64_t def) const {
  const auto* a = get(name, OnnxAttribute::Type::Int);
  return a ? a->i : def;
}
float Attrs::f(const char* name, float def) const {
  const auto* a = get(name, OnnxAttribute::Type::Float);
  return a ? a->f : def;
}
std::string Attrs::s(const char* name, const std::string& def) const {
  const auto* a = get(name, OnnxAttribute::Type::String);
  return a ? a->s : def;
}
std::vector<int64_t> Attrs::ints(const char* name, const std::vector<int64_t>& def) const {
  const auto* a = get(name, OnnxAttribute::Type::Ints);
  return a ? a->ints : def;
}
const Tensor& Attrs::t(const char* name) const {
  const auto* a = get(name, OnnxAttribute::Type::Tensor);
  A2F_CHECK(a != nullptr, info_.where, ": attribute '", name, "' is missing");
  return a->t;
}
void Attrs::unsupported(const char* name, const std::string& value) const {
  fail(info_.where, ": attribute ", name, "=", value, " is not supported");
}

void check_arity(const NodeInfo& info, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
  const size_t ni = info.node->inputs.size(), no = info.node->outputs.size();
  A2F_CHECK(ni >= min_in && ni <= max_in, info.where, ": has ", ni, " inputs, expected ", min_in,
            min_in == max_in ? std::string() : cat("..", max_in));
  A2F_CHECK(no >= min_out && no <= max_out, info.where, ": has ", no, " outputs, expected ", min_out,
            min_out == max_out ? std::string() : cat("..", max_out),
            max_out < no ? " (training-mode or index outputs are not supported)" : "");
  for (size_t i = 0; i < min_in; ++i)
    A2F_CHECK(!info.node->inputs[i].empty(), info.where, ": required input ", i, " is missing");
}

bool is_host_value(const Tensor& t) {
  return t.defined() && !dtype_is_float(t.dtype());
}

std::vector<int64_t> to_int64s(const Tensor& t, const std::string& what) {
  A2F_CHECK(t.defined(), what, ": missing value");
  A2F_CHECK(t.device() == Device::CPU, what, ": expected a host tensor");
  Tensor c = t.to(DType::I64).contiguous();
  const int64_t* p = c.data<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

Tensor int64_tensor(const std::vector<int64_t>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::I64);
  A2F_ASSERT(static_cast<int64_t>(v.size()) == t.numel());
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}
Tensor int64_tensor(const std::vector<int64_t>& v) {
  return int64_tensor(v, {static_cast<int64_t>(v.size())});
}

int norm_axis(int64_t axis, int64_t rank, const std::string& where) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  A2F_CHECK(a >= 0 && a < rank, where, ": axis ", axis, " is out of range for rank ", rank);
  return static_cast<int>(a);
}

const std::map<std::string, CompileFn>& op_table() {
  static const std::map<std::string, CompileFn> table = [] {
    std::map<std::string, CompileFn> t;
    register_nn_ops(t);
    register_shape_ops(t);
    return t;
  }();
  return table;
}

namespace {

// A float weight known at load time, converted once for the backend; else the runtime input.
struct WeightSlot {
  Tensor prepared;
  size_t index = 0;
  const Tensor& get(const std::vector<Tensor>& in) const { return prepared.defined() ? prepared : in[index]; }
};

WeightSlot weight_slot(const NodeInfo& info, Backend& be, size_t i) {
  WeightSlot w;
  w.index = i;
  if (const Tensor* c = info.const_input(i)) {
    A2F_CHECK(dtype_is_float(c->dtype()), info.where, ": input ", i, " ('", info.node->inputs[i],
              "') has type ", dtype_name(c->dtype()), ", expected a float tensor");
    w.prepared = be.prepare_weight(*c, info.weight_dtype);
  }
  return w;
}

const Tensor& float_input(const std::vector<Tensor>& in, size_t i, const char* op) {
  const Tensor& t = in[i];
  A2F_CHECK(t.defined() && dtype_is_float(t.dtype()), op, ": input ", i, " must be a float tensor, got ",
            t.defined() ? t.desc() : std::string("nothing"));
  return t;
}

// Pads [begin..., end...] for 2-D spatial ops, or computed from auto_pad at run time.
struct Spatial2d {
  std::string auto_pad = "NOTSET";
  int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  int64_t pads[4] = {0, 0, 0, 0};  // top, left, bottom, right

  void read(const Attrs& a, const NodeInfo& info, bool has_dilations) {
    auto_pad = a.s("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
      a.unsupported("auto_pad", auto_pad);
    auto st = a.ints("strides", {1, 1});
    A2F_CHECK(st.size() == 2 && st[0] > 0 && st[1] > 0, info.where, ": strides ", st,
              " (2-D only, positive)");
    stride[0] = st[0];
    stride[1] = st[1];
    if (has_dilations) {
      auto d = a.ints("dilations", {1, 1});
      A2F_CHECK(d.size() == 2 && d[0] > 0 && d[1] > 0, info.where, ": dilations ", d,
                " (2-D only, positive)");
      dilation[0] = d[0];
      dilation[1] = d[1];
    }
    auto p = a.ints("pads", {0, 0, 0, 0});
    A2F_CHECK(p.size() == 4, info.where, ": pads ", p, " (2-D only: 4 values)");
    for (int i = 0; i < 4; ++i) {
      A2F_CHECK(p[i] >= 0, info.where, ": negative pads ", p);
      pads[i] = p[i];
    }
    if (auto_pad != "NOTSET") {
      for (int i = 0; i < 4; ++i)
        A2F_CHECK(p[i] == 0 || !a.has("pads"), info.where, ": pads together with auto_pad=", auto_pad);
    }
  }
  // Final pads for an input of size (h, w).
  void resolve(int64_t h, int64_t w, int64_t out_pads[4]) const {
    std::copy(pads, pads + 4, out_pads);
    if (auto_pad == "VALID") std::fill(out_pads, out_pads + 4, 0);
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t in[2] = {h, w};
      for (int i = 0; i < 2; ++i) {
        const int64_t out = (in[i] + stride[i] - 1) / stride[i];
        const int64_t total =
            std::max<int64_t>(0, (out - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - in[i]);
        const int64_t small = total / 2, big = total - small;
        out_pads[i] = auto_pad == "SAME_UPPER" ? small : big;
        out_pads[i + 2] = auto_pad == "SAME_UPPER" ? big : small;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Conv

Kernel compile_conv(const NodeInfo& info, Backend& be) {
  check_arity(info, 2, 3, 1, 1);
  Attrs a(info, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  Spatial2d sp;
  sp.read(a, info, true);
  const int64_t group = a.i("group", 1);
  A2F_CHECK(group >= 1, info.where, ": group ", group);
  const auto ks = a.ints("kernel_shape");
  WeightSlot w = weight_slot(info, be, 1);
  WeightSlot b;
  const bool has_bias = info.has_input(2);
  if (has_bias) b = weight_slot(info, be, 2);
  if (w.prepared.defined()) {
    A2F_CHECK(w.prepared.ndim() == 4, info.where, ": weight ", w.prepared.desc(),
              " is not 4-D (only 2-D conv)");
    if (!ks.empty())
      A2F_CHECK(ks.size() == 2 && ks[0] == w.prepared.dim(2) && ks[1] == w.prepared.dim(3), info.where,
                ": kernel_shape ", ks, " does not match weight ", w.prepared.desc());
  }
  const Act act = info.fused_act;
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    const Tensor& wt = w.get(in);
    A2F_CHECK(x.ndim() == 4 && wt.ndim() == 4, where, ": input ", x.desc(), " and weight ", wt.desc(),
              " must be 4-D");
    A2F_CHECK(x.dim(1) == wt.dim(1) * group && wt.dim(0) % group == 0, where, ": input ", x.desc(),
              " does not match weight ", wt.desc(), " with group ", group);
    Spatial2d s = sp;
    s.kernel[0] = wt.dim(2);
    s.kernel[1] = wt.dim(3);
    int64_t pads[4];
    s.resolve(x.dim(2), x.dim(3), pads);
    Conv2dParams p;
    p.stride_h = static_cast<int>(s.stride[0]);
    p.stride_w = static_cast<int>(s.stride[1]);
    p.dilation_h = static_cast<int>(s.dilation[0]);
    p.dilation_w = static_cast<int>(s.dilation[1]);
    p.pad_top = static_cast<int>(pads[0]);
    p.pad_left = static_cast<int>(pads[1]);
    p.pad_bottom = static_cast<int>(pads[2]);
    p.pad_right = static_cast<int>(pads[3]);
    p.groups = static_cast<int>(group);
    p.act = act;
    Tensor bias = has_bias ? b.get(in) : Tensor();
    return std::vector<Tensor>{be.conv2d(x, wt, bias, p)};  // [N, O, Ho, Wo]
  };
}

// ---------------------------------------------------------------------------------------------------------
// Normalisation and activations

Kernel compile_batch_norm(const NodeInfo& info, Backend& be) {
  check_arity(info, 5, 5, 1, 1);
  Attrs a(info, {"epsilon", "momentum", "spatial", "training_mode"});
  const float eps = a.f("epsilon", 1e-5f);
  if (a.i("spatial", 1) != 1) a.unsupported("spatial", "0");
  if (a.i("training_mode", 0) != 0) a.unsupported("training_mode", "1");
  WeightSlot g = weight_slot(info, be, 1), bt = weight_slot(info, be, 2), m = weight_slot(info, be, 3),
             v = weight_slot(info, be, 4);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    A2F_CHECK(x.ndim() >= 2, where, ": input ", x.desc(), " needs a channel dimension");
    return std::vector<Tensor>{
        be.batch_norm(x, m.get(in), v.get(in), g.get(in), bt.get(in), eps)};  // x's shape
  };
}

Kernel compile_prelu(const NodeInfo& info, Backend& be) {
  check_arity(info, 2, 2, 1, 1);
  Attrs a(info, {});
  WeightSlot s = weight_slot(info, be, 1);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    Tensor slope = s.get(in);
    const int64_t c = x.ndim() >= 2 ? x.dim(1) : 1;
    if (slope.numel() == 1) {
      slope = slope.reshape({1});
    } else {
      // Unidirectional broadcast of a per-channel slope: [C], [C, 1, 1] or [1, C, 1, 1] -> [C].
      bool per_channel = slope.numel() == c;
      const auto& sh = slope.shape();
      for (size_t i = 0; per_channel && i < sh.size(); ++i) {
        const size_t axis = x.ndim() - sh.size() + i;  // aligned from the right
        if (sh[i] != 1 && axis != 1) per_channel = false;
      }
      A2F_CHECK(per_channel, where, ": slope ", slope.desc(), " for input ", x.desc(),
                " (only a scalar or per-channel slope is supported)");
      slope = slope.reshape({c});
    }
    return std::vector<Tensor>{be.prelu(x, slope)};  // x's shape
  };
}

template <Act A>
Kernel compile_unary(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {});
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    return std::vector<Tensor>{be.unary(A, float_input(in, 0, where.c_str()))};
  };
}

// ---------------------------------------------------------------------------------------------------------
// Elementwise binary (float through the backend; integers on the host)

template <class T>
Tensor host_binary(BinaryOp op, const Tensor& a, const Tensor& b, const std::string& where) {
  const Shape out = broadcast_shapes(a.shape(), b.shape());
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor r = Tensor::empty(out, a.dtype());
  const T* pa = ac.data<T>();
  const T* pb = bc.data<T>();
  T* pr = r.data<T>();
  const size_t n = out.size();
  auto strides_for = [&](const Shape& s) {
    std::vector<int64_t> st(n, 0);
    int64_t acc = 1;
    for (size_t i = s.size(); i-- > 0;) {
      st[n - s.size() + i] = s[i] == 1 ? 0 : acc;
      acc *= s[i];
    }
    return st;
  };
  auto sa = strides_for(a.shape()), sb = strides_for(b.shape());
  std::vector<int64_t> idx(n, 0);
  for (int64_t k = 0; k < r.numel(); ++k) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < n; ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    const T x = pa[oa], y = pb[ob];
    switch (op) {
      case BinaryOp::Add:
        pr[k] = x + y;
        break;
      case BinaryOp::Sub:
        pr[k] = x - y;
        break;
      case BinaryOp::Mul:
        pr[k] = x * y;
        break;
      case BinaryOp::Div:
        A2F_CHECK(y != 0, where, ": integer division by zero");
        pr[k] = x / y;
        break;
    }
    for (size_t d = n; d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return r;
}

template <BinaryOp OP>
Kernel compile_binary(const NodeInfo& info, Backend& be) {
  check_arity(info, 2, 2, 1, 1);
  Attrs a(info, {});
  // A float constant operand (e.g. SCRFD's Scale multiplier) is prepared once.
  WeightSlot sa, sb;
  sa.index = 0;
  sb.index = 1;
  if (info.const_input(0) && dtype_is_float(info.const_input(0)->dtype())) sa = weight_slot(info, be, 0);
  if (info.const_input(1) && dtype_is_float(info.const_input(1)->dtype())) sb = weight_slot(info, be, 1);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = sa.get(in);
    const Tensor& y = sb.get(in);
    const bool fx = dtype_is_float(x.dtype()), fy = dtype_is_float(y.dtype());
    if (fx && fy) return std::vector<Tensor>{be.binary(OP, x, y)};  // broadcast shape
    A2F_CHECK(!fx && !fy && x.dtype() == y.dtype(), where, ": operands ", x.desc(), " and ", y.desc(),
              " must have the same element type");
    if (x.dtype() == DType::I64) return std::vector<Tensor>{host_binary<int64_t>(OP, x, y, where)};
    if (x.dtype() == DType::I32) return std::vector<Tensor>{host_binary<int32_t>(OP, x, y, where)};
    fail(where, ": element type ", dtype_name(x.dtype()), " is not supported");
  };
}

// ---------------------------------------------------------------------------------------------------------
// Pooling

Kernel compile_pool(const NodeInfo& info, PoolKind kind) {
  check_arity(info, 1, 1, 1, 1);
  const bool is_max = kind == PoolKind::Max;
  Attrs a(info, is_max
                    ? std::initializer_list<const char*>{"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                                         "pads", "storage_order", "strides"}
                    : std::initializer_list<const char*>{"auto_pad", "ceil_mode", "count_include_pad",
                                                         "kernel_shape", "pads", "strides"});
  Spatial2d sp;
  sp.read(a, info, is_max);
  A2F_CHECK(sp.dilation[0] == 1 && sp.dilation[1] == 1, info.where, ": dilated pooling is not supported");
  const auto ks = a.ints("kernel_shape");
  A2F_CHECK(ks.size() == 2 && ks[0] > 0 && ks[1] > 0, info.where, ": kernel_shape ", ks, " (2-D only)");
  sp.kernel[0] = ks[0];
  sp.kernel[1] = ks[1];
  if (a.i("storage_order", 0) != 0) a.unsupported("storage_order", "1");
  const bool ceil_mode = a.i("ceil_mode", 0) != 0;
  const bool include_pad = a.i("count_include_pad", 0) != 0;
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    A2F_CHECK(x.ndim() == 4, where, ": input ", x.desc(), " must be 4-D");
    int64_t pads[4];
    sp.resolve(x.dim(2), x.dim(3), pads);
    Pool2dParams p;
    p.kind = kind;
    p.kernel_h = static_cast<int>(sp.kernel[0]);
    p.kernel_w = static_cast<int>(sp.kernel[1]);
    p.stride_h = static_cast<int>(sp.stride[0]);
    p.stride_w = static_cast<int>(sp.stride[1]);
    p.pad_top = static_cast<int>(pads[0]);
    p.pad_left = static_cast<int>(pads[1]);
    p.pad_bottom = static_cast<int>(pads[2]);
    p.pad_right = static_cast<int>(pads[3]);
    p.ceil_mode = ceil_mode;
    p.count_include_pad = include_pad;
    return std::vector<Tensor>{be.pool2d(x, p)};  // [N, C, Ho, Wo]
  };
}

Kernel compile_max_pool(const NodeInfo& info, Backend&) {
  return compile_pool(info, PoolKind::Max);
}
Kernel compile_avg_pool(const NodeInfo& info, Backend&) {
  return compile_pool(info, PoolKind::Avg);
}

// ---------------------------------------------------------------------------------------------------------
// Resize / Upsample, nearest only. The backend's nearest upsample reads source index floor(dst * in / out);
// the node's own coordinate mapping is evaluated on the host and must give the same indices.

struct NearestMode {
  std::string coord = "asymmetric";
  std::string rounding = "floor";
};

int64_t nearest_source(const NearestMode& m, int64_t dst, int64_t in, int64_t out, double scale) {
  double x;
  if (m.coord == "asymmetric") {
    x = dst / scale;
  } else if (m.coord == "half_pixel") {
    x = (dst + 0.5) / scale - 0.5;
  } else if (m.coord == "pytorch_half_pixel") {
    x = out > 1 ? (dst + 0.5) / scale - 0.5 : 0.0;
  } else if (m.coord == "align_corners") {
    x = out > 1 ? dst * double(in - 1) / double(out - 1) : 0.0;
  } else if (m.coord == "tf_half_pixel_for_nearest") {
    x = (dst + 0.5) / scale;
  } else {
    x = dst / scale;
  }
  int64_t i;
  if (m.rounding == "floor") {
    i = static_cast<int64_t>(std::floor(x));
  } else if (m.rounding == "ceil") {
    i = static_cast<int64_t>(std::ceil(x));
  } else if (m.rounding == "round_prefer_ceil") {
    i = static_cast<int64_t>(std::floor(x + 0.5));
  } else {  // round_prefer_floor
    i = (x - std::floor(x)) == 0.5 ? static_cast<int64_t>(std::floor(x))
                                   : static_cast<int64_t>(std::round(x));
  }
  return std::clamp<int64_t>(i, 0, in - 1);
}

Tensor resize_nearest(Backend& be, const Tensor& x, const std::vector<double>& scales,
                      std::vector<int64_t> sizes, const NearestMode& m, const std::string& where) {
  A2F_CHECK(x.ndim() == 4, where, ": input ", x.desc(), " must be 4-D [N, C, H, W]");
  std::vector<double> sc = scales;
  if (!sizes.empty()) {
    A2F_CHECK(sizes.size() == 4, where, ": sizes ", sizes, " must have 4 values");
    sc.assign(4, 1.0);
    for (int d = 0; d < 4; ++d) {
      A2F_CHECK(sizes[d] > 0, where, ": sizes ", sizes);
      sc[d] = double(sizes[d]) / double(x.dim(d));
    }
  } else {
    A2F_CHECK(sc.size() == 4, where, ": scales must have 4 values");
    for (int d = 0; d < 4; ++d) {
      A2F_CHECK(sc[d] > 0, where, ": scales must be positive");
      sizes.push_back(static_cast<int64_t>(std::floor(double(x.dim(d)) * sc[d])));
    }
  }
  A2F_CHECK(sizes[0] == x.dim(0) && sizes[1] == x.dim(1), where, ": resizing the batch or channel dimension");
  for (int d = 2; d < 4; ++d) {
    const int64_t in = x.dim(d), out = sizes[d];
    for (int64_t o = 0; o < out; ++o) {
      if (nearest_source(m, o, in, out, sc[d]) != (o * in) / out) {
        fail(where, ": nearest resize with coordinate_transformation_mode=", m.coord,
             ", nearest_mode=", m.rounding, " from ", in, " to ", out,
             " is not supported (only floor(dst * in / out) sampling)");
      }
    }
  }
  return be.upsample_nearest(x, sizes[2], sizes[3]);  // [N, C, out_h, out_w]
}

std::vector<double> float_values(const Tensor& t) {
  Tensor c = t.to(DType::F64).contiguous();
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

Kernel compile_resize(const NodeInfo& info, Backend&) {
  const bool v10 = info.opset < 11;
  check_arity(info, 2, v10 ? 2 : 4, 1, 1);
  Attrs a(info, {"mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
                 "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy"});
  const std::string mode = a.s("mode", "nearest");
  if (mode != "nearest") a.unsupported("mode", mode);
  NearestMode m;
  m.coord = v10 ? "asymmetric" : a.s("coordinate_transformation_mode", "half_pixel");
  m.rounding = v10 ? "floor" : a.s("nearest_mode", "round_prefer_floor");
  for (const char* c :
       {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nearest"})
    if (m.coord == c) goto coord_ok;
  a.unsupported("coordinate_transformation_mode", m.coord);
coord_ok:
  if (m.rounding != "floor" && m.rounding != "ceil" && m.rounding != "round_prefer_floor" &&
      m.rounding != "round_prefer_ceil")
    a.unsupported("nearest_mode", m.rounding);
  if (a.i("antialias", 0) != 0) a.unsupported("antialias", "1");
  if (a.has("axes")) a.unsupported("axes", "(any)");
  if (a.s("keep_aspect_ratio_policy", "stretch") != "stretch")
    a.unsupported("keep_aspect_ratio_policy", a.s("keep_aspect_ratio_policy", ""));
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    const size_t scales_idx = v10 ? 1 : 2;
    if (scales_idx < in.size() && in[scales_idx].defined() && in[scales_idx].numel() > 0)
      scales = float_values(in[scales_idx]);
    if (!v10 && in.size() > 3 && in[3].defined() && in[3].numel() > 0) sizes = to_int64s(in[3], where);
    A2F_CHECK(scales.empty() != sizes.empty(), where, ": exactly one of scales and sizes must be given");
    return std::vector<Tensor>{resize_nearest(be, x, scales, sizes, m, where)};
  };
}

Kernel compile_upsample(const NodeInfo& info, Backend&) {
  const bool attr_scales = info.opset < 9;
  check_arity(info, attr_scales ? 1 : 2, attr_scales ? 1 : 2, 1, 1);
  Attrs a(info, {"mode", "scales"});
  const std::string mode = a.s("mode", "nearest");
  if (mode != "nearest") a.unsupported("mode", mode);
  std::vector<double> attr;
  if (attr_scales) {
    const auto* s = info.node->attribute("scales");
    A2F_CHECK(s && s->type == OnnxAttribute::Type::Floats, info.where, ": attribute 'scales' is missing");
    attr.assign(s->floats.begin(), s->floats.end());
  }
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    std::vector<double> scales = attr_scales ? attr : float_values(in[1]);
    return std::vector<Tensor>{resize_nearest(be, x, scales, {}, NearestMode{}, where)};
  };
}

// ---------------------------------------------------------------------------------------------------------
// Gemm: Y = alpha * A' B' + beta * C

Kernel compile_gemm(const NodeInfo& info, Backend& be) {
  check_arity(info, 2, 3, 1, 1);
  Attrs a(info, {"alpha", "beta", "transA", "transB", "broadcast"});
  const float alpha = a.f("alpha", 1.0f), beta = a.f("beta", 1.0f);
  const bool trans_a = a.i("transA", 0) != 0;
  const bool trans_b = a.i("transB", 0) != 0;
  const bool has_c = info.has_input(2);
  // The common exported form (transB = 1, alpha = beta = 1, C of shape [N]) is a Linear layer.
  WeightSlot w, c;
  const Tensor* b_const = info.const_input(1);
  bool as_linear = !trans_a && alpha == 1.0f && (beta == 1.0f || !has_c) && b_const != nullptr &&
                   b_const->ndim() == 2 && dtype_is_float(b_const->dtype());
  if (as_linear && has_c) {
    // C must be a constant bias of N values laid out as [N] or [1, N].
    const Tensor* ct = info.const_input(2);
    const int64_t n = trans_b ? b_const->dim(0) : b_const->dim(1);
    as_linear = ct != nullptr && ct->ndim() >= 1 && ct->numel() == n && ct->dim(-1) == n;
  }
  if (as_linear) {
    A2F_CHECK(b_const->ndim() == 2, info.where, ": B ", b_const->desc(), " must be 2-D");
    Tensor wt = trans_b ? *b_const : b_const->permute({1, 0}).contiguous();  // [N, K]
    w.prepared = be.prepare_weight(wt, info.weight_dtype);
    if (has_c)
      c.prepared =
          be.prepare_weight(info.const_input(2)->reshape({info.const_input(2)->numel()}), info.weight_dtype);
  } else {
    w = weight_slot(info, be, 1);
    if (has_c) c = weight_slot(info, be, 2);
  }
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = float_input(in, 0, where.c_str());
    A2F_CHECK(x.ndim() == 2, where, ": A ", x.desc(), " must be 2-D");
    if (as_linear) {
      A2F_CHECK(x.dim(1) == w.prepared.dim(1), where, ": A ", x.desc(), " does not match B ",
                w.prepared.desc());
      return std::vector<Tensor>{be.linear(x, w.prepared, has_c ? c.prepared : Tensor())};  // [M, N]
    }
    Tensor xa = trans_a ? be.permute(x, {1, 0}) : x;      // [M, K]
    Tensor y = be.matmul(xa, w.get(in), trans_b, alpha);  // [M, N]
    if (has_c) {
      Tensor ct = c.get(in);
      y = be.add(y, beta == 1.0f ? ct : be.scale(ct, beta));  // [M, N]
    }
    return std::vector<Tensor>{y};
  };
}

}  // namespace

void register_nn_ops(std::map<std::string, CompileFn>& t) {
  t["Conv"] = compile_conv;
  t["BatchNormalization"] = compile_batch_norm;
  t["PRelu"] = compile_prelu;
  t["Relu"] = compile_unary<Act::Relu>;
  t["Sigmoid"] = compile_unary<Act::Sigmoid>;
  t["Add"] = compile_binary<BinaryOp::Add>;
  t["Sub"] = compile_binary<BinaryOp::Sub>;
  t["Mul"] = compile_binary<BinaryOp::Mul>;
  t["Div"] = compile_binary<BinaryOp::Div>;
  t["MaxPool"] = compile_max_pool;
  t["AveragePool"] = compile_avg_pool;
  t["Resize"] = compile_resize;
  t["Upsample"] = compile_upsample;
  t["Gemm"] = compile_gemm;
}

}  // namespace a2f::onnx_ops
