// .npy read (numpy-written files: versions 1/2/3, every supported dtype) and write round trips.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/mapped_file.h"
#include "io/npy.h"
#include "io_refs.h"

namespace a2f {
namespace {

using test::fixture;

TEST(Npy, ReadsNumpyFiles) {
  const auto& refs = test::io_refs().at("npy");
  ASSERT_GE(refs.size(), 8u);
  for (const auto& [fname, ref] : refs.items()) {
    SCOPED_TRACE(fname);
    test::expect_matches(npy_read(fixture("io/npy/" + fname)), ref);
  }
}

TEST(Npy, ReadsReferenceFixtures) {
  // A fixture of the reference stack: shape and dtype from its refs.json.
  const nlohmann::json refs = json_load(fixture("common/refs.json"));
  Tensor t = npy_read(fixture("common/tokens_prompt.npy"));
  EXPECT_EQ(t.dtype(), DType::I64);
  EXPECT_EQ(t.numel(), 77);
  EXPECT_EQ(t.data<int64_t>()[0], 49406);
  EXPECT_EQ(t.data<int64_t>()[4], 1014);
}

TEST(Npy, WriteReadRoundTripEveryDtype) {
  const auto dir = std::filesystem::temp_directory_path();
  for (const auto& [fname, ref] : test::io_refs().at("npy").items()) {
    SCOPED_TRACE(fname);
    Tensor t = npy_read(fixture("io/npy/" + fname));
    auto path = dir / ("a2f_io_rt_" + fname);
    npy_write(path, t);
    Tensor u = npy_read(path);
    // Same bytes as numpy wrote for version-1 files (our header is numpy's format).
    if (fname.find("_v") == std::string::npos) {
      EXPECT_EQ(read_file_bytes(path), read_file_bytes(fixture("io/npy/" + fname)));
    }
    std::filesystem::remove(path);
    test::expect_matches(u, ref);
  }
}

TEST(Npy, WritesBf16AsFloat32AndNonContiguousViews) {
  Tensor t = Tensor::from_data({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  auto path = std::filesystem::temp_directory_path() / "a2f_io_perm.npy";
  npy_write(path, t.permute({1, 0}).to(DType::BF16));
  Tensor u = npy_read(path);
  std::filesystem::remove(path);
  EXPECT_EQ(u.dtype(), DType::F32);
  EXPECT_EQ(u.shape(), (Shape{3, 2}));
  EXPECT_EQ(u.to_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Npy, WriteIsAtomicAndLeavesNoTempFile) {
  const auto dir = std::filesystem::temp_directory_path() / "a2f_io_atomic";
  std::filesystem::create_directories(dir);
  npy_write(dir / "x.npy", Tensor::zeros({4}));
  npy_write(dir / "x.npy", Tensor::full({2}, 1.5f));  // replaces
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
  EXPECT_EQ(npy_read(dir / "x.npy").to_vector(), (std::vector<float>{1.5f, 1.5f}));
  std::filesystem::remove_all(dir);
  EXPECT_THROW(npy_write(dir / "missing_dir" / "x.npy", Tensor::zeros({1})), Error);
}

}  // namespace
}  // namespace a2f
