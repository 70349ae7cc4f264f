// Mirrors insightface 0.7.3 python-package/insightface/model_zoo/retinaface.py (class RetinaFace, the class
// model_zoo routes SCRFD-10G-bnkps / det_10g.onnx to; identical to scrfd.py SCRFD) at det_size 640:
// keep-aspect resize (cv2 INTER_LINEAR) into the top-left of a zero canvas, blob (x - 127.5) / 128 in RGB,
// 3 strides x 2 anchors, score >= 0.5, distance decoding, greedy NMS 0.4 with the +1 pixel convention.
// Arithmetic follows the reference's float32 numpy expressions where they decide outcomes.
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "io/image.h"
#include "models/onnx_graph.h"

namespace a2f::face {

struct Face {
  std::array<float, 4> bbox{};  // x1, y1, x2, y2 in original-image pixels
  float score = 0.0f;
  std::array<std::array<float, 2>, 5> kps{};  // eyes, nose, mouth corners
};

struct DetectorOptions {
  int det_size = 640;       // square input size when the model's input H/W are dynamic
  float det_thresh = 0.5f;  // score >= det_thresh
  float nms_thresh = 0.4f;  // suppress IoU > nms_thresh
};

struct Letterbox {
  int new_w = 0, new_h = 0;  // size of the resized image in the canvas' top-left corner
  double det_scale = 1.0;    // new_h / image height (one scale, from the height, as the reference)
};
Letterbox letterbox_params(int width, int height, int input_w, int input_h);
// BGR image -> input_w x input_h BGR canvas (cv::resize INTER_LINEAR, zero padding right/bottom).
Image8 letterbox_image(const Image8& bgr, const Letterbox& lb, int input_w, int input_h);
// cv2.dnn.blobFromImage(img, 1/std, size, (mean,)*3, swapRB=True): [1, 3, H, W] RGB float32.
Tensor image_blob(const Image8& bgr, float mean, float std);

// Greedy NMS over faces already sorted by descending score; returns the kept indices (float32 arithmetic).
std::vector<int> nms(const std::vector<Face>& faces, float thresh);
// Arc2Face's choice: the largest box area (x2-x1)*(y2-y1), the last one among equals; -1 when empty.
int choose_largest(const std::vector<Face>& faces);

struct DetectDebug {
  Letterbox letterbox;
  Tensor blob;  // [1, 3, H, W]
  Image8 canvas;
  int positives[5] = {0, 0, 0, 0, 0};
};

class ScrfdDetector {
 public:
  ScrfdDetector(std::unique_ptr<OnnxGraph> graph, const DetectorOptions& opt = {});
  // All faces in insightface order (descending score after NMS), in original-image pixels.
  std::vector<Face> detect(const Image8& bgr, DetectDebug* debug = nullptr);
  // Decodes raw network outputs (graph order) for a canvas of input_w x input_h pixels.
  std::vector<Face> decode(const std::vector<Tensor>& outputs, double det_scale, int input_w, int input_h,
                           DetectDebug* debug = nullptr) const;
  int input_w() const { return input_w_; }
  int input_h() const { return input_h_; }
  OnnxGraph& graph() { return *graph_; }

 private:
  std::unique_ptr<OnnxGraph> graph_;
  DetectorOptions opt_;
  int fmc_ = 3;
  std::vector<int> strides_;
  int num_anchors_ = 2;
  bool use_kps_ = true;
  int input_w_ = 640, input_h_ = 640;
};

}  // namespace a2f::face
