// Image files: decoding JPEG (libjpeg-turbo), PNG (libpng) and WebP (libwebp) to 8-bit RGB the way Pillow
// 9.4 does `Image.open(p).convert('RGB')`, and encoding 8-bit RGB PNGs with text chunks.
//
// Decoding semantics (Pillow parity, checked against Pillow 9.4 on the face fixtures):
// - JPEG: ISLOW DCT, fancy upsampling (libjpeg defaults, as Pillow uses them); grayscale replicated to RGB;
//   CMYK/YCCK converted like Pillow's cmyk2rgb (Adobe-inverted data un-inverted first).
// - PNG: 16-bit samples keep their high byte (Pillow's ";16B" unpacking); gray and gray+alpha replicated;
//   palette expanded (tRNS ignored); alpha dropped without compositing. No gamma correction.
// - WebP: still images only; alpha dropped.
// - EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is applied when asked (like
// PIL.ImageOps.exif_transpose).
//   Note: Arc2Face's own script does not apply it; the default here does, as its gradio demo does.
// - Safety: a file size cap and a pixel-count cap (decompression bombs) are checked before any pixel is
//   decoded; a truncated or corrupt file throws a2f::Error naming the file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace a2f {

// Interleaved 8-bit pixels, row-major, `channels` per pixel (3: RGB or BGR, see the caller).
struct Image8 {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // height * width * channels

  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * channels; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * channels; }
};

enum class ImageFormat : uint8_t { Unknown, Jpeg, Png, Webp };
const char* image_format_name(ImageFormat f);
// By content (magic bytes), never by file extension.
ImageFormat image_sniff(const void* data, size_t size);

struct ImageReadOptions {
  int64_t max_pixels = 89'478'485;         // Pillow's MAX_IMAGE_PIXELS
  int max_side = 65'535;                   // per dimension
  uint64_t max_file_bytes = 256ull << 20;  // 256 MiB
  bool apply_exif_orientation = true;
};

// Decodes a file / a memory buffer to 3-channel RGB. `what` names the source in error messages.
Image8 image_read(const std::filesystem::path& path, const ImageReadOptions& opt = {});
Image8 image_decode(const void* data, size_t size, const std::string& what, const ImageReadOptions& opt = {});

// RGB <-> BGR (in place; 3 channels).
void image_swap_rb(Image8& img);

// Applies an EXIF orientation value (1..8; anything else leaves the image as it is).
Image8 image_apply_orientation(const Image8& img, int orientation);

// PNG encoding of 8-bit RGB (channels 3) or gray (1) or RGBA (4) pixels with optional text chunks (key,
// value): tEXt when the value is Latin-1 representable, otherwise iTXt (UTF-8), as Pillow's PngInfo does.
using PngText = std::vector<std::pair<std::string, std::string>>;
std::vector<uint8_t> png_encode(const uint8_t* pixels, int width, int height, int channels,
                                const PngText& text = {});
// Writes atomically (temp file in the same folder, then rename). `rgb8` is height*width*3 bytes.
void png_write(const std::filesystem::path& path, const uint8_t* rgb8, int width, int height,
               const PngText& text = {});
void png_write(const std::filesystem::path& path, const Image8& img, const PngText& text = {});
// Text chunks of a PNG file (tEXt, zTXt and iTXt), in file order; for tests and round trips.
PngText png_read_text(const std::filesystem::path& path);

}  // namespace a2f
