// Small layers holding prepared weight tensors (taken once from a checkpoint through a WeightLoader), and the
// forward context every model passes down: the backend and an optional hook that sees each named
// intermediate.
//
// Each layer mirrors a torch.nn module: Linear, Conv2d, GroupNorm, LayerNorm, Embedding. Parameter names are
// the checkpoint's: `<prefix>.weight`, `<prefix>.bias`.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "core/backend.h"
#include "nn/loader.h"
#include "nn/lora.h"

namespace a2f::nn {

// Called with every intermediate tensor a model names (diffusers/transformers module paths, e.g.
// "down_blocks.0.resnets.1"), for debug dumps.
using TensorHook = std::function<void(const Tensor&)>;

struct Ctx {
  Backend& be;
  const TensorHook* hook = nullptr;

  // Names `t` and shows it to the hook, if any. Returns `t`.
  const Tensor& mark(Tensor& t, const std::string& name) const {
    t.set_name(name);
    if (hook && *hook) (*hook)(t);
    return t;
  }
};

// torch.nn.Linear: y = x W^T + b, W [out, in].
struct Linear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined when the layer has none
  int64_t in = 0, out = 0;
  std::shared_ptr<const LoraBranch> lora;  // optional unmerged LoRA side path (null: none)

  static Linear load(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out, bool bias = true);
  // A 1x1 torch.nn.Conv2d kernel [out, in, 1, 1] used as a Linear over channels-last tokens (same
  // arithmetic).
  static Linear load_conv1x1(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out,
                             bool bias = true);
  // x [..., in] -> [..., out]; with a LoRA: act(x W^T + b + scale * (x A^T) B^T).
  Tensor operator()(const Ctx& c, const Tensor& x, Act act = Act::None) const;
};

// torch.nn.Conv2d (square kernel, symmetric padding unless `p` says otherwise).
struct Conv2d {
  Tensor weight;  // [out, in, k, k]
  Tensor bias;    // [out] or undefined
  Conv2dParams params;
  int64_t in = 0, out = 0;
  int kernel = 1;
  std::shared_ptr<const LoraBranch> lora;  // optional unmerged LoRA side path (null: none)

  static Conv2d load(WeightLoader& w, const std::string& prefix, int64_t in, int64_t out, int kernel,
                     const Conv2dParams& p, bool bias = true);
  // x [N, in, H, W] -> [N, out, Ho, Wo]; `act` is applied after the bias (and after the LoRA side path).
  Tensor operator()(const Ctx& c, const Tensor& x, Act act = Act::None) const;
};

// torch.nn.GroupNorm(groups, channels, eps, affine=True), optionally followed by an activation.
struct GroupNorm {
  Tensor weight, bias;  // [C]
  int groups = 32;
  int64_t channels = 0;
  float eps = 1e-5f;

  static GroupNorm load(WeightLoader& w, const std::string& prefix, int groups, int64_t channels, float eps);
  // x [N, C, ...]
  Tensor operator()(const Ctx& c, const Tensor& x, Act act = Act::None) const;
};

// torch.nn.LayerNorm(dim, eps) over the last dimension; affine unless loaded with affine = false.
struct LayerNorm {
  Tensor weight, bias;  // [D] or undefined
  int64_t dim = 0;
  float eps = 1e-5f;

  static LayerNorm load(WeightLoader& w, const std::string& prefix, int64_t dim, float eps,
                        bool affine = true);
  Tensor operator()(const Ctx& c, const Tensor& x) const;
};

// torch.nn.Embedding(num, dim).
struct Embedding {
  Tensor weight;  // [num, dim]
  int64_t num = 0, dim = 0;

  static Embedding load(WeightLoader& w, const std::string& prefix, int64_t num, int64_t dim);
  // ids [...] i64/i32 -> [..., dim]
  Tensor operator()(const Ctx& c, const Tensor& ids) const;
};

// diffusers/transformers activation names -> Act. `what` names the config in the error for an unknown name.
Act act_from_name(const std::string& name, const std::string& what);

}  // namespace a2f::nn
