// arc2face dataset: one shard of a synthetic dataset, resumable (include/arc2face/dataset.h, docs/dataset.md).
#include <chrono>
#include <cmath>
#include <set>

#include "api/dataset_internal.h"
#include "core/log.h"
#include "io/json.h"
#include "io/npy.h"

namespace arc2face {

namespace {

namespace fs = std::filesystem;
using namespace dataset_detail;

bool has_face_models(const FaceAnalyzerOptions& f) {
  return !f.antelope_dir.empty() || (!f.detector_path.empty() && !f.recognizer_path.empty());
}

void check_spec(const DatasetRunOptions& o) {
  const DatasetSpec& s = o.spec;
  A2F_CHECK(!o.out_dir.empty(), "no output folder given (--out DIR)");
  A2F_CHECK(s.identities >= 0 && (s.identities > 0 || !s.identities_from.empty()),
            "--identities N must be at least 1 (or give --identities-from DIR|FILE.npy)");
  A2F_CHECK(s.per_identity >= 1 && s.per_identity <= 1000000, "--per-identity must be 1..1000000, got ",
            s.per_identity);
  A2F_CHECK(s.seed >= 0 && s.seed < (int64_t(1) << 62), "--seed must be a non-negative integer, got ", s.seed);
  A2F_CHECK(s.batch >= 1 && s.batch <= 64, "--batch must be 1..64, got ", s.batch);
  A2F_CHECK(o.shard.count >= 1 && o.shard.index >= 0 && o.shard.index < o.shard.count, "invalid shard ",
            o.shard.index, "/", o.shard.count);
  A2F_CHECK(!(s.min_similarity == s.min_similarity) || has_face_models(o.face),
            "--min-similarity needs the face models to score the images (--antelope DIR)");
  A2F_CHECK(!(s.min_similarity == s.min_similarity) || (s.min_similarity >= -1 && s.min_similarity <= 1),
            "--min-similarity must be in [-1, 1], got ", s.min_similarity);
}

// dataset.json + identities.npy: written by the first process, checked by every later one (under a lock, so
// concurrent first starts agree).
std::vector<std::vector<float>> init_dataset(const DatasetRunOptions& o, Layout& layout) {
  const fs::path out(o.out_dir);
  FileLock lock(out / ".init.lock", true);
  if (lock.unsupported()) a2f::log_warn("file locks are not supported in ", out.string(), ": do not start two "
                                        "processes for the first time at the same moment");
  std::error_code ec;
  for (const char* tmp : {"dataset.json.tmp", "identities.npy.tmp"}) fs::remove(out / tmp, ec);
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {  // npy_write's temp names
    if (it->path().filename().string().rfind("identities.npy.tmp.", 0) == 0) fs::remove(it->path(), ec);
  }
  const fs::path meta = out / "dataset.json", ids = out / "identities.npy";
  if (fs::exists(meta)) {
    const Layout disk = Layout::from_json(a2f::json_parse(read_text(meta), meta.string()), meta.string());
    const std::vector<std::string> d = disk.differences(layout);
    if (!d.empty()) {
      std::string list;
      for (const auto& x : d) list += "\n  " + x;
      a2f::fail(o.out_dir, " holds a dataset made with other settings:", list,
                "\nuse the same settings to continue it, or another --out folder");
    }
    layout = disk;
    a2f::Tensor t = a2f::npy_read(ids);
    A2F_CHECK(t.shape() == a2f::Shape({layout.spec.identities, 512}), ids.string(), " has shape ",
              a2f::shape_str(t.shape()), "; dataset.json says ", layout.spec.identities, " identities");
    const std::vector<float> v = t.to(a2f::DType::F32).to_vector();
    std::vector<std::vector<float>> out_ids;
    for (int i = 0; i < layout.spec.identities; ++i)
      out_ids.emplace_back(v.begin() + long(i) * 512, v.begin() + long(i + 1) * 512);
    return out_ids;
  }
  std::vector<std::vector<float>> idv = make_identities(layout, o.face);
  std::vector<float> flat;
  for (const auto& r : idv) flat.insert(flat.end(), r.begin(), r.end());
  a2f::npy_write(ids, a2f::Tensor::from_data({int64_t(idv.size()), 512}, flat));
  const std::string text = layout.to_json().dump(1) + "\n";
  write_file_atomic(meta, text.data(), text.size());  // last: its presence says the dataset is set up
  a2f::log_info("new dataset in ", o.out_dir, ": ", layout.spec.identities, " identities x ",
                layout.spec.per_identity, " images");
  return idv;
}

// What is known about one image before generating.
struct ImageState {
  bool done = false;
  bool kept = true;
  bool recorded = false;  // a valid manifest line exists (any shard's manifest)
};

Record make_record(const Layout& l, int64_t g, bool kept, const std::optional<ImageScore>& sc) {
  Record r;
  auto [i, k] = l.split(g);
  r.identity = i;
  r.index = k;
  r.seed = dataset_image_seed(l.spec, i, k);
  r.unit = l.unit_of(g);
  r.file = l.rel_path(g, kept);
  r.kept = kept;
  if (sc) {
    r.detected = sc->detected;
    r.faces = sc->faces;
    if (sc->detected) r.similarity = sc->similarity;
  }
  r.parameters = l.parameters(g);
  return r;
}

bool record_matches(const Layout& l, const Record& r, int64_t* g) {
  if (r.identity < 0 || r.identity >= l.spec.identities || r.index < 0 || r.index >= l.spec.per_identity)
    return false;
  *g = int64_t(r.identity) * l.spec.per_identity + r.index;
  return r.seed == dataset_image_seed(l.spec, r.identity, r.index) && r.file == l.rel_path(*g, r.kept) &&
         r.parameters == l.parameters(*g) && r.unit == l.unit_of(*g);
}

}  // namespace

DatasetRunReport run_dataset_shard(const DatasetRunOptions& o) {
  return api_call([&] {
    check_spec(o);
    const fs::path out(o.out_dir);
    std::error_code ec;
    fs::create_directories(out / "manifest", ec);
    A2F_CHECK(!ec, "cannot create ", (out / "manifest").string(), ": ", ec.message());

    Layout layout;
    layout.spec = o.spec;
    layout.dtype = o.pipeline.dtype;
    layout.backend = o.pipeline.backend;
    layout.scored = has_face_models(o.face);
    const std::vector<std::vector<float>> identities = init_dataset(o, layout);
    const DatasetSpec& spec = layout.spec;

    const Shard shard = o.shard;
    FileLock shard_lock(out / "manifest" / (manifest_name(shard) + ".lock"), false);
    A2F_CHECK(shard_lock.held() || shard_lock.unsupported(), "another process is working on shard ", shard.index,
              "/", shard.count, " of ", o.out_dir, " (", manifest_name(shard), ".lock is held)");

    // Valid records from every manifest (a previous run may have used another shard count).
    const fs::path own_manifest = out / "manifest" / manifest_name(shard);
    std::map<int64_t, Record> recorded;  // first valid record per image
    std::vector<Record> own_records;
    int64_t own_bad = 0;
    for (fs::directory_iterator it(out / "manifest", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!manifest_shard(name)) continue;
      ManifestLines m = read_manifest(it->path());
      for (const Record& r : m.records) {
        int64_t g = 0;
        if (record_matches(layout, r, &g)) recorded.emplace(g, r);
      }
      if (it->path() == own_manifest) {
        own_records = std::move(m.records);
        own_bad = m.bad_lines;
      }
    }

    // The state of every image of this shard: temporary files removed, final files verified.
    DatasetRunReport rep;
    std::vector<int64_t> units;
    for (int64_t u = shard.index; u < layout.units(); u += shard.count) units.push_back(u);
    std::map<int64_t, ImageState> state;
    for (int64_t u : units) {
      for (int64_t g = layout.unit_begin(u); g < layout.unit_begin(u) + layout.unit_size(u); ++g) {
        ++rep.images;
        ImageState st;
        auto rec = recorded.find(g);
        for (bool kept : {true, false}) {
          const fs::path p = out / layout.rel_path(g, kept);
          if (fs::remove(p.string() + ".tmp", ec)) ++rep.removed_tmp;
          if (!fs::exists(p, ec)) continue;
          std::string why;
          const bool ok = !st.done && verify_png(p, spec.width, spec.height, layout.parameters(g), &why) &&
                          (rec == recorded.end() || rec->second.kept == kept);
          if (ok) {
            st.done = true;
            st.kept = kept;
          } else {
            a2f::log_warn(p.string(), " ", why.empty() ? "does not match its manifest line" : why,
                          ": removed, it will be made again");
            fs::remove(p, ec);
            ++rep.removed_corrupt;
          }
        }
        st.recorded = st.done && rec != recorded.end();
        if (st.done) ++rep.verified;
        state[g] = st;
      }
    }

    // This shard's manifest without torn, stale or duplicate lines (rewritten only when needed).
    {
      std::string text;
      std::set<int64_t> seen;
      int64_t dropped = own_bad;
      for (const Record& r : own_records) {
        int64_t g = 0;
        auto s = record_matches(layout, r, &g) ? state.find(g) : state.end();
        if (s != state.end() && s->second.done && s->second.kept == r.kept && seen.insert(g).second) {
          text += r.to_line();
        } else {
          ++dropped;
        }
      }
      if (dropped > 0) {
        a2f::log_info(manifest_name(shard), ": ", dropped, " unusable line(s) dropped (interrupted run)");
        write_file_atomic(own_manifest, text.data(), text.size());
      }
    }
    LineAppender manifest(own_manifest);

    std::unique_ptr<FaceAnalyzer> scorer;
    if (layout.scored) scorer = FaceAnalyzer::create(o.face);
    auto score = [&](const GeneratedImage& img, int64_t g) -> std::optional<ImageScore> {
      if (!scorer) return std::nullopt;
      return score_image(*scorer, identities[size_t(layout.split(g).first)], img);
    };

    // Images on disk whose manifest line was lost (killed between the rename and the append).
    for (auto& [g, st] : state) {
      if (!st.done || st.recorded) continue;
      std::optional<ImageScore> sc;
      if (scorer) {
        GeneratedImage img;
        img.width = spec.width;
        img.height = spec.height;
        img.index = int(g);
        std::string why;
        verify_png(out / layout.rel_path(g, st.kept), spec.width, spec.height, layout.parameters(g), &why, &img.rgb);
        sc = score(img, g);
      }
      manifest.append(make_record(layout, g, st.kept, sc).to_line());
      st.recorded = true;
      ++rep.recovered;
    }

    // Generate the units that are not complete, whole (fixed composition), writing only the missing images.
    std::unique_ptr<Pipeline> pipe;
    DatasetProgress prog;
    prog.total = rep.images;
    prog.done = rep.verified;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t u : units) {
      const int64_t g0 = layout.unit_begin(u);
      const int n = layout.unit_size(u);
      bool missing = false;
      for (int64_t g = g0; g < g0 + n; ++g) missing |= !state[g].done;
      if (!missing) continue;
      if (!pipe) pipe = Pipeline::create(o.pipeline);
      GenerateRequest r;
      r.num_images = n;
      r.steps = spec.steps;
      r.guidance = spec.guidance;
      r.scheduler = spec.scheduler;
      r.seed = spec.seed + g0;  // image g0 + j: seed + g0 + j
      r.per_image_seeds = true;
      r.width = spec.width;
      r.height = spec.height;
      for (int64_t g = g0; g < g0 + n; ++g) {
        const auto& id = identities[size_t(layout.split(g).first)];
        r.id_embeddings.insert(r.id_embeddings.end(), id.begin(), id.end());
      }
      std::vector<GeneratedImage> imgs = pipe->generate(r);
      A2F_ASSERT(int(imgs.size()) == n);
      for (int j = 0; j < n; ++j) {
        const int64_t g = g0 + j;
        if (state[g].done) continue;
        GeneratedImage& img = imgs[size_t(j)];
        A2F_ASSERT(img.seed == r.seed + j);
        img.index = int(g);
        img.parameters = layout.parameters(g);
        const std::optional<ImageScore> sc = score(img, g);
        const bool kept = !layout.filtering() || (sc && sc->detected && sc->similarity >= spec.min_similarity);
        const fs::path p = out / layout.rel_path(g, kept);
        fs::create_directories(p.parent_path(), ec);
        A2F_CHECK(!ec, "cannot create ", p.parent_path().string(), ": ", ec.message());
        const std::vector<uint8_t> png = encode_png(img);
        write_file_atomic(p, png.data(), png.size());                   // the image first,
        manifest.append(make_record(layout, g, kept, sc).to_line());  // then its line
        state[g] = {true, kept, true};
        ++rep.generated;
        if (!kept) ++rep.filtered;
        ++prog.done;
      }
      ++rep.units_generated;
      rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      prog.generated = rep.generated;
      prog.images_per_hour = rep.seconds > 0 ? 3600.0 * double(rep.generated) / rep.seconds : 0.0;
      if (o.progress) o.progress(prog);
    }
    return rep;
  });
}

}  // namespace arc2face
