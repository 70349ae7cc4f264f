#include "nn/loader.h"

#include "core/log.h"

namespace a2f::nn {

WeightLoader::WeightLoader(const StateDict& sd, std::string file, Backend& backend, DType compute_dtype)
    : sd_(sd), file_(std::move(file)), be_(backend), dtype_(compute_dtype) {
  A2F_CHECK(compute_dtype == DType::F32 || compute_dtype == DType::BF16 || compute_dtype == DType::F16,
            "compute dtype ", dtype_name(compute_dtype), " is not supported (use f32, bf16 or f16)");
}

Tensor WeightLoader::raw(const std::string& name, const Shape& expected) {
  auto it = sd_.find(name);
  Tensor t;
  if (it != sd_.end())
    t = it->second;
  else if (on_missing_)
    t = on_missing_(name, expected);
  else
    fail(file_, ": tensor '", name, "' (expected shape ", shape_str(expected), ") is missing");
  A2F_CHECK(dtype_is_float(t.dtype()), file_, ": tensor '", name, "' has dtype ", dtype_name(t.dtype()),
            ", expected a float dtype (f32, f16 or bf16)");
  A2F_CHECK(t.shape() == expected, file_, ": tensor '", name, "' has shape ", shape_str(t.shape()),
            ", expected ", shape_str(expected));
  used_.insert(name);
  return t;
}

Tensor WeightLoader::matrix(const std::string& name, const Shape& expected, const Shape& view_as) {
  return prepared(name, expected, view_as, false);
}

Tensor WeightLoader::dense(const std::string& name, const Shape& expected, const Shape& view_as) {
  return prepared(name, expected, view_as, true);
}

Tensor WeightLoader::prepared(const std::string& name, const Shape& expected, const Shape& view_as, bool dense) {
  Tensor t = raw(name, expected);
  if (!view_as.empty()) t = t.contiguous().reshape(view_as);  // [view_as]
  Tensor p = dense ? be_.prepare_dense_weight(t, dtype_) : be_.prepare_weight(t, dtype_);
  p.set_name(name);
  return p;
}

Tensor WeightLoader::vector(const std::string& name, int64_t n) {
  Tensor p = be_.prepare_weight(raw(name, {n}), DType::F32);  // [n]
  p.set_name(name);
  return p;
}

std::vector<std::string> WeightLoader::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : sd_)
    if (!used_.count(name)) out.push_back(name);
  return out;
}

void WeightLoader::warn_unused(const std::string& model,
                               const std::vector<std::string>& ignore_suffixes) const {
  std::vector<std::string> names;
  for (const auto& n : unused()) {
    bool ignored = false;
    for (const auto& s : ignore_suffixes)
      if (n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0) ignored = true;
    if (!ignored) names.push_back(n);
  }
  if (names.empty()) return;
  std::string list;
  for (size_t i = 0; i < names.size() && i < 8; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 8) list += cat(", ... (", names.size() - 8, " more)");
  log_warn(model, ": ", names.size(), " tensor(s) of ", file_, " are not used by the model: ", list);
}

}  // namespace a2f::nn
