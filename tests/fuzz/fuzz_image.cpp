// libFuzzer: image_decode (JPEG / PNG / WebP through libjpeg-turbo / libpng / libwebp, our EXIF reader and
// orientation) on arbitrary bytes, as the server decodes uploaded photos and pose images.
#include <cstdint>

#include "core/error.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  a2f::ImageReadOptions opt;
  opt.max_pixels = int64_t{1} << 22;  // keeps each run fast; the caps themselves are checked before decoding
  try {
    a2f::Image8 img = a2f::image_decode(data, size, "fuzz", opt);
    volatile size_t sink = img.pixels.size() + static_cast<size_t>(img.width) * img.height;
    (void)sink;
  } catch (const a2f::Error&) {
  }
  return 0;
}
