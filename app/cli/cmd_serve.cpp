// `arc2face serve`: loads the models once and serves the web page and the JSON API (app/server) until SIGINT
// or SIGTERM; then running work gets --shutdown-grace seconds to finish before it is cancelled.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "arc2face/face.h"
#include "arc2face/hub.h"
#include "commands.h"
#include "server/pipeline_engine.h"
#include "server/server.h"

namespace a2f_cli {

namespace {

struct ServeArgs {
  std::string models, base, antelope, controlnet;
  bool no_controlnet = false;
  bool download = false;
  a2f_server::ServerOptions server;
  a2f_server::PipelineEngineOptions engine;
  double max_upload_mb = 16;
  double shutdown_grace_s = 30;
  bool quiet = false;
};

void log_line(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

// SIGINT/SIGTERM → a byte on a pipe that the main thread waits on. A handler (not sigwait with blocked
// signals) because libraries start threads before main() (OpenBLAS does), and such a thread would take the
// default action. A second signal while stopping exits at once.
int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};

void on_signal(int sig) {
  if (g_signals.fetch_add(1) > 0) _exit(128 + sig);
  unsigned char b = static_cast<unsigned char>(sig);
  ssize_t ignored = write(g_signal_pipe[1], &b, 1);
  (void)ignored;
}

int wait_for_signal() {
  unsigned char b = 0;
  while (read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  return b;
}

void install_signal_handlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) throw arc2face::Error("cannot create a pipe for signal handling");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void run_serve(ServeArgs& a) {
  install_signal_handlers();
  // Request bodies of up to --max-upload-mb come and go: a fixed mmap threshold returns them to the system
  // when freed (glibc would otherwise raise the threshold and keep them in its arenas).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  // The models are found like `arc2face generate` finds them (flags > Hugging Face cache > $ARC2FACE_MODELS >
  // ./models). The face models, the LCM-LoRA and the pose ControlNet are optional: each one found is loaded
  // (without face models photo uploads are refused, 501; without the ControlNet pose images, 400). Given
  // explicitly (--antelope, --lcm-lora, --controlnet), they are required.
  arc2face::ModelSearchOptions search;
  search.models_dir = a.models;
  search.base_dir = a.base;
  search.antelope_dir = a.antelope;
  search.lcm_lora_file = a.engine.pipeline.lcm_lora;
  search.controlnet_dir = a.controlnet;
  arc2face::ModelJob job;
  job.from_photo = !a.antelope.empty();  // given explicitly: required
  job.lcm = !a.engine.pipeline.lcm_lora.empty();
  job.controlnet = !a.controlnet.empty();
  arc2face::ModelPaths paths =
      arc2face::require_models(search, job, a.download, arc2face::stderr_download_progress());
  if (!job.from_photo) {
    arc2face::ModelJob with_face = job;
    with_face.from_photo = true;
    arc2face::ModelDiscovery d = arc2face::find_models(search, with_face);
    paths.detector_onnx = d.paths.detector_onnx;
    paths.arcface_onnx = d.paths.arcface_onnx;
  }
  auto& po = a.engine.pipeline;
  po.unet_dir = paths.unet_dir;
  po.encoder_dir = paths.encoder_dir;
  po.vae_dir = paths.vae_dir;
  po.tokenizer_dir = paths.tokenizer_dir;
  po.scheduler_dir = paths.scheduler_dir;
  if (!paths.lcm_lora_file.empty()) po.lcm_lora = paths.lcm_lora_file;
  if (!paths.controlnet_dir.empty() && !a.no_controlnet) po.controlnet_dir = paths.controlnet_dir;
  if (po.controlnet_dir.empty()) {
    log_line(std::string("arc2face serve: ") +
             (a.no_controlnet
                  ? "--no-controlnet"
                  : "no pose ControlNet found (--controlnet DIR, or arc2face download --controlnet)") +
             ": pose images are refused");
  }
  if (!paths.detector_onnx.empty() && !paths.arcface_onnx.empty()) {
    arc2face::FaceAnalyzerOptions fo;
    fo.detector_path = paths.detector_onnx;
    fo.recognizer_path = paths.arcface_onnx;
    fo.backend = po.backend == "ref" ? "ref" : "cpu";
    fo.threads = po.threads;
    a.engine.face = fo;
  } else {
    log_line(
        "arc2face serve: no face models found (--antelope DIR, or arc2face download): photo uploads are "
        "refused, send an id_embedding instead");
  }
  a.server.limits.max_body_bytes = size_t(a.max_upload_mb * 1024 * 1024);
  if (!a.quiet) a.server.log = log_line;
  log_line(
      "arc2face serve: loading " + po.unet_dir + ", " + po.encoder_dir + ", " + po.vae_dir +
      (a.engine.face ? ", " + a.engine.face->detector_path + ", " + a.engine.face->recognizer_path : "") +
      (po.lcm_lora.empty() ? "" : ", " + po.lcm_lora) +
      (po.controlnet_dir.empty() ? "" : ", " + po.controlnet_dir) + " ...");
  auto t0 = std::chrono::steady_clock::now();
  a2f_server::Engine engine = a2f_server::make_pipeline_engine(a.engine);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (g_signals.load() > 0) {
    log_line("arc2face serve: stopped before serving (signal while loading)");
    return;
  }
  a2f_server::Server server(a.server, std::move(engine));
  int port = server.start();
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "arc2face serve: models loaded in %.1f s; listening on http://%s:%d/ (Ctrl-C stops)", load_s,
                a.server.host.c_str(), port);
  log_line(buf);

  int sig = wait_for_signal();
  log_line(std::string("arc2face serve: ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
           ": stopping (running job gets " + std::to_string(int(a.shutdown_grace_s)) +
           " s to finish; signal again to quit at once)");
  server.stop(std::chrono::milliseconds(int64_t(a.shutdown_grace_s * 1000)));
  log_line("arc2face serve: stopped");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto& a = *args;
  CLI::App* cmd =
      app.add_subcommand("serve", "Web page and HTTP API: load the models once, serve generations");
  cmd->add_option("--host", a.server.host, "address to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  cmd->add_option("--port", a.server.port, "port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option(
      "--models", a.models,
      "folder with arc2face/ and encoder/ (default: Hugging Face cache, $ARC2FACE_MODELS, ./models)");
  cmd->add_option("--base", a.base,
                  "SD1.5 folder with vae/, tokenizer/, scheduler/ (default: found like --models)");
  cmd->add_option(
      "--antelope", a.antelope,
      "folder with scrfd_10g_bnkps.onnx (or det_10g.onnx) and arcface.onnx, for photo uploads and ID "
      "similarity (default: found like --models; none: photos are refused)");
  cmd->add_flag("--download", a.download, "download missing model files first (see arc2face download)");
  cmd->add_option("--device,--backend", a.engine.pipeline.backend, "cpu | ref | cuda")->capture_default_str();
  cmd->add_option("--dtype", a.engine.pipeline.dtype, "fp32 | bf16 (| fp16 on cuda)")->capture_default_str();
  cmd->add_option("--threads", a.engine.pipeline.threads, "CPU threads for generation (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lcm-lora", a.engine.pipeline.lcm_lora, "LCM-LoRA .safetensors: enables \"Use LCM-LoRA\"")
      ->check(CLI::ExistingFile);
  auto* controlnet =
      cmd->add_option("--controlnet", a.controlnet,
                      "pose ControlNet folder: enables pose images (default: found like --models, "
                      "MODELS/controlnet)")
          ->check(CLI::ExistingDirectory);
  cmd->add_flag("--no-controlnet", a.no_controlnet, "do not load a pose ControlNet even when one is found")
      ->excludes(controlnet);
  cmd->add_option("--examples", a.server.examples_dir, "folder of example photos offered by the page")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--width", a.server.defaults.width, "default image width")->capture_default_str();
  cmd->add_option("--height", a.server.defaults.height, "default image height")->capture_default_str();
  cmd->add_option("--max-queue", a.server.queue.max_queued, "jobs that may wait; more are answered 429")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", a.max_upload_mb, "largest request body in MiB")
      ->check(CLI::Range(0.1, 1024.0))
      ->capture_default_str();
  cmd->add_option("--max-images", a.server.limits.max_images, "images per request")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--max-pixels", a.server.limits.max_pixels, "largest width x height of a generated image")
      ->check(CLI::Range(int64_t(64 * 64), int64_t(4096) * 4096))
      ->capture_default_str();
  cmd->add_option("--http-threads", a.server.http_threads, "connections served at once")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a.shutdown_grace_s,
                  "seconds the running job may take to finish on stop")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "no request log on stderr");
  cmd->callback([args] {
    if (args->server.defaults.width % 8 || args->server.defaults.height % 8) {
      throw CLI::ValidationError("--width/--height", "must be multiples of 8");
    }
    run_serve(*args);
  });
}

}  // namespace a2f_cli
