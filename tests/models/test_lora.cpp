// LoRA loading and merging (models/lora.h) against diffusers 0.29.2 + PEFT 0.11.1.
// References: tests/fixtures/ref/lora_fused_example_* (diffusers' fuse_lora() of the kohya-format fixture
// LCM-LoRA, tests/fixtures/ref/refs.json); tests/models/data/lora_peft_* from scripts/make_lora_refs.py (a
// LoRA named as diffusers' save_lora_weights names it, fused in PyTorch by PEFT's merge formula).
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model_test_util.h"
#include "models/lora.h"

namespace a2f::test {
namespace {

std::filesystem::path data_path(const std::string& name) {
  return std::filesystem::path(A2F_SOURCE_DIR) / "tests/models/data" / name;
}

std::unique_ptr<UNet2DConditionModel> tiny_unet(Backend& be, DType dtype = DType::F32) {
  return UNet2DConditionModel::from_pretrained(fixture("models/arc2face"), be, dtype);
}

Tensor scalar_t(float t) {
  return Tensor::from_data({1}, std::vector<float>{t});
}

// The keys of a kohya LoRA as diffusers' _convert_unet_lora_key and convert_unet_state_dict_to_peft rename
// them (expected names worked out by hand from those functions).
TEST(LoraKeys, KohyaToDiffusersToPeft) {
  const std::vector<std::array<std::string, 3>> cases = {
      {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
       "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight",
       "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"},
      {"lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0.lora_down.weight",
       "up_blocks.3.attentions.2.transformer_blocks.0.attn2.processor.to_out_lora.down.weight",
       "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0.lora_A.weight"},
      {"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight",
       "mid_block.attentions.0.proj_in.lora.down.weight", "mid_block.attentions.0.proj_in.lora_A.weight"},
      {"lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_ff_net_0_proj.lora_down.weight",
       "down_blocks.1.attentions.1.transformer_blocks.0.ff.net.0.proj.lora.down.weight",
       "down_blocks.1.attentions.1.transformer_blocks.0.ff.net.0.proj.lora_A.weight"},
      {"lora_unet_mid_block_resnets_1_time_emb_proj.lora_down.weight",
       "mid_block.resnets.1.time_emb_proj.lora.down.weight",
       "mid_block.resnets.1.time_emb_proj.lora_A.weight"},
      {"lora_unet_up_blocks_0_resnets_2_conv_shortcut.lora_down.weight",
       "up_blocks.0.resnets.2.conv_shortcut.lora.down.weight",
       "up_blocks.0.resnets.2.conv_shortcut.lora_A.weight"},
      {"lora_unet_down_blocks_2_downsamplers_0_conv.lora_down.weight",
       "down_blocks.2.downsamplers.0.conv.lora.down.weight",
       "down_blocks.2.downsamplers.0.conv.lora_A.weight"},
      // LDM-named keys: renamed in place (SD pipelines pass no unet_config, so blocks are not renumbered).
      {"lora_unet_input_blocks_1_0_emb_layers_1.lora_down.weight",
       "down_blocks.1.0.time_emb_proj.lora.down.weight", "down_blocks.1.0.time_emb_proj.lora_A.weight"},
      {"lora_unet_input_blocks_4_0_in_layers_2.lora_down.weight", "down_blocks.4.0.conv1.lora.down.weight",
       "down_blocks.4.0.conv1.lora_A.weight"},
      {"lora_unet_output_blocks_2_0_skip_connection.lora_down.weight",
       "up_blocks.2.0.conv_shortcut.lora.down.weight", "up_blocks.2.0.conv_shortcut.lora_A.weight"},
  };
  for (const auto& [kohya, diffusers, peft] : cases) {
    EXPECT_EQ(lora_kohya_unet_key(kohya), diffusers) << kohya;
    EXPECT_EQ(lora_unet_key_to_peft(diffusers), peft) << diffusers;
  }
}

// The fixture LCM-LoRA (kohya format like latent-consistency/lcm-lora-sdv1-5): rank 4, alpha 2 (manifest).
TEST(LoraFile, KohyaLcmLora) {
  LoraWeights w = lora_load(fixture("models/lcm-lora/pytorch_lora_weights.safetensors"));
  EXPECT_EQ(w.format, "kohya");
  EXPECT_EQ(w.unet.size(), 117u);  // 351 tensors = 117 x (down, up, alpha)
  EXPECT_TRUE(w.ignored.empty());
  for (const auto& m : w.unet) {
    EXPECT_EQ(m.rank, 4) << m.module;
    EXPECT_EQ(m.alpha, 2.0) << m.module;
    EXPECT_EQ(m.scale(), 0.5) << m.module;
  }
  const auto has = [&](const std::string& mod) {
    return std::any_of(w.unet.begin(), w.unet.end(), [&](auto& m) { return m.module == mod; });
  };
  EXPECT_TRUE(has("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"));
  EXPECT_TRUE(has("up_blocks.0.upsamplers.0.conv"));
  EXPECT_TRUE(has("mid_block.resnets.0.time_emb_proj"));
}

class LoraParity : public ::testing::TestWithParam<std::string> {
 protected:
  Backend& be() const { return backend_named(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Backends, LoraParity, ::testing::Values("ref", "cpu"));

// LoRA-merged weights equal diffusers' fuse_lora() results.
TEST_P(LoraParity, FusedWeightsMatchDiffusers) {
  auto unet = tiny_unet(be());
  LoraAdapter lora(*unet, lora_load(fixture("models/lcm-lora/pytorch_lora_weights.safetensors")));
  EXPECT_EQ(lora.num_modules(), 117u);
  EXPECT_TRUE(lora.unmatched().empty());
  Tensor conv1 = lora.merged_weight("down_blocks.0.resnets.0.conv1");
  A2F_EXPECT_SHAPE(conv1, 16, 16, 3, 3);
  EXPECT_LE(max_abs_diff(conv1, ref_array("lora_fused_example_conv1")), 1e-6);
  Tensor to_q = lora.merged_weight("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q");
  EXPECT_LE(max_abs_diff(to_q, ref_array("lora_fused_example_to_q")), 1e-6);
}

// A LoRA named as save_lora_weights writes it (unet.<module>.lora.down / .lora_A, no alphas, one rank-2
// module, text-encoder parts) fused like PEFT fuses it.
TEST_P(LoraParity, PeftNamedFileMatchesMergeFormula) {
  LoraWeights w = lora_load(data_path("lora_peft_tiny.safetensors"));
  EXPECT_EQ(w.format, "diffusers");
  EXPECT_EQ(w.ignored.size(), 2u);  // text_encoder.* tensors
  nlohmann::json ref;
  std::ifstream(data_path("lora_peft_scales.json")) >> ref;
  ASSERT_EQ(w.unet.size(), ref["modules"].size());
  for (const auto& m : w.unet) EXPECT_EQ(m.scale(), ref["scaling"][m.module].get<double>()) << m.module;

  auto unet = tiny_unet(be());
  LoraAdapter lora(*unet, w);
  EXPECT_EQ(lora.num_modules(), ref["modules"].size());
  for (size_t k = 0; k < ref["modules"].size(); ++k) {
    const std::string mod = ref["modules"][k];
    Tensor want = npy_read(data_path(cat("lora_peft_fused_", k, ".npy")));
    Tensor got = lora.merged_weight(mod);
    EXPECT_EQ(got.numel(), want.numel()) << mod;  // proj_in is held as a [out, in] Linear
    EXPECT_LE(max_abs_diff(got, want), 1e-6) << mod;
  }
}

// Enabling changes the output; disabling gives the base model back bit for bit; merged and unmerged agree.
TEST_P(LoraParity, ToggleIsExactAndModesAgree) {
  auto unet = tiny_unet(be());
  Tensor pe = ref_array("prompt_embeds").narrow(0, 0, 1).contiguous();
  Tensor x = ref_array("unet_in_latents");
  Tensor base = unet->forward(x, scalar_t(500), pe);
  LoraWeights w = lora_load(fixture("models/lcm-lora/pytorch_lora_weights.safetensors"));
  Tensor merged, unmerged;
  {
    LoraAdapter lora(*unet, w, 1.0f, LoraMode::Merged);
    lora.set_enabled(true);
    merged = unet->forward(x, scalar_t(500), pe);
    lora.set_enabled(false);
    EXPECT_EQ(max_abs_diff(unet->forward(x, scalar_t(500), pe), base), 0.0);
    lora.set_enabled(true);
    EXPECT_EQ(max_abs_diff(unet->forward(x, scalar_t(500), pe), merged), 0.0);
  }  // the destructor detaches the LoRA
  EXPECT_EQ(max_abs_diff(unet->forward(x, scalar_t(500), pe), base), 0.0);
  {
    LoraAdapter lora(*unet, w, 1.0f, LoraMode::Unmerged);
    {
      LoraScope on(&lora, true);
      unmerged = unet->forward(x, scalar_t(500), pe);
    }
    EXPECT_FALSE(lora.enabled());
    EXPECT_EQ(max_abs_diff(unet->forward(x, scalar_t(500), pe), base), 0.0);
  }
  EXPECT_GT(max_abs_diff(merged, base), 0.1);  // the LoRA matters
  EXPECT_LE(rel_error(unmerged, merged), 1e-5);
}

// The adapter weight scales the delta: scale 0 is the base model, scale 2 doubles the delta.
TEST(Lora, AdapterScale) {
  auto unet = tiny_unet(ref_backend());
  LoraWeights w = lora_load(fixture("models/lcm-lora/pytorch_lora_weights.safetensors"));
  const std::string mod = "down_blocks.0.resnets.0.conv1";
  Tensor base = unet->forward(ref_array("unet_in_latents"), scalar_t(999),
                              ref_array("prompt_embeds").narrow(0, 0, 1).contiguous());
  LoraAdapter zero(*unet, w, 0.0f);
  zero.set_enabled(true);
  EXPECT_EQ(max_abs_diff(unet->forward(ref_array("unet_in_latents"), scalar_t(999),
                                       ref_array("prompt_embeds").narrow(0, 0, 1).contiguous()),
                         base),
            0.0);
  zero.set_enabled(false);
  Tensor w0 = zero.merged_weight(mod), w1 = LoraAdapter(*unet, w, 1.0f).merged_weight(mod);
  Tensor w2 = LoraAdapter(*unet, w, 2.0f).merged_weight(mod);
  auto a = w0.to_vector(), b = w1.to_vector(), c = w2.to_vector();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs((c[i] - a[i]) - 2.0 * (b[i] - a[i])));
  EXPECT_LE(worst, 1e-6);
}

// ---------------------------------------------------------------------------------------------------- errors

Tensor f32(const Shape& s, float v = 0.01f) {
  return Tensor::full(s, v);
}

TEST(LoraErrors, BadFiles) {
  auto unet = tiny_unet(ref_backend());
  const std::string m = "down_blocks.0.resnets.0.conv1";
  StateDict no_up{{"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", f32({4, 16, 3, 3})}};
  expect_error([&] { lora_from_state_dict(no_up, "x.safetensors"); }, {"x.safetensors", "lora_up"});
  StateDict stray = no_up;
  stray["lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight"] = f32({16, 4, 1, 1});
  stray["lora_unet_down_blocks_0_resnets_0_conv1.hada_w1_a"] = f32({4, 4});
  expect_error([&] { lora_from_state_dict(stray, "x.safetensors"); }, {"hada_w1_a", "do not convert"});
  StateDict not_lora{{"unet." + m + ".weight", f32({16, 16, 3, 3})}};
  expect_error([&] { lora_from_state_dict(not_lora, "x"); }, {"not a LoRA tensor"});
  StateDict dora{{"unet." + m + ".lora_A.weight", f32({4, 16, 3, 3})},
                 {"unet." + m + ".lora_B.weight", f32({16, 4, 1, 1})},
                 {"unet." + m + ".lora_magnitude_vector", f32({16})}};
  expect_error([&] { lora_from_state_dict(dora, "x"); }, {"DoRA"});
  StateDict half{{"unet." + m + ".lora_A.weight", f32({4, 16, 3, 3})}};
  expect_error([&] { lora_from_state_dict(half, "x"); }, {m, "no lora_B"});
  StateDict rank{{"unet." + m + ".lora_A.weight", f32({4, 16, 3, 3})},
                 {"unet." + m + ".lora_B.weight", f32({16, 8, 1, 1})}};
  expect_error([&] { lora_from_state_dict(rank, "x"); }, {"rank"});
  StateDict te_only{{"text_encoder.a.lora_A.weight", f32({4, 8})},
                    {"text_encoder.a.lora_B.weight", f32({8, 4})}};
  expect_error([&] { lora_from_state_dict(te_only, "x"); }, {"no UNet weights"});

  // Shapes that do not fit the UNet's layer (a LoRA for another model), and a LoRA for nothing in it.
  StateDict wrong{{"unet." + m + ".lora_A.weight", f32({4, 32, 3, 3})},
                  {"unet." + m + ".lora_B.weight", f32({16, 4, 1, 1})}};
  expect_error([&] { LoraAdapter tmp(*unet, lora_from_state_dict(wrong, "w.safetensors")); },
               {"w.safetensors", m, "[4, 32, 3, 3]", "[16, 16, 3, 3]"});
  StateDict other{{"unet.input_blocks.1.0.lora_A.weight", f32({4, 16})},
                  {"unet.input_blocks.1.0.lora_B.weight", f32({16, 4})}};
  expect_error([&] { LoraAdapter tmp(*unet, lora_from_state_dict(other, "sdxl.safetensors")); },
               {"sdxl.safetensors", "none of the LoRA", "input_blocks.1.0"});
  // Some modules missing: warned about and skipped, the rest applies.
  StateDict some = other;
  some["unet." + m + ".lora_A.weight"] = f32({4, 16, 3, 3});
  some["unet." + m + ".lora_B.weight"] = f32({16, 4, 1, 1});
  LoraAdapter partial(*unet, lora_from_state_dict(some, "x"));
  EXPECT_EQ(partial.num_modules(), 1u);
  EXPECT_EQ(partial.unmatched(), (std::vector<std::string>{"input_blocks.1.0"}));
  expect_error([&] { partial.merged_weight("conv_in"); }, {"does not adapt", "conv_in"});
}

// get_peft_kwargs: modules without their own alpha get the most common alpha of the file.
TEST(LoraErrors, KohyaAlphaRules) {
  const std::string a = "lora_unet_down_blocks_0_resnets_0_conv1",
                    b = "lora_unet_down_blocks_0_resnets_0_conv2",
                    c = "lora_unet_down_blocks_0_resnets_1_conv1";
  StateDict sd;
  for (const auto& k : {a, b, c}) {
    sd[k + ".lora_down.weight"] = f32({4, 16, 3, 3});
    sd[k + ".lora_up.weight"] = f32({16, 4, 1, 1});
  }
  sd[a + ".alpha"] = Tensor::full({}, 1.0f);
  sd[b + ".alpha"] = Tensor::full({}, 8.0f);
  LoraWeights w = lora_from_state_dict(sd, "x");
  std::map<std::string, double> scale;
  for (const auto& m : w.unet) scale[m.module] = m.scale();
  EXPECT_EQ(scale["down_blocks.0.resnets.0.conv1"], 0.25);  // own alpha 1 / rank 4
  EXPECT_EQ(scale["down_blocks.0.resnets.0.conv2"], 2.0);   // own alpha 8 / rank 4
  EXPECT_EQ(scale["down_blocks.0.resnets.1.conv1"], 0.25);  // no alpha: most common (tie: first seen) 1 / 4
}

}  // namespace
}  // namespace a2f::test
