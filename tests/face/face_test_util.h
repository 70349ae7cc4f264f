// Helpers for the face tests: sha256 of a buffer, JSON files, temporary folders, file bytes.
#pragma once
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace a2f::test {

inline std::string sha256_hex(const void* data, size_t size) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, size, md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s.push_back(hex[md[i] >> 4]);
    s.push_back(hex[md[i] & 15]);
  }
  return s;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  EXPECT_TRUE(f.good()) << "cannot open " << p;
  return nlohmann::json::parse(f);
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::filesystem::path& p, const void* data, size_t n) {
  std::ofstream f(p, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// A fresh folder under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("a2f_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

// Face fixture images (tests/fixtures/face/images), in the order of the fixture README.
inline const std::vector<std::string>& face_fixture_stems() {
  static const std::vector<std::string> stems = {
      "s01_640x480",  "s03_300x400", "s04_gray_500x375",    "s05_rgba_400x400", "s06_1280x1280",
      "s08_1600x400", "s09_96x72",   "s10_palette_320x240", "s11_blank_320x240"};
  return stems;
}

inline std::filesystem::path face_fixture_image(const std::string& stem) {
  for (const char* ext : {".jpg", ".png"}) {
    auto p = fixture("face/images/" + stem + ext);
    if (std::filesystem::exists(p)) return p;
  }
  return fixture("face/images/" + stem + ".missing");
}

inline std::filesystem::path face_data(const std::string& rel) {
  return std::filesystem::path(A2F_SOURCE_DIR) / "tests" / "face" / "data" / rel;
}

}  // namespace a2f::test
