// ONNX layout and shape operators: Shape, Gather, Unsqueeze, Squeeze, Slice, Cast, Constant, Concat, Reshape,
// Flatten, Transpose, Identity. Integer tensors (the int64 shape subgraph of exported PyTorch models) are
// computed on the host; float tensors go through the backend or are views.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/onnx_ops.h"

namespace a2f::onnx_ops {
namespace {

// Float tensors may live on a device; integer ones are always on the host.
Tensor to_host_any(Backend& be, const Tensor& t) {
  return dtype_is_float(t.dtype()) ? be.to_host(t) : t;
}
Tensor from_host_any(Backend& be, const Tensor& t) {
  return dtype_is_float(t.dtype()) ? be.to_device(t) : t;
}

// Generic strided element copy over raw bytes: out[i] = src[offset(i)], for index maps built by the callers.
Tensor host_gather(const Tensor& data, int axis, const std::vector<int64_t>& idx, const Shape& idx_shape,
                   const std::string& where) {
  Tensor d = data.contiguous();
  const int64_t n = d.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= d.dim(i);
  for (int i = axis + 1; i < d.ndim(); ++i) inner *= d.dim(i);
  Shape out;
  for (int i = 0; i < axis; ++i) out.push_back(d.dim(i));
  out.insert(out.end(), idx_shape.begin(), idx_shape.end());
  for (int i = axis + 1; i < d.ndim(); ++i) out.push_back(d.dim(i));
  Tensor r = Tensor::empty(out, d.dtype());
  const size_t es = dtype_size(d.dtype());
  const auto* src = static_cast<const char*>(d.raw_data());
  auto* dst = static_cast<char*>(r.raw_data());
  const size_t k = idx.size();
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t j = 0; j < k; ++j) {
      int64_t i = idx[j] < 0 ? idx[j] + n : idx[j];
      A2F_CHECK(i >= 0 && i < n, where, ": index ", idx[j], " is out of range for dimension ", axis,
                " of size ", n);
      std::memcpy(dst + ((o * k + j) * inner) * es, src + ((o * n + i) * inner) * es, inner * es);
    }
  }
  return r;
}

// ONNX Slice semantics on one axis: clamps start/end per step sign; returns (start, count).
std::pair<int64_t, int64_t> slice_range(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? (end - start + step - 1) / step : 0};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return {start, start > end ? (start - end - step - 1) / (-step) : 0};
}

Tensor host_slice(const Tensor& data, const std::vector<int64_t>& starts, const std::vector<int64_t>& counts,
                  const std::vector<int64_t>& steps) {
  Tensor d = data.contiguous();
  const int n = d.ndim();
  Shape out(counts.begin(), counts.end());
  Tensor r = Tensor::empty(out, d.dtype());
  const size_t es = dtype_size(d.dtype());
  const auto st = contiguous_strides(d.shape());
  const auto* src = static_cast<const char*>(d.raw_data());
  auto* dst = static_cast<char*>(r.raw_data());
  std::vector<int64_t> idx(n, 0);
  for (int64_t k = 0; k < r.numel(); ++k) {
    int64_t off = 0;
    for (int i = 0; i < n; ++i) off += (starts[i] + idx[i] * steps[i]) * st[i];
    std::memcpy(dst + k * es, src + off * es, es);
    for (int i = n; i-- > 0;) {
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return r;
}

Tensor host_concat(const std::vector<Tensor>& xs, int axis) {
  Shape out = xs[0].shape();
  out[axis] = 0;
  for (const auto& x : xs) out[axis] += x.dim(axis);
  Tensor r = Tensor::empty(out, xs[0].dtype());
  const size_t es = dtype_size(r.dtype());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= out[i];
  for (int i = axis + 1; i < r.ndim(); ++i) inner *= out[i];
  auto* dst = static_cast<char*>(r.raw_data());
  int64_t pos = 0;
  for (const auto& x0 : xs) {
    Tensor x = x0.to(r.dtype()).contiguous();
    const int64_t run = x.dim(axis) * inner;
    const auto* src = static_cast<const char*>(x.raw_data());
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + (o * out[axis] * inner + pos * inner) * es, src + o * run * es, run * es);
    pos += x.dim(axis);
  }
  return r;
}

// --- Constant / Identity / Shape / Cast -------------------------------------------------------------------

Kernel compile_constant(const NodeInfo& info, Backend&) {
  check_arity(info, 0, 0, 1, 1);
  Attrs a(info, {"value", "value_float", "value_floats", "value_int", "value_ints"});
  A2F_CHECK(info.node->attributes.size() == 1, info.where, ": needs exactly one value attribute");
  Tensor v;
  const OnnxAttribute& at = info.node->attributes[0];
  if (at.name == "value") {
    v = a.t("value");
  } else if (at.name == "value_float") {
    v = Tensor::full({}, a.f("value_float", 0));
  } else if (at.name == "value_floats") {
    v = Tensor::from_data({static_cast<int64_t>(at.floats.size())}, at.floats);
  } else if (at.name == "value_int") {
    v = int64_tensor({a.i("value_int", 0)}, {});
  } else {
    v = int64_tensor(a.ints("value_ints"));
  }
  return [v](Backend& be, const std::vector<Tensor>&) { return std::vector<Tensor>{from_host_any(be, v)}; };
}

Kernel compile_identity(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {});
  return [](Backend&, const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0]}; };
}

Kernel compile_shape(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {"start", "end"});
  const int64_t start = a.i("start", 0);
  const bool has_end = a.has("end");
  const int64_t end = a.i("end", 0);
  return [=](Backend&, const std::vector<Tensor>& in) {
    const int64_t r = in[0].ndim();
    int64_t s = start < 0 ? start + r : start, e = has_end ? (end < 0 ? end + r : end) : r;
    s = std::clamp<int64_t>(s, 0, r);
    e = std::clamp<int64_t>(e, s, r);
    std::vector<int64_t> dims(in[0].shape().begin() + s, in[0].shape().begin() + e);
    return std::vector<Tensor>{int64_tensor(dims)};  // [rank]
  };
}

Kernel compile_cast(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {"to", "saturate"});
  const DType to = onnx_dtype(static_cast<int32_t>(a.i("to", 0)), info.where);
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    if (x.dtype() == to) return std::vector<Tensor>{x};
    if (dtype_is_float(x.dtype()) && dtype_is_float(to)) return std::vector<Tensor>{be.cast(x, to)};
    // Integer <-> float or integer <-> integer: on the host (small shape arithmetic).
    Tensor h = to_host_any(be, x).to(to);
    return std::vector<Tensor>{from_host_any(be, h)};
  };
}

// --- Gather / Slice / Concat
// --------------------------------------------------------------------------------

Kernel compile_gather(const NodeInfo& info, Backend&) {
  check_arity(info, 2, 2, 1, 1);
  Attrs a(info, {"axis"});
  const int64_t axis = a.i("axis", 0);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    A2F_CHECK(is_host_value(in[1]), where, ": indices must be integers, got ", in[1].desc());
    const int ax = norm_axis(axis, in[0].ndim(), where);
    Tensor r = host_gather(to_host_any(be, in[0]), ax, to_int64s(in[1], where), in[1].shape(), where);
    return std::vector<Tensor>{from_host_any(be, r)};
  };
}

Kernel compile_slice(const NodeInfo& info, Backend&) {
  const bool attr_form = info.opset < 10;
  if (attr_form) {
    check_arity(info, 1, 1, 1, 1);
  } else {
    check_arity(info, 3, 5, 1, 1);
  }
  Attrs a(info, attr_form ? std::initializer_list<const char*>{"starts", "ends", "axes"}
                          : std::initializer_list<const char*>{});
  std::vector<int64_t> a_starts, a_ends, a_axes;
  if (attr_form) {
    a_starts = a.ints("starts");
    a_ends = a.ints("ends");
    a_axes = a.ints("axes");
  }
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    std::vector<int64_t> starts = a_starts, ends = a_ends, axes = a_axes, steps;
    if (!attr_form) {
      starts = to_int64s(in[1], where);
      ends = to_int64s(in[2], where);
      if (in.size() > 3 && in[3].defined()) axes = to_int64s(in[3], where);
      if (in.size() > 4 && in[4].defined()) steps = to_int64s(in[4], where);
    }
    A2F_CHECK(starts.size() == ends.size(), where, ": starts ", starts, " and ends ", ends,
              " differ in length");
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    A2F_CHECK(axes.size() == starts.size() && steps.size() == starts.size(), where, ": axes/steps length");
    const int r = x.ndim();
    std::vector<int64_t> st(r, 0), cnt(x.shape().begin(), x.shape().end()), sp(r, 1);
    for (size_t i = 0; i < starts.size(); ++i) {
      const int ax = norm_axis(axes[i], r, where);
      A2F_CHECK(steps[i] != 0, where, ": step 0");
      auto [s, c] = slice_range(starts[i], ends[i], steps[i], x.dim(ax));
      st[ax] = s;
      cnt[ax] = c;
      sp[ax] = steps[i];
    }
    if (dtype_is_float(x.dtype()) && std::all_of(sp.begin(), sp.end(), [](int64_t v) { return v > 0; })) {
      Tensor y = x;
      for (int ax = 0; ax < r; ++ax) {
        if (st[ax] == 0 && cnt[ax] == x.dim(ax) && sp[ax] == 1) continue;
        y = be.slice(y, ax, st[ax],
                     st[ax] + std::max<int64_t>(cnt[ax] - 1, 0) * sp[ax] + (cnt[ax] > 0 ? 1 : 0), sp[ax]);
      }
      return std::vector<Tensor>{y};
    }
    return std::vector<Tensor>{from_host_any(be, host_slice(to_host_any(be, x), st, cnt, sp))};
  };
}

Kernel compile_concat(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1 << 20, 1, 1);
  Attrs a(info, {"axis"});
  A2F_CHECK(a.has("axis"), info.where, ": attribute 'axis' is missing");
  const int64_t axis = a.i("axis", 0);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    std::vector<Tensor> xs;
    for (const auto& t : in)
      if (t.defined()) xs.push_back(t);
    A2F_CHECK(!xs.empty(), where, ": no inputs");
    const int ax = norm_axis(axis, xs[0].ndim(), where);
    for (const auto& t : xs) {
      A2F_CHECK(t.ndim() == xs[0].ndim() && t.dtype() == xs[0].dtype(), where, ": inputs ", xs[0].desc(),
                " and ", t.desc(), " differ in rank or type");
      for (int d = 0; d < t.ndim(); ++d)
        A2F_CHECK(d == ax || t.dim(d) == xs[0].dim(d), where, ": inputs ", xs[0].desc(), " and ", t.desc(),
                  " differ outside axis ", ax);
    }
    if (dtype_is_float(xs[0].dtype())) return std::vector<Tensor>{be.concat(xs, ax)};
    return std::vector<Tensor>{host_concat(xs, ax)};
  };
}

// --- Views: Reshape / Flatten / Unsqueeze / Squeeze, and Transpose -----------------------------------------

Tensor as_view(Backend& be, const Tensor& x, const Shape& s) {
  if (x.is_contiguous()) return x.reshape(s);
  // A non-contiguous float tensor is made contiguous by the backend (identity permute).
  std::vector<int> id(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) id[i] = i;
  return (dtype_is_float(x.dtype()) ? be.permute(x, id) : x.contiguous()).reshape(s);
}

Kernel compile_reshape(const NodeInfo& info, Backend&) {
  check_arity(info, 2, 2, 1, 1);
  Attrs a(info, {"allowzero"});
  const bool allowzero = a.i("allowzero", 0) != 0;
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    std::vector<int64_t> s = to_int64s(in[1], where);
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && !allowzero) {
        A2F_CHECK(static_cast<int>(i) < x.ndim(), where, ": shape ", s, " copies dimension ", i, " of ",
                  x.desc());
        s[i] = x.dim(static_cast<int>(i));
      }
      A2F_CHECK(s[i] >= -1, where, ": invalid shape ", s);
    }
    int64_t known = 1, infer = 0;
    for (int64_t v : s) {
      if (v == -1)
        ++infer;
      else
        known *= v;
    }
    A2F_CHECK(infer <= 1 && (infer ? known != 0 && x.numel() % known == 0 : known == x.numel()), where,
              ": cannot reshape ", x.desc(), " to ", s);
    return std::vector<Tensor>{as_view(be, x, Shape(s.begin(), s.end()))};
  };
}

Kernel compile_flatten(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {"axis"});
  const int64_t axis = a.i("axis", 1);
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    const int64_t r = x.ndim();
    const int64_t ax = axis < 0 ? axis + r : axis;
    A2F_CHECK(ax >= 0 && ax <= r, where, ": axis ", axis, " out of range for ", x.desc());
    int64_t outer = 1;
    for (int i = 0; i < ax; ++i) outer *= x.dim(i);
    const int64_t inner = outer == 0 ? 0 : x.numel() / outer;
    return std::vector<Tensor>{as_view(be, x, {outer, inner})};  // [outer, inner]
  };
}

Kernel compile_unsqueeze(const NodeInfo& info, Backend&) {
  const bool input_axes = info.opset >= 13;
  check_arity(info, input_axes ? 2 : 1, input_axes ? 2 : 1, 1, 1);
  Attrs a(info,
          input_axes ? std::initializer_list<const char*>{} : std::initializer_list<const char*>{"axes"});
  const std::vector<int64_t> attr = input_axes ? std::vector<int64_t>{} : a.ints("axes");
  const std::string where = info.where;
  const int64_t opset = info.opset;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    std::vector<int64_t> axes = opset >= 13 ? to_int64s(in[1], where) : attr;
    const int64_t out_rank = in[0].ndim() + static_cast<int64_t>(axes.size());
    std::vector<bool> inserted(out_rank, false);
    for (int64_t ax : axes) {
      const int n = norm_axis(ax, out_rank, where);
      A2F_CHECK(!inserted[n], where, ": repeated axis ", ax);
      inserted[n] = true;
    }
    Shape s;
    int src = 0;
    for (int64_t i = 0; i < out_rank; ++i) s.push_back(inserted[i] ? 1 : in[0].dim(src++));
    return std::vector<Tensor>{as_view(be, in[0], s)};
  };
}

Kernel compile_squeeze(const NodeInfo& info, Backend&) {
  const bool input_axes = info.opset >= 13;
  check_arity(info, 1, input_axes ? 2 : 1, 1, 1);
  Attrs a(info,
          input_axes ? std::initializer_list<const char*>{} : std::initializer_list<const char*>{"axes"});
  const std::vector<int64_t> attr = input_axes ? std::vector<int64_t>{} : a.ints("axes");
  const std::string where = info.where;
  const int64_t opset = info.opset;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    std::vector<int64_t> axes =
        opset >= 13 ? (in.size() > 1 && in[1].defined() ? to_int64s(in[1], where) : std::vector<int64_t>{})
                    : attr;
    const Tensor& x = in[0];
    std::vector<bool> drop(x.ndim(), false);
    if (axes.empty()) {
      for (int i = 0; i < x.ndim(); ++i) drop[i] = x.dim(i) == 1;
    }
    for (int64_t ax : axes) {
      const int n = norm_axis(ax, x.ndim(), where);
      A2F_CHECK(x.dim(n) == 1, where, ": cannot squeeze dimension ", ax, " of ", x.desc());
      drop[n] = true;
    }
    Shape s;
    for (int i = 0; i < x.ndim(); ++i)
      if (!drop[i]) s.push_back(x.dim(i));
    return std::vector<Tensor>{as_view(be, x, s)};
  };
}

Kernel compile_transpose(const NodeInfo& info, Backend&) {
  check_arity(info, 1, 1, 1, 1);
  Attrs a(info, {"perm"});
  const std::vector<int64_t> perm_attr = a.ints("perm");
  const std::string where = info.where;
  return [=](Backend& be, const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    std::vector<int> perm;
    if (perm_attr.empty()) {
      for (int i = x.ndim(); i-- > 0;) perm.push_back(i);
    } else {
      A2F_CHECK(static_cast<int>(perm_attr.size()) == x.ndim(), where, ": perm ", perm_attr, " for ",
                x.desc());
      for (int64_t p : perm_attr) perm.push_back(norm_axis(p, x.ndim(), where));
    }
    if (dtype_is_float(x.dtype())) return std::vector<Tensor>{be.permute(x, perm)};  // permuted shape
    return std::vector<Tensor>{x.permute(perm).contiguous()};
  };
}

}  // namespace

void register_shape_ops(std::map<std::string, CompileFn>& t) {
  t["Constant"] = compile_constant;
  t["Identity"] = compile_identity;
  t["Shape"] = compile_shape;
  t["Cast"] = compile_cast;
  t["Gather"] = compile_gather;
  t["Slice"] = compile_slice;
  t["Concat"] = compile_concat;
  t["Reshape"] = compile_reshape;
  t["Flatten"] = compile_flatten;
  t["Unsqueeze"] = compile_unsqueeze;
  t["Squeeze"] = compile_squeeze;
  t["Transpose"] = compile_transpose;
}

}  // namespace a2f::onnx_ops
