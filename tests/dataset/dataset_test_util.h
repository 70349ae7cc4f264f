// Helpers of the dataset tests: a scratch folder, the tiny fixture models, file comparison.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "arc2face/dataset.h"
#include "common/test_util.h"

namespace a2f::test {

inline std::filesystem::path dataset_data(const std::string& rel) {
  return std::filesystem::path(A2F_SOURCE_DIR) / "tests" / "dataset" / "data" / rel;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every regular file under `root` (relative path -> bytes).
inline std::map<std::string, std::string> files_under(const std::filesystem::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) return out;
  for (auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[std::filesystem::relative(e.path(), root).generic_string()] = slurp(e.path());
  return out;
}

// A fresh folder per test, removed afterwards.
class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("a2f_dataset_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// Tiny models, 64x64, 2 steps, one thread: a few tens of milliseconds per image.
inline arc2face::DatasetRunOptions tiny_dataset(const std::filesystem::path& out, int n, int k, int batch,
                                                bool score = true) {
  arc2face::DatasetRunOptions o;
  o.out_dir = out.string();
  o.spec.identities = n;
  o.spec.per_identity = k;
  o.spec.seed = 11;
  o.spec.batch = batch;
  o.spec.steps = 2;
  o.spec.width = o.spec.height = 64;
  o.pipeline.models_dir = fixture("models").string();
  o.pipeline.base_dir = fixture("models/sd15").string();
  o.pipeline.threads = 1;
  if (score) {
    o.face.antelope_dir = fixture("face/antelopev2_mini").string();
    o.face.threads = 1;
  }
  return o;
}

}  // namespace a2f::test
