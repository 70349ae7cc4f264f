#include "models/model_config.h"

#include "io/json.h"

namespace a2f {

ConfigReader::ConfigReader(nlohmann::json j, std::string file) : j_(std::move(j)), file_(std::move(file)) {
  A2F_CHECK(j_.is_object(), file_, ": expected a JSON object, found ", j_.type_name());
}

ConfigReader ConfigReader::load(const std::filesystem::path& path) {
  return {json_load(path), path.string()};
}

const nlohmann::json* ConfigReader::find(const std::string& key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool ConfigReader::has(const std::string& key) const {
  return find(key) != nullptr;
}

std::string ConfigReader::value_str(const std::string& key) const {
  auto it = j_.find(key);
  return it == j_.end() ? std::string("(absent)") : it->dump();
}

void ConfigReader::unsupported(const std::string& key, const std::string& why) const {
  fail(file_, ": config value ", key, " = ", value_str(key), " is not supported", why.empty() ? "" : ": ",
       why);
}

void ConfigReader::require_null(const std::string& key, const std::string& why) const {
  if (has(key)) unsupported(key, why);
}

namespace {
[[noreturn]] void bad_type(const std::string& file, const std::string& key, const nlohmann::json& v,
                           const char* expected) {
  fail(file, ": config value ", key, " = ", v.dump(), " has type ", v.type_name(), ", expected ", expected);
}
[[noreturn]] void missing(const std::string& file, const std::string& key) {
  fail(file, ": config key '", key, "' is missing");
}
int64_t as_int(const std::string& file, const std::string& key, const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  bad_type(file, key, v, "an integer");
}
}  // namespace

int64_t ConfigReader::get_int(const std::string& key, std::optional<int64_t> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  return as_int(file_, key, *v);
}

double ConfigReader::get_float(const std::string& key, std::optional<double> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  if (!v->is_number()) bad_type(file_, key, *v, "a number");
  return v->get<double>();
}

bool ConfigReader::get_bool(const std::string& key, std::optional<bool> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  if (!v->is_boolean()) bad_type(file_, key, *v, "true or false");
  return v->get<bool>();
}

std::string ConfigReader::get_string(const std::string& key, std::optional<std::string> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  if (!v->is_string()) bad_type(file_, key, *v, "a string");
  return v->get<std::string>();
}

std::optional<int64_t> ConfigReader::get_opt_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_int(key);
}

std::optional<double> ConfigReader::get_opt_float(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_float(key);
}

std::optional<std::string> ConfigReader::get_opt_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

std::vector<std::string> ConfigReader::get_string_list(
    const std::string& key, std::optional<std::vector<std::string>> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  if (!v->is_array()) bad_type(file_, key, *v, "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) bad_type(file_, key, *v, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<int64_t> ConfigReader::get_int_list(const std::string& key,
                                                std::optional<std::vector<int64_t>> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    missing(file_, key);
  }
  if (!v->is_array()) bad_type(file_, key, *v, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : *v) out.push_back(as_int(file_, key, e));
  return out;
}

std::vector<int64_t> ConfigReader::get_int_or_list(const std::string& key, size_t n,
                                                   std::optional<int64_t> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return std::vector<int64_t>(n, *fallback);
    missing(file_, key);
  }
  if (!v->is_array()) return std::vector<int64_t>(n, as_int(file_, key, *v));
  auto out = get_int_list(key);
  if (out.size() != n) unsupported(key, cat("expected one value per block (", n, ")"));
  return out;
}

std::vector<bool> ConfigReader::get_bool_or_list(const std::string& key, size_t n,
                                                 std::optional<bool> fallback) const {
  const auto* v = find(key);
  if (!v) {
    if (fallback) return std::vector<bool>(n, *fallback);
    missing(file_, key);
  }
  if (v->is_boolean()) return std::vector<bool>(n, v->get<bool>());
  if (!v->is_array()) bad_type(file_, key, *v, "a bool or a list of bools");
  std::vector<bool> out;
  for (const auto& e : *v) {
    if (!e.is_boolean()) bad_type(file_, key, *v, "a bool or a list of bools");
    out.push_back(e.get<bool>());
  }
  if (out.size() != n) unsupported(key, cat("expected one value per block (", n, ")"));
  return out;
}

std::filesystem::path find_weight_file(const std::filesystem::path& dir,
                                       const std::vector<std::string>& names) {
  for (const auto& n : names) {
    auto p = dir / n;
    if (std::filesystem::is_regular_file(p)) return p;
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  fail("no weight file in '", dir.string(), "' (looked for ", list, ")");
}

}  // namespace a2f
