// `arc2face eval` run as a user runs it, on the face fixtures: the cosine similarities it prints must be those
// of insightface 0.7.3's own embeddings (reference/<image>/normed_embedding.npy, dot products computed here),
// and bad images (no face, unreadable, missing) are reported per image without stopping the run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli_util.h"
#include "common/test_util.h"
#include "io/image.h"
#include "io/npy.h"

namespace fs = std::filesystem;
using a2f::test::fixture;
using a2f::test::q;

namespace {

// Our embeddings agree with insightface's to cosine >= 0.99999 (tests/face); measured cosine differences on
// these images are below 1e-5.
constexpr double kCosTol = 1e-4;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<double> ref_embedding(const std::string& stem) {
  auto v = a2f::npy_read(fixture("face/reference/" + stem + "/normed_embedding.npy")).to_vector();
  return std::vector<double>(v.begin(), v.end());
}

double ref_cosine(const std::string& a, const std::string& b) {
  auto x = ref_embedding(a), y = ref_embedding(b);
  double d = 0, nx = 0, ny = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d += x[i] * y[i];
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  return d / std::sqrt(nx * ny);
}

class CliEval : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("a2f_cli_eval_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Run {
    int status = -1;
    std::string out, err;
  };
  Run run(const std::string& args) {
    const std::string bin = std::string(A2F_BIN_DIR) + "/arc2face";
    const fs::path o = dir_ / "stdout.txt", e = dir_ / "stderr.txt";
    const int st = std::system((q(bin) + " " + args + " >" + q(o) + " 2>" + q(e)).c_str());
    Run r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }
  std::string face_args() const {
    return "--threads 1 --antelope " + q(fixture("face/antelopev2_mini")) + " ";
  }
  fs::path dir_;
};

const std::vector<std::string> kFaces = {"s03_300x400", "s05_rgba_400x400", "s08_1600x400", "s10_palette_320x240"};

std::string image_path(const std::string& stem) {
  for (const char* ext : {".png", ".jpg"}) {
    fs::path p = fixture("face/images/" + stem + ext);
    if (fs::exists(p)) return p.string();
  }
  return "";
}

TEST_F(CliEval, CosinesMatchTheReferenceEmbeddingsAndBadImagesArePerImage) {
  std::ofstream(dir_ / "garbage.png") << "this is not a png";
  std::string gen;
  for (const auto& s : kFaces) gen += "-g " + q(image_path(s)) + " ";
  gen += "-g " + q(image_path("s11_blank_320x240")) + " -g " + q(dir_ / "garbage.png") + " -g " +
         q(dir_ / "missing.png");
  const std::string id = q(fixture("face/reference/s01_640x480/normed_embedding.npy"));
  Run r = run("eval --json --identity " + id + " " + face_args() + gen);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["images"].size(), kFaces.size() + 3);
  std::vector<double> expect;
  for (size_t i = 0; i < kFaces.size(); ++i) {
    const auto& x = j["images"][i];
    ASSERT_TRUE(x["detected"].get<bool>()) << x.dump();
    const double c = ref_cosine("s01_640x480", kFaces[i]);
    expect.push_back(c);
    EXPECT_NEAR(x["similarity"].get<double>(), c, kCosTol) << kFaces[i];
  }
  const auto& blank = j["images"][kFaces.size()];
  EXPECT_TRUE(blank["readable"].get<bool>());
  EXPECT_FALSE(blank["detected"].get<bool>());
  EXPECT_TRUE(blank["similarity"].is_null());
  EXPECT_NE(blank["error"].get<std::string>().find("no face"), std::string::npos) << blank.dump();
  for (size_t k : {kFaces.size() + 1, kFaces.size() + 2}) {
    const auto& bad = j["images"][k];
    EXPECT_FALSE(bad["readable"].get<bool>()) << bad.dump();
    EXPECT_FALSE(bad["detected"].get<bool>());
    EXPECT_NE(bad["error"].get<std::string>().find(bad["path"].get<std::string>()), std::string::npos)
        << bad.dump();
  }
  // Summary over the four detected images: population std, numpy's linear quantiles (computed here).
  const auto& s = j["summary"];
  EXPECT_EQ(s["images"].get<int>(), 7);
  EXPECT_EQ(s["readable"].get<int>(), 5);
  EXPECT_EQ(s["detected"].get<int>(), 4);
  EXPECT_DOUBLE_EQ(s["detection_rate"].get<double>(), 4.0 / 5.0);
  double mean = 0;
  for (double v : expect) mean += v / 4;
  double var = 0;
  for (double v : expect) var += (v - mean) * (v - mean) / 4;
  std::sort(expect.begin(), expect.end());
  auto lin = [&](double qq) {  // 4 values: position qq * 3
    const double pos = qq * 3;
    const int lo = int(pos);
    return lo >= 3 ? expect[3] : expect[lo] + (expect[lo + 1] - expect[lo]) * (pos - lo);
  };
  EXPECT_NEAR(s["mean"].get<double>(), mean, kCosTol);
  EXPECT_NEAR(s["std"].get<double>(), std::sqrt(var), kCosTol);
  EXPECT_NEAR(s["min"].get<double>(), expect[0], kCosTol);
  EXPECT_NEAR(s["max"].get<double>(), expect[3], kCosTol);
  EXPECT_NEAR(s["median"].get<double>(), (expect[1] + expect[2]) / 2, kCosTol);
  EXPECT_NEAR(s["p25"].get<double>(), lin(0.25), kCosTol);
  EXPECT_NEAR(s["p05"].get<double>(), lin(0.05), kCosTol);
  EXPECT_NEAR(s["p95"].get<double>(), lin(0.95), kCosTol);
}

TEST_F(CliEval, IdentityFromPhotosFolderInputAndCsv) {
  // Identity from the photo s01 itself; a folder of generated images (two copies of fixture photos).
  fs::create_directories(dir_ / "gen");
  fs::copy_file(image_path("s01_640x480"), dir_ / "gen" / "a.jpg");
  fs::copy_file(image_path("s03_300x400"), dir_ / "gen" / "b.png");
  std::ofstream(dir_ / "gen" / "notes.txt") << "not an image: ignored in a folder";
  Run r = run("eval --csv --image " + q(image_path("s01_640x480")) + " " + face_args() + "-g " + q(dir_ / "gen"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "path,readable,detected,faces,similarity,error");
  std::map<std::string, double> sim;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_GE(f.size(), 5u) << line;
    EXPECT_EQ(f[1], "1");
    EXPECT_EQ(f[2], "1");
    sim[fs::path(f[0]).filename().string()] = std::stod(f[4]);
  }
  ASSERT_EQ(sim.size(), 2u) << r.out;
  EXPECT_NEAR(sim["a.jpg"], 1.0, kCosTol);
  EXPECT_NEAR(sim["b.png"], ref_cosine("s01_640x480", "s03_300x400"), kCosTol);
  EXPECT_NE(r.err.find("detection rate 100.0%"), std::string::npos) << r.err;
}

TEST_F(CliEval, GeneratedNoiseImageIsReadableAndTheRunGoesOn) {
  // The tiny diffusion models make noise-like images: scored per image like any other.
  a2f::npy_write(dir_ / "emb.npy", a2f::npy_read(fixture("face/reference/s01_640x480/normed_embedding.npy")));
  auto g = a2f::test::run_cli("generate -q --threads 1 --id-embedding " + q(dir_ / "emb.npy") + " --models " +
                              q(fixture("models")) + " --base " + q(fixture("models/sd15")) +
                              " -n 1 --steps 2 --seed 3 --width 64 --height 64 --out " + q(dir_ / "gen"));
  ASSERT_EQ(g.status, 0) << g.out;
  Run r = run("eval --identity " + q(dir_ / "emb.npy") + " " + face_args() + "-g " + q(dir_ / "gen") + " -g " +
              q(image_path("s03_300x400")));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("arc2face_3_0.png\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("images 2, readable 2"), std::string::npos) << r.out;
}

// generate --score / --best-of K: the kept candidate is the most similar one of K generated alone, and the
// similarity written into its PNG is the one eval measures on the written file.
TEST_F(CliEval, GenerateScoreAndBestOf) {
  const fs::path emb = fixture("face/reference/s01_640x480/normed_embedding.npy");
  const std::string gen = "generate -q --threads 1 --id-embedding " + q(emb) + " --models " + q(fixture("models")) +
                          " --base " + q(fixture("models/sd15")) + " --steps 2 --width 64 --height 64 --antelope " +
                          q(fixture("face/antelopev2_mini")) + " ";
  auto all = a2f::test::run_cli(gen + "-n 3 --per-image-seeds --seed 5 --score --out " + q(dir_ / "all"));
  ASSERT_EQ(all.status, 0) << all.out;
  auto best = a2f::test::run_cli(gen + "-n 1 --seed 5 --best-of 3 --out " + q(dir_ / "best"));
  ASSERT_EQ(best.status, 0) << best.out;
  Run e = run("eval --json --identity " + q(emb) + " " + face_args() + "-g " + q(dir_ / "all"));
  ASSERT_EQ(e.status, 0) << e.err;
  auto j = nlohmann::json::parse(e.out);
  ASSERT_EQ(j["images"].size(), 3u);
  int want = -1;
  double want_sim = -2;
  for (int i = 0; i < 3; ++i) {
    const auto& x = j["images"][i];
    const fs::path png = x["path"].get<std::string>();
    EXPECT_EQ(png.filename().string(), "arc2face_" + std::to_string(5 + i) + "_" + std::to_string(i) + ".png");
    const std::string text = a2f::png_read_text(png).at(0).second;
    if (x["detected"].get<bool>()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "ID similarity: %.4f", x["similarity"].get<double>());
      EXPECT_NE(text.find(buf), std::string::npos) << text;
      if (x["similarity"].get<double>() > want_sim) want = i, want_sim = x["similarity"].get<double>();
    } else {
      EXPECT_NE(text.find("ID similarity: no face"), std::string::npos) << text;
    }
  }
  if (want < 0) want = 0;  // no candidate with a face: the first is kept
  const fs::path kept = dir_ / "best" / ("arc2face_" + std::to_string(5 + want) + "_0.png");
  ASSERT_TRUE(fs::exists(kept)) << best.out;
  const fs::path cand = dir_ / "all" / ("arc2face_" + std::to_string(5 + want) + "_" + std::to_string(want) + ".png");
  EXPECT_EQ(a2f::image_read(kept).pixels, a2f::image_read(cand).pixels);
  EXPECT_NE(a2f::png_read_text(kept).at(0).second.find("Best of: 3"), std::string::npos);
  EXPECT_NE(best.out.find("candidate 2 (seed 7)"), std::string::npos) << best.out;
}

TEST_F(CliEval, UsageErrors) {
  const std::string id = q(fixture("face/reference/s01_640x480/normed_embedding.npy"));
  Run r = run("eval " + face_args() + "-g " + q(image_path("s03_300x400")));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--identity"), std::string::npos) << r.err;
  r = run("eval --json --csv --identity " + id + " " + face_args() + "-g " + q(image_path("s03_300x400")));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("exclude"), std::string::npos) << r.err;
  fs::create_directories(dir_ / "empty");
  r = run("eval --identity " + id + " " + face_args() + "-g " + q(dir_ / "empty"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no images"), std::string::npos) << r.err;
  r = run("eval --identity " + id + " --antelope " + q(dir_ / "nowhere") + " -g " + q(image_path("s03_300x400")));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
}

}  // namespace
