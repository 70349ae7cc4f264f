// Mirrors insightface 0.7.3 python-package/insightface/utils/face_align.py (estimate_norm, norm_crop): a
// similarity transform (skimage SimilarityTransform.estimate, i.e. Umeyama with scaling and no reflection)
// from the 5 keypoints to the ArcFace template, then cv2.warpAffine to 112x112, bilinear, border 0.
#pragma once
#include <array>

#include "io/image.h"
#include "pipeline/face/detect.h"

namespace a2f::face {

using Affine = std::array<std::array<double, 3>, 2>;  // 2x3, maps source pixels to crop pixels

// The ArcFace 112x112 template (arcface_dst), scaled for image_size (a multiple of 112 or 128).
std::array<std::array<float, 2>, 5> arcface_template(int image_size);
// Least-squares similarity (rotation, uniform scale, translation) mapping kps onto the template.
Affine estimate_norm(const std::array<std::array<float, 2>, 5>& kps, int image_size = 112);
// cv2.warpAffine(img, M, (size, size), borderValue=0): bilinear, constant 0 border. Channels are kept.
Image8 warp_affine(const Image8& img, const Affine& m, int size);
Image8 norm_crop(const Image8& bgr, const std::array<std::array<float, 2>, 5>& kps, int image_size = 112);

}  // namespace a2f::face
