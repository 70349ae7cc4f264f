// Image reading front end: file caps, format sniffing, EXIF orientation and atomic PNG writing. The codecs
// themselves are in image_jpeg.cpp, image_png.cpp and image_webp.cpp.
#include "io/image.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image_codecs.h"

namespace a2f {

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg:
      return "JPEG";
    case ImageFormat::Png:
      return "PNG";
    case ImageFormat::Webp:
      return "WebP";
    case ImageFormat::Unknown:
      break;
  }
  return "unknown";
}

ImageFormat image_sniff(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return ImageFormat::Jpeg;
  if (size >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::Png;
  if (size >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0)
    return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

namespace {

// Names a few formats we do not decode, for a clearer error.
const char* other_format_name(const uint8_t* p, size_t size) {
  if (size >= 6 && (std::memcmp(p, "GIF87a", 6) == 0 || std::memcmp(p, "GIF89a", 6) == 0)) return "GIF";
  if (size >= 2 && p[0] == 'B' && p[1] == 'M') return "BMP";
  if (size >= 4 && (std::memcmp(p, "II*\0", 4) == 0 || std::memcmp(p, "MM\0*", 4) == 0)) return "TIFF";
  if (size >= 12 && std::memcmp(p + 4, "ftyp", 4) == 0) {
    if (std::memcmp(p + 8, "heic", 4) == 0 || std::memcmp(p + 8, "heix", 4) == 0 ||
        std::memcmp(p + 8, "mif1", 4) == 0)
      return "HEIF/HEIC";
    if (std::memcmp(p + 8, "avif", 4) == 0) return "AVIF";
  }
  return nullptr;
}

uint16_t rd16(const uint8_t* p, bool le) {
  return le ? uint16_t(p[0] | (p[1] << 8)) : uint16_t((p[0] << 8) | p[1]);
}
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? (uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24))
            : ((uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]));
}

}  // namespace

namespace image_detail {

void check_dimensions(int64_t width, int64_t height, const std::string& what, const ImageReadOptions& opt) {
  A2F_CHECK(width > 0 && height > 0, "image ", what, " has an invalid size ", width, "x", height);
  A2F_CHECK(width <= opt.max_side && height <= opt.max_side, "image ", what, " is too large: ", width, "x",
            height, " exceeds the limit of ", opt.max_side, " pixels per side");
  A2F_CHECK(width * height <= opt.max_pixels, "image ", what, " is too large: ", width, "x", height, " = ",
            width * height, " pixels exceeds the limit of ", opt.max_pixels,
            " pixels (a guard against decompression bombs); downscale it first");
}

int exif_orientation(const uint8_t* t, size_t size) {
  if (size < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') {
    le = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    le = false;
  } else {
    return 1;
  }
  if (rd16(t + 2, le) != 42) return 1;
  const uint32_t ifd = rd32(t + 4, le);
  if (ifd > size || size - ifd < 2) return 1;
  const uint16_t n = rd16(t + ifd, le);
  for (uint32_t i = 0; i < n; ++i) {
    const size_t e = static_cast<size_t>(ifd) + 2 + 12 * static_cast<size_t>(i);
    if (e + 12 > size) return 1;
    if (rd16(t + e, le) != 0x0112) continue;
    const uint16_t type = rd16(t + e + 2, le);
    int v = 1;
    if (type == 3) {
      v = rd16(t + e + 8, le);  // SHORT, value inline (left-justified)
    } else if (type == 4) {
      v = static_cast<int>(rd32(t + e + 8, le));
    }
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

}  // namespace image_detail

Image8 image_apply_orientation(const Image8& img, int orientation) {
  if (orientation < 2 || orientation > 8) return img;
  const int w = img.width, h = img.height, c = img.channels;
  const bool swap = orientation >= 5;  // transposing orientations swap width and height
  Image8 out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.channels = c;
  out.pixels.resize(img.pixels.size());
  // For each output pixel (x, y), the source pixel, following PIL.ImageOps.exif_transpose:
  // 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90.
  for (int y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
        default:
          break;
      }
      std::memcpy(dst + static_cast<size_t>(x) * c, img.row(sy) + static_cast<size_t>(sx) * c, c);
    }
  }
  return out;
}

void image_swap_rb(Image8& img) {
  A2F_CHECK(img.channels == 3, "image_swap_rb: ", img.channels, " channels (expected 3)");
  uint8_t* p = img.pixels.data();
  const size_t n = static_cast<size_t>(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) std::swap(p[3 * i], p[3 * i + 2]);
}

Image8 image_decode(const void* data, size_t size, const std::string& what, const ImageReadOptions& opt) {
  const auto* p = static_cast<const uint8_t*>(data);
  A2F_CHECK(size > 0, "image ", what, " is empty (0 bytes)");
  image_detail::Decoded d;
  switch (image_sniff(p, size)) {
    case ImageFormat::Jpeg:
      d = image_detail::jpeg_decode(p, size, what, opt);
      break;
    case ImageFormat::Png:
      d = image_detail::png_decode(p, size, what, opt);
      break;
    case ImageFormat::Webp:
      d = image_detail::webp_decode(p, size, what, opt);
      break;
    case ImageFormat::Unknown: {
      if (const char* other = other_format_name(p, size)) {
        fail("image ", what, " is in ", other, " format, which is not supported; convert it to PNG or JPEG");
      }
      fail(what, " is not an image in a supported format (JPEG, PNG or WebP)");
    }
  }
  if (opt.apply_exif_orientation && d.orientation != 1)
    return image_apply_orientation(d.image, d.orientation);
  return std::move(d.image);
}

Image8 image_read(const std::filesystem::path& path, const ImageReadOptions& opt) {
  const std::string what = cat("'", path.string(), "'");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail("cannot read image ", what, ": it is a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open image ", what, ": ", std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, std::fclose);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    bytes.insert(bytes.end(), buf, buf + n);
    if (bytes.size() > opt.max_file_bytes) {
      fail("image ", what, " is too large: the file is over ", opt.max_file_bytes >> 20, " MiB");
    }
  }
  if (std::ferror(f)) fail("cannot read image ", what, ": read error");
  return image_decode(bytes.data(), bytes.size(), what, opt);
}

void png_write(const std::filesystem::path& path, const uint8_t* rgb8, int width, int height,
               const PngText& text) {
  const std::vector<uint8_t> bytes = png_encode(rgb8, width, height, 3, text);
  write_file_atomic(path, {{bytes.data(), bytes.size()}});
}

void png_write(const std::filesystem::path& path, const Image8& img, const PngText& text) {
  A2F_CHECK(img.channels == 3, "png_write: ", img.channels, " channels (expected RGB)");
  A2F_CHECK(img.pixels.size() == static_cast<size_t>(img.width) * img.height * 3,
            "png_write: pixel buffer size");
  png_write(path, img.pixels.data(), img.width, img.height, text);
}

}  // namespace a2f
