// WebP decoding with libwebp (still images; default decoder options, i.e. fancy upsampling, as Pillow's
// decoder leaves them). Alpha is dropped without compositing, as `convert('RGB')` does.
#include <webp/decode.h>

#include <cstring>

#include "core/error.h"
#include "io/image_codecs.h"

namespace a2f::image_detail {
namespace {

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// The EXIF chunk of an extended (VP8X) WebP file: RIFF <size> WEBP, then chunks of fourcc + le32 size +
// payload padded to even size.
int webp_orientation(const uint8_t* data, size_t size) {
  if (size < 20) return 1;
  size_t pos = 12;
  while (pos + 8 <= size) {
    const uint32_t len = le32(data + pos + 4);
    if (len > size - pos - 8) return 1;
    if (std::memcmp(data + pos, "EXIF", 4) == 0) {
      const uint8_t* p = data + pos + 8;
      size_t n = len;
      if (n > 6 && std::memcmp(p, "Exif\0\0", 6) == 0) {  // some writers keep the JPEG APP1 prefix
        p += 6;
        n -= 6;
      }
      return exif_orientation(p, n);
    }
    pos += 8 + static_cast<size_t>(len) + (len & 1u);
  }
  return 1;
}

}  // namespace

Decoded webp_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt) {
  WebPBitstreamFeatures features;
  const VP8StatusCode st = WebPGetFeatures(data, size, &features);
  if (st == VP8_STATUS_NOT_ENOUGH_DATA) fail("WebP image ", what, " is truncated; the file is incomplete");
  A2F_CHECK(st == VP8_STATUS_OK, "cannot decode WebP image ", what, ": malformed header (libwebp status ",
            static_cast<int>(st), ")");
  check_dimensions(features.width, features.height, what, opt);
  A2F_CHECK(!features.has_animation, "WebP image ", what,
            " is animated; only still images are supported (save one frame as PNG or JPEG)");
  Decoded out;
  Image8& img = out.image;
  img.width = features.width;
  img.height = features.height;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(img.width) * img.height * 3, 0);
  const uint8_t* r = WebPDecodeRGBInto(data, size, img.pixels.data(), img.pixels.size(), img.width * 3);
  if (r == nullptr) {
    fail("cannot decode WebP image ", what, ": the data is corrupt or truncated");
  }
  out.orientation = webp_orientation(data, size);
  return out;
}

}  // namespace a2f::image_detail
