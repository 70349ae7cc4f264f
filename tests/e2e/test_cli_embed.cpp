// `arc2face embed` run as a user runs it: the built binary on the face fixtures (mini antelopev2 models,
// insightface 0.7.3 reference outputs) and on bad inputs.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_util.h"
#include "io/npy.h"

namespace {

namespace fs = std::filesystem;
using a2f::test::fixture;

// Single-quoted for the shell (the paths used here hold no quotes).
std::string q(const fs::path& p) {
  std::string s(1, '\'');
  s.append(p.string());
  s.push_back('\'');
  return s;
}

struct CliRun {
  int status = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class CliEmbed : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("a2f_cli_embed_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(const std::string& args) {
    const std::string bin = std::string(A2F_BIN_DIR) + "/arc2face";
    CliRun r;
    if (!fs::exists(bin)) {
      ADD_FAILURE() << bin << " is not built";
      return r;
    }
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string cmd = q(bin) + " " + args + " >" + q(out) + " 2>" + q(err);
    const int st = std::system(cmd.c_str());
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  std::string models() const { return "--antelope " + q(fixture("face/antelopev2_mini")); }
  static std::string image(const std::string& stem) {
    for (const char* ext : {".jpg", ".png"}) {
      fs::path p = fixture("face/images/" + stem + ext);
      if (fs::exists(p)) return q(p);
    }
    return "missing";
  }
  static nlohmann::json ref(const std::string& stem) {
    std::ifstream f(fixture("face/reference/" + stem + "/faces.json"));
    return nlohmann::json::parse(f);
  }
  fs::path dir_;
};

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

std::string sha256(const void* p, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(p, n, md, &len, EVP_sha256(), nullptr);
  std::string s;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof(b), "%02x", md[i]);
    s += b;
  }
  return s;
}

TEST_F(CliEmbed, OneImageJsonOutAndDump) {
  const std::string stem = "s03_300x400";
  const fs::path out = dir_ / "id.npy", dump = dir_ / "dump";
  CliRun r =
      run("embed --image " + image(stem) + " " + models() + " --out " + q(out) + " --json --dump " + q(dump));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto rf = ref(stem);
  ASSERT_EQ(j["images"].size(), 1u);
  const auto& im = j["images"][0];
  EXPECT_EQ(im["chosen_index"], rf["chosen_index"]);
  ASSERT_EQ(im["faces"].size(), rf["faces"].size());
  for (size_t i = 0; i < rf["faces"].size(); ++i) {
    for (int k = 0; k < 4; ++k)
      EXPECT_NEAR(im["faces"][i]["bbox"][k].get<double>(), rf["faces"][i]["bbox"][k].get<double>(), 1e-3);
    for (int k = 0; k < 5; ++k)
      for (int c = 0; c < 2; ++c)
        EXPECT_NEAR(im["faces"][i]["kps"][k][c].get<double>(), rf["faces"][i]["kps"][k][c].get<double>(),
                    1e-3);
    EXPECT_NEAR(im["faces"][i]["score"].get<double>(), rf["faces"][i]["score"].get<double>(), 1e-4);
  }

  a2f::Tensor emb = a2f::npy_read(out);
  ASSERT_EQ(emb.shape(), (a2f::Shape{512}));
  ASSERT_EQ(emb.dtype(), a2f::DType::F32);
  a2f::Tensor normed = a2f::npy_read(fixture("face/reference/" + stem + "/normed_embedding.npy"));
  EXPECT_GE(cosine(emb.to_vector(), normed.to_vector()), 0.99999);
  double n = 0;
  for (float v : emb.to_vector()) n += double(v) * v;
  EXPECT_NEAR(std::sqrt(n), 1.0, 1e-6);

  // --dump: the aligned crop and raw embedding as insightface's, and the detector blob: undoing
  // (x - 127.5) / 128 in RGB gives back the 640x640 BGR canvas the reference hashed.
  const fs::path d = dump / stem;
  a2f::Tensor aligned = a2f::npy_read(d / "aligned.npy");
  a2f::Tensor aligned_ref = a2f::npy_read(fixture("face/reference/" + stem + "/aligned.npy"));
  ASSERT_EQ(aligned.shape(), (a2f::Shape{112, 112, 3}));
  EXPECT_LE(a2f::test::max_abs_diff(aligned, aligned_ref), 1.0);
  a2f::Tensor raw = a2f::npy_read(d / "raw_embedding.npy");
  a2f::Tensor raw_ref = a2f::npy_read(fixture("face/reference/" + stem + "/raw_embedding.npy"));
  EXPECT_GE(cosine(raw.to_vector(), raw_ref.to_vector()), 0.99999);
  a2f::Tensor blob = a2f::npy_read(d / "det_blob.npy");
  ASSERT_EQ(blob.shape(), (a2f::Shape{1, 3, 640, 640}));
  std::vector<float> b = blob.to_vector();
  std::vector<uint8_t> bgr(640 * 640 * 3);
  for (int i = 0; i < 640 * 640; ++i)
    for (int c = 0; c < 3; ++c)
      bgr[i * 3 + (2 - c)] = static_cast<uint8_t>(b[c * 640 * 640 + i] * 128.0f + 127.5f);
  EXPECT_EQ(sha256(bgr.data(), bgr.size()), rf["det"]["det_img_sha256"].get<std::string>());
}

TEST_F(CliEmbed, SeveralImagesCombine) {
  const fs::path out = dir_ / "id.npy";
  const std::vector<std::string> stems = {"s01_640x480", "s04_gray_500x375", "s10_palette_320x240"};
  std::string args = "embed " + models() + " --out " + q(out) + " --keep-outliers --json";
  for (const auto& s : stems) args += " --image " + image(s);
  CliRun r = run(args);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // Independent: the normalised mean of the reference normalised embeddings.
  std::vector<double> mean(512, 0.0);
  for (const auto& s : stems) {
    auto v = a2f::npy_read(fixture("face/reference/" + s + "/normed_embedding.npy")).to_vector();
    for (int i = 0; i < 512; ++i) mean[i] += v[i];
  }
  std::vector<float> m(mean.begin(), mean.end());
  EXPECT_GE(cosine(a2f::npy_read(out).to_vector(), m), 0.99999);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"].size(), 3u);
  EXPECT_EQ(j["combine"]["used"].size(), 3u);

  // Median of three unit vectors, element-wise, renormalised.
  CliRun r2 =
      run("embed " + models() + " --out " + q(dir_ / "median.npy") + " --keep-outliers --combine median" +
          " --image " + image(stems[0]) + " --image " + image(stems[1]) + " --image " + image(stems[2]));
  ASSERT_EQ(r2.status, 0) << r2.err;
  std::vector<std::vector<float>> vs;
  for (const auto& s : stems)
    vs.push_back(a2f::npy_read(fixture("face/reference/" + s + "/normed_embedding.npy")).to_vector());
  std::vector<float> med(512);
  for (int i = 0; i < 512; ++i) {
    float a = vs[0][i], b = vs[1][i], c = vs[2][i];
    med[i] = std::max(std::min(a, b), std::min(std::max(a, b), c));
  }
  EXPECT_GE(cosine(a2f::npy_read(dir_ / "median.npy").to_vector(), med), 0.99999);
}

TEST_F(CliEmbed, NoFaceIsAClearError) {
  const fs::path out = dir_ / "id.npy";
  CliRun r =
      run("embed --image " + image("s11_blank_320x240") + " " + models() + " --out " + q(out) + " --json");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no face found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("margin"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["images"][0]["chosen_index"].is_null());
  EXPECT_EQ(j["images"][0]["faces"].size(), 0u);
  // With --skip-no-face the other photo is used alone.
  CliRun r2 = run("embed --image " + image("s11_blank_320x240") + " --image " + image("s09_96x72") + " " +
                  models() + " --out " + q(out) + " --skip-no-face");
  EXPECT_EQ(r2.status, 0) << r2.err;
  auto normed = a2f::npy_read(fixture("face/reference/s09_96x72/normed_embedding.npy")).to_vector();
  EXPECT_GE(cosine(a2f::npy_read(out).to_vector(), normed), 0.99999);
}

TEST_F(CliEmbed, BadImagesAreClearErrors) {
  const std::string tail = " " + models() + " --out " + q(dir_ / "id.npy");
  CliRun r = run("embed --image " + q(dir_ / "nope.jpg") + tail);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;

  const std::string jpg = slurp(fixture("face/images/s01_640x480.jpg"));
  std::ofstream(dir_ / "trunc.jpg", std::ios::binary)
      .write(jpg.data(), static_cast<std::streamsize>(jpg.size() / 3));
  r = run("embed --image " + q(dir_ / "trunc.jpg") + tail);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;

  std::ofstream(dir_ / "notes.jpg") << "shopping list: milk, eggs\n";
  r = run("embed --image " + q(dir_ / "notes.jpg") + tail);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("not an image"), std::string::npos) << r.err;

  // A PNG whose header claims 30000 x 30000 pixels (900 M): refused before decoding.
  std::string png = slurp(fixture("face/images/s09_96x72.png"));
  const unsigned char dims[8] = {0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30};
  png.replace(16, 8, reinterpret_cast<const char*>(dims), 8);
  std::ofstream(dir_ / "huge.png", std::ios::binary)
      .write(png.data(), static_cast<std::streamsize>(png.size()));
  r = run("embed --image " + q(dir_ / "huge.png") + tail);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("too large"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "id.npy"));
}

TEST_F(CliEmbed, ModelFolderErrors) {
  // glintr100.onnx but no arcface.onnx: refused, naming what to download.
  fs::create_directories(dir_ / "antelopev2");
  fs::copy_file(fixture("face/antelopev2_mini/scrfd_10g_bnkps.onnx"),
                dir_ / "antelopev2" / "scrfd_10g_bnkps.onnx");
  fs::copy_file(fixture("face/antelopev2_mini/arcface.onnx"), dir_ / "antelopev2" / "glintr100.onnx");
  CliRun r = run("embed --image " + image("s09_96x72") + " --antelope " + q(dir_ / "antelopev2") + " --out " +
                 q(dir_ / "id.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("arcface.onnx"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("FoivosPar/Arc2Face"), std::string::npos) << r.err;
  r = run("embed --image " + image("s09_96x72") + " --antelope " + q(dir_ / "none") + " --out " +
          q(dir_ / "id.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  // Usage error: --out is required.
  r = run("embed --image " + image("s09_96x72") + " " + models());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, 1);
}

}  // namespace
