// Image decoding against Pillow 9.4 (fixture bgr_sha256 values and tests/face/data/images/expected.json), the
// error cases, and PNG encoding with text chunks.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "face_test_util.h"
#include "io/image.h"

namespace a2f {
namespace {

using test::face_data;
using test::sha256_hex;

std::string rgb_sha(const Image8& img) {
  return sha256_hex(img.pixels.data(), img.pixels.size());
}

TEST(FaceImage, FixturesDecodeLikePillow) {
  for (const auto& stem : test::face_fixture_stems()) {
    SCOPED_TRACE(stem);
    auto ref = test::read_json(test::fixture("face/reference/" + stem + "/faces.json"));
    Image8 img = image_read(test::face_fixture_image(stem));
    EXPECT_EQ(img.channels, 3);
    EXPECT_EQ(img.width, ref["pil_size_wh"][0].get<int>());
    EXPECT_EQ(img.height, ref["pil_size_wh"][1].get<int>());
    image_swap_rb(img);  // the fixture hashes the BGR array handed to insightface
    EXPECT_EQ(rgb_sha(img), ref["bgr_sha256"].get<std::string>());
  }
}

TEST(FaceImage, SmallCasesDecodeLikePillow) {
  auto exp = test::read_json(face_data("images/expected.json"));
  ASSERT_GE(exp["files"].size(), 15u);
  for (const auto& [name, e] : exp["files"].items()) {
    SCOPED_TRACE(name);
    Image8 img = image_read(face_data("images/" + name));
    EXPECT_EQ(img.width, e["width"].get<int>());
    EXPECT_EQ(img.height, e["height"].get<int>());
    EXPECT_EQ(rgb_sha(img), e["rgb_sha256"].get<std::string>());
    ImageReadOptions no_exif;
    no_exif.apply_exif_orientation = false;
    EXPECT_EQ(rgb_sha(image_read(face_data("images/" + name), no_exif)),
              e["rgb_sha256_no_exif"].get<std::string>());
  }
}

TEST(FaceImage, OrientationByHand) {
  // 3x2 image, pixel value = 10*y + x in every channel.
  Image8 img;
  img.width = 3;
  img.height = 2;
  img.pixels.resize(18);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) img.pixels[(y * 3 + x) * 3 + c] = static_cast<uint8_t>(10 * y + x);
  auto at = [](const Image8& im, int x, int y) {
    return im.pixels[(static_cast<size_t>(y) * im.width + x) * 3];
  };
  // 6: displayed rotated 90 degrees clockwise: the top row of the result is the left column, bottom to top.
  Image8 r6 = image_apply_orientation(img, 6);
  EXPECT_EQ(r6.width, 2);
  EXPECT_EQ(r6.height, 3);
  EXPECT_EQ(at(r6, 0, 0), 10);
  EXPECT_EQ(at(r6, 1, 0), 0);
  EXPECT_EQ(at(r6, 0, 2), 12);
  // 8: rotated counter-clockwise: the top row is the right column, top to bottom.
  Image8 r8 = image_apply_orientation(img, 8);
  EXPECT_EQ(at(r8, 0, 0), 2);
  EXPECT_EQ(at(r8, 1, 0), 12);
  // 3: 180 degrees.
  EXPECT_EQ(at(image_apply_orientation(img, 3), 0, 0), 12);
  // 2: mirrored.
  EXPECT_EQ(at(image_apply_orientation(img, 2), 0, 1), 12);
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(FaceImage, ErrorsAreClear) {
  test::TempDir dir("image_err");
  expect_error([&] { image_read(dir / "missing.jpg"); }, "No such file");
  expect_error([&] { image_read(dir.path()); }, "directory");

  auto jpg = test::read_bytes(test::face_fixture_image("s01_640x480"));
  test::write_bytes(dir / "trunc.jpg", jpg.data(), jpg.size() / 2);
  expect_error([&] { image_read(dir / "trunc.jpg"); }, "truncated");
  test::write_bytes(dir / "tiny.jpg", jpg.data(), 40);
  expect_error([&] { image_read(dir / "tiny.jpg"); }, "tiny.jpg");

  auto png = test::read_bytes(test::face_fixture_image("s03_300x400"));
  test::write_bytes(dir / "trunc.png", png.data(), png.size() - 5000);
  expect_error([&] { image_read(dir / "trunc.png"); }, "truncated");

  auto webp = test::read_bytes(face_data("images/lossless.webp"));
  test::write_bytes(dir / "trunc.webp", webp.data(), webp.size() / 2);
  expect_error([&] { image_read(dir / "trunc.webp"); }, "trunc.webp");

  const char text[] = "this is not an image\n";
  test::write_bytes(dir / "note.png", text, sizeof(text) - 1);
  expect_error([&] { image_read(dir / "note.png"); }, "not an image in a supported format");
  test::write_bytes(dir / "empty.jpg", text, 0);
  expect_error([&] { image_read(dir / "empty.jpg"); }, "empty");
  const char gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  test::write_bytes(dir / "a.gif", gif, sizeof(gif) - 1);
  expect_error([&] { image_read(dir / "a.gif"); }, "GIF");

  ImageReadOptions small;
  small.max_pixels = 640 * 480 - 1;
  expect_error([&] { image_read(test::face_fixture_image("s01_640x480"), small); }, "too large");
  expect_error([&] { image_read(test::face_fixture_image("s03_300x400"), {.max_pixels = 1000}); },
               "too large");

  // A PNG header that claims 100000 x 100000 pixels: refused before any pixel is decoded.
  std::vector<uint8_t> bomb(png.begin(), png.begin() + 33);
  const uint8_t dims[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0};
  std::memcpy(&bomb[16], dims, 8);
  const uLong crc = crc32(0L, &bomb[12], 17);  // chunk type + IHDR data
  for (int i = 0; i < 4; ++i) bomb[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  test::write_bytes(dir / "bomb.png", bomb.data(), bomb.size());
  expect_error([&] { image_read(dir / "bomb.png", {.max_pixels = 89'478'485, .max_side = 1'000'000}); },
               "too large");
}

TEST(FaceImage, PngWriteWithText) {
  test::TempDir dir("png_write");
  Image8 img;
  img.width = 5;
  img.height = 4;
  for (int i = 0; i < 60; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 4));
  const std::string latin =
      "photo of a id person, Steps: 25, caf\xc3\xa9";            // UTF-8 e-acute, Latin-1 representable
  const std::string utf8 = "\xe4\xba\xba\xe7\x89\xa9 portrait";  // CJK: needs iTXt
  png_write(dir / "out.png", img, {{"parameters", latin}, {"Comment", utf8}});
  Image8 back = image_read(dir / "out.png");
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 4);
  EXPECT_EQ(back.pixels, img.pixels);
  PngText text = png_read_text(dir / "out.png");
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text[0].first, "parameters");
  EXPECT_EQ(text[0].second, latin);
  EXPECT_EQ(text[1].first, "Comment");
  EXPECT_EQ(text[1].second, utf8);
  // Only the final file remains (the temporary was renamed).
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  // tEXt is used for Latin-1 values: the raw bytes hold the Latin-1 e-acute (0xe9) after the key.
  auto bytes = test::read_bytes(dir / "out.png");
  std::string s(bytes.begin(), bytes.end());
  EXPECT_NE(s.find(std::string("tEXtparameters\0photo", 20)), std::string::npos);
  EXPECT_NE(s.find("caf\xe9"), std::string::npos);
  EXPECT_NE(s.find("iTXtComment"), std::string::npos);
  expect_error([&] { png_write(dir / "no_such_dir" / "x.png", img); }, "cannot write");
}

}  // namespace
}  // namespace a2f
