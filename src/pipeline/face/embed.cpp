// Mirrors insightface 0.7.3 python-package/insightface/model_zoo/arcface_onnx.py, class ArcFaceONNX
// (__init__, get, get_feat) and app/common.py Face.normed_embedding.
#include "pipeline/face/embed.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace a2f::face {

ArcFaceRecognizer::ArcFaceRecognizer(std::unique_ptr<OnnxGraph> graph) : graph_(std::move(graph)) {
  const std::string& src = graph_->source();
  A2F_CHECK(graph_->inputs().size() == 1, src, ": a face recognizer has 1 input, this one has ",
            graph_->inputs().size());
  A2F_CHECK(graph_->outputs().size() == 1, src, ": a face recognizer has 1 output, this one has ",
            graph_->outputs().size());
  const OnnxValueInfo& in = graph_->inputs()[0];
  A2F_CHECK(in.has_shape && in.dims.size() == 4 && in.dims[2] > 0 && in.dims[2] == in.dims[3] &&
                in.dims[2] >= 112 && in.dims[2] % 16 == 0,
            src, ": input '", in.name, "' has shape ", in.shape_desc(),
            "; an ArcFace recognizer takes [N, 3, S, S] with S >= 112 and a multiple of 16");
  input_size_ = static_cast<int>(in.dims[2]);
  // insightface: an MXNet-converted model has its normalisation baked in (Sub/Mul nodes at the start).
  bool find_sub = false, find_mul = false;
  const auto& names = graph_->node_names();
  for (size_t i = 0; i < names.size() && i < 8; ++i) {
    const std::string& n = names[i];
    if (n.rfind("Sub", 0) == 0 || n.rfind("_minus", 0) == 0) find_sub = true;
    if (n.rfind("Mul", 0) == 0 || n.rfind("_mul", 0) == 0) find_mul = true;
  }
  if (find_sub && find_mul) {
    mean_ = 0.0f;
    std_ = 1.0f;
  }
  log_debug(src, ": input mean ", mean_, ", std ", std_, ", size ", input_size_);
}

std::vector<float> ArcFaceRecognizer::embed_aligned(const Image8& aligned) {
  A2F_CHECK(aligned.width == input_size_ && aligned.height == input_size_ && aligned.channels == 3,
            "recognizer input must be a ", input_size_, "x", input_size_, " BGR crop");
  Tensor blob = image_blob(aligned, mean_, std_);  // [1, 3, S, S]
  std::vector<Tensor> out = graph_->run({graph_->backend().to_device(blob)});
  std::vector<float> emb = graph_->backend().to_host(out[0]).to_vector();  // .flatten()
  for (float v : emb) A2F_CHECK(std::isfinite(v), graph_->source(), ": the embedding has non-finite values");
  return emb;
}

std::vector<float> l2_normalize(const std::vector<float>& v) {
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  const double n = std::sqrt(ss);
  A2F_CHECK(n > 0 && std::isfinite(n), "cannot normalise an embedding of norm ", n);
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i] / n);
  return out;
}

}  // namespace a2f::face
