// The real Engine: an arc2face::Pipeline loaded once (and, when face models are given, face analysis) behind
// the std::function interface the server uses.
#pragma once
#include <arc2face/arc2face.h>
#include <arc2face/face.h>

#include <optional>
#include <string>

#include "server/engine.h"

namespace a2f_server {

struct PipelineEngineOptions {
  arc2face::PipelineOptions pipeline;  // lcm_lora: "lcm": true accepted; controlnet_dir: pose images
  std::optional<arc2face::FaceAnalyzerOptions> face;  // none: photo input is refused (501)
};

// Loads the models (throws arc2face::Error with the reason when they cannot be loaded). Face analysis reads
// uploaded photos (decoded by the face API: PNG, JPEG, WebP, EXIF orientation applied) and the generated
// images.
Engine make_pipeline_engine(const PipelineEngineOptions& options);

}  // namespace a2f_server
