// arc2face ID-similarity evaluation (include/arc2face/eval.h).
#include "arc2face/eval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace arc2face {

double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) {
    throw Error("cosine similarity of vectors of different sizes (" + std::to_string(a.size()) + " and " +
                std::to_string(b.size()) + ")");
  }
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += double(a[i]) * double(b[i]);
    na += double(a[i]) * double(a[i]);
    nb += double(b[i]) * double(b[i]);
  }
  if (!(na > 0.0) || !(nb > 0.0)) throw Error("cosine similarity of a zero vector");
  return dot / (std::sqrt(na) * std::sqrt(nb));
}

namespace {

ImageScore from_result(const FaceResult& r, const std::vector<float>& identity, const std::string& source) {
  ImageScore s;
  s.source = source;
  s.readable = true;
  s.faces = static_cast<int>(r.faces.size());
  if (r.chosen < 0 || r.embedding.empty()) {
    s.error = no_face_message(source.empty() ? "the image" : source);
    return s;
  }
  s.detected = true;
  s.similarity = cosine_similarity(identity, r.embedding);
  return s;
}

void check_identity(const std::vector<float>& identity) {
  if (identity.size() != 512) {
    throw Error("an identity has 512 values; got " + std::to_string(identity.size()));
  }
}

bool is_image_name(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".webp";
}

}  // namespace

ImageScore score_image_file(FaceAnalyzer& analyzer, const std::vector<float>& identity, const std::string& path) {
  check_identity(identity);
  FaceResult r;
  try {
    r = analyzer.analyze_file(path);
  } catch (const Error& e) {  // unreadable, truncated, unsupported, too large: this image only
    ImageScore s;
    s.source = path;
    s.error = e.what();
    return s;
  }
  return from_result(r, identity, path);
}

ImageScore score_image(FaceAnalyzer& analyzer, const std::vector<float>& identity, const GeneratedImage& image) {
  check_identity(identity);
  if (image.rgb.size() != size_t(image.width) * image.height * 3 || image.rgb.empty()) {
    throw Error("score_image: the image buffer does not hold " + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " RGB pixels");
  }
  return from_result(analyzer.analyze_rgb(image.rgb.data(), image.width, image.height), identity, "");
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) throw Error("quantile of no values");
  if (!(q >= 0.0 && q <= 1.0)) throw Error("quantile: q must be in [0, 1]");
  std::sort(v.begin(), v.end());
  // numpy "linear" (type 7): position q (n - 1), linear interpolation between the neighbours.
  const double pos = q * double(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - double(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

ScoreSummary summarize_scores(const std::vector<ImageScore>& scores) {
  ScoreSummary s;
  std::vector<double> sim;
  for (const auto& x : scores) {
    ++s.images;
    if (x.readable) ++s.readable;
    if (x.detected) sim.push_back(x.similarity);
  }
  s.detected = static_cast<int>(sim.size());
  s.detection_rate = s.readable ? double(s.detected) / double(s.readable) : 0.0;
  if (sim.empty()) return s;
  double sum = 0.0;
  for (double v : sim) sum += v;
  s.mean = sum / double(sim.size());
  double ss = 0.0;
  for (double v : sim) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / double(sim.size()));
  s.min = *std::min_element(sim.begin(), sim.end());
  s.max = *std::max_element(sim.begin(), sim.end());
  s.p05 = quantile(sim, 0.05);
  s.p25 = quantile(sim, 0.25);
  s.median = quantile(sim, 0.5);
  s.p75 = quantile(sim, 0.75);
  s.p95 = quantile(sim, 0.95);
  return s;
}

std::vector<std::string> list_images(const std::vector<std::string>& paths, bool recursive) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::is_directory(st)) {  // a file, or a missing path: scoring reports it for this image
      out.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    auto add = [&](const fs::directory_entry& e) {
      std::error_code e2;
      if (e.is_regular_file(e2) && is_image_name(e.path())) found.push_back(e.path().string());
    };
    if (recursive) {
      for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) add(*it);
    } else {
      for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) add(*it);
    }
    if (ec) throw Error("cannot list the folder " + p + ": " + ec.message());
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::string parameters_with_score(const std::string& parameters, const ImageScore& score) {
  if (!score.detected) return parameters + ", ID similarity: no face";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", score.similarity);
  return parameters + ", ID similarity: " + buf;
}

std::vector<size_t> best_of(const std::vector<ImageScore>& scores, int k) {
  if (k < 1 || scores.size() % size_t(k) != 0) {
    throw Error("best_of: " + std::to_string(scores.size()) + " candidates are not groups of " + std::to_string(k));
  }
  std::vector<size_t> out;
  for (size_t g = 0; g < scores.size(); g += size_t(k)) {
    size_t best = g;
    for (size_t i = g; i < g + size_t(k); ++i) {
      if (scores[i].detected && (!scores[best].detected || scores[i].similarity > scores[best].similarity)) best = i;
    }
    out.push_back(best);
  }
  return out;
}

}  // namespace arc2face
