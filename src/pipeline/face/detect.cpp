// Mirrors insightface 0.7.3 python-package/insightface/model_zoo/retinaface.py, class RetinaFace
// (_init_vars, detect, forward, nms, distance2bbox, distance2kps).
#include "pipeline/face/detect.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/log.h"

namespace a2f::face {

Letterbox letterbox_params(int width, int height, int input_w, int input_h) {
  A2F_CHECK(width > 0 && height > 0, "letterbox of an empty image");
  Letterbox lb;
  const double im_ratio = double(height) / double(width);
  const double model_ratio = double(input_h) / double(input_w);
  if (im_ratio > model_ratio) {
    lb.new_h = input_h;
    lb.new_w = static_cast<int>(lb.new_h / im_ratio);  // int(): truncation
  } else {
    lb.new_w = input_w;
    lb.new_h = static_cast<int>(lb.new_w * im_ratio);
  }
  // A very thin image can truncate to zero rows or columns; cv2.resize would raise there.
  A2F_CHECK(lb.new_w > 0 && lb.new_h > 0, "image of ", width, "x", height,
            " is too thin to detect faces in (it scales to ", lb.new_w, "x", lb.new_h, " pixels)");
  lb.det_scale = double(lb.new_h) / double(height);
  return lb;
}

Image8 letterbox_image(const Image8& bgr, const Letterbox& lb, int input_w, int input_h) {
  A2F_CHECK(bgr.channels == 3, "letterbox: expected a 3-channel image");
  cv::Mat src(bgr.height, bgr.width, CV_8UC3, const_cast<uint8_t*>(bgr.pixels.data()));
  cv::Mat resized;
  cv::resize(src, resized, cv::Size(lb.new_w, lb.new_h));  // INTER_LINEAR (the default)
  Image8 canvas;
  canvas.width = input_w;
  canvas.height = input_h;
  canvas.channels = 3;
  canvas.pixels.assign(static_cast<size_t>(input_w) * input_h * 3, 0);
  for (int y = 0; y < lb.new_h; ++y)
    std::memcpy(canvas.row(y), resized.ptr(y), static_cast<size_t>(lb.new_w) * 3);
  return canvas;
}

Tensor image_blob(const Image8& bgr, float mean, float std) {
  A2F_CHECK(bgr.channels == 3, "image_blob: expected a 3-channel image");
  const int h = bgr.height, w = bgr.width;
  Tensor blob = Tensor::empty({1, 3, h, w});  // [1, 3, H, W] RGB
  float* out = blob.data<float>();
  const float scale = static_cast<float>(1.0 / std);  // OpenCV applies the scale factor as a float
  const size_t plane = static_cast<size_t>(h) * w;
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = bgr.row(y);
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      for (int c = 0; c < 3; ++c)
        out[c * plane + i] = (static_cast<float>(row[3 * x + 2 - c]) - mean) * scale;
    }
  }
  return blob;
}

namespace {

// numpy's argsort()[::-1] of scores: an ascending sort reversed. numpy's default quicksort is an insertion
// sort for small inputs (stable), so ties come out in reverse index order; we reproduce that for all sizes.
std::vector<int> descending_order(const std::vector<float>& scores) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] < scores[b]; });
  std::reverse(order.begin(), order.end());
  return order;
}

}  // namespace

std::vector<int> nms(const std::vector<Face>& faces, float thresh) {
  const size_t n = faces.size();
  std::vector<float> area(n), scores(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& b = faces[i].bbox;
    area[i] = (b[2] - b[0] + 1.0f) * (b[3] - b[1] + 1.0f);
    scores[i] = faces[i].score;
  }
  std::vector<int> order = descending_order(scores), keep;
  while (!order.empty()) {
    const int i = order[0];
    keep.push_back(i);
    std::vector<int> rest;
    const auto& bi = faces[i].bbox;
    for (size_t k = 1; k < order.size(); ++k) {
      const auto& bj = faces[order[k]].bbox;
      const float xx1 = std::max(bi[0], bj[0]), yy1 = std::max(bi[1], bj[1]);
      const float xx2 = std::min(bi[2], bj[2]), yy2 = std::min(bi[3], bj[3]);
      const float w = std::max(0.0f, xx2 - xx1 + 1.0f), h = std::max(0.0f, yy2 - yy1 + 1.0f);
      const float inter = w * h;
      const float ovr = inter / (area[i] + area[order[k]] - inter);
      if (ovr <= thresh) rest.push_back(order[k]);
    }
    order = std::move(rest);
  }
  return keep;
}

int choose_largest(const std::vector<Face>& faces) {
  int best = -1;
  float best_area = 0.0f;
  for (size_t i = 0; i < faces.size(); ++i) {
    const auto& b = faces[i].bbox;
    const float area = (b[2] - b[0]) * (b[3] - b[1]);
    if (best < 0 || area >= best_area) {  // >=: the last of equal areas (stable sort, then [-1])
      best = static_cast<int>(i);
      best_area = area;
    }
  }
  return best;
}

ScrfdDetector::ScrfdDetector(std::unique_ptr<OnnxGraph> graph, const DetectorOptions& opt)
    : graph_(std::move(graph)), opt_(opt) {
  const std::string& src = graph_->source();
  A2F_CHECK(graph_->inputs().size() == 1, src, ": a face detector has 1 input, this one has ",
            graph_->inputs().size());
  const size_t nout = graph_->outputs().size();
  switch (nout) {
    case 6:
      fmc_ = 3;
      strides_ = {8, 16, 32};
      num_anchors_ = 2;
      use_kps_ = false;
      break;
    case 9:
      fmc_ = 3;
      strides_ = {8, 16, 32};
      num_anchors_ = 2;
      use_kps_ = true;
      break;
    case 10:
      fmc_ = 5;
      strides_ = {8, 16, 32, 64, 128};
      num_anchors_ = 1;
      use_kps_ = false;
      break;
    case 15:
      fmc_ = 5;
      strides_ = {8, 16, 32, 64, 128};
      num_anchors_ = 1;
      use_kps_ = true;
      break;
    default:
      fail(src, " is not an SCRFD face detector: it has ", nout, " outputs (expected 6, 9, 10 or 15)");
  }
  A2F_CHECK(use_kps_, src,
            ": this SCRFD model has no keypoint outputs; alignment needs the 5 keypoints "
            "(use scrfd_10g_bnkps.onnx / det_10g.onnx)");
  const OnnxValueInfo& in = graph_->inputs()[0];
  A2F_CHECK(in.has_shape && in.dims.size() == 4, src, ": input '", in.name, "' has shape ", in.shape_desc(),
            ", expected [1, 3, H, W]");
  if (in.dims[2] > 0 && in.dims[3] > 0) {
    // A static input size wins over det_size (insightface prints a warning and does the same).
    input_h_ = static_cast<int>(in.dims[2]);
    input_w_ = static_cast<int>(in.dims[3]);
    if (input_w_ != opt_.det_size || input_h_ != opt_.det_size)
      log_warn(src, " has a fixed input size ", input_w_, "x", input_h_, "; det_size ", opt_.det_size,
               " is ignored");
  } else {
    input_w_ = input_h_ = opt_.det_size;
  }
  A2F_CHECK(input_w_ >= 32 && input_h_ >= 32 && input_w_ <= 4096 && input_h_ <= 4096, src,
            ": detector input size ", input_w_, "x", input_h_, " is out of range");
}

std::vector<Face> ScrfdDetector::decode(const std::vector<Tensor>& outputs, double det_scale, int input_w,
                                        int input_h, DetectDebug* debug) const {
  A2F_CHECK(outputs.size() == static_cast<size_t>(3 * fmc_), "detector returned ", outputs.size(),
            " outputs");
  const float scale_f = static_cast<float>(det_scale);  // numpy: float32 array / python float -> float32
  std::vector<Face> cand;
  for (int idx = 0; idx < fmc_; ++idx) {
    const int stride = strides_[idx];
    const int h = input_h / stride, w = input_w / stride;
    const int64_t rows = int64_t(h) * w * num_anchors_;
    auto rows_of = [&](const Tensor& t0, int64_t cols, const char* what) {
      Tensor t = t0.to(DType::F32).contiguous();
      if (t.ndim() == 3) t = t.squeeze(0);  // "batched" exports: [1, N, C]
      A2F_CHECK(t.ndim() == 2 && t.dim(0) == rows && t.dim(1) == cols, graph_->source(), ": ", what,
                " output for stride ", stride, " has shape ", shape_str(t0.shape()), ", expected [", rows,
                ", ", cols, "]");
      return t;
    };
    const Tensor scores = rows_of(outputs[idx], 1, "score");
    const Tensor bbox = rows_of(outputs[idx + fmc_], 4, "bbox");
    const Tensor kps = rows_of(outputs[idx + 2 * fmc_], 10, "keypoint");
    const float* ps = scores.data<float>();
    const float* pb = bbox.data<float>();
    const float* pk = kps.data<float>();
    int positives = 0;
    for (int64_t r = 0; r < rows; ++r) {
      if (!(ps[r] >= opt_.det_thresh)) continue;
      ++positives;
      const int64_t cell = r / num_anchors_;
      const float cx = static_cast<float>((cell % w) * stride), cy = static_cast<float>((cell / w) * stride);
      const float sf = static_cast<float>(stride);
      Face f;
      f.score = ps[r];
      const float* d = pb + 4 * r;
      f.bbox = {(cx - d[0] * sf) / scale_f, (cy - d[1] * sf) / scale_f, (cx + d[2] * sf) / scale_f,
                (cy + d[3] * sf) / scale_f};
      const float* k = pk + 10 * r;
      for (int i = 0; i < 5; ++i) {
        f.kps[i][0] = (cx + k[2 * i] * sf) / scale_f;
        f.kps[i][1] = (cy + k[2 * i + 1] * sf) / scale_f;
      }
      cand.push_back(f);
    }
    if (debug && idx < 5) debug->positives[idx] = positives;
  }
  std::vector<float> scores(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) scores[i] = cand[i].score;
  std::vector<Face> sorted;
  for (int i : descending_order(scores)) sorted.push_back(cand[i]);
  std::vector<Face> out;
  for (int i : nms(sorted, opt_.nms_thresh)) out.push_back(sorted[i]);
  return out;
}

std::vector<Face> ScrfdDetector::detect(const Image8& bgr, DetectDebug* debug) {
  const Letterbox lb = letterbox_params(bgr.width, bgr.height, input_w_, input_h_);
  Image8 canvas = letterbox_image(bgr, lb, input_w_, input_h_);
  Tensor blob = image_blob(canvas, 127.5f, 128.0f);  // [1, 3, H, W]
  std::vector<Tensor> outs = graph_->run({graph_->backend().to_device(blob)});
  for (Tensor& o : outs) o = graph_->backend().to_host(o);
  if (debug) {
    debug->letterbox = lb;
    debug->blob = blob;
    debug->canvas = std::move(canvas);
  }
  return decode(outs, lb.det_scale, input_w_, input_h_, debug);
}

}  // namespace a2f::face
