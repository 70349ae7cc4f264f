// CLIP text encoder (transformers 4.36 CLIPTextModel + Arc2Face CLIPTextModelWrapper) against the reference
// fixtures of tests/fixtures/ref (see refs.json): prompt_embeds = wrapper(tokens_prompt, input_token_embs =
// id_token_embs[i]) for the 3 ID embeddings; negative_prompt_embeds = wrapper(tokens_empty).
#include <unistd.h>

#include <filesystem>
#include <map>

#include "model_test_util.h"
#include "models/clip_text.h"
#include "nn/dump.h"

namespace a2f::test {
namespace {

const ClipTextModel& encoder(const std::string& backend = "ref", DType dtype = DType::F32) {
  static std::map<std::string, std::unique_ptr<ClipTextModel>> cache;
  auto& m = cache[backend + dtype_name(dtype)];
  if (!m) m = ClipTextModel::from_pretrained(fixture("models/encoder"), backend_named(backend), dtype);
  return *m;
}

// Parity tests run on every backend.
class ClipTextParity : public ::testing::TestWithParam<std::string> {
 protected:
  const ClipTextModel& enc() const { return encoder(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Backends, ClipTextParity, ::testing::Values("ref", "cpu"));

// tokens [1, 77] repeated to [n, 77].
Tensor repeat_rows(const Tensor& ids, int64_t n) {
  Tensor out = Tensor::empty({n, ids.dim(1)}, DType::I64);  // [n, 77]
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < ids.dim(1); ++j) out.data<int64_t>()[i * ids.dim(1) + j] = ids.data<int64_t>()[j];
  return out;
}

TEST(ClipText, ConfigFromFile) {
  const auto& c = encoder().config();
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.hidden_act, "quick_gelu");
}

TEST_P(ClipTextParity, PromptEmbedsWithIdTokenEmbeddings) {
  Tensor ids = repeat_rows(npy_read(fixture("common/tokens_prompt.npy")), 3);  // [3, 77]
  Tensor embs = ref_array("id_token_embs");                                    // [3, 77, 32]
  Tensor out = enc().forward(ids, embs);
  A2F_EXPECT_SHAPE(out, 3, 77, 32);
  EXPECT_LE(max_abs_diff(out, ref_array("prompt_embeds")), 1e-4);
}

TEST_P(ClipTextParity, NegativePromptEmbeds) {
  Tensor ids = npy_read(fixture("common/tokens_empty.npy"));  // [1, 77]
  Tensor out = enc().forward(ids);
  A2F_EXPECT_SHAPE(out, 1, 77, 32);
  EXPECT_LE(max_abs_diff(out, ref_array("negative_prompt_embeds")), 1e-4);
}

// The reference token embeddings equal token_embedding(ids) everywhere but the "id" token row (index 4),
// which holds the (cropped) ArcFace embedding.
TEST(ClipText, TokenEmbeddingsMatchAllRowsButTheIdToken) {
  Tensor ids = npy_read(fixture("common/tokens_prompt.npy"));  // [1, 77]
  ASSERT_EQ(ids.data<int64_t>()[4], 1014);
  Tensor te = encoder().token_embeddings(ids);  // [1, 77, 32]
  A2F_EXPECT_SHAPE(te, 1, 77, 32);
  auto got = te.to_vector();
  auto ref = ref_array("id_token_embs").to_vector();  // [3, 77, 32], rows 0..76 of entry 0
  double other = 0, id_row = 0;
  for (int64_t t = 0; t < 77; ++t)
    for (int64_t d = 0; d < 32; ++d) {
      double diff = std::fabs(got[static_cast<size_t>(t * 32 + d)] - ref[static_cast<size_t>(t * 32 + d)]);
      (t == 4 ? id_row : other) = std::max(t == 4 ? id_row : other, diff);
    }
  EXPECT_EQ(other, 0.0);
  EXPECT_GT(id_row, 0.01);
}

TEST_P(ClipTextParity, ShorterSequenceMatchesPrefixOfCausalRun) {
  // Causal attention: the first 10 positions do not depend on the rest of the sequence.
  Tensor ids = npy_read(fixture("common/tokens_empty.npy"));  // [1, 77]
  Tensor short_ids = ids.narrow(1, 0, 10).contiguous();       // [1, 10]
  Tensor out = enc().forward(short_ids);
  A2F_EXPECT_SHAPE(out, 1, 10, 32);
  Tensor ref = ref_array("negative_prompt_embeds").narrow(1, 0, 10).contiguous();
  EXPECT_LE(max_abs_diff(out, ref), 1e-4);
}

// bf16 compute (weights and activations bf16, f32 accumulation) stays close to the f32 reference: a sanity
// bound for the reduced precision, not a parity claim.
TEST(ClipText, Bf16OnCpuStaysNearReference) {
  Tensor ids = repeat_rows(npy_read(fixture("common/tokens_prompt.npy")), 3);
  Tensor out = encoder("cpu", DType::BF16).forward(ids, ref_array("id_token_embs"));
  EXPECT_EQ(out.dtype(), DType::F32);
  EXPECT_LE(rel_error(out, ref_array("prompt_embeds")), 3e-2);
}

TEST(ClipText, RejectsBadInputs) {
  Tensor ids78 = Tensor::zeros({1, 78}, DType::I64);
  expect_error([&] { encoder().forward(ids78); }, {"78", "max_position_embeddings"});
  Tensor ids = npy_read(fixture("common/tokens_prompt.npy"));
  Tensor bad = Tensor::zeros({1, 77, 31});
  expect_error([&] { encoder().forward(ids, bad); }, {"[1, 77, 32]", "[1, 77, 31]"});
  Tensor big = Tensor::full({1, 77}, 0.0f).to(DType::F32);
  expect_error([&] { encoder().forward(big); }, {"int64"});
  Tensor oov = Tensor::zeros({1, 77}, DType::I64);
  oov.data<int64_t>()[3] = 49408;
  EXPECT_THROW(encoder().forward(oov), Error);
}

TEST(ClipText, MissingOrMisshapedTensorNamesTensorShapesAndFile) {
  const auto dir = fixture("models/encoder");
  auto cfg = ClipTextConfig::from_reader(ConfigReader::load(dir / "config.json"));
  StateDict sd = load_state_dict(dir / "pytorch_model.bin");
  StateDict missing = sd;
  missing.erase("text_model.encoder.layers.1.mlp.fc2.weight");
  expect_error([&] { ClipTextModel(cfg, missing, "enc.bin", ref_backend()); },
               {"text_model.encoder.layers.1.mlp.fc2.weight", "missing", "[32, 64]", "enc.bin"});
  StateDict wrong = sd;
  wrong["text_model.final_layer_norm.weight"] = Tensor::zeros({31});
  expect_error([&] { ClipTextModel(cfg, wrong, "enc.bin", ref_backend()); },
               {"text_model.final_layer_norm.weight", "[31]", "[32]", "enc.bin"});
}

TEST(ClipText, ConfigErrorsNameKeyAndValue) {
  nlohmann::json j = ConfigReader::load(fixture("models/encoder/config.json")).json();
  j["hidden_act"] = "swiglu";
  expect_error([&] { ClipTextConfig::from_reader(ConfigReader(j, "cfg.json")); }, {"cfg.json", "swiglu"});
  j = ConfigReader::load(fixture("models/encoder/config.json")).json();
  j["num_attention_heads"] = 5;
  expect_error([&] { ClipTextConfig::from_reader(ConfigReader(j, "cfg.json")); },
               {"cfg.json", "num_attention_heads", "5"});
}

TEST(ClipText, DebugHookSeesLayerOutputs) {
  auto m = ClipTextModel::from_pretrained(fixture("models/encoder"), ref_backend());
  std::vector<std::string> names;
  m->set_debug_hook([&](const Tensor& t) { names.push_back(t.name()); });
  m->forward(npy_read(fixture("common/tokens_empty.npy")));
  std::vector<std::string> want{"text_model.embeddings", "text_model.encoder.layers.0",
                                "text_model.encoder.layers.1", "text_model.encoder.layers.2",
                                "text_model.final_layer_norm"};
  EXPECT_EQ(names, want);
}

TEST(ClipText, NpyDumpHookWritesNamedIntermediates) {
  auto m = ClipTextModel::from_pretrained(fixture("models/encoder"), ref_backend());
  const auto dir = std::filesystem::temp_directory_path() / cat("a2f_clip_dump_", ::getpid());
  m->set_debug_hook(nn::npy_dump_hook(dir, ref_backend()));
  Tensor out = m->forward(npy_read(fixture("common/tokens_empty.npy")));
  EXPECT_TRUE(std::filesystem::exists(dir / "text_model.encoder.layers.2.npy"));
  EXPECT_EQ(max_abs_diff(npy_read(dir / "text_model.final_layer_norm.npy"), out), 0.0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace a2f::test
