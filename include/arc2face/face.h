// Face analysis: photos in, the Arc2Face ID vector out. The same computation as Arc2Face's reference code
// (insightface 0.7.3 FaceAnalysis('antelopev2') at det_size 640 with Arc2Face's arcface.onnx recognizer):
// SCRFD detection, the largest face, ArcFace alignment to 112x112, the raw 512-d embedding and its L2
// normalisation. Several photos of one person can be combined into one identity.
//
//   arc2face::FaceAnalyzerOptions o;
//   o.antelope_dir = "models/antelopev2";        // scrfd_10g_bnkps.onnx (or det_10g.onnx) + arcface.onnx
//   auto fa = arc2face::FaceAnalyzer::create(o);  // throws arc2face::Error
//   arc2face::FaceResult r = fa->analyze_file("me.jpg");   // or analyze_encoded(bytes) for an upload
//   if (r.chosen < 0) { /* no face */ }
//   std::vector<float> id = r.embedding;          // 512 floats, unit length: GenerateRequest::id_embedding
//
//   arc2face::Identity ident = arc2face::identity_from_images(*fa, {"a.jpg", "b.jpg", "c.png"});
//   arc2face::write_embedding_npy("id.npy", ident.embedding);
//
// Thread safety: a FaceAnalyzer runs one analysis at a time (concurrent calls are serialised); separate
// analyzers are independent. The free functions are reentrant.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arc2face/arc2face.h"

namespace arc2face {

struct FaceAnalyzerOptions {
  std::string antelope_dir;     // folder with scrfd_10g_bnkps.onnx or det_10g.onnx, and arcface.onnx
  std::string detector_path;    // explicit files override the folder
  std::string recognizer_path;  // (glintr100.onnx is never picked up in place of arcface.onnx)
  std::string backend = "cpu";  // "cpu" or "ref" ("cuda": not yet)
  int threads = 0;              // 0: all cores
  int det_size = 640;           // detector input (insightface det_size)
  float det_thresh = 0.5f;
  int64_t max_image_pixels = 89'478'485;  // larger images are refused (decompression bombs)
  bool apply_exif_orientation = true;     // rotate photos as their EXIF orientation says
};

struct DetectedFace {
  std::array<float, 4> bbox{};  // x1, y1, x2, y2 in image pixels
  float score = 0.0f;
  std::array<std::array<float, 2>, 5> kps{};  // left eye, right eye, nose, mouth left, mouth right
};

struct FaceResult {
  std::string source;                // file path (or "" for pixels passed in)
  int width = 0, height = 0;         // decoded image size
  std::vector<DetectedFace> faces;   // insightface order: descending score after NMS
  int chosen = -1;                   // the face Arc2Face uses (largest box); -1 when no face was found
  std::vector<uint8_t> aligned_bgr;  // [112, 112, 3] BGR crop of the chosen face (insightface's norm_crop)
  std::vector<float> raw_embedding;  // [512] recognizer output
  std::vector<float> embedding;      // [512] raw / ||raw||
  std::vector<float> det_blob;       // [1, 3, S, S] detector input (only with AnalyzeOptions::keep_det_blob)
  std::vector<int64_t> det_blob_shape;
};

struct AnalyzeOptions {
  bool keep_det_blob = false;
};

class FaceAnalyzer {
 public:
  static std::unique_ptr<FaceAnalyzer> create(const FaceAnalyzerOptions& options);
  virtual ~FaceAnalyzer() = default;
  // A JPEG, PNG or WebP file. Throws Error for an unreadable, truncated, unsupported or too large image; a
  // photo without a face is not an error here (chosen == -1).
  virtual FaceResult analyze_file(const std::string& path, const AnalyzeOptions& opt = {}) = 0;
  // Encoded JPEG, PNG or WebP bytes in memory (an upload): decoded exactly as analyze_file decodes a file
  // with the same bytes (format by content, EXIF orientation, max_image_pixels), so the result is the same.
  // Throws Error for bytes that are not such an image, or a truncated, corrupt or too large one.
  virtual FaceResult analyze_encoded(const uint8_t* data, size_t size, const AnalyzeOptions& opt = {}) = 0;
  FaceResult analyze_encoded(const std::vector<uint8_t>& bytes, const AnalyzeOptions& opt = {}) {
    return analyze_encoded(bytes.data(), bytes.size(), opt);
  }
  // 8-bit RGB pixels, height * width * 3, row-major.
  virtual FaceResult analyze_rgb(const uint8_t* rgb, int width, int height,
                                 const AnalyzeOptions& opt = {}) = 0;
  virtual std::string detector_path() const = 0;
  virtual std::string recognizer_path() const = 0;
};

// The message for a photo without a detectable face (also used by identity_from_images).
std::string no_face_message(const std::string& source);

enum class CombineMethod { Mean, Median, TrimmedMean };
CombineMethod parse_combine_method(const std::string& s);  // "mean" | "median" | "trimmed-mean"

struct IdentityOptions {
  CombineMethod method = CombineMethod::Mean;
  double trim = 0.2;                      // trimmed mean: fraction cut at each end, per dimension
  bool drop_outliers = true;              // with 3+ photos: drop photos far from the rest
  double outlier_min_cosine = 0.3;        // ... whose cosine to the mean of the others is below this
  bool skip_images_without_face = false;  // false: a photo without a face is an error
};

struct Identity {
  std::vector<float> embedding;        // [512], unit length
  std::vector<FaceResult> images;      // one per path, in order
  std::vector<int> used, dropped;      // indices into `images` (images without a face are neither)
  std::vector<double> cosine_to_rest;  // per image: cosine to the normalised mean of the other faces
};

// One identity from the normalised embeddings of several photos: combined (mean / median / trimmed mean,
// outliers dropped) and renormalised. One photo gives its own normalised embedding.
Identity identity_from_images(FaceAnalyzer& analyzer, const std::vector<std::string>& paths,
                              const IdentityOptions& opt = {}, const AnalyzeOptions& analyze = {});
Identity combine_embeddings(const std::vector<std::vector<float>>& embeddings,
                            const IdentityOptions& opt = {});
// normalize((1 - weight) * a + weight * b): weight 0 gives a, 1 gives b.
std::vector<float> mix_identities(const std::vector<float>& a, const std::vector<float>& b, double weight);

// float32 .npy of shape [512] (atomic write).
void write_embedding_npy(const std::string& path, const std::vector<float>& embedding);
// Writes into `dir` (created if needed): det_blob.npy (float32 [1,3,S,S], when kept), aligned.npy (uint8
// [112,112,3] BGR) and raw_embedding.npy (float32 [512]) when a face was chosen.
void dump_face_result(const FaceResult& result, const std::string& dir);

}  // namespace arc2face
