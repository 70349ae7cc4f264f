// WeightLoader: hands out the tensors of one checkpoint by their own names, checks every shape against what
// the network's config implies, and prepares each tensor once for the backend. Layers keep the prepared
// tensors, so a forward pass never looks anything up by name.
//
// Dtypes: matrices and kernels (Linear/Conv2d weights, embedding tables) are prepared in the compute dtype
// (f32 or bf16); vectors (biases, norm scales and shifts) stay f32. Checkpoints may be f32, f16 or bf16.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/backend.h"
#include "io/weights.h"

namespace a2f::nn {

class WeightLoader {
 public:
  // `file` names the checkpoint in error messages. `sd` must outlive the loader (the prepared tensors share
  // its storage where no conversion was needed, and keep that storage alive on their own).
  WeightLoader(const StateDict& sd, std::string file, Backend& backend, DType compute_dtype);

  Backend& backend() const { return be_; }
  DType dtype() const { return dtype_; }
  const std::string& file() const { return file_; }
  bool has(const std::string& name) const { return sd_.count(name) != 0; }

  // The checkpoint tensor as stored, after the checks: present, a float dtype, shape == expected. Otherwise
  // a2f::Error naming the tensor, the expected and the found shape and the file.
  Tensor raw(const std::string& name, const Shape& expected);
  // raw(), viewed as `view_as` when given (same element count, e.g. a 1x1 conv kernel as a Linear matrix),
  // prepared in the compute dtype.
  Tensor matrix(const std::string& name, const Shape& expected, const Shape& view_as = {});
  // matrix() for a Linear / Conv2d weight, which only ever goes to Backend::conv2d / linear: prepared with
  // Backend::prepare_dense_weight (it may stay in the checkpoint's dtype; see there).
  Tensor dense(const std::string& name, const Shape& expected, const Shape& view_as = {});
  // raw() of shape [n], prepared in f32.
  Tensor vector(const std::string& name, int64_t n);

  // Makes the tensor a name refers to when the state dict lacks it (benchmarks build full-size networks with
  // random weights this way, without a file). Default: none, a missing tensor is an error.
  using MissingHandler = std::function<Tensor(const std::string& name, const Shape& shape)>;
  void set_missing_handler(MissingHandler h) { on_missing_ = std::move(h); }

  // Names that were never taken, sorted.
  std::vector<std::string> unused() const;
  // Logs a warning listing the unused tensors (as diffusers/transformers warn about unexpected keys), except
  // those whose name ends with one of `ignore_suffixes` (e.g. non-persistent buffers some files carry).
  void warn_unused(const std::string& model, const std::vector<std::string>& ignore_suffixes = {}) const;

 private:
  Tensor prepared(const std::string& name, const Shape& expected, const Shape& view_as, bool dense);

  const StateDict& sd_;
  std::string file_;
  Backend& be_;
  DType dtype_;
  std::set<std::string> used_;
  MissingHandler on_missing_;
};

}  // namespace a2f::nn
