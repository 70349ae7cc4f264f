// Mirrors insightface 0.7.3 python-package/insightface/app/face_analysis.py, class FaceAnalysis (get), and
// Arc2Face's largest-face selection (gradio_demo/app.py: sorted(faces, key=area)[-1]).
#include "pipeline/face/analysis.h"

#include "core/error.h"
#include "core/log.h"

namespace a2f::face {

namespace fs = std::filesystem;

void resolve_model_files(const AnalysisOptions& opt, fs::path& detector, fs::path& recognizer) {
  const fs::path& dir = opt.antelope_dir;
  std::error_code ec;
  if (!dir.empty()) {
    A2F_CHECK(fs::is_directory(dir, ec), "face model folder '", dir.string(),
              "' does not exist or is not a folder (it should hold scrfd_10g_bnkps.onnx and arcface.onnx)");
  }
  detector = opt.detector;
  if (detector.empty()) {
    A2F_CHECK(!dir.empty(), "no face detector given: pass the antelopev2 folder or the detector file");
    for (const char* name : {"scrfd_10g_bnkps.onnx", "det_10g.onnx"}) {
      if (fs::exists(dir / name, ec)) {
        detector = dir / name;
        break;
      }
    }
    A2F_CHECK(!detector.empty(), "no face detector in '", dir.string(),
              "': expected scrfd_10g_bnkps.onnx (insightface antelopev2) or det_10g.onnx (buffalo_l)");
  }
  recognizer = opt.recognizer;
  if (recognizer.empty()) {
    A2F_CHECK(!dir.empty(), "no face recognizer given: pass the antelopev2 folder or the recognizer file");
    recognizer = dir / "arcface.onnx";
    if (!fs::exists(recognizer, ec)) {
      if (fs::exists(dir / "glintr100.onnx", ec)) {
        fail("'", dir.string(),
             "' has glintr100.onnx but no arcface.onnx. Arc2Face needs its own recognizer: "
             "download arcface.onnx from the Hugging Face repo FoivosPar/Arc2Face into this folder "
             "(glintr100.onnx gives different embeddings and wrong identities)");
      }
      fail("no arcface.onnx in '", dir.string(),
           "': download it from the Hugging Face repo FoivosPar/Arc2Face");
    }
  }
  A2F_CHECK(fs::is_regular_file(detector, ec), "face detector '", detector.string(), "' does not exist");
  A2F_CHECK(fs::is_regular_file(recognizer, ec), "face recognizer '", recognizer.string(),
            "' does not exist");
}

FaceAnalysis::FaceAnalysis(const AnalysisOptions& opt, Backend& backend) {
  resolve_model_files(opt, det_path_, rec_path_);
  OnnxGraphOptions go;
  go.weight_dtype = opt.weight_dtype;
  det_ = std::make_unique<ScrfdDetector>(OnnxGraph::load(det_path_, backend, go), opt.det);
  rec_ = std::make_unique<ArcFaceRecognizer>(OnnxGraph::load(rec_path_, backend, go));
  log_debug("face analysis: detector ", det_path_.string(), ", recognizer ", rec_path_.string());
}

Analysis FaceAnalysis::analyze(const Image8& bgr, bool keep_debug) {
  A2F_CHECK(bgr.channels == 3 && bgr.width > 0 && bgr.height > 0, "face analysis needs a 3-channel image");
  Analysis a;
  a.width = bgr.width;
  a.height = bgr.height;
  a.faces = det_->detect(bgr, &a.det);
  if (!keep_debug) a.det = DetectDebug{};
  a.chosen = choose_largest(a.faces);
  if (a.chosen >= 0) {
    a.aligned = norm_crop(bgr, a.faces[a.chosen].kps, rec_->input_size());
    a.raw_embedding = rec_->embed_aligned(a.aligned);
    a.normed_embedding = l2_normalize(a.raw_embedding);
  }
  return a;
}

}  // namespace a2f::face
