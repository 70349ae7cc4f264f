// One identity vector from several photos of a person, and mixing two identities. Arc2Face itself conditions
// on one photo's normalised ArcFace embedding; these combine several normalised embeddings into one unit
// vector the same pipeline accepts (no reference implementation: the rules are stated here).
//
// - mean: the normalised mean.
// - median: the normalised element-wise median (even counts: mean of the two middle values).
// - trimmed mean: per element, drop floor(trim * n) values at each end (scipy.stats.trim_mean), then average.
// - outliers (n >= 3): a photo whose cosine to the normalised mean of the OTHER photos is below
//   outlier_min_cosine is dropped, worst first, never leaving fewer than half of the photos (rounded up).
//   ArcFace cosines between photos of one person are typically 0.4 to 0.9, between different people below
//   0.2.
#pragma once
#include <string>
#include <vector>

namespace a2f::face {

enum class CombineMethod { Mean, Median, TrimmedMean };
CombineMethod combine_method_parse(const std::string& s);  // "mean" | "median" | "trimmed" / "trimmed-mean"
const char* combine_method_name(CombineMethod m);

struct CombineOptions {
  CombineMethod method = CombineMethod::Mean;
  double trim = 0.2;  // trimmed mean: fraction cut at each end
  bool drop_outliers = true;
  double outlier_min_cosine = 0.3;
};

struct CombineResult {
  std::vector<float> embedding;    // unit vector
  std::vector<int> used, dropped;  // indices into the input list
  std::vector<double>
      cosine_to_rest;  // per input: cosine to the normalised mean of the others (1 when alone)
};

// `embeddings` are L2-normalised vectors of one length (each is renormalised defensively).
CombineResult combine_embeddings(const std::vector<std::vector<float>>& embeddings,
                                 const CombineOptions& opt = {});

// normalize((1 - weight) * a + weight * b) for unit vectors a, b; weight in [0, 1].
std::vector<float> mix_embeddings(const std::vector<float>& a, const std::vector<float>& b, double weight);

double cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace a2f::face
