// PNG decoding and encoding with libpng (classic API; errors come back through setjmp, so the functions that
// call libpng hold no local object with a destructor).
//
// Decoding matches Pillow 9.4's `Image.open(p).convert('RGB')` for every PNG colour type except 16-bit gray:
// Pillow opens that as mode "I" and clips it to 255 on conversion (an almost white image); we keep the high
// byte as for every other 16-bit type. (Arc2Face's own decode crashes on any gray PNG, so there is no
// reference behaviour to keep there.)
#include <png.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "io/image_codecs.h"

namespace a2f {
namespace image_detail {
namespace {

struct PngReadState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {0};
  bool truncated = false;
  std::vector<png_bytep> rows;
  ~PngReadState() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp png, png_const_charp msg) {
  log_debug("libpng warning: ", msg ? msg : "");
}

void on_png_read(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) {
    s->truncated = true;
    png_error(png, "premature end of data");
  }
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

bool png_decode_into(PngReadState* s, const std::string* what, const ImageReadOptions* opt, Decoded* out) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_read_fn(s->png, s, on_png_read);
  png_set_user_limits(s->png, static_cast<png_uint_32>(opt->max_side),
                      static_cast<png_uint_32>(opt->max_side));
  png_read_info(s->png, s->info);
  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(s->png, s->info, &w, &h, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  check_dimensions(w, h, *what, *opt);

  png_bytep exif = nullptr;
  png_uint_32 exif_len = 0;
  if (png_get_eXIf_1(s->png, s->info, &exif_len, &exif) && exif && exif_len > 0) {
    out->orientation = exif_orientation(exif, exif_len);
  }

  if (bit_depth == 16) png_set_strip_16(s->png);  // high byte, as Pillow's ";16B" unpackers
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb(s->png);
  // Alpha (and a palette's tRNS, which palette_to_rgb expands to alpha) is dropped without compositing.
  png_set_strip_alpha(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  const size_t rowbytes = png_get_rowbytes(s->png, s->info);
  if (rowbytes != static_cast<size_t>(w) * 3) {
    std::snprintf(s->message, sizeof(s->message), "unexpected row size %zu after conversion to RGB",
                  rowbytes);
    return false;
  }
  Image8& img = out->image;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(w) * h * 3, 0);
  s->rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) s->rows[y] = img.row(static_cast<int>(y));
  png_read_image(s->png, s->rows.data());
  png_read_end(s->png, nullptr);
  return true;
}

}  // namespace

Decoded png_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt) {
  // The size check comes first, from the IHDR bytes themselves (libpng reads on to the first IDAT).
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t p) {
      return (int64_t(data[p]) << 24) | (int64_t(data[p + 1]) << 16) | (int64_t(data[p + 2]) << 8) |
             data[p + 3];
    };
    check_dimensions(be32(16), be32(20), what, opt);
  }
  auto state = std::make_unique<PngReadState>();
  PngReadState* s = state.get();
  s->data = data;
  s->size = size;
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
  A2F_CHECK(s->png != nullptr, "cannot decode PNG image ", what, ": libpng initialisation failed");
  s->info = png_create_info_struct(s->png);
  A2F_CHECK(s->info != nullptr, "cannot decode PNG image ", what, ": libpng initialisation failed");
  Decoded out;
  if (!png_decode_into(s, &what, &opt, &out)) {
    if (s->truncated)
      fail("PNG image ", what, " is truncated (premature end of data); the file is incomplete");
    fail("cannot decode PNG image ", what, ": ", s->message);
  }
  return out;
}

}  // namespace image_detail

// ---------------------------------------------------------------------------------------------------------
// Encoding

namespace {

struct PngWriteState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<uint8_t> out;
  std::vector<png_text> texts;
  std::vector<png_bytep> rows;
  char message[256] = {0};
  ~PngWriteState() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

void on_png_write_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_png_write(png_structp png, png_bytep data, png_size_t n) {
  auto* s = static_cast<PngWriteState*>(png_get_io_ptr(png));
  s->out.insert(s->out.end(), data, data + n);
}

void on_png_flush(png_structp) {}

// UTF-8 -> Latin-1 when every code point is below 256; false otherwise (or for invalid UTF-8).
bool utf8_to_latin1(const std::string& in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < in.size() &&
               (static_cast<unsigned char>(in[i + 1]) & 0xc0) == 0x80) {
      out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(in[i + 1]) & 0x3f)));
      ++i;
    } else {
      return false;
    }
  }
  return true;
}

bool png_encode_into(PngWriteState* s, const uint8_t* pixels, int width, int height, int channels) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_write_fn(s->png, s, on_png_write, on_png_flush);
  const int color_type = channels == 1   ? PNG_COLOR_TYPE_GRAY
                         : channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA
                                         : PNG_COLOR_TYPE_RGB;
  png_set_IHDR(s->png, s->info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(s->png, 6);
  if (!s->texts.empty()) png_set_text(s->png, s->info, s->texts.data(), static_cast<int>(s->texts.size()));
  png_write_info(s->png, s->info);
  s->rows.resize(static_cast<size_t>(height));
  const size_t stride = static_cast<size_t>(width) * channels;
  for (int y = 0; y < height; ++y) s->rows[y] = const_cast<png_bytep>(pixels + stride * y);
  png_write_image(s->png, s->rows.data());
  png_write_end(s->png, nullptr);
  return true;
}

}  // namespace

std::vector<uint8_t> png_encode(const uint8_t* pixels, int width, int height, int channels,
                                const PngText& text) {
  A2F_CHECK(channels == 1 || channels == 3 || channels == 4, "png_encode: ", channels,
            " channels (expected 1, 3 or 4)");
  A2F_CHECK(width > 0 && height > 0 && width <= 1'000'000 && height <= 1'000'000, "png_encode: bad size ",
            width, "x", height);
  A2F_CHECK(pixels != nullptr, "png_encode: no pixels");
  auto state = std::make_unique<PngWriteState>();
  PngWriteState* s = state.get();
  // Keys and (Latin-1) values must outlive png_write_info; keep them in stable storage.
  std::vector<std::string> keys, values;
  keys.reserve(text.size());
  values.reserve(text.size());
  for (const auto& [key, value] : text) {
    A2F_CHECK(!key.empty() && key.size() <= 79, "PNG text key '", key, "' must have 1 to 79 characters");
    std::string latin1;
    for (char c : key) {
      A2F_CHECK(static_cast<unsigned char>(c) >= 32 && static_cast<unsigned char>(c) < 127, "PNG text key '",
                key, "' must be printable ASCII");
    }
    keys.push_back(key);
    png_text t{};
    if (utf8_to_latin1(value, latin1)) {
      values.push_back(latin1);
      t.compression = PNG_TEXT_COMPRESSION_NONE;
      t.text_length = values.back().size();
    } else {
      values.push_back(value);
      t.compression = PNG_ITXT_COMPRESSION_NONE;
      t.itxt_length = values.back().size();
      t.lang = const_cast<char*>("");
      t.lang_key = const_cast<char*>("");
    }
    t.key = keys.back().data();
    t.text = values.back().data();
    s->texts.push_back(t);
  }
  s->png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_write_error, image_detail::on_png_warning);
  A2F_CHECK(s->png != nullptr, "png_encode: libpng initialisation failed");
  s->info = png_create_info_struct(s->png);
  A2F_CHECK(s->info != nullptr, "png_encode: libpng initialisation failed");
  if (!png_encode_into(s, pixels, width, height, channels)) fail("PNG encoding failed: ", s->message);
  return std::move(s->out);
}

PngText png_read_text(const std::filesystem::path& path) {
  // Read the file and walk the chunk list directly: text chunks only, no pixel decoding needed.
  std::vector<uint8_t> bytes;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    A2F_CHECK(f != nullptr, "cannot open ", path.string());
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
  }
  A2F_CHECK(image_sniff(bytes.data(), bytes.size()) == ImageFormat::Png, path.string(), " is not a PNG file");
  PngText out;
  size_t pos = 8;
  auto be32 = [&](size_t p) {
    return (uint32_t(bytes[p]) << 24) | (uint32_t(bytes[p + 1]) << 16) | (uint32_t(bytes[p + 2]) << 8) |
           bytes[p + 3];
  };
  while (pos + 12 <= bytes.size()) {
    const uint32_t len = be32(pos);
    A2F_CHECK(len <= bytes.size() - pos - 12, "PNG file ", path.string(), " is truncated");
    const std::string type(reinterpret_cast<const char*>(&bytes[pos + 4]), 4);
    const char* d = reinterpret_cast<const char*>(&bytes[pos + 8]);
    if (type == "tEXt" || type == "iTXt") {
      const std::string body(d, len);
      const size_t z = body.find('\0');
      A2F_CHECK(z != std::string::npos, "PNG file ", path.string(), ": malformed ", type, " chunk");
      std::string key = body.substr(0, z), value;
      if (type == "tEXt") {
        for (unsigned char c : body.substr(z + 1)) {  // Latin-1 -> UTF-8
          if (c < 0x80) {
            value.push_back(static_cast<char>(c));
          } else {
            value.push_back(static_cast<char>(0xc0 | (c >> 6)));
            value.push_back(static_cast<char>(0x80 | (c & 0x3f)));
          }
        }
      } else {
        // key \0 compression_flag compression_method lang \0 translated_key \0 text
        A2F_CHECK(z + 3 <= body.size() && body[z + 1] == 0, "PNG file ", path.string(),
                  ": compressed iTXt chunks are not supported here");
        size_t p = body.find('\0', z + 3);
        A2F_CHECK(p != std::string::npos, "PNG file ", path.string(), ": malformed iTXt chunk");
        p = body.find('\0', p + 1);
        A2F_CHECK(p != std::string::npos, "PNG file ", path.string(), ": malformed iTXt chunk");
        value = body.substr(p + 1);
      }
      out.emplace_back(std::move(key), std::move(value));
    }
    if (type == "IEND") break;
    pos += 12 + static_cast<size_t>(len);
  }
  return out;
}

}  // namespace a2f
