// Byte-level helpers of the server: base64, image format sniffing (before any decoding, to refuse
// decompression bombs and non-images early) and in-memory PNG encoding of generated images (libpng).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace a2f_server {

std::string base64_encode(std::string_view bytes);
// Strict decoding (RFC 4648 alphabet, optional '=' padding, whitespace ignored); a "data:...;base64," prefix
// is skipped. nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

struct ImageInfo {
  std::string format;  // "png" | "jpeg" | "webp"
  int64_t width = 0, height = 0;
};
// The format and size from the header of PNG, JPEG and WebP files; nullopt when the bytes are none of these
// or the header is truncated.
std::optional<ImageInfo> sniff_image(std::string_view bytes);

}  // namespace a2f_server
