#include "server/pipeline_engine.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace a2f_server {

namespace {

// Runs every call on one thread of its own. HTTP threads analyse uploads and the worker analyses results: both
// go through this thread, so each model's oneDNN primitives are created and run by one thread with one OpenMP
// team, and face analyses are serialised. (It was first needed because the cpu backend's primitives used
// oneDNN's library-managed scratchpad; they now use their own, and the backend applies its thread count on
// whichever thread runs an op, so this is a simplicity choice now rather than a requirement.)
class OwnThread {
 public:
  OwnThread() : thread_([this] { loop(); }) {}
  ~OwnThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  template <class F>
  auto run(F&& fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::forward<F>(fn));
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back([&task] { task(); });
    }
    cv_.notify_one();
    return result.get();  // rethrows what fn threw
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// A FaceAnalyzer created, used and destroyed on its own thread.
struct FaceService {
  explicit FaceService(const arc2face::FaceAnalyzerOptions& o) {
    analyzer = thread.run(
        [&] { return std::shared_ptr<arc2face::FaceAnalyzer>(arc2face::FaceAnalyzer::create(o)); });
  }
  ~FaceService() {
    thread.run([&] {
      analyzer.reset();
      return 0;
    });
  }
  OwnThread thread;
  std::shared_ptr<arc2face::FaceAnalyzer> analyzer;
};

// A Pipeline created, used and destroyed on its own thread.
struct PipelineService {
  explicit PipelineService(const arc2face::PipelineOptions& o) {
    pipeline = thread.run([&] { return std::shared_ptr<arc2face::Pipeline>(arc2face::Pipeline::create(o)); });
  }
  ~PipelineService() {
    thread.run([&] {
      pipeline.reset();
      return 0;
    });
  }
  OwnThread thread;
  std::shared_ptr<arc2face::Pipeline> pipeline;
};

PhotoAnalysis to_analysis(const arc2face::FaceResult& r) {
  PhotoAnalysis a;
  a.width = r.width;
  a.height = r.height;
  for (const auto& f : r.faces) a.faces.push_back({f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3], f.score});
  a.chosen = r.chosen;
  if (r.chosen >= 0) a.embedding = r.embedding;
  return a;
}

}  // namespace

Engine make_pipeline_engine(const PipelineEngineOptions& options) {
  Engine e;
  if (options.face) {
    auto face = std::make_shared<FaceService>(*options.face);
    e.analyze_photo = [face](const std::string& bytes) {
      return face->thread.run([&] {
        return to_analysis(
            face->analyzer->analyze_encoded(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      });
    };
    e.embed_image = [face](const arc2face::GeneratedImage& im) -> std::optional<std::vector<float>> {
      auto r =
          face->thread.run([&] { return face->analyzer->analyze_rgb(im.rgb.data(), im.width, im.height); });
      if (r.chosen < 0) return std::nullopt;
      return r.embedding;
    };
    e.combine = [](const std::vector<std::vector<float>>& embeddings) {
      arc2face::Identity id =
          arc2face::combine_embeddings(embeddings);  // the face API's defaults: mean, outliers out
      return CombinedIdentity{id.embedding, id.dropped};
    };
  }
  // The pipeline likewise lives on a thread of its own (the job worker of each Server would otherwise be a
  // new thread for it, e.g. when a test starts several servers on one engine).
  auto gen = std::make_shared<PipelineService>(options.pipeline);
  e.lcm_available = !options.pipeline.lcm_lora.empty();
  e.controlnet_available = !options.pipeline.controlnet_dir.empty();
  const auto& po = options.pipeline;
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  e.generate = [gen](const arc2face::GenerateRequest& r, const arc2face::ProgressFn& progress) {
    return gen->thread.run([&] { return gen->pipeline->generate(r, progress); });
  };
  e.description = {
      {"models_dir", or_null(po.models_dir)},
      {"base_dir", or_null(po.base_dir)},
      {"unet_dir", or_null(po.unet_dir)},
      {"encoder_dir", or_null(po.encoder_dir)},
      {"vae_dir", or_null(po.vae_dir)},
      {"backend", po.backend},
      {"dtype", po.dtype},
      {"lcm_lora", or_null(po.lcm_lora)},
      {"controlnet_dir", or_null(po.controlnet_dir)},
      {"face_detector", options.face
                            ? or_null(options.face->detector_path.empty() ? options.face->antelope_dir
                                                                          : options.face->detector_path)
                            : nlohmann::json(nullptr)},
      {"face_recognizer", options.face ? or_null(options.face->recognizer_path) : nlohmann::json(nullptr)}};
  return e;
}

}  // namespace a2f_server
