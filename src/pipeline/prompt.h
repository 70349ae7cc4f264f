// The ID-conditioned prompt. Mirrors Arc2Face arc2face/utils.py `project_face_embs` (github foivospar/Arc2Face)
// and the negative branch of diffusers 0.29.2 StableDiffusionPipeline.encode_prompt:
//   ids = tokenizer("photo of a id person", padding="max_length", max_length=77, truncation=True)
//   token_embs = text_encoder(ids, return_token_embs=True)            # token_embedding(ids)
//   token_embs[ids == id("id")] = F.pad(face_emb, (0, hidden - 512))   # embedding, then zeros (crop if hidden<512)
//   prompt_embeds = text_encoder(ids, input_token_embs=token_embs)[0]
//   negative_prompt_embeds = text_encoder(tokenizer(""))[0]
// Unlike the reference (one embedding per call), this batches.
#pragma once
#include "core/tensor.h"
#include "models/clip_text.h"
#include "pipeline/tokenizer.h"

namespace a2f {

inline constexpr const char* kArc2FacePrompt = "photo of a id person";

// Rows of `emb` [B, 512] divided by their L2 norm (torch: emb / torch.norm(emb, dim=1, keepdim=True)).
// Throws for a wrong shape, a non-finite value or a zero vector.
Tensor normalize_id_embeddings(const Tensor& emb);

struct IdPrompt {
  Tensor input_ids;      // [1, 77] i64
  Tensor token_embeds;   // [B, 77, hidden]: token embeddings with the "id" row replaced
  Tensor prompt_embeds;  // [B, 77, hidden] f32
};

// id_embs [B, 512], already normalised.
IdPrompt project_face_embs(const ClipTextModel& encoder, const ClipTokenizer& tokenizer, const Tensor& id_embs);

// The unconditional embeds: the encoder run on "" -> [1, 77, hidden].
Tensor encode_negative_prompt(const ClipTextModel& encoder, const ClipTokenizer& tokenizer);

// Token ids as an i64 tensor [1, n].
Tensor token_ids_tensor(const std::vector<int32_t>& ids);

}  // namespace a2f
