// Internal to src/io: the per-format decoders behind image_decode (image.cpp). Each returns 3-channel RGB and
// the EXIF orientation it found (1 when none), and throws a2f::Error naming `what` on any problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image.h"

namespace a2f::image_detail {

struct Decoded {
  Image8 image;  // RGB
  int orientation = 1;
};

Decoded jpeg_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt);
Decoded png_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt);
Decoded webp_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt);

// Throws "image too large" when the header's size is over the limits (before any pixel is decoded).
void check_dimensions(int64_t width, int64_t height, const std::string& what, const ImageReadOptions& opt);
// Orientation tag (0x0112) of a TIFF-structured EXIF block (starting at the "II"/"MM" byte order mark);
// 1 when absent or malformed (a broken EXIF block never makes an image unreadable).
int exif_orientation(const uint8_t* tiff, size_t size);

}  // namespace a2f::image_detail
