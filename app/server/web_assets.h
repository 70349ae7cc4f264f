// The web page and the OpenAPI description, embedded into the binary at build time (embed_assets.cmake turns
// app/web/* and app/server/openapi.json into byte arrays): no files are read at run time.
#pragma once
#include <cstddef>
#include <string_view>

namespace a2f_server {

struct WebAsset {
  std::string_view name;  // file name, e.g. "index.html"
  std::string_view mime;  // Content-Type
  std::string_view data;
};

// nullptr when there is no asset of that name.
const WebAsset* find_web_asset(std::string_view name);
size_t web_asset_count();
const WebAsset* web_assets();

}  // namespace a2f_server
