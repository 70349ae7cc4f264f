// Mirrors insightface 0.7.3 python-package/insightface/app/face_analysis.py (FaceAnalysis with only the
// detection and recognition models, which is all Arc2Face's embedding depends on) plus Arc2Face's choice of
// the largest face (Arc2Face README / gradio_demo/app.py).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "io/image.h"
#include "pipeline/face/align.h"
#include "pipeline/face/detect.h"
#include "pipeline/face/embed.h"

namespace a2f::face {

struct AnalysisOptions {
  std::filesystem::path antelope_dir;  // holds scrfd_10g_bnkps.onnx (or det_10g.onnx) and arcface.onnx
  std::filesystem::path detector;      // explicit files override the folder
  std::filesystem::path recognizer;
  DetectorOptions det;
  DType weight_dtype = DType::F32;
};

struct Analysis {
  int width = 0, height = 0;            // of the decoded image
  std::vector<Face> faces;              // insightface order
  int chosen = -1;                      // Arc2Face's choice; -1 when no face was found
  Image8 aligned;                       // chosen face, 112x112 BGR (empty when none)
  std::vector<float> raw_embedding;     // recognizer output
  std::vector<float> normed_embedding;  // raw / ||raw||
  DetectDebug det;                      // letterbox, blob (kept only when asked)
};

// Resolves the model files: the explicit paths, else <dir>/scrfd_10g_bnkps.onnx or <dir>/det_10g.onnx and
// <dir>/arcface.onnx. glintr100.onnx (antelopev2's own recognizer) is never used in place of arcface.onnx.
void resolve_model_files(const AnalysisOptions& opt, std::filesystem::path& detector,
                         std::filesystem::path& recognizer);

class FaceAnalysis {
 public:
  FaceAnalysis(const AnalysisOptions& opt, Backend& backend);
  // `bgr`: the 3-channel BGR image insightface is handed. `keep_debug` keeps the detector blob and canvas.
  Analysis analyze(const Image8& bgr, bool keep_debug = false);
  ScrfdDetector& detector() { return *det_; }
  ArcFaceRecognizer& recognizer() { return *rec_; }
  const std::filesystem::path& detector_path() const { return det_path_; }
  const std::filesystem::path& recognizer_path() const { return rec_path_; }

 private:
  std::filesystem::path det_path_, rec_path_;
  std::unique_ptr<ScrfdDetector> det_;
  std::unique_ptr<ArcFaceRecognizer> rec_;
};

}  // namespace a2f::face
