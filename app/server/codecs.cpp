#include "server/codecs.h"

#include <array>
#include <cstring>

namespace a2f_server {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

uint32_t be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint32_t le24(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16;
}
uint32_t le16(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8;
}

std::optional<ImageInfo> sniff_jpeg(const unsigned char* p, size_t n) {
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return std::nullopt;
    unsigned char marker = p[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      i += 2;
      continue;
    }
    size_t len = (size_t(p[i + 2]) << 8) | p[i + 3];
    if (len < 2) return std::nullopt;
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > n) return std::nullopt;
      int64_t h = (int64_t(p[i + 5]) << 8) | p[i + 6];
      int64_t w = (int64_t(p[i + 7]) << 8) | p[i + 8];
      return ImageInfo{"jpeg", w, h};
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // end of image / scan before any frame header
    i += 2 + len;
  }
  return std::nullopt;
}

std::optional<ImageInfo> sniff_webp(const unsigned char* p, size_t n) {
  if (n < 30) return std::nullopt;
  const unsigned char* c = p + 12;
  if (!std::memcmp(c, "VP8 ", 4)) {  // lossy: frame tag (3) + start code (3) + 14-bit sizes
    if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a) return std::nullopt;
    return ImageInfo{"webp", int64_t(le16(c + 14) & 0x3fff), int64_t(le16(c + 16) & 0x3fff)};
  }
  if (!std::memcmp(c, "VP8L", 4)) {  // lossless: signature 0x2f + 14-bit (size - 1) fields
    if (c[8] != 0x2f) return std::nullopt;
    uint32_t bits = uint32_t(c[9]) | uint32_t(c[10]) << 8 | uint32_t(c[11]) << 16 | uint32_t(c[12]) << 24;
    return ImageInfo{"webp", int64_t((bits & 0x3fff) + 1), int64_t(((bits >> 14) & 0x3fff) + 1)};
  }
  if (!std::memcmp(c, "VP8X", 4)) {  // extended: 24-bit (canvas size - 1)
    return ImageInfo{"webp", int64_t(le24(c + 12)) + 1, int64_t(le24(c + 15)) + 1};
  }
  return std::nullopt;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = uint32_t(b[i]) << 16 | uint32_t(b[i + 1]) << 8 | b[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t v = uint32_t(b[i]) << 16 | (rest == 2 ? uint32_t(b[i + 1]) << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.substr(0, 5) == "data:") {
    auto comma = text.find(',');
    if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos) {
      return std::nullopt;
    }
    text.remove_prefix(comma + 1);
  }
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[uint8_t(kAlphabet[i])] = int8_t(i);
    return t;
  }();
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char ch : text) {
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
    if (ch == '=') {
      ++pad;
      continue;
    }
    int8_t v = table[uint8_t(ch)];
    if (v < 0 || pad) return std::nullopt;  // bad character, or data after padding
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  if (pad > 2 || bits >= 6) return std::nullopt;  // a dangling 6-bit group is not valid base64
  return out;
}

std::optional<ImageInfo> sniff_image(std::string_view bytes) {
  auto p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 24 && !std::memcmp(p, png_sig, 8)) {
    if (std::memcmp(p + 12, "IHDR", 4)) return std::nullopt;
    return ImageInfo{"png", int64_t(be32(p + 16)), int64_t(be32(p + 20))};
  }
  if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return sniff_jpeg(p, n);
  if (n >= 16 && !std::memcmp(p, "RIFF", 4) && !std::memcmp(p + 8, "WEBP", 4)) return sniff_webp(p, n);
  return std::nullopt;
}

}  // namespace a2f_server
