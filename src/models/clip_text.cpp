// transformers 4.36 CLIPTextModel + Arc2Face CLIPTextModelWrapper; see clip_text.h.
#include "models/clip_text.h"

#include <cmath>

#include "core/log.h"

namespace a2f {

ClipTextConfig ClipTextConfig::from_reader(const ConfigReader& r) {
  ClipTextConfig c;
  c.vocab_size = r.get_int("vocab_size", c.vocab_size);
  c.hidden_size = r.get_int("hidden_size", c.hidden_size);
  c.intermediate_size = r.get_int("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = r.get_int("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = r.get_int("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = r.get_int("max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = r.get_string("hidden_act", c.hidden_act);
  c.layer_norm_eps = r.get_float("layer_norm_eps", c.layer_norm_eps);
  const std::string mt = r.get_string("model_type", "clip_text_model");
  if (mt != "clip_text_model" && mt != "clip") r.unsupported("model_type", "expected a CLIP text model");
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    r.unsupported("num_attention_heads", cat("hidden_size ", c.hidden_size, " must be a multiple of it"));
  if (c.vocab_size <= 0) r.unsupported("vocab_size");
  if (c.intermediate_size <= 0) r.unsupported("intermediate_size");
  if (c.num_hidden_layers <= 0) r.unsupported("num_hidden_layers");
  if (c.max_position_embeddings <= 0) r.unsupported("max_position_embeddings");
  nn::act_from_name(c.hidden_act, r.file() + ": hidden_act");
  return c;
}

std::unique_ptr<ClipTextModel> ClipTextModel::from_pretrained(const std::filesystem::path& dir,
                                                              Backend& backend, DType dtype) {
  ConfigReader r = ConfigReader::load(dir / "config.json");
  ClipTextConfig cfg = ClipTextConfig::from_reader(r);
  auto file = find_weight_file(dir, {"model.safetensors", "pytorch_model.bin"});
  StateDict sd = load_state_dict(file);
  return std::make_unique<ClipTextModel>(cfg, sd, file.string(), backend, dtype);
}

ClipTextModel::ClipTextModel(const ClipTextConfig& config, const StateDict& weights, const std::string& file,
                             Backend& backend, DType dtype)
    : cfg_(config), be_(backend), dtype_(dtype) {
  act_ = nn::act_from_name(cfg_.hidden_act, file + ": hidden_act");
  nn::WeightLoader w(weights, file, backend, dtype);
  const int64_t d = cfg_.hidden_size, ff = cfg_.intermediate_size;
  const float eps = static_cast<float>(cfg_.layer_norm_eps);
  token_embedding_ = nn::Embedding::load(w, "text_model.embeddings.token_embedding", cfg_.vocab_size, d);
  position_embedding_ =
      nn::Embedding::load(w, "text_model.embeddings.position_embedding", cfg_.max_position_embeddings, d);
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    const std::string p = cat("text_model.encoder.layers.", i);
    Layer l;
    l.name = p;
    l.layer_norm1 = nn::LayerNorm::load(w, p + ".layer_norm1", d, eps);
    l.q_proj = nn::Linear::load(w, p + ".self_attn.q_proj", d, d);
    l.k_proj = nn::Linear::load(w, p + ".self_attn.k_proj", d, d);
    l.v_proj = nn::Linear::load(w, p + ".self_attn.v_proj", d, d);
    l.out_proj = nn::Linear::load(w, p + ".self_attn.out_proj", d, d);
    l.layer_norm2 = nn::LayerNorm::load(w, p + ".layer_norm2", d, eps);
    l.fc1 = nn::Linear::load(w, p + ".mlp.fc1", d, ff);
    l.fc2 = nn::Linear::load(w, p + ".mlp.fc2", ff, d);
    layers_.push_back(std::move(l));
  }
  final_layer_norm_ = nn::LayerNorm::load(w, "text_model.final_layer_norm", d, eps);
  // position_ids is a buffer older transformers saved; text_projection belongs to
  // CLIPTextModelWithProjection.
  w.warn_unused("CLIPTextModel", {"position_ids", "text_projection.weight"});
}

Tensor ClipTextModel::token_embeddings(const Tensor& input_ids) const {
  A2F_CHECK(input_ids.ndim() == 2, "CLIP text model: input_ids must be [batch, length], got ",
            shape_str(input_ids.shape()));
  nn::Ctx c{be_, &hook_};
  return token_embedding_(c, be_.to_device(input_ids));  // [B, L, D]
}

Tensor ClipTextModel::forward(const Tensor& input_ids, const Tensor& token_embeds) const {
  A2F_CHECK(input_ids.ndim() == 2, "CLIP text model: input_ids must be [batch, length], got ",
            shape_str(input_ids.shape()));
  A2F_CHECK(input_ids.dtype() == DType::I64 || input_ids.dtype() == DType::I32,
            "CLIP text model: input_ids must be int64 or int32, got ", dtype_name(input_ids.dtype()));
  const int64_t b = input_ids.dim(0), len = input_ids.dim(1), d = cfg_.hidden_size;
  A2F_CHECK(len >= 1 && len <= cfg_.max_position_embeddings, "CLIP text model: sequence length ", len,
            " is outside 1..", cfg_.max_position_embeddings, " (max_position_embeddings)");
  nn::Ctx c{be_, &hook_};

  // CLIPTextEmbeddings: inputs_embeds (given or token_embedding(ids)) + position_embedding(arange(L)).
  Tensor h;
  if (token_embeds.defined()) {
    A2F_CHECK(token_embeds.shape() == (Shape{b, len, d}), "CLIP text model: token embeddings must be ",
              shape_str({b, len, d}), " to match input_ids, got ", shape_str(token_embeds.shape()));
    h = be_.cast(be_.to_device(token_embeds), dtype_);  // [B, L, D]
  } else {
    h = token_embedding_(c, be_.to_device(input_ids));  // [B, L, D]
    if (h.dtype() != dtype_) h = be_.cast(h, dtype_);   // [B, L, D]
  }
  Tensor pos = position_embedding_.weight.narrow(0, 0, len);  // [L, D]
  h = be_.add(h, pos);                                        // [B, L, D]
  c.mark(h, "text_model.embeddings");

  AttentionParams ap;
  ap.heads = static_cast<int>(cfg_.num_attention_heads);
  ap.scale = 1.0f / std::sqrt(static_cast<float>(d / cfg_.num_attention_heads));
  ap.causal = true;
  for (const Layer& l : layers_) {
    Tensor x = l.layer_norm1(c, h);    // [B, L, D]
    Tensor q = l.q_proj(c, x);         // [B, L, D]
    Tensor k = l.k_proj(c, x);         // [B, L, D]
    Tensor v = l.v_proj(c, x);         // [B, L, D]
    x = be_.attention(q, k, v, ap);    // [B, L, D]
    h = be_.add(h, l.out_proj(c, x));  // [B, L, D]
    x = l.layer_norm2(c, h);           // [B, L, D]
    x = l.fc1(c, x, act_);             // [B, L, FF]
    h = be_.add(h, l.fc2(c, x));       // [B, L, D]
    c.mark(h, l.name);
  }
  h = final_layer_norm_(c, h);  // [B, L, D]
  c.mark(h, "text_model.final_layer_norm");
  return h.dtype() == DType::F32 ? h : be_.cast(h, DType::F32);  // [B, L, D]
}

}  // namespace a2f
