// arc2face face-analysis API (include/arc2face/face.h) over pipeline/face.
#include "arc2face/face.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "api/backend_factory.h"
#include "core/error.h"
#include "io/image.h"
#include "io/npy.h"
#include "pipeline/face/analysis.h"
#include "pipeline/face/identity.h"

namespace arc2face {

namespace {

FaceResult to_result(const a2f::face::Analysis& a, const std::string& source) {
  FaceResult r;
  r.source = source;
  r.width = a.width;
  r.height = a.height;
  for (const auto& f : a.faces) {
    DetectedFace d;
    d.bbox = f.bbox;
    d.score = f.score;
    d.kps = f.kps;
    r.faces.push_back(d);
  }
  r.chosen = a.chosen;
  r.aligned_bgr = a.aligned.pixels;
  r.raw_embedding = a.raw_embedding;
  r.embedding = a.normed_embedding;
  if (a.det.blob.defined()) {
    r.det_blob = a.det.blob.to_vector();
    r.det_blob_shape = a.det.blob.shape();
  }
  return r;
}

// The first bytes of a buffer in hex, for messages about what it is not.
std::string leading_bytes(const uint8_t* data, size_t size) {
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < size && i < 8; ++i) {
    if (i) s += ' ';
    s += hex[data[i] >> 4];
    s += hex[data[i] & 15];
  }
  return s;
}

class FaceAnalyzerImpl final : public FaceAnalyzer {
 public:
  explicit FaceAnalyzerImpl(const FaceAnalyzerOptions& o) : opt_(o) {
    A2F_CHECK(o.threads >= 0, "threads must be >= 0, got ", o.threads);
    A2F_CHECK(o.det_size >= 64 && o.det_size <= 4096 && o.det_size % 32 == 0, "det_size ", o.det_size,
              " must be a multiple of 32 between 64 and 4096");
    A2F_CHECK(o.det_thresh > 0.0f && o.det_thresh < 1.0f, "det_thresh ", o.det_thresh, " must be in (0, 1)");
    A2F_CHECK(o.max_image_pixels > 0, "max_image_pixels must be positive");
    backend_ = a2f::make_backend(o.backend, o.threads);
    a2f::face::AnalysisOptions ao;
    ao.antelope_dir = o.antelope_dir;
    ao.detector = o.detector_path;
    ao.recognizer = o.recognizer_path;
    ao.det.det_size = o.det_size;
    ao.det.det_thresh = o.det_thresh;
    fa_ = std::make_unique<a2f::face::FaceAnalysis>(ao, *backend_);
    read_.max_pixels = o.max_image_pixels;
    read_.apply_exif_orientation = o.apply_exif_orientation;
  }

  FaceResult analyze_file(const std::string& path, const AnalyzeOptions& opt) override {
    a2f::Image8 img = a2f::image_read(path, read_);
    a2f::image_swap_rb(img);  // insightface works in BGR
    std::lock_guard<std::mutex> lock(mu_);
    return to_result(fa_->analyze(img, opt.keep_det_blob), path);
  }

  FaceResult analyze_encoded(const uint8_t* data, size_t size, const AnalyzeOptions& opt) override {
    A2F_CHECK(data != nullptr && size > 0, "analyze_encoded: no bytes given (an empty upload?)");
    A2F_CHECK(a2f::image_sniff(data, size) != a2f::ImageFormat::Unknown, "the ", size,
              " bytes given are not a JPEG, PNG or WebP image (they start with ", leading_bytes(data, size),
              ")");
    a2f::Image8 img = a2f::image_decode(data, size, "from memory", read_);
    a2f::image_swap_rb(img);  // insightface works in BGR
    std::lock_guard<std::mutex> lock(mu_);
    return to_result(fa_->analyze(img, opt.keep_det_blob), "");
  }

  FaceResult analyze_rgb(const uint8_t* rgb, int width, int height, const AnalyzeOptions& opt) override {
    A2F_CHECK(rgb != nullptr && width > 0 && height > 0, "analyze_rgb: no pixels (", width, "x", height, ")");
    A2F_CHECK(int64_t(width) * height <= read_.max_pixels, "image of ", width, "x", height,
              " pixels is too large (limit ", read_.max_pixels, " pixels)");
    a2f::Image8 img;
    img.width = width;
    img.height = height;
    img.pixels.assign(rgb, rgb + size_t(width) * height * 3);
    a2f::image_swap_rb(img);
    std::lock_guard<std::mutex> lock(mu_);
    return to_result(fa_->analyze(img, opt.keep_det_blob), "");
  }

  std::string detector_path() const override { return fa_->detector_path().string(); }
  std::string recognizer_path() const override { return fa_->recognizer_path().string(); }

 private:
  FaceAnalyzerOptions opt_;
  a2f::ImageReadOptions read_;
  std::unique_ptr<a2f::Backend> backend_;
  std::unique_ptr<a2f::face::FaceAnalysis> fa_;
  std::mutex mu_;
};

// Runs fn, turning the library's errors into arc2face::Error.
template <class F>
auto wrap(F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const a2f::Error& e) {
    throw Error(e.what());
  }
}

// The analyzer methods are wrapped too: an adapter in front of the implementation.
class FaceAnalyzerApi final : public FaceAnalyzer {
 public:
  explicit FaceAnalyzerApi(const FaceAnalyzerOptions& o) : impl_(o) {}
  FaceResult analyze_file(const std::string& path, const AnalyzeOptions& opt) override {
    return wrap([&] { return impl_.analyze_file(path, opt); });
  }
  FaceResult analyze_encoded(const uint8_t* data, size_t size, const AnalyzeOptions& opt) override {
    return wrap([&] { return impl_.analyze_encoded(data, size, opt); });
  }
  FaceResult analyze_rgb(const uint8_t* rgb, int width, int height, const AnalyzeOptions& opt) override {
    return wrap([&] { return impl_.analyze_rgb(rgb, width, height, opt); });
  }
  std::string detector_path() const override { return impl_.detector_path(); }
  std::string recognizer_path() const override { return impl_.recognizer_path(); }

 private:
  FaceAnalyzerImpl impl_;
};

a2f::face::CombineOptions combine_options(const IdentityOptions& o) {
  a2f::face::CombineOptions c;
  c.method = o.method == CombineMethod::Median        ? a2f::face::CombineMethod::Median
             : o.method == CombineMethod::TrimmedMean ? a2f::face::CombineMethod::TrimmedMean
                                                      : a2f::face::CombineMethod::Mean;
  c.trim = o.trim;
  c.drop_outliers = o.drop_outliers;
  c.outlier_min_cosine = o.outlier_min_cosine;
  return c;
}

}  // namespace

std::unique_ptr<FaceAnalyzer> FaceAnalyzer::create(const FaceAnalyzerOptions& options) {
  return wrap([&]() -> std::unique_ptr<FaceAnalyzer> { return std::make_unique<FaceAnalyzerApi>(options); });
}

std::string no_face_message(const std::string& source) {
  return a2f::cat(
      "no face found in ", source.empty() ? std::string("the image") : a2f::cat("'", source, "'"),
      ". The face detector needs some margin around the face: use a photo that shows the whole head "
      "with some background around it (tight crops often fail), or a larger, sharper photo");
}

CombineMethod parse_combine_method(const std::string& s) {
  return wrap([&] {
    switch (a2f::face::combine_method_parse(s)) {
      case a2f::face::CombineMethod::Median:
        return CombineMethod::Median;
      case a2f::face::CombineMethod::TrimmedMean:
        return CombineMethod::TrimmedMean;
      case a2f::face::CombineMethod::Mean:
        break;
    }
    return CombineMethod::Mean;
  });
}

Identity combine_embeddings(const std::vector<std::vector<float>>& embeddings, const IdentityOptions& opt) {
  return wrap([&] {
    a2f::face::CombineResult c = a2f::face::combine_embeddings(embeddings, combine_options(opt));
    Identity id;
    id.embedding = c.embedding;
    id.used = c.used;
    id.dropped = c.dropped;
    id.cosine_to_rest = c.cosine_to_rest;
    return id;
  });
}

Identity identity_from_images(FaceAnalyzer& analyzer, const std::vector<std::string>& paths,
                              const IdentityOptions& opt, const AnalyzeOptions& analyze) {
  if (paths.empty()) throw Error("no images given");
  Identity id;
  std::vector<std::vector<float>> embs;
  std::vector<int> index;  // embs[k] comes from images[index[k]]
  for (const auto& p : paths) {
    FaceResult r = analyzer.analyze_file(p, analyze);
    if (r.chosen < 0) {
      if (!opt.skip_images_without_face) throw Error(no_face_message(p));
    } else {
      embs.push_back(r.embedding);
      index.push_back(static_cast<int>(id.images.size()));
    }
    id.images.push_back(std::move(r));
  }
  if (embs.empty()) throw Error(a2f::cat("no face found in any of the ", paths.size(), " images"));
  Identity c = combine_embeddings(embs, opt);
  id.embedding = c.embedding;
  id.cosine_to_rest.assign(id.images.size(), 0.0);
  for (size_t k = 0; k < embs.size(); ++k) id.cosine_to_rest[index[k]] = c.cosine_to_rest[k];
  for (int k : c.used) id.used.push_back(index[k]);
  for (int k : c.dropped) id.dropped.push_back(index[k]);
  return id;
}

std::vector<float> mix_identities(const std::vector<float>& a, const std::vector<float>& b, double weight) {
  return wrap([&] { return a2f::face::mix_embeddings(a, b, weight); });
}

void write_embedding_npy(const std::string& path, const std::vector<float>& embedding) {
  wrap([&] {
    A2F_CHECK(!embedding.empty(), "cannot write an empty embedding to '", path, "'");
    a2f::npy_write(path, a2f::Tensor::from_data({static_cast<int64_t>(embedding.size())}, embedding));
    return 0;
  });
}

void dump_face_result(const FaceResult& r, const std::string& dir) {
  wrap([&] {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    A2F_CHECK(!ec, "cannot create the dump folder '", dir, "': ", ec.message());
    const std::filesystem::path d(dir);
    if (!r.det_blob.empty()) {
      a2f::npy_write(d / "det_blob.npy",
                     a2f::Tensor::from_data(r.det_blob_shape, r.det_blob));  // [1, 3, S, S]
    }
    if (r.chosen >= 0) {
      const auto side = static_cast<int64_t>(std::lround(std::sqrt(double(r.aligned_bgr.size()) / 3.0)));
      A2F_CHECK(side > 0 && size_t(side * side * 3) == r.aligned_bgr.size(), "aligned crop has ",
                r.aligned_bgr.size(), " bytes");
      a2f::Tensor aligned = a2f::Tensor::empty({side, side, 3}, a2f::DType::U8);  // [112, 112, 3] BGR
      std::memcpy(aligned.raw_data(), r.aligned_bgr.data(), r.aligned_bgr.size());
      a2f::npy_write(d / "aligned.npy", aligned);
      a2f::npy_write(d / "raw_embedding.npy",
                     a2f::Tensor::from_data({static_cast<int64_t>(r.raw_embedding.size())}, r.raw_embedding));
    }
    return 0;
  });
}

}  // namespace arc2face
