// `arc2face embed --image IMG [--image IMG2 ...] [--antelope DIR] --out EMB.npy [--json] [--dump DIR]`: the
// Arc2Face identity vector (float32 [512], unit length) of one photo, or combined from several photos of one
// person; optionally mixed with a second identity.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arc2face/face.h"
#include "commands.h"

namespace a2f_cli {

namespace {

struct EmbedArgs {
  std::vector<std::string> images;
  std::vector<std::string> mix_images;
  double mix_weight = 0.5;
  std::string antelope = "models/antelopev2";
  std::string detector, recognizer;
  std::string out;
  bool json = false;
  std::string dump;
  std::string combine = "mean";
  double trim = 0.2;
  bool keep_outliers = false;
  double outlier_cosine = 0.3;
  bool skip_no_face = false;
  std::string backend = "cpu";
  int threads = 0;
  int det_size = 640;
  bool no_exif = false;
};

nlohmann::ordered_json image_json(const arc2face::FaceResult& r) {
  nlohmann::ordered_json j;
  j["path"] = r.source;
  j["width"] = r.width;
  j["height"] = r.height;
  j["faces"] = nlohmann::ordered_json::array();
  for (const auto& f : r.faces) {
    nlohmann::ordered_json fj;
    fj["bbox"] = {double(f.bbox[0]), double(f.bbox[1]), double(f.bbox[2]), double(f.bbox[3])};
    fj["score"] = double(f.score);
    fj["kps"] = nlohmann::ordered_json::array();
    for (const auto& k : f.kps) fj["kps"].push_back({double(k[0]), double(k[1])});
    j["faces"].push_back(std::move(fj));
  }
  j["chosen_index"] = r.chosen >= 0 ? nlohmann::ordered_json(r.chosen) : nlohmann::ordered_json(nullptr);
  return j;
}

// DIR/<stem>/, made unique when two images share a stem.
std::string dump_dir_for(const std::string& root, const std::string& path, std::map<std::string, int>& seen) {
  std::string stem = std::filesystem::path(path).stem().string();
  if (stem.empty()) stem = "image";
  const int n = ++seen[stem];
  if (n > 1) stem += "_" + std::to_string(n);
  return (std::filesystem::path(root) / stem).string();
}

struct Group {
  std::vector<arc2face::FaceResult> results;
  arc2face::Identity identity;
  std::string error;  // set when no identity could be formed
};

Group analyze_group(arc2face::FaceAnalyzer& fa, const std::vector<std::string>& paths, const EmbedArgs& a,
                    const arc2face::IdentityOptions& io, std::map<std::string, int>& dump_seen) {
  Group g;
  arc2face::AnalyzeOptions ao;
  ao.keep_det_blob = !a.dump.empty();
  std::vector<std::vector<float>> embs;
  std::vector<int> index;
  for (const auto& p : paths) {
    arc2face::FaceResult r = fa.analyze_file(p, ao);
    if (!a.dump.empty()) arc2face::dump_face_result(r, dump_dir_for(a.dump, p, dump_seen));
    r.det_blob.clear();
    if (r.chosen >= 0) {
      embs.push_back(r.embedding);
      index.push_back(static_cast<int>(g.results.size()));
    } else if (!a.skip_no_face && g.error.empty()) {
      g.error = arc2face::no_face_message(p);
    }
    g.results.push_back(std::move(r));
  }
  if (g.error.empty() && embs.empty()) g.error = "no face found in any of the images";
  if (!g.error.empty()) return g;
  arc2face::Identity c = arc2face::combine_embeddings(embs, io);
  g.identity.embedding = c.embedding;
  g.identity.cosine_to_rest.assign(g.results.size(), 0.0);
  for (size_t k = 0; k < embs.size(); ++k) g.identity.cosine_to_rest[index[k]] = c.cosine_to_rest[k];
  for (int k : c.used) g.identity.used.push_back(index[k]);
  for (int k : c.dropped) g.identity.dropped.push_back(index[k]);
  return g;
}

void run_embed(const EmbedArgs& a) {
  arc2face::FaceAnalyzerOptions o;
  o.antelope_dir = a.antelope;
  o.detector_path = a.detector;
  o.recognizer_path = a.recognizer;
  o.backend = a.backend;
  o.threads = a.threads;
  o.det_size = a.det_size;
  o.apply_exif_orientation = !a.no_exif;
  auto fa = arc2face::FaceAnalyzer::create(o);

  arc2face::IdentityOptions io;
  io.method = arc2face::parse_combine_method(a.combine);
  io.trim = a.trim;
  io.drop_outliers = !a.keep_outliers;
  io.outlier_min_cosine = a.outlier_cosine;

  std::map<std::string, int> dump_seen;
  Group main = analyze_group(*fa, a.images, a, io, dump_seen);
  Group mix;
  if (!a.mix_images.empty() && main.error.empty()) mix = analyze_group(*fa, a.mix_images, a, io, dump_seen);
  const std::string error = !main.error.empty() ? main.error : mix.error;

  std::vector<float> emb = main.identity.embedding;
  if (error.empty() && !a.mix_images.empty())
    emb = arc2face::mix_identities(emb, mix.identity.embedding, a.mix_weight);

  if (a.json) {
    nlohmann::ordered_json j;
    j["images"] = nlohmann::ordered_json::array();
    for (const auto& r : main.results) j["images"].push_back(image_json(r));
    if (!a.mix_images.empty()) {
      j["mix_images"] = nlohmann::ordered_json::array();
      for (const auto& r : mix.results) j["mix_images"].push_back(image_json(r));
      j["mix_weight"] = a.mix_weight;
    }
    j["detector"] = fa->detector_path();
    j["recognizer"] = fa->recognizer_path();
    if (error.empty()) {
      j["combine"] = {{"method", a.combine},
                      {"used", main.identity.used},
                      {"dropped", main.identity.dropped},
                      {"cosine_to_rest", main.identity.cosine_to_rest}};
      j["out"] = a.out;
    } else {
      j["error"] = error;
    }
    const std::string text = j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  if (!error.empty()) throw arc2face::Error(error);
  for (int k : main.identity.dropped) {
    std::fprintf(stderr, "note: dropped '%s' as an outlier (cosine %.3f to the other photos)\n",
                 main.results[k].source.c_str(), main.identity.cosine_to_rest[k]);
  }
  arc2face::write_embedding_npy(a.out, emb);
  if (!a.json) {
    std::printf("wrote %s (%zu values, from %zu of %zu image%s)\n", a.out.c_str(), emb.size(),
                main.identity.used.size(), main.results.size(), main.results.size() == 1 ? "" : "s");
  }
}

}  // namespace

void register_embed(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("embed", "Compute the Arc2Face identity vector (ArcFace embedding) of photos");
  auto a = std::make_shared<EmbedArgs>();
  cmd->add_option("--image,-i", a->images,
                  "a photo (JPEG, PNG, WebP); repeat for several photos of one person")
      ->required();
  cmd->add_option("--antelope", a->antelope,
                  "folder with scrfd_10g_bnkps.onnx (or det_10g.onnx) and Arc2Face's arcface.onnx")
      ->capture_default_str();
  cmd->add_option("--detector", a->detector, "detector .onnx (overrides the folder)");
  cmd->add_option("--recognizer", a->recognizer, "recognizer .onnx (overrides the folder)");
  cmd->add_option("--out,-o", a->out, "output .npy: float32 [512], unit length")->required();
  cmd->add_flag("--json", a->json, "print the detections and the choice per image as JSON on stdout");
  cmd->add_option("--dump", a->dump,
                  "write det_blob.npy, aligned.npy, raw_embedding.npy into DIR/<image stem>/");
  cmd->add_option("--combine", a->combine, "how several photos are combined: mean, median or trimmed-mean")
      ->capture_default_str();
  cmd->add_option("--trim", a->trim, "trimmed mean: fraction cut at each end")->capture_default_str();
  cmd->add_flag("--keep-outliers", a->keep_outliers, "do not drop photos far from the others (3+ photos)");
  cmd->add_option("--outlier-cosine", a->outlier_cosine,
                  "drop a photo whose cosine to the mean of the others is below this")
      ->capture_default_str();
  cmd->add_flag("--skip-no-face", a->skip_no_face, "ignore photos without a face instead of failing");
  cmd->add_option("--mix-image", a->mix_images, "photo(s) of a second identity to mix in");
  cmd->add_option("--mix-weight", a->mix_weight, "weight of the second identity (0..1)")
      ->capture_default_str();
  cmd->add_option("--backend", a->backend, "cpu or ref")->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0: all cores)")->capture_default_str();
  cmd->add_option("--det-size", a->det_size, "detector input size")->capture_default_str();
  cmd->add_flag("--no-exif", a->no_exif, "ignore the EXIF orientation of photos");
  cmd->callback([a] { run_embed(*a); });
}

}  // namespace a2f_cli
