// arc2face dataset merge: completeness across shards and the final index (include/arc2face/dataset.h).
#include <set>

#include "api/dataset_internal.h"
#include "core/log.h"
#include "io/json.h"

namespace arc2face {

namespace {

namespace fs = std::filesystem;
using namespace dataset_detail;

constexpr size_t kListed = 100;

bool same_record(const Record& a, const Record& b) { return a.to_line() == b.to_line(); }

}  // namespace

DatasetMergeReport merge_dataset(const std::string& out_dir, bool verify) {
  return api_call([&] {
    const fs::path out(out_dir);
    const fs::path meta = out / "dataset.json";
    A2F_CHECK(fs::exists(meta), out_dir, " is not a dataset folder (no dataset.json): run `arc2face dataset` first");
    const Layout l = Layout::from_json(a2f::json_parse(read_text(meta), meta.string()), meta.string());
    DatasetMergeReport rep;
    rep.expected = l.total();
    rep.scored = l.scored;

    // Every valid line of every shard's manifest, by global image number.
    std::map<int64_t, std::vector<Record>> lines;
    std::set<int> shard_counts;
    std::error_code ec;
    for (fs::directory_iterator it(out / "manifest", ec), end; !ec && it != end; it.increment(ec)) {
      const auto sh = manifest_shard(it->path().filename().string());
      if (!sh) continue;
      shard_counts.insert(sh->count);
      ManifestLines m = read_manifest(it->path());
      if (m.bad_lines) {
        rep.problems.push_back(a2f::cat(it->path().filename().string(), ": ", m.bad_lines,
                                        " unusable line(s) (an interrupted shard; rerunning it cleans them)"));
      }
      for (Record& r : m.records) {
        const bool in_range = r.identity >= 0 && r.identity < l.spec.identities && r.index >= 0 &&
                              r.index < l.spec.per_identity;
        const int64_t g = in_range ? int64_t(r.identity) * l.spec.per_identity + r.index : -1;
        if (!in_range || r.seed != dataset_image_seed(l.spec, r.identity, r.index) || r.file != l.rel_path(g, r.kept) ||
            r.parameters != l.parameters(g)) {
          rep.problems.push_back(a2f::cat(it->path().filename().string(), ": a line for identity ", r.identity,
                                          " image ", r.index, " does not belong to this dataset"));
          continue;
        }
        lines[g].push_back(std::move(r));
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

    std::vector<Record> index;
    std::vector<ImageScore> scores;
    bool conflict = false;
    for (int64_t g = 0; g < l.total(); ++g) {
      auto it = lines.find(g);
      std::string why;
      if (it == lines.end()) {
        why = "no manifest line";
      } else {
        const Record& r = it->second.front();
        for (const Record& other : it->second) {
          if (!same_record(r, other)) {
            rep.problems.push_back(where(g) + ": manifest lines disagree (" + r.to_line().substr(0, 80) + "...)");
            conflict = true;
            break;
          }
        }
        const fs::path p = out / r.file, other = out / l.rel_path(g, !r.kept);
        if (fs::exists(other, ec)) {
          rep.problems.push_back(where(g) + ": present both as " + r.file + " and " + l.rel_path(g, !r.kept));
          conflict = true;
        }
        if (!fs::exists(p, ec)) {
          why = r.file + " is missing";
        } else if (verify && !verify_png(p, l.spec.width, l.spec.height, r.parameters, &why)) {
          why = r.file + " " + why;
        }
        if (why.empty()) {
          ++rep.complete;
          ++(r.kept ? rep.kept : rep.filtered);
          if (r.detected) {
            ImageScore s;
            s.readable = true;
            s.detected = *r.detected;
            s.similarity = r.similarity.value_or(0.0);
            scores.push_back(s);
          }
          index.push_back(r);
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
        const std::string stem = it->path().stem().string(), dir = it->path().parent_path().filename().string();
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
        rep.problems.push_back(a2f::cat(tmp.size(), " temporary file(s) (shards still running, or interrupted: "
                                        "rerunning a shard removes its own)"));
      }
    }
    if (!complete) return rep;

    std::string text;
    for (const Record& r : index) text += r.to_line();
    write_file_atomic(out / "index.jsonl", text.data(), text.size());
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
        s["similarity"] = {{"mean", m.mean}, {"std", m.std},       {"min", m.min}, {"p05", m.p05}, {"p25", m.p25},
                           {"median", m.median}, {"p75", m.p75}, {"p95", m.p95}, {"max", m.max}};
      }
    }
    const std::string js = s.dump(1) + "\n";
    write_file_atomic(out / "summary.json", js.data(), js.size());
    rep.ok = true;
    return rep;
  });
}

}  // namespace arc2face
