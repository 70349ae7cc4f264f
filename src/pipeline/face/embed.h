// Mirrors insightface 0.7.3 python-package/insightface/model_zoo/arcface_onnx.py (class ArcFaceONNX): input
// normalisation chosen from the first 8 node names (Sub/_minus and Mul/_mul: mean 0, std 1; otherwise
// 127.5 / 127.5), norm_crop to the model's input size, blob in RGB, raw output embedding (not normalised).
#pragma once
#include <memory>
#include <vector>

#include "io/image.h"
#include "models/onnx_graph.h"
#include "pipeline/face/detect.h"

namespace a2f::face {

class ArcFaceRecognizer {
 public:
  explicit ArcFaceRecognizer(std::unique_ptr<OnnxGraph> graph);
  int input_size() const { return input_size_; }
  float input_mean() const { return mean_; }
  float input_std() const { return std_; }
  // Raw embedding of an already aligned BGR crop (input_size x input_size).
  std::vector<float> embed_aligned(const Image8& aligned_bgr);
  OnnxGraph& graph() { return *graph_; }

 private:
  std::unique_ptr<OnnxGraph> graph_;
  int input_size_ = 112;
  float mean_ = 127.5f, std_ = 127.5f;
};

// embedding / ||embedding|| (float32 result; throws for a zero or non-finite vector).
std::vector<float> l2_normalize(const std::vector<float>& v);

}  // namespace a2f::face
