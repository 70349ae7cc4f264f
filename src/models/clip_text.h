// Mirrors transformers 4.36 CLIPTextModel (src/transformers/models/clip/modeling_clip.py: CLIPTextEmbeddings,
// CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPTextTransformer) together with Arc2Face's
// CLIPTextModelWrapper (github.com/foivospar/Arc2Face arc2face/models.py), whose forward takes precomputed
// token embeddings that replace the token embedding of the ids before the position embeddings are added.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/weights.h"
#include "models/model_config.h"
#include "nn/attention.h"

namespace a2f {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;

  // transformers CLIPTextConfig defaults for absent keys; unsupported values throw naming the key.
  static ClipTextConfig from_reader(const ConfigReader& r);
};

class ClipTextModel {
 public:
  // Loads `dir`/config.json and `dir`/model.safetensors or pytorch_model.bin (a CLIPTextModel or
  // CLIPTextModelWrapper checkpoint, names "text_model.*").
  static std::unique_ptr<ClipTextModel> from_pretrained(const std::filesystem::path& dir, Backend& backend,
                                                        DType dtype = DType::F32);
  ClipTextModel(const ClipTextConfig& config, const StateDict& weights, const std::string& file,
                Backend& backend, DType dtype = DType::F32);

  const ClipTextConfig& config() const { return cfg_; }
  DType dtype() const { return dtype_; }

  // embeddings.token_embedding(input_ids): ids [B, L] i64 -> [B, L, hidden] (the wrapper's
  // return_token_embs=True path).
  Tensor token_embeddings(const Tensor& input_ids) const;
  // last_hidden_state after final_layer_norm: ids [B, L] i64 (L <= max_position_embeddings) -> [B, L, hidden]
  // in f32. When `token_embeds` [B, L, hidden] is given it replaces token_embedding(ids) (input_token_embs).
  Tensor forward(const Tensor& input_ids, const Tensor& token_embeds = Tensor()) const;

  void set_debug_hook(nn::TensorHook hook) { hook_ = std::move(hook); }

 private:
  struct Layer {
    nn::LayerNorm layer_norm1, layer_norm2;
    nn::Linear q_proj, k_proj, v_proj, out_proj;
    nn::Linear fc1, fc2;
    std::string name;  // text_model.encoder.layers.N
  };

  ClipTextConfig cfg_;
  Backend& be_;
  DType dtype_;
  Act act_ = Act::QuickGelu;
  nn::Embedding token_embedding_, position_embedding_;
  std::vector<Layer> layers_;
  nn::LayerNorm final_layer_norm_;
  nn::TensorHook hook_;
};

}  // namespace a2f
