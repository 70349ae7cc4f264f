// write_file_atomic (src/io/atomic_file.h) and the writers built on it (npy, safetensors, PNG): the file is
// replaced whole, and a failed write leaves neither a partial file nor a temporary behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"

namespace a2f {
namespace {

namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("a2f_atomic_file_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> names() const {
    std::vector<std::string> r;
    for (const auto& e : fs::directory_iterator(dir_)) r.push_back(e.path().filename().string());
    std::sort(r.begin(), r.end());
    return r;
  }
  static std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // A non-empty folder at `p`: renaming a file over it fails.
  static void make_blocking_dir(const fs::path& p) {
    fs::create_directories(p);
    std::ofstream(p / "keep") << "x";
  }

  fs::path dir_;
};

TEST_F(AtomicFile, WritesThePartsAndReplaces) {
  const fs::path p = dir_ / "a.bin";
  write_file_atomic(p, {{"abc", 3}, {nullptr, 0}, {"de", 2}});
  EXPECT_EQ(read(p), "abcde");
  write_file_atomic(p, {{"xy", 2}});
  EXPECT_EQ(read(p), "xy");
  write_file_atomic(p, {});
  EXPECT_EQ(read(p), "");
  EXPECT_EQ(names(), std::vector<std::string>{"a.bin"});  // no temporary left
}

TEST_F(AtomicFile, FixedSuffixReplacesACrashLeftover) {
  const fs::path p = dir_ / "b.png";
  std::ofstream(dir_ / "b.png.tmp") << "partial";  // an interrupted earlier run
  write_file_atomic(p, {{"full", 4}}, ".tmp");
  EXPECT_EQ(read(p), "full");
  EXPECT_EQ(names(), std::vector<std::string>{"b.png"});
}

TEST_F(AtomicFile, FailedRenameLeavesNoTemporary) {
  const fs::path p = dir_ / "c.bin";
  make_blocking_dir(p);
  try {
    write_file_atomic(p, {{"abc", 3}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(names(), std::vector<std::string>{"c.bin"});
  EXPECT_TRUE(fs::exists(p / "keep"));
}

TEST_F(AtomicFile, MissingFolderNamesThePath) {
  const fs::path p = dir_ / "missing" / "d.bin";
  try {
    write_file_atomic(p, {{"abc", 3}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(names().empty());
}

TEST_F(AtomicFile, WritersLeaveNoTemporaryOnFailure) {
  const Tensor t = Tensor::full({3}, 2.0f);
  make_blocking_dir(dir_ / "x.npy");
  EXPECT_THROW(npy_write(dir_ / "x.npy", t), Error);
  make_blocking_dir(dir_ / "x.safetensors");
  EXPECT_THROW(safetensors_write(dir_ / "x.safetensors", {{"t", t}}), Error);
  make_blocking_dir(dir_ / "x.png");
  const std::vector<uint8_t> rgb(2 * 2 * 3, 7);
  EXPECT_THROW(png_write(dir_ / "x.png", rgb.data(), 2, 2), Error);
  EXPECT_EQ(names(), (std::vector<std::string>{"x.npy", "x.png", "x.safetensors"}));
  // And they write through it when they can.
  npy_write(dir_ / "y.npy", t);
  EXPECT_EQ(npy_read(dir_ / "y.npy").to_vector(), (std::vector<float>{2, 2, 2}));
  png_write(dir_ / "y.png", rgb.data(), 2, 2);
  EXPECT_EQ(image_read(dir_ / "y.png").pixels, rgb);
}

}  // namespace
}  // namespace a2f
