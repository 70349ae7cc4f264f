// run_dataset_shard / merge_dataset on the tiny fixture models: layout, manifest, resuming after every kind of
// interruption (byte-identical to an uninterrupted run), filtering, settings checks, shard locks, merge.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/dataset_internal.h"
#include "arc2face/dataset.h"
#include "dataset_test_util.h"
#include "io/image.h"
#include "io/npy.h"

namespace fs = std::filesystem;
using a2f::test::files_under;
using a2f::test::slurp;
using a2f::test::tiny_dataset;

namespace {

std::vector<nlohmann::json> read_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

class DatasetRun : public a2f::test::ScratchDir {};

TEST_F(DatasetRun, LayoutManifestAndMerge) {
  auto o = tiny_dataset(dir_ / "a", 3, 2, 4);  // 6 images, units {0..3}, {4, 5}
  const auto r = arc2face::run_dataset_shard(o);
  EXPECT_EQ(r.images, 6);
  EXPECT_EQ(r.generated, 6);
  EXPECT_EQ(r.units_generated, 2);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 2; ++k) {
      const fs::path p = dir_ / "a" / arc2face::dataset_image_path(o.spec, i, k);
      ASSERT_TRUE(fs::exists(p)) << p;
      const auto text = a2f::png_read_text(p);
      ASSERT_EQ(text.size(), 1u);
      EXPECT_NE(text[0].second.find("Identity: " + std::to_string(i) + ", Image: " + std::to_string(k) +
                                    ", Seed: " + std::to_string(11 + i * 2 + k)),
                std::string::npos)
          << text[0].second;
    }
  EXPECT_TRUE(fs::exists(dir_ / "a" / "images" / "000002" / "0001.png"));
  const auto lines = read_lines(dir_ / "a" / "manifest" / "shard-00000-of-00001.jsonl");
  ASSERT_EQ(lines.size(), 6u);
  for (const auto& l : lines) {
    EXPECT_EQ(l["seed"].get<int64_t>(), 11 + l["id"].get<int>() * 2 + l["index"].get<int>());
    EXPECT_TRUE(l["kept"].get<bool>());
    EXPECT_TRUE(l["detected"].is_boolean());
    EXPECT_EQ(l["similarity"].is_null(), !l["detected"].get<bool>());
  }
  // identities.npy holds the sampled identities.
  const auto ids = arc2face::sample_identities(3, 11);
  const auto disk = a2f::npy_read(dir_ / "a" / "identities.npy").to_vector();
  ASSERT_EQ(disk.size(), 3u * 512);
  EXPECT_EQ(std::vector<float>(disk.begin() + 512, disk.begin() + 1024), ids[1]);

  const auto m = arc2face::merge_dataset((dir_ / "a").string());
  EXPECT_TRUE(m.ok);
  EXPECT_EQ(m.complete, 6);
  EXPECT_TRUE(m.problems.empty()) << m.problems[0];
  const auto index = read_lines(dir_ / "a" / "index.jsonl");
  ASSERT_EQ(index.size(), 6u);
  for (size_t g = 0; g < 6; ++g) {
    EXPECT_EQ(index[g]["id"].get<int>(), int(g / 2));
    EXPECT_EQ(index[g]["index"].get<int>(), int(g % 2));
  }
  EXPECT_TRUE(fs::exists(dir_ / "a" / "summary.json"));
}

TEST_F(DatasetRun, ResumesAfterEveryKindOfInterruptionByteIdentical) {
  const auto ref = tiny_dataset(dir_ / "ref", 3, 3, 2);  // 9 images, 5 units
  arc2face::run_dataset_shard(ref);
  const auto want = files_under(dir_ / "ref" / "images");
  ASSERT_EQ(want.size(), 9u);

  const fs::path d = dir_ / "b";
  fs::copy(dir_ / "ref", d, fs::copy_options::recursive);
  const fs::path manifest = d / "manifest" / "shard-00000-of-00001.jsonl";
  // 1. an image deleted, 2. an image truncated (a crash of the machine before the data reached the disk),
  // 3. an image whose manifest line never got written (killed between rename and append),
  // 4. a torn last manifest line, 5. a temporary file of a killed write, 6. a duplicate manifest line.
  fs::remove(d / "images" / "000000" / "0001.png");
  fs::resize_file(d / "images" / "000001" / "0002.png", 100);
  std::vector<std::string> lines;
  {
    std::istringstream in(slurp(manifest));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 9u);
  std::string text;
  for (const auto& l : lines)
    if (l.find("\"id\":2,\"index\":2,") == std::string::npos) text += l + "\n";
  text += lines[0] + "\n";
  text += lines[3].substr(0, 40);  // torn
  std::ofstream(manifest, std::ios::binary | std::ios::trunc) << text;
  std::ofstream(d / "images" / "000002" / "0000.png.tmp") << "partial";

  auto o = tiny_dataset(d, 3, 3, 2);
  const auto r = arc2face::run_dataset_shard(o);
  EXPECT_EQ(r.verified, 7);
  EXPECT_EQ(r.generated, 2);
  EXPECT_EQ(r.recovered, 1);
  EXPECT_EQ(r.removed_tmp, 1);
  EXPECT_EQ(r.removed_corrupt, 1);
  EXPECT_EQ(files_under(d / "images"), want);  // byte-identical, nothing more
  const auto m = arc2face::merge_dataset(d.string());
  ASSERT_TRUE(m.ok) << (m.missing.empty() ? "" : m.missing[0]);
  arc2face::merge_dataset((dir_ / "ref").string());
  EXPECT_EQ(slurp(d / "index.jsonl"), slurp(dir_ / "ref" / "index.jsonl"));
  EXPECT_EQ(read_lines(manifest).size(), 9u);  // stale and torn lines gone, one line per image

  // A complete dataset: a rerun verifies and makes nothing.
  const auto again = arc2face::run_dataset_shard(o);
  EXPECT_EQ(again.verified, 9);
  EXPECT_EQ(again.generated, 0);
}

TEST_F(DatasetRun, ShardsSplitTheUnitsAndMergeChecksCompleteness) {
  const fs::path d = dir_ / "s";
  auto o = tiny_dataset(d, 3, 2, 1, false);  // 6 units of one image; no scoring
  o.shard = {1, 2};
  const auto r = arc2face::run_dataset_shard(o);
  EXPECT_EQ(r.images, 3);  // units 1, 3, 5
  auto m = arc2face::merge_dataset(d.string());
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(m.complete, 3);
  EXPECT_EQ(m.missing_count, 3);
  ASSERT_FALSE(m.missing.empty());
  EXPECT_NE(m.missing[0].find("identity 0 image 0 (unit 0, shard 0/2)"), std::string::npos) << m.missing[0];
  EXPECT_FALSE(fs::exists(d / "index.jsonl"));
  o.shard = {0, 2};
  arc2face::run_dataset_shard(o);
  m = arc2face::merge_dataset(d.string());
  EXPECT_TRUE(m.ok);
  EXPECT_FALSE(m.scored);
  for (const auto& l : read_lines(d / "index.jsonl")) EXPECT_TRUE(l["similarity"].is_null());
}

TEST_F(DatasetRun, FilteringByMinimumSimilarity) {
  const fs::path d = dir_ / "f";
  auto o = tiny_dataset(d, 2, 3, 3);
  o.spec.min_similarity = 0.0;
  arc2face::run_dataset_shard(o);
  int kept = 0, filtered = 0;
  for (const auto& l : read_lines(d / "manifest" / "shard-00000-of-00001.jsonl")) {
    const bool pass = l["detected"].get<bool>() && l["similarity"].get<double>() >= 0.0;
    EXPECT_EQ(l["kept"].get<bool>(), pass) << l.dump();
    EXPECT_EQ(l["file"].get<std::string>().rfind(pass ? "images/" : "filtered/", 0), 0u) << l.dump();
    EXPECT_TRUE(fs::exists(d / l["file"].get<std::string>()));
    EXPECT_FALSE(fs::exists(d / arc2face::dataset_image_path(o.spec, l["id"], l["index"], !pass)));
    (pass ? kept : filtered)++;
  }
  EXPECT_GT(filtered, 0);  // the tiny models draw noise: most images have no face
  const auto m = arc2face::merge_dataset(d.string());
  EXPECT_TRUE(m.ok);
  EXPECT_EQ(m.kept, kept);
  EXPECT_EQ(m.filtered, filtered);
}

TEST_F(DatasetRun, OtherSettingsLocksAndMergeProblems) {
  const fs::path d = dir_ / "o";
  auto o = tiny_dataset(d, 2, 1, 2, false);
  arc2face::run_dataset_shard(o);
  auto other = o;
  other.spec.steps = 3;
  other.spec.batch = 1;
  try {
    arc2face::run_dataset_shard(other);
    FAIL() << "expected an error";
  } catch (const arc2face::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("steps: 2 in dataset.json, 3 asked"), std::string::npos) << w;
    EXPECT_NE(w.find("batch: 2 in dataset.json, 1 asked"), std::string::npos) << w;
  }
  auto scored = o;
  scored.face.antelope_dir = a2f::test::fixture("face/antelopev2_mini").string();
  EXPECT_THROW(arc2face::run_dataset_shard(scored), arc2face::Error);  // scoring on half-way: refused
  {
    arc2face::dataset_detail::FileLock busy(d / "manifest" / "shard-00000-of-00001.jsonl.lock", false);
    ASSERT_TRUE(busy.held());
    try {
      arc2face::run_dataset_shard(o);
      FAIL() << "expected an error";
    } catch (const arc2face::Error& e) {
      EXPECT_NE(std::string(e.what()).find("another process"), std::string::npos) << e.what();
    }
  }
  // A stray file and a manifest line from elsewhere are reported; the images still merge.
  std::ofstream(d / "images" / "000000" / "extra.png") << "x";
  EXPECT_FALSE(arc2face::merge_dataset(d.string()).problems.empty());
  EXPECT_THROW(arc2face::merge_dataset((dir_ / "nowhere").string()), arc2face::Error);
  auto bad = o;
  bad.spec.batch = 0;
  EXPECT_THROW(arc2face::run_dataset_shard(bad), arc2face::Error);
  bad = o;
  bad.spec.min_similarity = 0.5;  // filtering without face models
  EXPECT_THROW(arc2face::run_dataset_shard(bad), arc2face::Error);
}

TEST_F(DatasetRun, IdentitiesFromNpy) {
  std::vector<float> v(2 * 512);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(0.37 * double(i)));
  a2f::npy_write(dir_ / "ids.npy", a2f::Tensor::from_data({2, 512}, v));
  auto o = tiny_dataset(dir_ / "n", 0, 1, 2, false);
  o.spec.identities_from = (dir_ / "ids.npy").string();
  arc2face::run_dataset_shard(o);
  const auto disk = a2f::npy_read(dir_ / "n" / "identities.npy").to_vector();
  const auto src = arc2face::load_identities((dir_ / "ids.npy").string(), nullptr);
  ASSERT_EQ(disk.size(), 2u * 512);
  EXPECT_EQ(std::vector<float>(disk.begin(), disk.begin() + 512), src[0].embedding);
  const auto meta = nlohmann::json::parse(slurp(dir_ / "n" / "dataset.json"));
  EXPECT_EQ(meta["spec"]["identities"].get<int>(), 2);  // "all of them" resolved
  EXPECT_EQ(meta["identity_names"][1].get<std::string>(), "row 1");
  EXPECT_TRUE(arc2face::merge_dataset((dir_ / "n").string()).ok);
}

}  // namespace
