// AutoencoderKL (diffusers 0.29.2) on the tiny SD1.5-layout VAE (tests/fixtures/models/sd15/vae, legacy
// attention names query/key/value/proj_attn as in the real SD1.5 file). Decoder references:
// tests/fixtures/ref/vae_out_raw / vae_out_image from diffusers itself. Encoder references:
// tests/models/data/vae_enc_* from scripts/make_model_refs.py: a PyTorch 1.13 re-implementation of diffusers'
// Encoder / quant_conv / DiagonalGaussianDistribution loading the same safetensors (the script first checks
// that the same re-implementation reproduces the diffusers decoder and UNet fixtures to 1e-5); the fixtures
// have no encoder output from diffusers itself.
#include <map>

#include "model_test_util.h"
#include "models/autoencoder_kl.h"

namespace a2f::test {
namespace {

const AutoencoderKL& vae(const std::string& backend = "ref", DType dtype = DType::F32) {
  static std::map<std::string, std::unique_ptr<AutoencoderKL>> cache;
  auto& m = cache[backend + dtype_name(dtype)];
  if (!m) m = AutoencoderKL::from_pretrained(fixture("models/sd15/vae"), backend_named(backend), dtype);
  return *m;
}

// Parity tests run on every backend.
class VaeParity : public ::testing::TestWithParam<std::string> {
 protected:
  const AutoencoderKL& model() const { return vae(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Backends, VaeParity, ::testing::Values("ref", "cpu"));

Tensor data_array(const std::string& name) {
  return npy_read(std::filesystem::path(A2F_SOURCE_DIR) / "tests/models/data" / (name + ".npy"));
}

Tensor decoder_input() {
  return ref_backend().scale(ref_array("vae_in_latents"), 1.0f / vae().scaling_factor());  // [1, 4, 8, 8]
}

TEST(Vae, ConfigFromFile) {
  EXPECT_FLOAT_EQ(vae().scaling_factor(), 0.18215f);  // absent from the file: diffusers' default
  EXPECT_EQ(vae().downscale_factor(), 8);
  EXPECT_EQ(vae().config().block_out_channels, (std::vector<int64_t>{16, 16, 32, 32}));
}

TEST_P(VaeParity, DecodeRaw) {
  Tensor out = model().decode(decoder_input());
  A2F_EXPECT_SHAPE(out, 1, 3, 64, 64);
  EXPECT_LE(max_abs_diff(out, ref_array("vae_out_raw")), 1e-4);
}

TEST_P(VaeParity, PostprocessedImage) {
  Tensor img = vae_postprocess(model().decode(decoder_input()));
  A2F_EXPECT_SHAPE(img, 1, 64, 64, 3);
  EXPECT_LE(max_abs_diff(img, ref_array("vae_out_image")), 1e-4);
}

TEST(Vae, ModernAttentionNamesLoadTheSame) {
  const auto dir = fixture("models/sd15/vae");
  auto cfg = AutoencoderKLConfig::from_reader(ConfigReader::load(dir / "config.json"));
  StateDict sd = load_state_dict(dir / "diffusion_pytorch_model.safetensors");
  StateDict renamed;
  const std::vector<std::pair<std::string, std::string>> map{
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}};
  int n = 0;
  for (auto& [k, v] : sd) {
    std::string name = k;
    for (auto& [a, b] : map)
      if (auto p = name.find(a); p != std::string::npos) {
        name.replace(p, a.size(), b);
        ++n;
      }
    renamed[name] = v;
  }
  EXPECT_EQ(n, 16);  // 4 linears x (weight, bias) x (encoder, decoder)
  AutoencoderKL m(cfg, renamed, "renamed.safetensors", ref_backend());
  EXPECT_LE(max_abs_diff(m.decode(decoder_input()), ref_array("vae_out_raw")), 1e-4);
}

TEST_P(VaeParity, EncodeMeanAndLogvar) {
  auto d = model().encode(data_array("vae_enc_in"));
  A2F_EXPECT_SHAPE(d.mean, 2, 4, 8, 8);
  A2F_EXPECT_SHAPE(d.logvar, 2, 4, 8, 8);
  EXPECT_LE(rel_error(d.mean, data_array("vae_enc_mean")), 1e-4);
  EXPECT_LE(rel_error(d.logvar, data_array("vae_enc_logvar")), 1e-4);
}

// bf16 compute on the cpu backend stays close to the f32 reference (a sanity bound for the reduced precision,
// not a parity claim).
TEST(Vae, Bf16OnCpuStaysNearReference) {
  Tensor out = vae("cpu", DType::BF16).decode(decoder_input());
  EXPECT_LE(rel_error(out, ref_array("vae_out_raw")), 3e-2);
}

TEST(Vae, RejectsBadInputs) {
  expect_error([&] { vae().decode(Tensor::zeros({1, 3, 8, 8})); }, {"[1, 3, 8, 8]"});
  expect_error([&] { vae().encode(Tensor::zeros({1, 3, 60, 64})); }, {"60", "multiple of 8"});
  expect_error([&] { vae().encode(Tensor::zeros({1, 4, 64, 64})); }, {"[1, 4, 64, 64]"});
}

TEST(Vae, ConfigAndWeightErrors) {
  nlohmann::json j = ConfigReader::load(fixture("models/sd15/vae/config.json")).json();
  j["up_block_types"][1] = "AttnUpDecoderBlock2D";
  expect_error([&] { AutoencoderKLConfig::from_reader(ConfigReader(j, "vae/config.json")); },
               {"vae/config.json", "up_block_types", "AttnUpDecoderBlock2D"});
  j = ConfigReader::load(fixture("models/sd15/vae/config.json")).json();
  j["scaling_factor"] = 0.13025;
  EXPECT_DOUBLE_EQ(AutoencoderKLConfig::from_reader(ConfigReader(j, "c")).scaling_factor, 0.13025);

  const auto dir = fixture("models/sd15/vae");
  auto cfg = AutoencoderKLConfig::from_reader(ConfigReader::load(dir / "config.json"));
  StateDict sd = load_state_dict(dir / "diffusion_pytorch_model.safetensors");
  sd.erase("decoder.mid_block.attentions.0.proj_attn.weight");
  expect_error([&] { AutoencoderKL(cfg, sd, "vae.safetensors", ref_backend()); },
               {"decoder.mid_block.attentions.0.proj_attn.weight", "missing", "vae.safetensors"});
}

}  // namespace
}  // namespace a2f::test
