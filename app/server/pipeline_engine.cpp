#include "server/pipeline_engine.h"

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <mutex>

namespace a2f_server {

namespace {

// An in-memory file (memfd) holding encoded photo bytes, so the face API's file decoder (format sniffing,
// EXIF orientation, size caps) reads them without touching the disk.
class MemFile {
 public:
  explicit MemFile(const std::string& bytes) {
    fd_ = ::memfd_create("a2f-photo", MFD_CLOEXEC);
    if (fd_ < 0) throw arc2face::Error("cannot hold the photo in memory (memfd_create failed)");
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
      if (n <= 0) {
        ::close(fd_);
        throw arc2face::Error("cannot hold the photo in memory (write failed)");
      }
      off += size_t(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

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
    std::shared_ptr<arc2face::FaceAnalyzer> fa = arc2face::FaceAnalyzer::create(*options.face);
    e.analyze_photo = [fa](const std::string& bytes) {
      MemFile file(bytes);
      try {
        return to_analysis(fa->analyze_file(file.path()));
      } catch (const arc2face::Error& err) {
        throw arc2face::Error(replace_all(err.what(), file.path(), "the photo"));
      }
    };
    e.embed_image = [fa](const arc2face::GeneratedImage& im) -> std::optional<std::vector<float>> {
      auto r = fa->analyze_rgb(im.rgb.data(), im.width, im.height);
      if (r.chosen < 0) return std::nullopt;
      return r.embedding;
    };
    e.combine = [](const std::vector<std::vector<float>>& embeddings) {
      arc2face::Identity id =
          arc2face::combine_embeddings(embeddings);  // the face API's defaults: mean, outliers out
      return CombinedIdentity{id.embedding, id.dropped};
    };
  }
  std::shared_ptr<arc2face::Pipeline> pipe = arc2face::Pipeline::create(options.pipeline);
  e.lcm_available = !options.pipeline.lcm_lora.empty();
  const auto& po = options.pipeline;
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  e.generate = [pipe](const arc2face::GenerateRequest& r, const arc2face::ProgressFn& progress) {
    return pipe->generate(r, progress);
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
      {"face_detector", options.face
                            ? or_null(options.face->detector_path.empty() ? options.face->antelope_dir
                                                                          : options.face->detector_path)
                            : nlohmann::json(nullptr)},
      {"face_recognizer", options.face ? or_null(options.face->recognizer_path) : nlohmann::json(nullptr)}};
  return e;
}

}  // namespace a2f_server
