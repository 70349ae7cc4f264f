// base64 against the RFC 4648 test vectors, image sniffing against the fixture photos (sizes from
// tests/fixtures/face/README.md) and hand-built WebP headers (WebP container spec).
#include "server_test_util.h"

namespace a2f_server::test {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> v[] = {{"", ""},
                                                   {"f", "Zg=="},
                                                   {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},
                                                   {"foob", "Zm9vYg=="},
                                                   {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    EXPECT_EQ(base64_encode(plain), enc);
    auto d = base64_decode(enc);
    ASSERT_TRUE(d) << enc;
    EXPECT_EQ(*d, plain);
  }
}

TEST(Base64, AcceptsDataUrlsAndWhitespaceRejectsGarbage) {
  EXPECT_EQ(base64_decode("data:image/png;base64,Zm9v").value_or("?"), "foo");
  EXPECT_EQ(base64_decode("Zm9v\nYmFy").value_or("?"), "foobar");
  EXPECT_FALSE(base64_decode("Zm9v!"));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));             // data after padding
  EXPECT_FALSE(base64_decode("Z"));                    // a lone 6-bit group
  EXPECT_FALSE(base64_decode("data:text/plain,foo"));  // not base64
}

TEST(Base64, BinaryRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  EXPECT_EQ(base64_decode(base64_encode(all)).value_or(""), all);
}

TEST(SniffImage, FixturePhotos) {
  struct Case {
    const char* file;
    const char* format;
    int w, h;
  } cases[] = {{"s01_640x480.jpg", "jpeg", 640, 480},
               {"s03_300x400.png", "png", 300, 400},
               {"s08_1600x400.jpg", "jpeg", 1600, 400},
               {"s05_rgba_400x400.png", "png", 400, 400},
               {"s09_96x72.png", "png", 96, 72}};
  for (const auto& c : cases) {
    auto info = sniff_image(read_file(fixture(std::string("face/images/") + c.file)));
    ASSERT_TRUE(info) << c.file;
    EXPECT_EQ(info->format, c.format);
    EXPECT_EQ(info->width, c.w) << c.file;
    EXPECT_EQ(info->height, c.h) << c.file;
  }
}

TEST(SniffImage, WebpHeadersFromTheSpec) {
  auto riff = [](const std::string& chunk) {
    std::string s = "RIFF" + std::string(4, '\0') + "WEBP" + chunk;
    s.resize(64, '\0');
    return s;
  };
  // VP8X: flags(4) reserved, then canvas width-1 and height-1 as 24-bit little endian.
  std::string vp8x = "VP8X" + std::string("\x0a\0\0\0", 4) + std::string(4, '\0');
  vp8x += std::string("\x1f\x03\x00", 3) + std::string("\x57\x02\x00", 3);  // 799+1 x 599+1
  auto a = sniff_image(riff(vp8x));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->width, 800);
  EXPECT_EQ(a->height, 600);
  // VP8L: signature 0x2f, then 14 bits width-1, 14 bits height-1 (little endian bit order).
  uint32_t bits = (100 - 1) | ((50 - 1) << 14);
  std::string vp8l = "VP8L" + std::string(4, '\0') + "\x2f";
  for (int i = 0; i < 4; ++i) vp8l += char((bits >> (8 * i)) & 0xff);
  auto b = sniff_image(riff(vp8l));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->width, 100);
  EXPECT_EQ(b->height, 50);
}

TEST(SniffImage, RejectsNonImagesAndTruncatedHeaders) {
  EXPECT_FALSE(sniff_image(""));
  EXPECT_FALSE(sniff_image("GIF89a......................"));
  EXPECT_FALSE(sniff_image(std::string("\x89PNG\r\n\x1a\n", 8)));
  std::string jpeg = read_file(fixture("face/images/s01_640x480.jpg"));
  EXPECT_FALSE(sniff_image(jpeg.substr(0, 20)));
}

}  // namespace
}  // namespace a2f_server::test
