#include "pipeline/prompt.h"

#include <cmath>
#include <cstring>

namespace a2f {

Tensor normalize_id_embeddings(const Tensor& emb_in) {
  A2F_CHECK(emb_in.defined() && emb_in.ndim() == 2 && emb_in.dim(1) == 512,
            "an ID embedding must have 512 values ([512] or [B, 512]); got ", emb_in.desc());
  Tensor emb = emb_in.to(DType::F32).contiguous();
  const int64_t b = emb.dim(0);
  Tensor out = Tensor::empty({b, 512});  // [B, 512]
  const float* src = emb.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    // torch.norm in float32: sqrt of the float32 sum of squares (accumulated in higher precision by torch's
    // reduction; a double sum rounded once is within an ulp of it).
    double ss = 0;
    for (int j = 0; j < 512; ++j) {
      float v = src[i * 512 + j];
      A2F_CHECK(std::isfinite(v), "ID embedding ", i, " has a non-finite value at index ", j);
      ss += double(v) * double(v);
    }
    const float norm = static_cast<float>(std::sqrt(ss));
    A2F_CHECK(norm > 0.0f, "ID embedding ", i, " is all zeros");
    for (int j = 0; j < 512; ++j) dst[i * 512 + j] = src[i * 512 + j] / norm;
  }
  return out;
}

Tensor token_ids_tensor(const std::vector<int32_t>& ids) {
  Tensor t = Tensor::empty({1, static_cast<int64_t>(ids.size())}, DType::I64);  // [1, L]
  int64_t* p = t.data<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) p[i] = ids[i];
  return t;
}

IdPrompt project_face_embs(const ClipTextModel& encoder, const ClipTokenizer& tokenizer, const Tensor& id_embs) {
  A2F_CHECK(id_embs.ndim() == 2 && id_embs.dim(1) == 512, "project_face_embs: expected [B, 512], got ",
            id_embs.desc());
  const std::vector<int32_t> id_token = tokenizer.tokenize("id");
  A2F_CHECK(id_token.size() == 1, "the tokenizer splits \"id\" into ", id_token.size(), " tokens; expected one");
  IdPrompt p;
  p.input_ids = token_ids_tensor(tokenizer.encode(kArc2FacePrompt));  // [1, 77]
  const int64_t b = id_embs.dim(0), len = p.input_ids.dim(1);
  Tensor ids_b = Tensor::empty({b, len}, DType::I64);  // [B, 77]
  for (int64_t i = 0; i < b; ++i)
    std::memcpy(ids_b.data<int64_t>() + i * len, p.input_ids.data<int64_t>(), len * sizeof(int64_t));
  Tensor tok = encoder.token_embeddings(ids_b).to(DType::F32).contiguous();  // [B, 77, hidden]
  const int64_t hidden = tok.dim(2);
  Tensor emb = id_embs.to(DType::F32).contiguous();
  float* t = tok.data<float>();
  const float* e = emb.data<float>();
  int found = 0;
  for (int64_t j = 0; j < len; ++j) {
    if (p.input_ids.data<int64_t>()[j] != id_token[0]) continue;
    ++found;
    for (int64_t i = 0; i < b; ++i) {
      float* row = t + (i * len + j) * hidden;
      for (int64_t k = 0; k < hidden; ++k) row[k] = k < 512 ? e[i * 512 + k] : 0.0f;  // F.pad: zeros or crop
    }
  }
  A2F_CHECK(found > 0, "the prompt \"", kArc2FacePrompt, "\" has no \"id\" token");
  p.token_embeds = tok;
  p.prompt_embeds = encoder.forward(ids_b, tok);  // [B, 77, hidden]
  return p;
}

Tensor encode_negative_prompt(const ClipTextModel& encoder, const ClipTokenizer& tokenizer) {
  return encoder.forward(token_ids_tensor(tokenizer.encode("")));  // [1, 77, hidden]
}

}  // namespace a2f
