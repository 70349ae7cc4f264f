// Pillow-compatible Lanczos resize and the ControlNet condition tensor; see control_image.h.
#include "pipeline/control_image.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace a2f {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's fixed-point precision for 8-bit images

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos(double x) {
  return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

// Per output pixel: the first input pixel, how many are used, and their fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;  // out_size * ksize
};

Coeffs precompute(int in_size, int out_size) {
  constexpr double kSupport = 3.0;
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = kSupport * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation, then clamped
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = lanczos((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      const double f = v * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int32_t>(v < 0 ? -0.5 + f : 0.5 + f);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;  // arithmetic shift (floor), as Pillow's lookup index
  return static_cast<uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

Image8 resample_horizontal(const Image8& in, int out_w) {
  const Coeffs c = precompute(in.width, out_w);
  const int ch = in.channels;
  Image8 out{out_w, in.height, ch, std::vector<uint8_t>(static_cast<size_t>(out_w) * in.height * ch)};
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.row(y);
    uint8_t* dst = out.row(y);
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      for (int p = 0; p < ch; ++p) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < c.count[xx]; ++x) ss += src[(x + c.first[xx]) * ch + p] * k[x];
        dst[xx * ch + p] = clip8(ss);
      }
    }
  }
  return out;
}

Image8 resample_vertical(const Image8& in, int out_h) {
  const Coeffs c = precompute(in.height, out_h);
  const int ch = in.channels, rowlen = in.width * ch;
  Image8 out{in.width, out_h, ch, std::vector<uint8_t>(static_cast<size_t>(out_h) * rowlen)};
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    uint8_t* dst = out.row(yy);
    for (int i = 0; i < rowlen; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < c.count[yy]; ++y) ss += in.row(y + c.first[yy])[i] * k[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

}  // namespace

Image8 pil_resize_lanczos(const Image8& img, int width, int height) {
  A2F_CHECK(width > 0 && height > 0 && img.width > 0 && img.height > 0 && img.channels > 0,
            "resize: cannot resize a ", img.width, "x", img.height, " image to ", width, "x", height);
  A2F_CHECK(img.pixels.size() == static_cast<size_t>(img.width) * img.height * img.channels,
            "resize: the pixel buffer does not match ", img.width, "x", img.height, "x", img.channels);
  Image8 out = img;
  if (width != img.width) out = resample_horizontal(out, width);
  if (height != img.height) out = resample_vertical(out, height);
  return out;
}

Tensor control_image_tensor(const Image8& rgb, int width, int height) {
  A2F_CHECK(rgb.channels == 3, "the control image must have 3 channels (RGB), got ", rgb.channels);
  const Image8 img = pil_resize_lanczos(rgb, width, height);
  Tensor t = Tensor::empty({1, 3, height, width});  // [1, 3, H, W]
  float* p = t.data<float>();
  const size_t plane = static_cast<size_t>(width) * height;
  for (size_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) p[c * plane + i] = static_cast<float>(img.pixels[i * 3 + c]) / 255.0f;
  return t;
}

}  // namespace a2f
