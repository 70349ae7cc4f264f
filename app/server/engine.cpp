#include "server/engine.h"

#include <cmath>

namespace a2f_server {

std::vector<float> mean_identity(const std::vector<std::vector<float>>& embeddings) {
  if (embeddings.empty()) throw arc2face::Error("no embeddings to combine");
  std::vector<double> sum(embeddings[0].size(), 0.0);
  for (const auto& e : embeddings) {
    if (e.size() != sum.size()) throw arc2face::Error("embeddings of different lengths cannot be combined");
    double n = 0;
    for (float v : e) n += double(v) * v;
    n = std::sqrt(n);
    if (n == 0) continue;
    for (size_t i = 0; i < e.size(); ++i) sum[i] += e[i] / n;
  }
  double n = 0;
  for (double v : sum) n += v * v;
  n = std::sqrt(n);
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) out[i] = n > 0 ? float(sum[i] / n) : 0.0f;
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  if (aa == 0 || bb == 0) return 0;
  return ab / std::sqrt(aa * bb);
}

}  // namespace a2f_server
