// JPEG decoding with libjpeg(-turbo), set up as Pillow 9.4's JpegDecode.c leaves it outside draft mode: the
// library defaults (JDCT_ISLOW, do_fancy_upsampling = TRUE), so the pixels match Pillow's.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"
#include "core/log.h"
#include "io/image_codecs.h"

namespace a2f::image_detail {
namespace {

struct JpegState {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr jerr{};
  std::jmp_buf jump{};
  char message[JMSG_LENGTH_MAX] = {0};
  bool truncated = false;
  int corrupt_warnings = 0;
  bool created = false;
  std::vector<uint8_t> line;  // one decoded scanline
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegState* state_of(j_common_ptr c) {
  // The error manager is the first thing the state points the cinfo at; recover the state through it.
  return reinterpret_cast<JpegState*>(reinterpret_cast<char*>(c->err) - offsetof(JpegState, jerr));
}

void on_error_exit(j_common_ptr c) {
  JpegState* s = state_of(c);
  (*c->err->format_message)(c, s->message);
  std::longjmp(s->jump, 1);
}

void on_emit_message(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  JpegState* s = state_of(c);
  if (c->err->msg_code == JWRN_JPEG_EOF) {
    s->truncated = true;
  } else {
    ++s->corrupt_warnings;
    if (s->corrupt_warnings == 1) (*c->err->format_message)(c, s->message);
  }
}

// Pillow's cmyk2rgb: nk = 255 - k; out = clip(nk - muldiv255(c, nk)).
inline uint8_t cmyk_channel(int c, int nk) {
  int t = c * nk + 128;
  int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Runs the decompression; returns false (after a longjmp from libjpeg) on a fatal error. Holds no local
// object with a destructor (everything lives in *s / *out), so the longjmp skips no cleanup.
bool decode_into(JpegState* s, const uint8_t* data, size_t size, const std::string* what,
                 const ImageReadOptions* opt, Decoded* out) {
  if (setjmp(s->jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&s->cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&s->cinfo, TRUE);
  check_dimensions(s->cinfo.image_width, s->cinfo.image_height, *what, *opt);

  for (jpeg_saved_marker_ptr m = s->cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      out->orientation = exif_orientation(m->data + 6, m->data_length - 6);
      break;
    }
  }
  const J_COLOR_SPACE in_space = s->cinfo.jpeg_color_space;
  const bool cmyk = in_space == JCS_CMYK || in_space == JCS_YCCK;
  const bool gray = in_space == JCS_GRAYSCALE;
  s->cinfo.out_color_space = cmyk ? JCS_CMYK : (gray ? JCS_GRAYSCALE : JCS_RGB);
  s->cinfo.dct_method = JDCT_ISLOW;
  s->cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&s->cinfo);

  Image8& img = out->image;
  img.width = static_cast<int>(s->cinfo.output_width);
  img.height = static_cast<int>(s->cinfo.output_height);
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(img.width) * img.height * 3, 0);
  const int comps = s->cinfo.output_components;
  std::vector<uint8_t>& line = s->line;
  line.assign(static_cast<size_t>(img.width) * comps, 0);
  while (s->cinfo.output_scanline < s->cinfo.output_height) {
    const int y = static_cast<int>(s->cinfo.output_scanline);
    JSAMPROW rows[1] = {line.data()};
    jpeg_read_scanlines(&s->cinfo, rows, 1);
    uint8_t* dst = img.row(y);
    if (comps == 3) {
      std::memcpy(dst, line.data(), static_cast<size_t>(img.width) * 3);
    } else if (comps == 1) {
      for (int x = 0; x < img.width; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = line[x];
    } else {
      // Pillow reads CMYK JPEGs as "CMYK;I" (Adobe polarity, inverted) and then converts to RGB.
      for (int x = 0; x < img.width; ++x) {
        const uint8_t* p = &line[4 * static_cast<size_t>(x)];
        const int nk = p[3];  // 255 - k with k = 255 - p[3] (inverted data)
        for (int c = 0; c < 3; ++c) dst[3 * x + c] = cmyk_channel(255 - p[c], nk);
      }
    }
    if (s->truncated) break;
  }
  if (!s->truncated) jpeg_finish_decompress(&s->cinfo);
  return true;
}

}  // namespace

Decoded jpeg_decode(const uint8_t* data, size_t size, const std::string& what, const ImageReadOptions& opt) {
  auto state = std::make_unique<JpegState>();
  JpegState* s = state.get();
  s->cinfo.err = jpeg_std_error(&s->jerr);
  s->jerr.error_exit = on_error_exit;
  s->jerr.emit_message = on_emit_message;
  Decoded out;
  const bool ok = decode_into(s, data, size, &what, &opt, &out);
  if (!ok) fail("cannot decode JPEG image ", what, ": ", s->message);
  if (s->truncated)
    fail("JPEG image ", what, " is truncated (premature end of data); the file is incomplete");
  if (s->corrupt_warnings > 0) log_warn("JPEG image ", what, ": ", s->message);
  return out;
}

}  // namespace a2f::image_detail
