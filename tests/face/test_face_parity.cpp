// Parity of detection, alignment and embedding with insightface 0.7.3 on the mini antelopev2 fixtures
// (tests/fixtures/face: reference outputs computed by insightface's own code, OpenCV 4.6, Pillow 9.4).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "face_test_util.h"
#include "io/npy.h"
#include "pipeline/face/analysis.h"
#include "pipeline/face/identity.h"

namespace a2f {
namespace {

using face::Analysis;
using face::FaceAnalysis;

face::AnalysisOptions mini_options() {
  face::AnalysisOptions o;
  o.antelope_dir = test::fixture("face/antelopev2_mini");
  return o;
}

Image8 load_bgr(const std::string& stem) {
  Image8 img = image_read(test::face_fixture_image(stem));
  image_swap_rb(img);
  return img;
}

struct Tolerances {
  double px = 1e-3;  // bbox / kps, original-image pixels
  double score = 1e-4;
  double cosine = 0.99999;
};

void check_image(FaceAnalysis& fa, const std::string& stem, const Tolerances& tol) {
  SCOPED_TRACE(stem);
  const auto ref = test::read_json(test::fixture("face/reference/" + stem + "/faces.json"));
  Image8 bgr = load_bgr(stem);
  Analysis a = fa.analyze(bgr, /*keep_debug=*/true);

  // Letterbox and the exact detector canvas (cv::resize INTER_LINEAR / INTER_AREA for an exact 2x).
  EXPECT_EQ(a.det.letterbox.new_w, ref["det"]["new_wh"][0].get<int>());
  EXPECT_EQ(a.det.letterbox.new_h, ref["det"]["new_wh"][1].get<int>());
  EXPECT_DOUBLE_EQ(a.det.letterbox.det_scale, ref["det"]["det_scale"].get<double>());
  EXPECT_EQ(test::sha256_hex(a.det.canvas.pixels.data(), a.det.canvas.pixels.size()),
            ref["det"]["det_img_sha256"].get<std::string>());
  const int strides[3] = {8, 16, 32};
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(a.det.positives[i], ref["det"]["positive_anchors"][std::to_string(strides[i])].get<int>())
        << "stride " << strides[i];

  const auto& rf = ref["faces"];
  ASSERT_EQ(a.faces.size(), rf.size());
  double max_px = 0, max_score = 0;
  for (size_t i = 0; i < rf.size(); ++i) {
    for (int k = 0; k < 4; ++k)
      max_px = std::max(max_px, std::fabs(a.faces[i].bbox[k] - rf[i]["bbox"][k].get<double>()));
    for (int k = 0; k < 5; ++k)
      for (int c = 0; c < 2; ++c)
        max_px = std::max(max_px, std::fabs(a.faces[i].kps[k][c] - rf[i]["kps"][k][c].get<double>()));
    max_score = std::max(max_score, std::fabs(a.faces[i].score - rf[i]["score"].get<double>()));
  }
  EXPECT_LE(max_px, tol.px);
  EXPECT_LE(max_score, tol.score);
  ::testing::Test::RecordProperty(stem + "_max_px", std::to_string(max_px));
  ::testing::Test::RecordProperty(stem + "_max_score", std::to_string(max_score));

  if (ref["chosen_index"].is_null()) {
    EXPECT_EQ(a.chosen, -1);
    EXPECT_TRUE(a.raw_embedding.empty());
    return;
  }
  ASSERT_EQ(a.chosen, ref["chosen_index"].get<int>());

  // Similarity transform (skimage computes it in float32: agreement to ~1e-5 relative).
  const auto m = face::estimate_norm(a.faces[a.chosen].kps);
  const auto& rm = ref["chosen"]["similarity_matrix_M"];
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(m[r][c], rm[r][c].get<double>(), c == 2 ? 2e-3 : 2e-5) << r << "," << c;

  // Aligned crop: within +-1 grey level, a handful (<= 0.1%) of larger differences tolerated at sharp edges.
  Tensor aligned_ref = npy_read(test::fixture("face/reference/" + stem + "/aligned.npy"));
  ASSERT_EQ(aligned_ref.shape(), (Shape{112, 112, 3}));
  ASSERT_EQ(a.aligned.pixels.size(), 112u * 112 * 3);
  const uint8_t* pr = aligned_ref.data<uint8_t>();
  int off1 = 0, off_more = 0;
  for (size_t i = 0; i < a.aligned.pixels.size(); ++i) {
    const int d = std::abs(int(a.aligned.pixels[i]) - int(pr[i]));
    off1 += d == 1;
    off_more += d > 1;
  }
  EXPECT_LE(off_more, int(0.001 * a.aligned.pixels.size())) << off1 << " values off by 1";
  ::testing::Test::RecordProperty(stem + "_aligned_off", cat(off1, "+", off_more));

  Tensor raw_ref = npy_read(test::fixture("face/reference/" + stem + "/raw_embedding.npy"));
  Tensor normed_ref = npy_read(test::fixture("face/reference/" + stem + "/normed_embedding.npy"));
  ASSERT_EQ(a.raw_embedding.size(), 512u);
  const double cos_raw = face::cosine(a.raw_embedding, raw_ref.to_vector());
  EXPECT_GE(cos_raw, tol.cosine);
  ::testing::Test::RecordProperty(stem + "_one_minus_cos", cat(1.0 - cos_raw));
  EXPECT_GE(face::cosine(a.normed_embedding, normed_ref.to_vector()), tol.cosine);
  double nn = 0;
  for (float v : a.normed_embedding) nn += double(v) * v;
  EXPECT_NEAR(std::sqrt(nn), 1.0, 1e-6);
  // The raw magnitude is not compared here: a crop value flipped by one grey level (the 1/32-px grid effect
  // above) moves the mini recognizer's norm by ~1e-4 relative. RecognizerOnReferenceCrops checks it exactly.
}

TEST(FaceParity, AllFixtureImagesCpuBackend) {
  auto be = make_cpu_backend();
  FaceAnalysis fa(mini_options(), *be);
  EXPECT_EQ(fa.recognizer().input_mean(), 127.5f);
  EXPECT_EQ(fa.recognizer().input_std(), 127.5f);
  for (const auto& stem : test::face_fixture_stems()) check_image(fa, stem, {});
}

TEST(FaceParity, RefBackendOneImage) {
  auto be = make_ref_backend();
  FaceAnalysis fa(mini_options(), *be);
  check_image(fa, "s03_300x400", {});  // the scalar reference kernels: one image keeps the test short
}

TEST(FaceParity, RecognizerOnReferenceCrops) {
  // The recognizer alone: insightface's own crop in, its raw embedding out (values and norm).
  auto cpu = make_cpu_backend();
  auto ref_be = make_ref_backend();
  for (a2f::Backend* be : {cpu.get(), ref_be.get()}) {
    SCOPED_TRACE(be->name());
    face::ArcFaceRecognizer rec(OnnxGraph::load(test::fixture("face/antelopev2_mini/arcface.onnx"), *be));
    for (const auto& stem : test::face_fixture_stems()) {
      const auto ref = test::read_json(test::fixture("face/reference/" + stem + "/faces.json"));
      if (ref["chosen_index"].is_null()) continue;
      SCOPED_TRACE(stem);
      Tensor aligned = npy_read(test::fixture("face/reference/" + stem + "/aligned.npy"));
      Image8 crop;
      crop.width = crop.height = 112;
      crop.pixels.assign(aligned.data<uint8_t>(), aligned.data<uint8_t>() + aligned.numel());
      const std::vector<float> raw = rec.embed_aligned(crop);
      Tensor raw_ref = npy_read(test::fixture("face/reference/" + stem + "/raw_embedding.npy"));
      Tensor got = Tensor::from_data({512}, raw);
      EXPECT_LE(test::rel_error(got, raw_ref),
                1e-5);  // fp32, different summation order than onnxruntime/torch
      double rn = 0;
      for (float v : raw) rn += double(v) * v;
      EXPECT_NEAR(std::sqrt(rn) / ref["chosen"]["raw_embedding_norm"].get<double>(), 1.0, 1e-6);
    }
  }
}

TEST(FaceParity, AlignedCropFromReferenceKeypoints) {
  // Independent of the detector. With the reference's own similarity matrix (float64, printed in faces.json)
  // our warpAffine must give the reference crop bit for bit; with the matrix we estimate from the reference
  // keypoints (skimage works in float32, we in double: ~1e-5 px apart) a sample can cross OpenCV's 1/32-px
  // grid, so the fixture's tolerance applies (+-1, at most 0.1% of the values further off).
  for (const auto& stem : test::face_fixture_stems()) {
    const auto ref = test::read_json(test::fixture("face/reference/" + stem + "/faces.json"));
    if (ref["chosen_index"].is_null()) continue;
    SCOPED_TRACE(stem);
    const auto& f = ref["faces"][ref["chosen_index"].get<int>()];
    std::array<std::array<float, 2>, 5> kps{};
    for (int k = 0; k < 5; ++k)
      for (int c = 0; c < 2; ++c) kps[k][c] = f["kps"][k][c].get<float>();
    face::Affine ref_m;
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) ref_m[r][c] = ref["chosen"]["similarity_matrix_M"][r][c].get<double>();
    const Image8 bgr = load_bgr(stem);
    Tensor aligned_ref = npy_read(test::fixture("face/reference/" + stem + "/aligned.npy"));
    const uint8_t* pr = aligned_ref.data<uint8_t>();
    const Image8 exact = face::warp_affine(bgr, ref_m, 112);
    EXPECT_EQ(test::sha256_hex(exact.pixels.data(), exact.pixels.size()),
              ref["chosen"]["aligned_sha256"].get<std::string>());
    EXPECT_EQ(std::memcmp(exact.pixels.data(), pr, exact.pixels.size()), 0);

    const Image8 crop = face::norm_crop(bgr, kps);
    int off1 = 0, off_more = 0;
    for (size_t i = 0; i < crop.pixels.size(); ++i) {
      const int d = std::abs(int(crop.pixels[i]) - int(pr[i]));
      off1 += d == 1;
      off_more += d > 1;
    }
    EXPECT_LE(off_more, int(0.001 * crop.pixels.size())) << off1 << " values off by 1";
  }
}

}  // namespace
}  // namespace a2f
