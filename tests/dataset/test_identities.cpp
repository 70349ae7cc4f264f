// Dataset identities (sampled: against PyTorch's draws, scripts/dataset_sample_identities.py; from a .npy or
// from photos: against insightface's reference embeddings), shard resolution and the image layout.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "arc2face/dataset.h"
#include "dataset_test_util.h"
#include "io/npy.h"

namespace fs = std::filesystem;
using a2f::test::fixture;

namespace {

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) d += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  return d / std::sqrt(na * nb);
}

TEST(DatasetIdentities, SampledIdentitiesAreTorchDrawsWithRejection) {
  const auto index = nlohmann::json::parse(a2f::test::slurp(a2f::test::dataset_data("sampled.json")));
  ASSERT_EQ(index["cases"].size(), 3u);
  bool saw_rejection = false;
  for (const auto& c : index["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    if (!c["min_margin"].is_null()) {
      ASSERT_GT(c["min_margin"].get<double>(), 1e-6);  // decisions far from rounding
    }
    saw_rejection |= c["rejected"].get<int>() > 0;
    const a2f::Tensor ref = a2f::npy_read(a2f::test::dataset_data("sampled_" + c["name"].get<std::string>() + ".npy"));
    const auto ids = arc2face::sample_identities(c["count"].get<int>(), c["seed"].get<int64_t>(),
                                                 c["max_cosine"].get<double>());
    ASSERT_EQ(int64_t(ids.size()), ref.dim(0));
    const std::vector<float> r = ref.to_vector();
    double err = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(ids[i].size(), 512u);
      for (size_t j = 0; j < 512; ++j) err = std::max(err, std::fabs(double(ids[i][j]) - r[i * 512 + j]));
    }
    EXPECT_LE(err, 1e-7);  // float32 rounding of the same float64 quotient (norm summed in another order)
    if (c["max_cosine"].get<double>() < 1) {
      EXPECT_LE(arc2face::closest_identities(ids).cosine, c["max_cosine"].get<double>());
    }
  }
  EXPECT_TRUE(saw_rejection) << "one case must exercise the rejection of near-duplicates";
}

TEST(DatasetIdentities, SamplingErrors) {
  EXPECT_THROW(arc2face::sample_identities(0, 1), arc2face::Error);
  EXPECT_THROW(arc2face::sample_identities(3, 1, -1.5), arc2face::Error);
  try {
    arc2face::sample_identities(3, 1, -0.9);  // three vectors pairwise at cosine <= -0.9 cannot exist
    FAIL() << "expected an error";
  } catch (const arc2face::Error& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }
}

TEST(DatasetIdentities, ClosestPair) {
  const std::vector<std::vector<float>> v = {{1, 0, 0}, {0, 1, 0}, {0.6f, 0.8f, 0}};
  const auto c = arc2face::closest_identities(v);
  EXPECT_EQ(c.a, 1);
  EXPECT_EQ(c.b, 2);
  EXPECT_NEAR(c.cosine, 0.8, 1e-6);
}

class DatasetLoad : public a2f::test::ScratchDir {};

TEST_F(DatasetLoad, FromNpyRowsAreNormalised) {
  std::vector<float> v(3 * 512, 0.0f);
  v[0] = 3, v[1] = 4;               // row 0: (3, 4, 0...) -> (0.6, 0.8)
  v[512 + 7] = -2;                  // row 1: -e7
  for (int j = 0; j < 512; ++j) v[1024 + j] = 1;  // row 2: 1/sqrt(512)
  a2f::npy_write(dir_ / "ids.npy", a2f::Tensor::from_data({3, 512}, v));
  const auto ids = arc2face::load_identities((dir_ / "ids.npy").string(), nullptr);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1].name, "row 1");
  EXPECT_FLOAT_EQ(ids[0].embedding[0], 0.6f);
  EXPECT_FLOAT_EQ(ids[0].embedding[1], 0.8f);
  EXPECT_FLOAT_EQ(ids[1].embedding[7], -1.0f);
  EXPECT_FLOAT_EQ(ids[2].embedding[100], float(1 / std::sqrt(512.0)));
  a2f::npy_write(dir_ / "bad.npy", a2f::Tensor::zeros({2, 256}));
  EXPECT_THROW(arc2face::load_identities((dir_ / "bad.npy").string(), nullptr), arc2face::Error);
  a2f::npy_write(dir_ / "zero.npy", a2f::Tensor::zeros({1, 512}));
  EXPECT_THROW(arc2face::load_identities((dir_ / "zero.npy").string(), nullptr), arc2face::Error);
  EXPECT_THROW(arc2face::load_identities((dir_ / "nothing.npy").string(), nullptr), arc2face::Error);
}

std::vector<float> ref_embedding(const std::string& stem) {
  return a2f::npy_read(fixture("face/reference/" + stem + "/normed_embedding.npy")).to_vector();
}

TEST_F(DatasetLoad, FromPhotosOnePerFileOrPerFolder) {
  const fs::path photos = dir_ / "photos";
  fs::create_directories(photos / "carol");
  fs::copy_file(fixture("face/images/s01_640x480.jpg"), photos / "alice.jpg");
  fs::copy_file(fixture("face/images/s03_300x400.png"), photos / "bob.png");
  fs::copy_file(fixture("face/images/s05_rgba_400x400.png"), photos / "carol" / "1.png");
  fs::copy_file(fixture("face/images/s08_1600x400.jpg"), photos / "carol" / "2.jpg");
  std::ofstream(photos / "readme.txt") << "not a photo";
  arc2face::FaceAnalyzerOptions fo;
  fo.antelope_dir = fixture("face/antelopev2_mini").string();
  fo.threads = 1;
  auto fa = arc2face::FaceAnalyzer::create(fo);
  const auto ids = arc2face::load_identities(photos.string(), fa.get());
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0].name, "alice");
  EXPECT_EQ(ids[1].name, "bob");
  EXPECT_EQ(ids[2].name, "carol");
  EXPECT_GE(cosine(ids[0].embedding, ref_embedding("s01_640x480")), 0.99999);
  EXPECT_GE(cosine(ids[1].embedding, ref_embedding("s03_300x400")), 0.99999);
  // Two photos of one identity: the normalised mean of insightface's normalised embeddings.
  std::vector<float> mean = ref_embedding("s05_rgba_400x400");
  const std::vector<float> b = ref_embedding("s08_1600x400");
  for (size_t i = 0; i < mean.size(); ++i) mean[i] += b[i];
  EXPECT_GE(cosine(ids[2].embedding, mean), 0.99999);
  // A photo without a face is named in the error.
  fs::copy_file(fixture("face/images/s11_blank_320x240.png"), photos / "dave.png");
  try {
    arc2face::load_identities(photos.string(), fa.get());
    FAIL() << "expected an error";
  } catch (const arc2face::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dave.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(arc2face::load_identities(photos.string(), nullptr), arc2face::Error);  // needs the face models
}

// Sets environment variables for one scope.
class Env {
 public:
  explicit Env(std::initializer_list<std::pair<const char*, const char*>> vars) {
    clear();
    for (auto [n, v] : vars) setenv(n, v, 1);
  }
  ~Env() { clear(); }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

 private:
  static void clear() {
    for (const char* n : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP",
                          "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "ARC2FACE_SHARD_COUNT"})
      unsetenv(n);
  }
};

TEST(DatasetShards, ParseAndResolve) {
  const auto s = arc2face::parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  for (const char* bad : {"5/5", "-1/3", "1/0", "1", "1/3x", "a/b"}) EXPECT_THROW(arc2face::parse_shard(bad), arc2face::Error) << bad;
  {
    Env e({});
    EXPECT_EQ(arc2face::resolve_shard("", 0).count, 1);
    EXPECT_EQ(arc2face::resolve_shard("1/4", 0).index, 1);
    EXPECT_THROW(arc2face::resolve_shard("1/4", 3), arc2face::Error);
    EXPECT_THROW(arc2face::resolve_shard("", 4), arc2face::Error);  // a count with no index anywhere
  }
  {
    Env e({{"SLURM_ARRAY_TASK_ID", "7"}, {"SLURM_ARRAY_TASK_MIN", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}});
    const auto r = arc2face::resolve_shard("", 0);
    EXPECT_EQ(r.index, 2);
    EXPECT_EQ(r.count, 4);
    EXPECT_EQ(arc2face::resolve_shard("0/2", 0).count, 2);  // --shard wins
  }
  {
    Env e({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_STEP", "2"},
           {"SLURM_ARRAY_TASK_COUNT", "3"}});  // --array=0-4:2 -> tasks 0, 2, 4
    EXPECT_EQ(arc2face::resolve_shard("", 0).index, 2);
  }
  {
    Env e({{"JOB_COMPLETION_INDEX", "3"}});
    EXPECT_THROW(arc2face::resolve_shard("", 0), arc2face::Error);  // count unknown
    const auto r = arc2face::resolve_shard("", 8);
    EXPECT_EQ(r.index, 3);
    EXPECT_EQ(r.count, 8);
    EXPECT_THROW(arc2face::resolve_shard("", 3), arc2face::Error);  // index outside the count
  }
  {
    Env e({{"JOB_COMPLETION_INDEX", "1"}, {"ARC2FACE_SHARD_COUNT", "2"}});
    EXPECT_EQ(arc2face::resolve_shard("", 0).count, 2);
  }
  {
    Env e({{"JOB_COMPLETION_INDEX", "x"}});
    EXPECT_THROW(arc2face::resolve_shard("", 2), arc2face::Error);
  }
}

TEST(DatasetLayout, SeedsAndPaths) {
  arc2face::DatasetSpec s;
  s.identities = 1500000;
  s.per_identity = 20;
  s.seed = 1000;
  EXPECT_EQ(arc2face::dataset_image_seed(s, 0, 0), 1000);
  EXPECT_EQ(arc2face::dataset_image_seed(s, 3, 7), 1000 + 3 * 20 + 7);
  EXPECT_EQ(arc2face::dataset_image_path(s, 12, 3), "images/0000012/0003.png");  // 7 digits for 1.5M identities
  s.identities = 10;
  EXPECT_EQ(arc2face::dataset_image_path(s, 12, 3, false), "filtered/000012/0003.png");
  s.per_identity = 12345;
  EXPECT_EQ(arc2face::dataset_image_path(s, 1, 3), "images/000001/00003.png");
}

}  // namespace
