#include "server/pipeline_engine.h"

#include <memory>

namespace a2f_server {

Engine make_pipeline_engine(const PipelineEngineOptions& options) {
  if (!options.lcm_lora.empty()) {
    throw arc2face::Error("--lcm-lora: this build of arc2face cannot load LoRA weights yet");
  }
  std::shared_ptr<arc2face::Pipeline> pipe = arc2face::Pipeline::create(options.pipeline);
  Engine e;
  e.generate = [pipe](const arc2face::GenerateRequest& r, const arc2face::ProgressFn& progress) {
    return pipe->generate(r, progress);
  };
  e.description = {{"models_dir", options.pipeline.models_dir},
                   {"base_dir", options.pipeline.base_dir},
                   {"backend", options.pipeline.backend},
                   {"dtype", options.pipeline.dtype}};
  return e;
}

}  // namespace a2f_server
