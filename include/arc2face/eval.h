// ID-similarity evaluation: how much generated images look like the identity they were conditioned on, measured
// as in the Arc2Face paper: the cosine similarity between the identity vector and the ArcFace embedding of the
// face found in each generated image (insightface-style analysis: SCRFD, largest face, ArcFace), plus the
// face-detection rate and a summary over many images.
//
//   auto fa = arc2face::FaceAnalyzer::create({.antelope_dir = "models/antelopev2"});
//   std::vector<float> id = arc2face::read_embedding_npy("id.npy");
//   std::vector<arc2face::ImageScore> s;
//   for (const auto& p : arc2face::list_images({"out/"})) s.push_back(arc2face::score_image_file(*fa, id, p));
//   arc2face::ScoreSummary sum = arc2face::summarize_scores(s);   // mean, std, quantiles, detection rate
//
// An image that cannot be read, or in which no face is found, is reported in its ImageScore (error, detected)
// and never throws: one bad file does not stop an evaluation of thousands.
// Thread safety: the functions are reentrant; a FaceAnalyzer serialises its own calls.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "arc2face/arc2face.h"
#include "arc2face/face.h"

namespace arc2face {

// a . b / (|a| |b|), accumulated in double. Throws Error when the sizes differ or a vector is zero.
double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);

struct ImageScore {
  std::string source;       // the file ("" for pixels passed in)
  bool readable = false;    // the image could be decoded
  bool detected = false;    // a face was found (the largest one is scored)
  int faces = 0;            // number of faces found
  double similarity = 0.0;  // cosine(identity, embedding of the chosen face); meaningful only when detected
  std::string error;        // why not readable, or the no-face message; "" when scored
};

// Scores one image file / one image in memory against `identity` (512 values; normalised here).
ImageScore score_image_file(FaceAnalyzer& analyzer, const std::vector<float>& identity, const std::string& path);
ImageScore score_image(FaceAnalyzer& analyzer, const std::vector<float>& identity, const GeneratedImage& image);

struct ScoreSummary {
  int images = 0;                 // all inputs
  int readable = 0;               // decoded
  int detected = 0;               // a face found (= number of similarities summarised)
  double detection_rate = 0.0;    // detected / readable (0 when nothing was readable)
  // Over the detected images' similarities (all 0 when none): mean, standard deviation (population, ddof 0,
  // like numpy.std), min/max and quantiles with linear interpolation (numpy.quantile's default method).
  double mean = 0.0, std = 0.0, min = 0.0, p05 = 0.0, p25 = 0.0, median = 0.0, p75 = 0.0, p95 = 0.0, max = 0.0;
};
ScoreSummary summarize_scores(const std::vector<ImageScore>& scores);
// numpy.quantile(values, q) (method "linear"); `values` need not be sorted. Throws Error when empty.
double quantile(std::vector<double> values, double q);

// Expands files and folders into image paths: a file (or a path that does not exist) is kept as it is, for
// scoring to report; a folder gives its *.png, *.jpg, *.jpeg, *.webp files (any case), sorted, and with
// `recursive` those of its sub-folders too.
std::vector<std::string> list_images(const std::vector<std::string>& paths, bool recursive = false);

// `parameters` + ", ID similarity: 0.8123" (or ", ID similarity: no face"): the PNG text of a scored image.
std::string parameters_with_score(const std::string& parameters, const ImageScore& score);

// Best of K: for each group of `k` consecutive candidates, the index of the most similar detected one (the
// first candidate of the group when none has a face). scores.size() must be a multiple of k.
std::vector<size_t> best_of(const std::vector<ImageScore>& scores, int k);

}  // namespace arc2face
