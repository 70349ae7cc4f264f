// Combining and mixing identity embeddings (no Python counterpart; rules in identity.h).
#include "pipeline/face/identity.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace a2f::face {

CombineMethod combine_method_parse(const std::string& s) {
  if (s == "mean") return CombineMethod::Mean;
  if (s == "median") return CombineMethod::Median;
  if (s == "trimmed" || s == "trimmed-mean" || s == "trimmed_mean") return CombineMethod::TrimmedMean;
  fail("unknown combine method '", s, "' (expected mean, median or trimmed-mean)");
}

const char* combine_method_name(CombineMethod m) {
  switch (m) {
    case CombineMethod::Mean:
      return "mean";
    case CombineMethod::Median:
      return "median";
    case CombineMethod::TrimmedMean:
      return "trimmed-mean";
  }
  return "?";
}

namespace {

std::vector<double> normalized(const std::vector<double>& v, const char* what) {
  double ss = 0;
  for (double x : v) ss += x * x;
  const double n = std::sqrt(ss);
  A2F_CHECK(n > 1e-12 && std::isfinite(n), what, ": the vectors cancel out (norm ", n, "); cannot normalise");
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] / n;
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> mean_of(const std::vector<std::vector<double>>& e, const std::vector<int>& idx) {
  std::vector<double> m(e[0].size(), 0.0);
  for (int i : idx)
    for (size_t k = 0; k < m.size(); ++k) m[k] += e[i][k];
  for (double& x : m) x /= static_cast<double>(idx.size());
  return m;
}

}  // namespace

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  A2F_CHECK(a.size() == b.size() && !a.empty(), "cosine of vectors of lengths ", a.size(), " and ", b.size());
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

CombineResult combine_embeddings(const std::vector<std::vector<float>>& embeddings,
                                 const CombineOptions& opt) {
  A2F_CHECK(!embeddings.empty(), "no embeddings to combine");
  const size_t dim = embeddings[0].size();
  A2F_CHECK(dim > 0, "empty embedding");
  A2F_CHECK(opt.trim >= 0 && opt.trim < 0.5, "trim fraction ", opt.trim, " must be in [0, 0.5)");
  std::vector<std::vector<double>> e;
  for (const auto& v : embeddings) {
    A2F_CHECK(v.size() == dim, "embeddings of different lengths (", v.size(), " and ", dim, ")");
    std::vector<double> d(v.begin(), v.end());
    e.push_back(normalized(d, "embedding"));
  }
  const int n = static_cast<int>(e.size());
  CombineResult r;
  r.cosine_to_rest.assign(n, 1.0);
  std::vector<int> used(n);
  for (int i = 0; i < n; ++i) used[i] = i;

  auto rest_cosines = [&](const std::vector<int>& set) {
    std::vector<double> c(n, 1.0);
    if (set.size() < 2) return c;
    for (int i : set) {
      std::vector<int> others;
      for (int j : set)
        if (j != i) others.push_back(j);
      std::vector<double> m = mean_of(e, others);
      double ss = dot(m, m);
      c[i] = ss > 0 ? dot(e[i], m) / std::sqrt(ss) : 0.0;
    }
    return c;
  };
  r.cosine_to_rest = rest_cosines(used);
  if (opt.drop_outliers && n >= 3) {
    const size_t min_keep = static_cast<size_t>((n + 1) / 2);
    while (used.size() > min_keep) {
      std::vector<double> c = rest_cosines(used);
      int worst = -1;
      for (int i : used)
        if (c[i] < opt.outlier_min_cosine && (worst < 0 || c[i] < c[worst])) worst = i;
      if (worst < 0) break;
      used.erase(std::find(used.begin(), used.end(), worst));
      r.dropped.push_back(worst);
    }
  } else if (n == 2 && r.cosine_to_rest[0] < opt.outlier_min_cosine) {
    log_warn("the two photos look like different people (cosine ", r.cosine_to_rest[0],
             "); combining them anyway (with 3 or more photos outliers are dropped)");
  }
  std::sort(r.dropped.begin(), r.dropped.end());
  r.used = used;

  std::vector<double> c(dim, 0.0);
  const size_t m = used.size();
  if (opt.method == CombineMethod::Mean) {
    c = mean_of(e, used);
  } else {
    const size_t cut =
        opt.method == CombineMethod::TrimmedMean ? static_cast<size_t>(opt.trim * double(m)) : 0;
    std::vector<double> col(m);
    for (size_t k = 0; k < dim; ++k) {
      for (size_t i = 0; i < m; ++i) col[i] = e[used[i]][k];
      std::sort(col.begin(), col.end());
      if (opt.method == CombineMethod::Median) {
        c[k] = m % 2 ? col[m / 2] : 0.5 * (col[m / 2 - 1] + col[m / 2]);
      } else {
        double s = 0;
        for (size_t i = cut; i < m - cut; ++i) s += col[i];
        c[k] = s / double(m - 2 * cut);
      }
    }
  }
  std::vector<double> unit = normalized(c, "combined identity");
  r.embedding.assign(unit.begin(), unit.end());
  return r;
}

std::vector<float> mix_embeddings(const std::vector<float>& a, const std::vector<float>& b, double weight) {
  A2F_CHECK(a.size() == b.size() && !a.empty(), "cannot mix embeddings of lengths ", a.size(), " and ",
            b.size());
  A2F_CHECK(weight >= 0.0 && weight <= 1.0, "mixing weight ", weight, " must be in [0, 1]");
  std::vector<double> ua = normalized(std::vector<double>(a.begin(), a.end()), "first identity");
  std::vector<double> ub = normalized(std::vector<double>(b.begin(), b.end()), "second identity");
  std::vector<double> m(a.size());
  for (size_t i = 0; i < m.size(); ++i) m[i] = (1.0 - weight) * ua[i] + weight * ub[i];
  std::vector<double> u = normalized(m, "identity mix");
  return std::vector<float>(u.begin(), u.end());
}

}  // namespace a2f::face
