#include "io/json.h"

#include "io/mapped_file.h"

namespace a2f {

namespace {
// Maximum nesting of arrays/objects outside strings. Cheap linear scan, so deeply nested input never reaches
// the parser (or a recursive destructor / dump).
int json_depth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_str = false;
      }
      continue;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}
}  // namespace

nlohmann::json json_parse(std::string_view text, const std::string& what, int max_depth) {
  A2F_CHECK(json_depth(text, max_depth) <= max_depth, what, ": JSON nested deeper than ", max_depth,
            " levels");
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    fail(what, ": invalid JSON at byte ", e.byte, ": ", e.what());
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": invalid JSON: ", e.what());
  }
}

nlohmann::json json_load(const std::filesystem::path& path) {
  std::string text = read_file_bytes(path, size_t(1) << 30);
  return json_parse(text, cat("'", path.string(), "'"));
}

}  // namespace a2f
