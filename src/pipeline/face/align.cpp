// Mirrors insightface 0.7.3 python-package/insightface/utils/face_align.py (arcface_dst, estimate_norm,
// norm_crop) and scikit-image 0.19 skimage/transform/_geometric.py _umeyama (estimate_scale=True).
#include "pipeline/face/align.h"

#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace a2f::face {

std::array<std::array<float, 2>, 5> arcface_template(int image_size) {
  A2F_CHECK(image_size > 0 && (image_size % 112 == 0 || image_size % 128 == 0), "alignment size ", image_size,
            " must be a multiple of 112 or 128");
  static const float dst[5][2] = {{38.2946f, 51.6963f},
                                  {73.5318f, 51.5014f},
                                  {56.0252f, 71.7366f},
                                  {41.5493f, 92.3655f},
                                  {70.7299f, 92.2041f}};
  float ratio, diff_x;
  if (image_size % 112 == 0) {
    ratio = static_cast<float>(image_size / 112.0);
    diff_x = 0.0f;
  } else {
    ratio = static_cast<float>(image_size / 128.0);
    diff_x = 8.0f * ratio;
  }
  std::array<std::array<float, 2>, 5> t{};
  for (int i = 0; i < 5; ++i) {
    t[i][0] = dst[i][0] * ratio + diff_x;
    t[i][1] = dst[i][1] * ratio;
  }
  return t;
}

Affine estimate_norm(const std::array<std::array<float, 2>, 5>& kps, int image_size) {
  const auto dst = arcface_template(image_size);
  // Umeyama with scaling, in 2-D: the optimal proper similarity is [[a, -b], [b, a]] with
  // a = sum(s . d) / sum|s|^2 and b = sum(s x d) / sum|s|^2 over demeaned points (the same solution as the
  // SVD form with the reflection correction).
  double ms[2] = {0, 0}, md[2] = {0, 0};
  for (int i = 0; i < 5; ++i) {
    for (int c = 0; c < 2; ++c) {
      A2F_CHECK(std::isfinite(kps[i][c]), "face keypoints are not finite");
      ms[c] += kps[i][c] / 5.0;
      md[c] += dst[i][c] / 5.0;
    }
  }
  double dot = 0, cross = 0, var = 0;
  for (int i = 0; i < 5; ++i) {
    const double sx = kps[i][0] - ms[0], sy = kps[i][1] - ms[1];
    const double dx = dst[i][0] - md[0], dy = dst[i][1] - md[1];
    dot += sx * dx + sy * dy;
    cross += sx * dy - sy * dx;
    var += sx * sx + sy * sy;
  }
  A2F_CHECK(var > 0, "face keypoints are degenerate (all at one point)");
  const double a = dot / var, b = cross / var;
  Affine m;
  m[0] = {a, -b, md[0] - (a * ms[0] - b * ms[1])};
  m[1] = {b, a, md[1] - (b * ms[0] + a * ms[1])};
  return m;
}

Image8 warp_affine(const Image8& img, const Affine& m, int size) {
  const int type = img.channels == 1 ? CV_8UC1 : img.channels == 3 ? CV_8UC3 : CV_8UC4;
  cv::Mat src(img.height, img.width, type, const_cast<uint8_t*>(img.pixels.data()));
  cv::Mat mm(2, 3, CV_64F);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) mm.at<double>(r, c) = m[r][c];
  Image8 out;
  out.width = out.height = size;
  out.channels = img.channels;
  out.pixels.assign(static_cast<size_t>(size) * size * img.channels, 0);
  cv::Mat dst(size, size, type, out.pixels.data());
  cv::warpAffine(src, dst, mm, cv::Size(size, size), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(0, 0, 0, 0));
  A2F_ASSERT(dst.data == out.pixels.data());  // written in place
  return out;
}

Image8 norm_crop(const Image8& bgr, const std::array<std::array<float, 2>, 5>& kps, int image_size) {
  return warp_affine(bgr, estimate_norm(kps, image_size), image_size);
}

}  // namespace a2f::face
