// The real Engine: an arc2face::Pipeline loaded once (and, when face models are given, face analysis) behind
// the std::function interface the server uses.
#pragma once
#include <arc2face/arc2face.h>

#include <string>

#include "server/engine.h"

namespace a2f_server {

struct PipelineEngineOptions {
  arc2face::PipelineOptions pipeline;
  std::string lcm_lora;  // LCM-LoRA .safetensors; empty: requests with "lcm": true are refused
};

// Loads the models (throws arc2face::Error with the reason when they cannot be loaded).
Engine make_pipeline_engine(const PipelineEngineOptions& options);

}  // namespace a2f_server
