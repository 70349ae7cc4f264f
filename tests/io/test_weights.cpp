// Loading the model fixtures (torch zip .bin and safetensors) and the feature checkpoints written by
// scripts/gen_io_refs.py; every number comes from refs.json (torch.load / an independent Python reader).
#include <gtest/gtest.h>

#include <fstream>

#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/weights.h"
#include "io_refs.h"

namespace a2f {
namespace {

using test::fixture;
using test::io_refs;

class ModelFiles : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFiles, MatchReference) {
  const std::string rel = GetParam();
  const auto& ref = io_refs().at("files").at(rel);
  StateDict sd = load_state_dict(fixture(rel));
  EXPECT_EQ(static_cast<int64_t>(sd.size()), ref.at("count").get<int64_t>());
  int64_t params = 0, bytes = 0;
  for (const auto& [name, t] : sd) {
    EXPECT_EQ(t.name(), name);
    params += t.numel();
    bytes += static_cast<int64_t>(t.nbytes());
  }
  EXPECT_EQ(params, ref.at("params").get<int64_t>());
  EXPECT_EQ(bytes, ref.at("bytes").get<int64_t>());
  for (const auto& tr : ref.at("tensors")) {
    auto it = sd.find(tr.at("name").get<std::string>());
    ASSERT_NE(it, sd.end()) << tr.at("name");
    test::expect_matches(it->second, tr);
  }
  if (rel.ends_with(".safetensors")) {
    SafetensorsFile f = safetensors_open(fixture(rel));
    EXPECT_EQ(nlohmann::json(f.metadata), ref.at("metadata"));
  }
}

INSTANTIATE_TEST_SUITE_P(Io, ModelFiles,
                         ::testing::Values("models/encoder/pytorch_model.bin",
                                           "models/arc2face/diffusion_pytorch_model.safetensors",
                                           "models/sd15/vae/diffusion_pytorch_model.safetensors",
                                           "models/controlnet/diffusion_pytorch_model.safetensors",
                                           "models/lcm-lora/pytorch_lora_weights.safetensors"));

TEST(Weights, SlicesMatchNumpy) {
  for (const auto& [fname, s] : io_refs().at("slices").items()) {
    SCOPED_TRACE(fname);
    Tensor want = npy_read(fixture("io/" + fname));
    StateDict sd = load_state_dict(fixture(s.at("file").get<std::string>()));
    Tensor t = sd.at(s.at("tensor").get<std::string>());
    Tensor flat = t.reshape({t.dim(0), -1}).narrow(0, 0, 2).narrow(1, 0, 16).to(DType::F32).contiguous();
    EXPECT_EQ(flat.to_vector(), want.to_vector());
  }
}

TEST(Weights, SafetensorsTensorsAreZeroCopyViewsOfTheFile) {
  SafetensorsFile f = safetensors_open(fixture("models/arc2face/diffusion_pytorch_model.safetensors"));
  const Tensor& a = f.tensors.at("conv_in.weight");
  const Tensor& b = f.tensors.at("conv_in.bias");
  EXPECT_EQ(a.storage().get(), b.storage().get());  // one storage: the mapping
  EXPECT_GT(a.storage()->bytes(), a.nbytes() + b.nbytes());
  // The mapping outlives the file object: tensors keep it alive.
  Tensor keep = a;
  f.tensors.clear();
  EXPECT_EQ(keep.numel(), 16 * 4 * 3 * 3);
  EXPECT_TRUE(std::isfinite(keep.item_f32(keep.numel() - 1)));
}

TEST(Weights, TorchTensorsAreZeroCopyViewsOfTheFile) {
  StateDict sd = load_torch_checkpoint(fixture("models/encoder/pytorch_model.bin"));
  const Tensor& a = sd.at("text_model.embeddings.token_embedding.weight");
  const Tensor& b = sd.at("text_model.final_layer_norm.bias");
  EXPECT_EQ(a.storage().get(), b.storage().get());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % 64, 0u);  // torch aligns storages to 64 bytes
}

void expect_features(const StateDict& sd, const nlohmann::json& refs) {
  EXPECT_EQ(sd.size(), refs.size());
  for (const auto& tr : refs) {
    auto it = sd.find(tr.at("name").get<std::string>());
    ASSERT_NE(it, sd.end()) << tr.at("name");
    test::expect_matches(it->second, tr);
  }
}

TEST(Weights, TorchFeatures) {
  StateDict sd = load_state_dict(fixture("io/torch_features.pt"));
  expect_features(sd, io_refs().at("torch_features"));
  // w and slice are views of shared storages; wt (a transpose) and expanded (stride 0) became contiguous
  // copies.
  EXPECT_EQ(sd.at("slice").storage().get(), sd.at("big").storage().get());
  EXPECT_EQ(static_cast<char*>(sd.at("slice").raw_data()) - static_cast<char*>(sd.at("big").raw_data()), 8);
  EXPECT_TRUE(sd.at("wt").is_contiguous());
  EXPECT_FALSE(sd.count("step"));
  EXPECT_FALSE(sd.count("note"));
}

TEST(Weights, TorchFeaturesPickleProtocol4) {
  expect_features(load_state_dict(fixture("io/torch_features_p4.pt")), io_refs().at("torch_features"));
}

TEST(Weights, TorchStateDictWrapperIsUnwrapped) {
  StateDict sd = load_state_dict(fixture("io/torch_wrapped.ckpt"));
  expect_features(sd, io_refs().at("torch_wrapped"));
}

TEST(Weights, SafetensorsAllDtypesAndMetadata) {
  const auto& ref = io_refs().at("all_dtypes");
  SafetensorsFile f = safetensors_open(fixture("io/all_dtypes.safetensors"));
  EXPECT_EQ(nlohmann::json(f.metadata), ref.at("metadata"));
  expect_features(f.tensors, ref.at("tensors"));
}

TEST(Weights, SafetensorsWriteRoundTrip) {
  SafetensorsFile f = safetensors_open(fixture("io/all_dtypes.safetensors"));
  auto path = std::filesystem::temp_directory_path() / "a2f_io_roundtrip.safetensors";
  safetensors_write(path, f.tensors, f.metadata);
  SafetensorsFile g = safetensors_open(path);
  std::filesystem::remove(path);
  EXPECT_EQ(g.metadata, f.metadata);
  expect_features(g.tensors, io_refs().at("all_dtypes").at("tensors"));
}

// Resident bytes of this process (VmRSS of /proc/self/status).
int64_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

TEST(Weights, ReleasedPagesOfAMappedWeightLeaveMemoryAndReadBackUnchanged) {
  const int64_t n = 8 << 20;  // 32 MiB of f32
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i % 1000003) * 0.5f;
  auto path = std::filesystem::temp_directory_path() / "a2f_io_release_pages.safetensors";
  safetensors_write(path, {{"w", Tensor::from_data({n}, v)}}, {});
  std::vector<float>().swap(v);
  SafetensorsFile f = safetensors_open(path);
  std::filesystem::remove(path);  // the mapping keeps the file's pages reachable
  const Tensor w = f.tensors.at("w");
  double sum = 0;
  for (int64_t i = 0; i < n; i += 1024) sum += w.data<float>()[i];  // touch every page
  const int64_t touched = rss_bytes();
  w.release_pages();
  const int64_t released = rss_bytes();
  EXPECT_GT(touched - released, int64_t{28} << 20) << "touched " << touched << ", after release " << released;
  double again = 0;
  for (int64_t i = 0; i < n; i += 1024) again += w.data<float>()[i];
  EXPECT_EQ(again, sum);
  for (int64_t i : {int64_t{0}, int64_t{1}, n / 2 + 7, n - 1})
    EXPECT_EQ(w.data<float>()[i], static_cast<float>(i % 1000003) * 0.5f);
  // Heap tensors ignore the hint.
  Tensor h = Tensor::full({1024}, 3.0f);
  h.release_pages();
  EXPECT_EQ(h.data<float>()[1023], 3.0f);
}

TEST(Weights, DetectFormat) {
  auto detect = [](const std::string& rel) {
    std::string bytes = read_file_bytes(fixture(rel));
    return detect_file_format(bytes.data(), bytes.size());
  };
  EXPECT_EQ(detect("models/encoder/pytorch_model.bin"), FileFormat::TorchZip);
  EXPECT_EQ(detect("io/all_dtypes.safetensors"), FileFormat::Safetensors);
  EXPECT_EQ(detect("io/npy/f4_2x3.npy"), FileFormat::Npy);
  EXPECT_EQ(detect("models/encoder/config.json"), FileFormat::Unknown);
}

}  // namespace
}  // namespace a2f
