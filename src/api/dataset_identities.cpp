// Dataset identities (sampled unit vectors with a minimum angular separation, or real ones from photos / a
// .npy) and the shard of a process (--shard, Slurm arrays, Kubernetes Indexed Jobs).
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "api/dataset_internal.h"
#include "core/log.h"
#include "core/parallel.h"
#include "io/npy.h"
#include "pipeline/rng.h"

namespace arc2face {

namespace {

namespace fs = std::filesystem;
constexpr int kDim = 512;

// a . b over 512 floats, accumulated in double in a fixed order (4 interleaved partial sums), so the result
// (and every accept/reject decision) is the same on every machine for the same binary.
double dot512(const float* a, const float* b) {
  double s[4] = {0, 0, 0, 0};
  for (int i = 0; i < kDim; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += double(a[i + j]) * double(b[i + j]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

std::vector<float> normalized(const std::vector<float>& v, const std::string& what) {
  double n = 0;
  for (float x : v) n += double(x) * double(x);
  n = std::sqrt(n);
  A2F_CHECK(n > 0 && std::isfinite(n), what, " is zero or not finite");
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float(double(v[i]) / n);
  return out;
}

// The largest a . rows[j] over j < n (parallel over j; the max does not depend on the split).
double max_dot(const std::vector<std::vector<float>>& rows, size_t n, const float* a) {
  if (n == 0) return -2.0;
  if (n < 2048) {  // not worth waking the thread pool
    double m = -2.0;
    for (size_t j = 0; j < n; ++j) m = std::max(m, dot512(rows[j].data(), a));
    return m;
  }
  const int64_t chunks = std::min<int64_t>(int64_t(n), std::max(1, a2f::num_threads()) * 4);
  std::vector<double> best(size_t(chunks), -2.0);
  const int64_t per = (int64_t(n) + chunks - 1) / chunks;
  a2f::parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double m = -2.0;
      for (int64_t j = c * per; j < std::min<int64_t>(int64_t(n), (c + 1) * per); ++j)
        m = std::max(m, dot512(rows[size_t(j)].data(), a));
      best[size_t(c)] = m;
    }
  });
  return *std::max_element(best.begin(), best.end());
}

int env_int(const char* name, bool* present) {
  const char* v = std::getenv(name);
  *present = v && *v;
  if (!*present) return 0;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  A2F_CHECK(end && *end == '\0' && x >= 0 && x < (1L << 30), "environment variable ", name, "='", v,
            "' is not a non-negative integer");
  return int(x);
}

}  // namespace

std::vector<std::vector<float>> sample_identities(int count, int64_t seed, double max_cosine) {
  return dataset_detail::api_call([&] {
    A2F_CHECK(count >= 1, "the number of identities must be at least 1, got ", count);
    A2F_CHECK(std::isfinite(max_cosine) && max_cosine > -1.0, "the identity max cosine must be in (-1, 1], got ",
              max_cosine);
    a2f::TorchGenerator gen(static_cast<uint64_t>(seed));
    std::vector<std::vector<float>> out;
    out.reserve(size_t(count));
    const bool check = max_cosine < 1.0;
    const int64_t max_draws = int64_t(count) * 100 + 10000;
    std::vector<float> v(kDim);
    int64_t draws = 0, rejected = 0;
    while (int(out.size()) < count) {
      A2F_CHECK(draws < max_draws, "sampling ", count, " identities with cosine <= ", max_cosine, " took over ",
                max_draws, " draws (", out.size(), " accepted): the max cosine is too small for this many "
                "identities in 512 dimensions");
      ++draws;
      gen.randn_fill(std::span<float>(v));  // torch.randn(512, generator=g)
      std::vector<float> u = normalized(v, "a sampled vector");
      if (check && max_dot(out, out.size(), u.data()) > max_cosine) {
        ++rejected;
        continue;
      }
      out.push_back(std::move(u));
    }
    if (rejected) a2f::log_info("identity sampling: ", rejected, " of ", draws, " candidates rejected (cosine > ",
                                max_cosine, " to an earlier identity)");
    return out;
  });
}

ClosestPair closest_identities(const std::vector<std::vector<float>>& ids) {
  ClosestPair best;
  for (size_t i = 0; i < ids.size(); ++i)
    for (size_t j = i + 1; j < ids.size(); ++j) {
      const double c = cosine_similarity(ids[i], ids[j]);
      if (best.a < 0 || c > best.cosine) best = {c, int(i), int(j)};
    }
  return best;
}

std::vector<SourceIdentity> load_identities(const std::string& path, FaceAnalyzer* analyzer) {
  return dataset_detail::api_call([&]() -> std::vector<SourceIdentity> {
    std::error_code ec;
    std::vector<SourceIdentity> out;
    if (!fs::is_directory(path, ec)) {
      A2F_CHECK(fs::exists(path, ec), "identities: ", path, " does not exist (a .npy [N, 512] or a folder of photos)");
      std::vector<int64_t> shape;
      const std::vector<float> v = read_float_npy(path, &shape);
      A2F_CHECK((shape.size() == 1 && shape[0] == kDim) || (shape.size() == 2 && shape[1] == kDim), path,
                ": identities must have shape [N, 512] or [512], got ", shape);
      for (size_t r = 0; r * kDim < v.size(); ++r) {
        std::vector<float> row(v.begin() + long(r * kDim), v.begin() + long((r + 1) * kDim));
        out.push_back({a2f::cat("row ", r), normalized(row, a2f::cat(path, " row ", r))});
      }
      A2F_CHECK(!out.empty(), path, " holds no identities");
      return out;
    }
    A2F_CHECK(analyzer != nullptr, "identities from the photos in ", path,
              " need the face models (--antelope DIR with scrfd_10g_bnkps.onnx and arcface.onnx)");
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    A2F_CHECK(!ec, "cannot list ", path, ": ", ec.message());
    std::sort(entries.begin(), entries.end());
    const std::vector<std::string> listed = list_images({path});
    const std::set<std::string> top_images(listed.begin(), listed.end());
    std::vector<std::string> no_face;
    for (const fs::path& e : entries) {
      std::vector<std::string> photos;
      if (fs::is_directory(e, ec)) {
        photos = list_images({e.string()});
        if (photos.empty()) continue;
      } else {
        if (!top_images.count(e.string())) continue;  // not an image file
        photos = {e.string()};
      }
      IdentityOptions io;
      io.skip_images_without_face = true;
      Identity id;
      try {
        id = identity_from_images(*analyzer, photos, io);
      } catch (const Error&) {
        id = Identity{};
      }
      if (id.embedding.empty()) {
        no_face.push_back(e.string());
        continue;
      }
      out.push_back({fs::is_directory(e, ec) ? e.filename().string() : e.stem().string(), id.embedding});
    }
    if (!no_face.empty()) {
      std::string list;
      for (size_t i = 0; i < no_face.size() && i < 20; ++i) list += "\n  " + no_face[i];
      a2f::fail("identities: no face found in ", no_face.size(), " of the photos/folders in ", path, ":", list,
                no_face.size() > 20 ? "\n  ..." : "", "\nremove them (or replace them with photos showing a face)");
    }
    A2F_CHECK(!out.empty(), "identities: no photos found in ", path,
              " (one identity per image file, or one per sub-folder of photos)");
    return out;
  });
}

Shard parse_shard(const std::string& text) {
  int i = 0, n = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%d/%d%c", &i, &n, &extra) != 2 || n < 1 || i < 0 || i >= n) {
    throw Error("--shard '" + text + "': expected I/N with 0 <= I < N (e.g. 0/8 ... 7/8)");
  }
  return Shard{i, n};
}

Shard resolve_shard(const std::string& shard_arg, int count) {
  return dataset_detail::api_call([&] {
    if (!shard_arg.empty()) {
      Shard s = parse_shard(shard_arg);
      A2F_CHECK(count == 0 || count == s.count, "--shard ", shard_arg, " and --shard-count ", count, " disagree");
      return s;
    }
    bool has_id, has_min, has_step, has_cnt, has_k8s, has_env_cnt;
    const int sid = env_int("SLURM_ARRAY_TASK_ID", &has_id);
    const int smin = env_int("SLURM_ARRAY_TASK_MIN", &has_min);
    const int sstep = env_int("SLURM_ARRAY_TASK_STEP", &has_step);
    const int scnt = env_int("SLURM_ARRAY_TASK_COUNT", &has_cnt);
    const int kidx = env_int("JOB_COMPLETION_INDEX", &has_k8s);
    const int ecnt = env_int("ARC2FACE_SHARD_COUNT", &has_env_cnt);
    if (has_id) {
      const int step = has_step && sstep > 0 ? sstep : 1;
      const int n = count > 0 ? count : scnt;
      A2F_CHECK(n > 0, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: pass --shard-count N");
      const int i = (sid - (has_min ? smin : 0)) / step;
      A2F_CHECK(i >= 0 && i < n, "the Slurm array task ", sid, " (min ", has_min ? smin : 0, ", step ", step,
                ") gives shard ", i, ", outside 0..", n - 1, ": use --array=0-", n - 1, " or pass --shard I/N");
      a2f::log_info("shard ", i, "/", n, " from the Slurm array (task ", sid, ")");
      return Shard{i, n};
    }
    if (has_k8s) {
      const int n = count > 0 ? count : ecnt;
      A2F_CHECK(n > 0, "JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the shard count is not: pass "
                "--shard-count N (the Job's completions) or set ARC2FACE_SHARD_COUNT");
      A2F_CHECK(kidx < n, "JOB_COMPLETION_INDEX ", kidx, " is outside 0..", n - 1, " (shard count ", n, ")");
      a2f::log_info("shard ", kidx, "/", n, " from the Kubernetes job completion index");
      return Shard{kidx, n};
    }
    A2F_CHECK(count <= 1, "--shard-count ", count, " needs the shard index from the environment "
              "(SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX), or use --shard I/N");
    return Shard{0, 1};
  });
}

namespace dataset_detail {

std::vector<std::vector<float>> make_identities(Layout& layout, const FaceAnalyzerOptions& face) {
  DatasetSpec& s = layout.spec;
  if (s.identities_from.empty()) {
    A2F_CHECK(s.identities >= 1, "--identities N is needed (or --identities-from DIR|FILE.npy)");
    return sample_identities(s.identities, s.seed, s.identity_max_cosine);
  }
  std::unique_ptr<FaceAnalyzer> fa;
  std::error_code ec;
  if (fs::is_directory(s.identities_from, ec)) fa = FaceAnalyzer::create(face);
  std::vector<SourceIdentity> src = load_identities(s.identities_from, fa.get());
  A2F_CHECK(s.identities <= int(src.size()), "--identities ", s.identities, " but ", s.identities_from, " holds only ",
            src.size());
  if (s.identities == 0) s.identities = int(src.size());
  src.resize(size_t(s.identities));
  std::vector<std::vector<float>> out;
  layout.identity_names.clear();
  for (auto& x : src) {
    layout.identity_names.push_back(x.name);
    out.push_back(std::move(x.embedding));
  }
  if (out.size() >= 2 && out.size() <= 20000) {
    const ClosestPair c = closest_identities(out);
    if (c.cosine > s.identity_max_cosine) {
      a2f::log_warn("identities ", c.a, " (", layout.identity_names[size_t(c.a)], ") and ", c.b, " (",
                    layout.identity_names[size_t(c.b)], ") have cosine ", c.cosine, " > ", s.identity_max_cosine,
                    ": they may be the same person");
    }
  }
  return out;
}

}  // namespace dataset_detail

}  // namespace arc2face
