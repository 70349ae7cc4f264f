// Reading diffusers / transformers config.json files: typed getters with the library's defaults, ints that
// may be given per block as lists, and errors that name the file, the key and the value (a config value the
// models do not support is an error, never silently ignored). Also locating a model's weight file in its
// folder.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace a2f {

class ConfigReader {
 public:
  ConfigReader(nlohmann::json j, std::string file);
  static ConfigReader load(const std::filesystem::path& path);

  const std::string& file() const { return file_; }
  const nlohmann::json& json() const { return j_; }
  // Present and not null.
  bool has(const std::string& key) const;

  int64_t get_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  double get_float(const std::string& key, std::optional<double> fallback = std::nullopt) const;
  bool get_bool(const std::string& key, std::optional<bool> fallback = std::nullopt) const;
  std::string get_string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;
  std::optional<int64_t> get_opt_int(const std::string& key) const;
  std::optional<double> get_opt_float(const std::string& key) const;
  std::optional<std::string> get_opt_string(const std::string& key) const;
  std::vector<std::string> get_string_list(
      const std::string& key, std::optional<std::vector<std::string>> fallback = std::nullopt) const;
  std::vector<int64_t> get_int_list(const std::string& key,
                                    std::optional<std::vector<int64_t>> fallback = std::nullopt) const;
  // An int (repeated n times) or a list of n ints.
  std::vector<int64_t> get_int_or_list(const std::string& key, size_t n,
                                       std::optional<int64_t> fallback) const;
  // A bool (repeated n times) or a list of n bools.
  std::vector<bool> get_bool_or_list(const std::string& key, size_t n, std::optional<bool> fallback) const;

  // Throws: "<file>: config value <key> = <value> is not supported[: why]".
  [[noreturn]] void unsupported(const std::string& key, const std::string& why = "") const;
  // The key must be absent or null; otherwise unsupported(key, why).
  void require_null(const std::string& key, const std::string& why = "") const;
  // The value as JSON text, for messages.
  std::string value_str(const std::string& key) const;

 private:
  const nlohmann::json* find(const std::string& key) const;  // nullptr when absent or null
  nlohmann::json j_;
  std::string file_;
};

// The first of `names` that exists in `dir`; throws naming the folder and the candidates when none does.
std::filesystem::path find_weight_file(const std::filesystem::path& dir,
                                       const std::vector<std::string>& names);

}  // namespace a2f
