// `arc2face eval --identity EMB.npy | --image IMG... --generated DIR|IMG... [--json | --csv]`: the paper's
// ID-similarity metric. Every generated image is detected and embedded; its cosine similarity to the identity,
// the face-detection rate and a summary (mean, std, quantiles) are printed. An unreadable image or one without
// a face is reported on its own line and never stops the run.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arc2face/eval.h"
#include "arc2face/face.h"
#include "commands.h"

namespace a2f_cli {

namespace {

struct EvalArgs {
  std::string identity;
  std::vector<std::string> images;
  std::vector<std::string> generated;
  bool recursive = false;
  std::string antelope, detector, recognizer;
  bool json = false, csv = false;
  std::string backend = "cpu";
  int threads = 0;
  int det_size = 640;
};

std::string default_antelope_dir() {
  if (const char* e = std::getenv("ARC2FACE_MODELS"); e && *e) return (std::filesystem::path(e) / "antelopev2").string();
  return "models/antelopev2";
}

nlohmann::ordered_json summary_json(const arc2face::ScoreSummary& s) {
  nlohmann::ordered_json j;
  j["images"] = s.images;
  j["readable"] = s.readable;
  j["detected"] = s.detected;
  j["detection_rate"] = s.detection_rate;
  if (s.detected > 0) {
    j["mean"] = s.mean;
    j["std"] = s.std;
    j["min"] = s.min;
    j["p05"] = s.p05;
    j["p25"] = s.p25;
    j["median"] = s.median;
    j["p75"] = s.p75;
    j["p95"] = s.p95;
    j["max"] = s.max;
  }
  return j;
}

// RFC 4180 field.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

void print_summary_text(FILE* f, const arc2face::ScoreSummary& s) {
  std::fprintf(f, "images %d, readable %d, face detected %d (detection rate %.1f%%)\n", s.images, s.readable,
               s.detected, 100.0 * s.detection_rate);
  if (s.detected > 0) {
    std::fprintf(f,
                 "ID similarity: mean %.4f  std %.4f  min %.4f  p5 %.4f  p25 %.4f  median %.4f  p75 %.4f  "
                 "p95 %.4f  max %.4f\n",
                 s.mean, s.std, s.min, s.p05, s.p25, s.median, s.p75, s.p95, s.max);
  }
}

void run_eval(const EvalArgs& a) {
  if (a.identity.empty() == a.images.empty()) {
    throw arc2face::Error("give the identity either as --identity EMB.npy or as --image PHOTO (one or more)");
  }
  if (a.json && a.csv) throw arc2face::Error("--json and --csv exclude each other");
  arc2face::FaceAnalyzerOptions o;
  o.antelope_dir = a.antelope.empty() ? default_antelope_dir() : a.antelope;
  o.detector_path = a.detector;
  o.recognizer_path = a.recognizer;
  o.backend = a.backend;
  o.threads = a.threads;
  o.det_size = a.det_size;
  const std::vector<std::string> paths = arc2face::list_images(a.generated, a.recursive);
  if (paths.empty()) throw arc2face::Error("no images found in the --generated paths");
  auto fa = arc2face::FaceAnalyzer::create(o);

  std::vector<float> identity;
  std::string identity_source;
  if (!a.identity.empty()) {
    identity = arc2face::read_embedding_npy(a.identity);
    identity_source = a.identity;
  } else {
    identity = arc2face::identity_from_images(*fa, a.images).embedding;
    identity_source = a.images.size() == 1 ? a.images[0] : std::to_string(a.images.size()) + " photos";
  }

  std::vector<arc2face::ImageScore> scores;
  if (a.csv) std::printf("path,readable,detected,faces,similarity,error\n");
  for (const auto& p : paths) {
    arc2face::ImageScore s = arc2face::score_image_file(*fa, identity, p);
    if (a.csv) {
      char sim[32] = "";
      if (s.detected) std::snprintf(sim, sizeof sim, "%.9g", s.similarity);
      std::printf("%s,%d,%d,%d,%s,%s\n", csv_field(p).c_str(), int(s.readable), int(s.detected), s.faces, sim,
                  csv_field(s.error).c_str());
    } else if (!a.json) {
      if (s.detected) {
        std::printf("%s\t%.4f\n", p.c_str(), s.similarity);
      } else {
        std::printf("%s\t%s\n", p.c_str(), s.readable ? "no face" : ("error: " + s.error).c_str());
      }
    }
    std::fflush(stdout);
    scores.push_back(std::move(s));
  }
  const arc2face::ScoreSummary sum = arc2face::summarize_scores(scores);
  if (a.json) {
    nlohmann::ordered_json j;
    j["identity"] = identity_source;
    j["detector"] = fa->detector_path();
    j["recognizer"] = fa->recognizer_path();
    j["images"] = nlohmann::ordered_json::array();
    for (const auto& s : scores) {
      nlohmann::ordered_json x;
      x["path"] = s.source;
      x["readable"] = s.readable;
      x["detected"] = s.detected;
      x["faces"] = s.faces;
      x["similarity"] = s.detected ? nlohmann::ordered_json(s.similarity) : nlohmann::ordered_json(nullptr);
      if (!s.error.empty()) x["error"] = s.error;
      j["images"].push_back(std::move(x));
    }
    j["summary"] = summary_json(sum);
    const std::string text = j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    print_summary_text(a.csv ? stderr : stdout, sum);
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "ID similarity of generated images to an identity (the paper's metric)");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--identity", a->identity, "the identity: float32 .npy [512] (e.g. from arc2face embed)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--image,-i", a->images, "or photo(s) of the person; several are combined (mean)");
  cmd->add_option("--generated,-g", a->generated, "generated images: files and/or folders (*.png, *.jpg, *.webp)")
      ->required();
  cmd->add_flag("--recursive,-r", a->recursive, "also look into sub-folders of the --generated folders");
  cmd->add_option("--antelope", a->antelope,
                  "folder with scrfd_10g_bnkps.onnx and arcface.onnx (default: $ARC2FACE_MODELS/antelopev2 or "
                  "models/antelopev2)");
  cmd->add_option("--detector", a->detector, "detector .onnx (overrides the folder)");
  cmd->add_option("--recognizer", a->recognizer,
                  "recognizer .onnx (overrides the folder; e.g. another face-recognition model as the evaluator)");
  cmd->add_flag("--json", a->json, "print per-image results and the summary as JSON");
  cmd->add_flag("--csv", a->csv, "print per-image results as CSV (the summary goes to stderr)");
  cmd->add_option("--backend", a->backend, "cpu or ref")->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0: all cores)")->capture_default_str();
  cmd->add_option("--det-size", a->det_size, "detector input size")->capture_default_str();
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace a2f_cli
