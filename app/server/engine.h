// What the server asks of the models: generation, and (optionally) face analysis of photos and of results.
// Each part is a std::function so that tests can run the server with a fake that honours cancellation;
// make_pipeline_engine() (pipeline_engine.h) builds the real one from the public arc2face API.
#pragma once
#include <arc2face/arc2face.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace a2f_server {

struct FaceBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels of the decoded photo
  float score = 0;
};

// Faces found in one photo.
struct PhotoAnalysis {
  int width = 0, height = 0;     // of the decoded photo
  std::vector<FaceBox> faces;    // every detected face
  int chosen = -1;               // the face whose embedding is used (the largest); -1: none found
  std::vector<float> embedding;  // [512], L2-normalised; empty when no face was found
};

using GenerateFn = std::function<std::vector<arc2face::GeneratedImage>(const arc2face::GenerateRequest&,
                                                                       const arc2face::ProgressFn&)>;
// Decodes an encoded photo (PNG / JPEG / WebP bytes) and analyses it; throws arc2face::Error when the bytes
// are not a readable image.
using AnalyzePhotoFn = std::function<PhotoAnalysis(const std::string& encoded)>;
// The L2-normalised embedding of the largest face in a generated image; nullopt when no face is detected.
using EmbedImageFn = std::function<std::optional<std::vector<float>>(const arc2face::GeneratedImage&)>;
// Several photos of one person → one identity.
struct CombinedIdentity {
  std::vector<float> embedding;  // [512], L2-normalised
  std::vector<int> dropped;      // photos left out as outliers (indices into the input)
};
using CombineFn = std::function<CombinedIdentity(const std::vector<std::vector<float>>&)>;

struct Engine {
  GenerateFn generate;                // required
  AnalyzePhotoFn analyze_photo;       // empty: photo input is answered 501 (no face models loaded)
  EmbedImageFn embed_image;           // empty: id_similarity is null with a note
  CombineFn combine;                  // empty: the mean of the embeddings, L2-normalised, none dropped
  bool lcm_available = false;         // an LCM-LoRA is loaded: requests with "lcm": true are accepted
  bool controlnet_available = false;  // the pose ControlNet is loaded: a pose_image is accepted
  nlohmann::json description = nlohmann::json::object();  // shown by GET /health (model folders, backend)
};

// Mean of L2-normalised embeddings, L2-normalised (the default CombineFn).
std::vector<float> mean_identity(const std::vector<std::vector<float>>& embeddings);
// Cosine similarity of two vectors of the same length (0 when either is zero).
double cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace a2f_server
