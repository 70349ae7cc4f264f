// JSON files (config.json, model_index.json, vocab.json, ...) through nlohmann::json, with errors that name
// the file, the key and the problem, and typed getters for reading configs.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace a2f {

// Parses a whole file. Throws a2f::Error naming the file when it is missing, unreadable, too deeply nested or
// not valid JSON (with nlohmann's line/column position).
nlohmann::json json_load(const std::filesystem::path& path);
// Parses text; `what` names the source in errors. Nesting deeper than `max_depth` is refused before parsing.
nlohmann::json json_parse(std::string_view text, const std::string& what, int max_depth = 256);

// Typed member access: j[key] converted to T. Throws "<what>: key 'k' is missing" or "... has type string,
// expected number" style errors. `what` names the file/object (e.g. "'encoder/config.json'").
template <class T>
T json_get(const nlohmann::json& j, const std::string& key, const std::string& what) {
  if (!j.is_object()) fail(what, ": expected a JSON object, found ", j.type_name());
  auto it = j.find(key);
  if (it == j.end()) fail(what, ": key '", key, "' is missing");
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": key '", key, "' has an unexpected type (", it->type_name(), "): ", e.what());
  }
}

// As json_get, but returns `fallback` when the key is missing or null.
template <class T>
T json_get_or(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& what) {
  if (!j.is_object()) fail(what, ": expected a JSON object, found ", j.type_name());
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return json_get<T>(j, key, what);
}

}  // namespace a2f
