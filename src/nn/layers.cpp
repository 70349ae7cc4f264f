#include "nn/layers.h"

namespace a2f::nn {

Linear Linear::load(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out, bool bias) {
  Linear l;
  l.in = in;
  l.out = out;
  l.weight = w.dense(prefix + ".weight", {out, in});   // [out, in]
  if (bias) l.bias = w.vector(prefix + ".bias", out);  // [out]
  return l;
}

Linear Linear::load_conv1x1(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out, bool bias) {
  Linear l;
  l.in = in;
  l.out = out;
  l.weight = w.dense(prefix + ".weight", {out, in, 1, 1}, {out, in});  // [out, in]
  if (bias) l.bias = w.vector(prefix + ".bias", out);                  // [out]
  return l;
}

Tensor Linear::operator()(const Ctx& c, const Tensor& x, Act act) const {
  if (!lora) return c.be.linear(x, weight, bias, act);  // [..., out]
  Tensor y = c.be.linear(x, weight, bias);              // [..., out]
  Tensor h = c.be.linear(x, lora->down, Tensor());      // [..., r]
  h = c.be.linear(h, lora->up, Tensor());               // [..., out]
  y = c.be.add(y, c.be.scale(h, lora->scale));          // [..., out]
  return act == Act::None ? y : c.be.unary(act, y);     // [..., out]
}

Conv2d Conv2d::load(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out, int kernel,
                    const Conv2dParams& p, bool bias) {
  Conv2d l;
  l.in = in;
  l.out = out;
  l.kernel = kernel;
  l.params = p;
  l.weight = w.dense(prefix + ".weight", {out, in, kernel, kernel});  // [out, in, k, k]
  if (bias) l.bias = w.vector(prefix + ".bias", out);                 // [out]
  return l;
}

Tensor Conv2d::operator()(const Ctx& c, const Tensor& x, Act act) const {
  Conv2dParams p = params;
  p.act = lora ? Act::None : act;
  Tensor y = c.be.conv2d(x, weight, bias, p);  // [N, out, Ho, Wo]
  if (!lora) return y;
  Tensor h = c.be.conv2d(x, lora->down, Tensor(), p);                // [N, r, Ho, Wo]
  h = c.be.conv2d(h, lora->up, Tensor(), Conv2dParams::same(1, 0));  // [N, out, Ho, Wo]
  y = c.be.add(y, c.be.scale(h, lora->scale));                       // [N, out, Ho, Wo]
  return act == Act::None ? y : c.be.unary(act, y);                  // [N, out, Ho, Wo]
}

GroupNorm GroupNorm::load(WeightLoader& w, const std::string& prefix, int groups, int64_t channels,
                          float eps) {
  A2F_CHECK(groups > 0 && channels % groups == 0, w.file(), ": GroupNorm '", prefix, "' with ", channels,
            " channels cannot be split into ", groups, " groups (norm_num_groups)");
  GroupNorm l;
  l.groups = groups;
  l.channels = channels;
  l.eps = eps;
  l.weight = w.vector(prefix + ".weight", channels);  // [C]
  l.bias = w.vector(prefix + ".bias", channels);      // [C]
  return l;
}

Tensor GroupNorm::operator()(const Ctx& c, const Tensor& x, Act act) const {
  return c.be.group_norm(x, groups, weight, bias, eps, act);  // [N, C, ...]
}

LayerNorm LayerNorm::load(WeightLoader& w, const std::string& prefix, int64_t dim, float eps, bool affine) {
  LayerNorm l;
  l.dim = dim;
  l.eps = eps;
  if (affine) {
    l.weight = w.vector(prefix + ".weight", dim);  // [D]
    l.bias = w.vector(prefix + ".bias", dim);      // [D]
  }
  return l;
}

Tensor LayerNorm::operator()(const Ctx& c, const Tensor& x) const {
  return c.be.layer_norm(x, weight, bias, eps);  // [..., D]
}

Embedding Embedding::load(WeightLoader& w, const std::string& prefix, int64_t num, int64_t dim) {
  Embedding l;
  l.num = num;
  l.dim = dim;
  l.weight = w.matrix(prefix + ".weight", {num, dim});  // [num, dim]
  return l;
}

Tensor Embedding::operator()(const Ctx& c, const Tensor& ids) const {
  return c.be.embedding(ids, weight);  // [..., dim]
}

Act act_from_name(const std::string& name, const std::string& what) {
  if (name == "silu" || name == "swish") return Act::Silu;
  if (name == "relu") return Act::Relu;
  if (name == "gelu") return Act::GeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Act::GeluTanh;
  if (name == "quick_gelu") return Act::QuickGelu;
  if (name == "sigmoid") return Act::Sigmoid;
  fail(what, ": activation '", name, "' is not supported (supported: silu, swish, relu, gelu, gelu_new, ",
       "gelu_pytorch_tanh, quick_gelu, sigmoid)");
}

}  // namespace a2f::nn
