// arc2face dataset merge: completeness across shards and the final index (include/arc2face/dataset.h).
#include <cmath>
#include <fstream>
#include <set>

#include "api/dataset_internal.h"
#include "core/log.h"
#include "io/json.h"

namespace arc2face {

namespace {

namespace fs = std::filesystem;
using namespace dataset_detail;

constexpr size_t kListed = 100;

// What a manifest line says beyond what the layout derives (file, seed, unit, parameters): 24 bytes per
// image, so datasets of tens of millions of images merge in modest memory.
struct Outcome {
  enum : uint8_t { None, Present, Conflict } state = None;
  bool kept = true;
  int8_t detected = -1;  // -1: not scored
  int32_t faces = 0;
  double similarity = std::nan("");  // NaN: none
  bool same(const Outcome& o) const {
    return kept == o.kept && detected == o.detected && faces == o.faces &&
           (similarity == o.similarity || (similarity != similarity && o.similarity != o.similarity));
  }
};

Outcome outcome_of(const Record& r) {
  Outcome o;
  o.state = Outcome::Present;
  o.kept = r.kept;
  o.detected = r.detected ? int8_t(*r.detected) : int8_t(-1);
  o.faces = r.faces;
  if (r.similarity) o.similarity = *r.similarity;
  return o;
}

// index.jsonl, streamed (temp file, then rename): one line per image in (identity, image) order.
void write_index(const Layout& l, const std::vector<Outcome>& seen, const fs::path& path) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    A2F_CHECK(f.good(), "cannot write '", tmp.string(), "'");
    for (int64_t g = 0; g < l.total(); ++g) {
      const Outcome& o = seen[size_t(g)];
      std::optional<ImageScore> sc;
      if (o.detected >= 0) {
        sc = ImageScore{};
        sc->detected = o.detected == 1;
        sc->faces = o.faces;
        sc->similarity = o.similarity;
      }
      f << l.record(g, o.kept, sc).to_line();
    }
    f.flush();
    A2F_CHECK(f.good(), "cannot write '", tmp.string(), "' (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  A2F_CHECK(!ec, "cannot rename '", tmp.string(), "' to '", path.string(), "': ", ec.message());
}

}  // namespace

DatasetMergeReport merge_dataset(const std::string& out_dir, bool verify) {
  return api_call([&] {
    const fs::path out(out_dir);
    const fs::path meta = out / "dataset.json";
    A2F_CHECK(fs::exists(meta), out_dir,
              " is not a dataset folder (no dataset.json): run `arc2face dataset` first");
    const Layout l = Layout::from_json(a2f::json_parse(read_text(meta), meta.string()), meta.string());
    DatasetMergeReport rep;
    rep.expected = l.total();
    rep.scored = l.scored;

    // Every valid line of every shard's manifest, by global image number.
    std::vector<Outcome> seen(size_t(l.total()));
    std::set<int> shard_counts;
    std::error_code ec;
    for (fs::directory_iterator it(out / "manifest", ec), end; !ec && it != end; it.increment(ec)) {
      const auto sh = manifest_shard(it->path().filename().string());
      if (!sh) continue;
      shard_counts.insert(sh->count);
      const std::string name = it->path().filename().string();
      const int64_t bad = read_manifest(it->path(), [&](Record&& r) {
        const bool in_range = r.identity >= 0 && r.identity < l.spec.identities && r.index >= 0 &&
                              r.index < l.spec.per_identity;
        const int64_t g = in_range ? int64_t(r.identity) * l.spec.per_identity + r.index : -1;
        if (!in_range || r.seed != dataset_image_seed(l.spec, r.identity, r.index) ||
            r.file != l.rel_path(g, r.kept) || r.parameters != l.parameters(g) || r.unit != l.unit_of(g)) {
          rep.problems.push_back(a2f::cat(name, ": a line for identity ", r.identity, " image ", r.index,
                                          " does not belong to this dataset"));
          return;
        }
        const Outcome o = outcome_of(r);
        Outcome& cur = seen[size_t(g)];
        if (cur.state == Outcome::None) {
          cur = o;
        } else if (!cur.same(o)) {
          cur.state = Outcome::Conflict;
        }
      });
      if (bad) {
        rep.problems.push_back(
            a2f::cat(name, ": ", bad, " unusable line(s) (an interrupted shard; rerunning it cleans them)"));
      }
    }
    auto where = [&](int64_t g) {
      const int64_t u = l.unit_of(g);
      auto [i, k] = l.split(g);
      std::string s = a2f::cat("identity ", i, " image ", k, " (unit ", u);
      if (shard_counts.size() == 1) {
        const int n = *shard_counts.begin();
        s += a2f::cat(", shard ", u % n, "/", n);
      }
      return s + ")";
    };

    std::vector<ImageScore> scores;
    bool conflict = false;
    for (int64_t g = 0; g < l.total(); ++g) {
      const Outcome& o = seen[size_t(g)];
      std::string why;
      if (o.state == Outcome::None) {
        why = "no manifest line";
      } else {
        if (o.state == Outcome::Conflict) {
          rep.problems.push_back(where(g) + ": manifest lines disagree (scored differently by two runs?)");
          conflict = true;
        }
        const std::string file = l.rel_path(g, o.kept), other = l.rel_path(g, !o.kept);
        if (fs::exists(out / other, ec)) {
          rep.problems.push_back(where(g) + ": present both as " + file + " and " + other);
          conflict = true;
        }
        if (!fs::exists(out / file, ec)) {
          why = file + " is missing";
        } else if (verify && !verify_png(out / file, l.spec.width, l.spec.height, l.parameters(g), &why)) {
          why = file + " " + why;
        }
        if (why.empty()) {
          ++rep.complete;
          ++(o.kept ? rep.kept : rep.filtered);
          if (o.detected >= 0) {
            ImageScore sc;
            sc.readable = true;
            sc.detected = o.detected == 1;
            sc.similarity = o.similarity == o.similarity ? o.similarity : 0.0;
            scores.push_back(sc);
          }
        }
      }
      if (!why.empty()) {
        ++rep.missing_count;
        if (rep.missing.size() < kListed) rep.missing.push_back(where(g) + ": " + why);
      }
    }
    if (rep.scored) rep.similarity = summarize_scores(scores);

    // Leftovers: temporary files and files that are not part of the dataset.
    std::vector<fs::path> tmp;
    int64_t stray = 0;
    for (const char* sub : {"images", "filtered"}) {
      if (!fs::exists(out / sub, ec)) continue;
      for (fs::recursive_directory_iterator it(out / sub, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        const std::string rel = fs::relative(it->path(), out, ec).generic_string();
        if (rel.size() > 4 && rel.compare(rel.size() - 4, 4, ".tmp") == 0) {
          tmp.push_back(it->path());
          continue;
        }
        // Expected names parse back to an image of this dataset.
        const std::string stem = it->path().stem().string(),
                          dir = it->path().parent_path().filename().string();
        bool ours = false;
        try {
          const long long i = std::stoll(dir), k = std::stoll(stem);
          ours = i >= 0 && i < l.spec.identities && k >= 0 && k < l.spec.per_identity &&
                 l.rel_path(i * l.spec.per_identity + k, std::string(sub) == "images") == rel;
        } catch (const std::exception&) {
        }
        if (!ours && stray++ < 20) rep.problems.push_back(rel + ": not part of this dataset");
      }
    }
    const bool complete = rep.missing_count == 0 && !conflict;
    if (!tmp.empty()) {
      if (complete) {
        for (const auto& p : tmp) fs::remove(p, ec);
        a2f::log_info("removed ", tmp.size(), " temporary file(s) left by interrupted runs");
      } else {
        rep.problems.push_back(a2f::cat(tmp.size(),
                                        " temporary file(s) (shards still running, or interrupted: "
                                        "rerunning a shard removes its own)"));
      }
    }
    if (!complete) return rep;

    write_index(l, seen, out / "index.jsonl");
    nlohmann::ordered_json s;
    s["images"] = rep.complete;
    s["identities"] = l.spec.identities;
    s["per_identity"] = l.spec.per_identity;
    s["kept"] = rep.kept;
    s["filtered"] = rep.filtered;
    s["shard_counts"] = std::vector<int>(shard_counts.begin(), shard_counts.end());
    if (rep.scored) {
      const ScoreSummary& m = rep.similarity;
      s["face_detected"] = m.detected;
      s["detection_rate"] = m.detection_rate;
      if (m.detected > 0) {
        s["similarity"] = {{"mean", m.mean}, {"std", m.std}, {"min", m.min},
                           {"p05", m.p05},   {"p25", m.p25}, {"median", m.median},
                           {"p75", m.p75},   {"p95", m.p95}, {"max", m.max}};
      }
    }
    const std::string js = s.dump(1) + "\n";
    write_file_atomic(out / "summary.json", js.data(), js.size());
    rep.ok = true;
    return rep;
  });
}

}  // namespace arc2face
