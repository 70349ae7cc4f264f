// arc2face::FaceAnalyzer::analyze_encoded (public face API): encoded bytes in memory give exactly what
// analyze_file gives for a file with the same bytes (the server analyses uploads this way), and bytes that
// are not a readable image give an arc2face::Error that says so.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "arc2face/face.h"
#include "face_test_util.h"
#include "io/image.h"

namespace a2f {
namespace {

class AnalyzeEncoded : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    arc2face::FaceAnalyzerOptions o;
    o.antelope_dir = test::fixture("face/antelopev2_mini").string();
    o.threads = 1;
    analyzer_ = arc2face::FaceAnalyzer::create(o).release();
  }
  static void TearDownTestSuite() {
    delete analyzer_;
    analyzer_ = nullptr;
  }
  static arc2face::FaceAnalyzer* analyzer_;
};
arc2face::FaceAnalyzer* AnalyzeEncoded::analyzer_ = nullptr;

void expect_same(const arc2face::FaceResult& a, const arc2face::FaceResult& b, const std::string& name) {
  EXPECT_EQ(a.width, b.width) << name;
  EXPECT_EQ(a.height, b.height) << name;
  ASSERT_EQ(a.faces.size(), b.faces.size()) << name;
  for (size_t i = 0; i < a.faces.size(); ++i) {
    EXPECT_EQ(a.faces[i].bbox, b.faces[i].bbox) << name << " face " << i;
    EXPECT_EQ(a.faces[i].score, b.faces[i].score) << name << " face " << i;
    EXPECT_EQ(a.faces[i].kps, b.faces[i].kps) << name << " face " << i;
  }
  EXPECT_EQ(a.chosen, b.chosen) << name;
  EXPECT_EQ(a.aligned_bgr, b.aligned_bgr) << name;
  EXPECT_EQ(a.raw_embedding, b.raw_embedding) << name;
  EXPECT_EQ(a.embedding, b.embedding) << name;
  EXPECT_EQ(a.det_blob, b.det_blob) << name;
}

// JPEG, PNG (RGBA, gray, palette) and an EXIF-rotated JPEG: bit-identical results, faces and no faces alike.
TEST_F(AnalyzeEncoded, EqualsAnalyzeFile) {
  std::vector<std::filesystem::path> files = {
      test::fixture("face/images/s01_640x480.jpg"),       test::fixture("face/images/s03_300x400.png"),
      test::fixture("face/images/s04_gray_500x375.png"),  test::fixture("face/images/s05_rgba_400x400.png"),
      test::fixture("face/images/s11_blank_320x240.png"), test::face_data("images/exif6.jpg")};
  arc2face::AnalyzeOptions keep;
  keep.keep_det_blob = true;
  int with_face = 0;
  for (const auto& f : files) {
    std::vector<uint8_t> bytes = test::read_bytes(f);
    ASSERT_FALSE(bytes.empty()) << f;
    arc2face::FaceResult from_file = analyzer_->analyze_file(f.string(), keep);
    arc2face::FaceResult from_memory = analyzer_->analyze_encoded(bytes, keep);
    EXPECT_EQ(from_file.source, f.string());
    EXPECT_EQ(from_memory.source, "");
    expect_same(from_file, from_memory, f.filename().string());
    ASSERT_FALSE(from_memory.det_blob.empty());
    with_face += from_memory.chosen >= 0;
  }
  EXPECT_GE(with_face, 3);  // the comparison covers found faces, not only empty results
  // The EXIF orientation is applied (exif6.jpg is stored landscape and shown portrait).
  auto raw = image_read(test::face_data("images/exif6.jpg"), [] {
    ImageReadOptions o;
    o.apply_exif_orientation = false;
    return o;
  }());
  arc2face::FaceResult rotated =
      analyzer_->analyze_encoded(test::read_bytes(test::face_data("images/exif6.jpg")));
  EXPECT_EQ(rotated.width, raw.height);
  EXPECT_EQ(rotated.height, raw.width);
}

std::string error_of(arc2face::FaceAnalyzer& fa, const std::vector<uint8_t>& bytes) {
  try {
    fa.analyze_encoded(bytes);
  } catch (const arc2face::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(AnalyzeEncoded, GarbageBytesAreAClearError) {
  std::vector<uint8_t> garbage = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', 0, 1, 2, 3};
  std::string e = error_of(*analyzer_, garbage);
  EXPECT_NE(e.find("15 bytes given are not a JPEG, PNG or WebP image"), std::string::npos) << e;
  EXPECT_NE(e.find("68 65 6c 6c"), std::string::npos) << e;  // "hell": what they start with

  e = error_of(*analyzer_, {});
  EXPECT_NE(e.find("no bytes given"), std::string::npos) << e;

  // A JPEG cut short and a PNG with a broken body: the decoder's message, naming the format.
  std::vector<uint8_t> jpeg = test::read_bytes(test::fixture("face/images/s01_640x480.jpg"));
  jpeg.resize(jpeg.size() / 3);
  e = error_of(*analyzer_, jpeg);
  EXPECT_NE(e.find("JPEG image from memory"), std::string::npos) << e;
  std::vector<uint8_t> png = test::read_bytes(test::fixture("face/images/s03_300x400.png"));
  for (size_t i = 100; i < png.size(); ++i) png[i] = uint8_t(i * 31);
  e = error_of(*analyzer_, png);
  EXPECT_NE(e.find("PNG image from memory"), std::string::npos) << e;

  // Another format the decoder does not take (GIF): refused before any decoding.
  std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
  e = error_of(*analyzer_, gif);
  EXPECT_NE(e.find("not a JPEG, PNG or WebP image"), std::string::npos) << e;
}

// The size cap of FaceAnalyzerOptions applies to uploads as it does to files.
TEST(AnalyzeEncodedLimits, TooLargeIsRefused) {
  arc2face::FaceAnalyzerOptions o;
  o.antelope_dir = test::fixture("face/antelopev2_mini").string();
  o.threads = 1;
  o.max_image_pixels = 100 * 100;
  auto fa = arc2face::FaceAnalyzer::create(o);
  std::string e = error_of(*fa, test::read_bytes(test::fixture("face/images/s03_300x400.png")));
  EXPECT_NE(e.find("too large"), std::string::npos) << e;
  EXPECT_NE(e.find("300x400"), std::string::npos) << e;
}

}  // namespace
}  // namespace a2f
