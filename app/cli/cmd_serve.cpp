// `arc2face serve`: loads the models once and serves the web page and the JSON API (app/server) until SIGINT
// or SIGTERM; then running work gets --shutdown-grace seconds to finish before it is cancelled.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "server/pipeline_engine.h"
#include "server/server.h"

namespace a2f_cli {

namespace {

struct ServeArgs {
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

void run_serve(ServeArgs& a) {
  // SIGINT/SIGTERM are taken by sigwait() below: block them before any thread (model loading, HTTP) starts,
  // so that every thread inherits the mask and none is interrupted.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // Request bodies of up to --max-upload-mb come and go: a fixed mmap threshold returns them to the system
  // when freed (glibc would otherwise raise the threshold and keep them in its arenas).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  a.server.limits.max_body_bytes = size_t(a.max_upload_mb * 1024 * 1024);
  if (!a.quiet) a.server.log = log_line;
  log_line("arc2face serve: loading models from " + a.engine.pipeline.models_dir + " and " +
           a.engine.pipeline.base_dir + " ...");
  auto t0 = std::chrono::steady_clock::now();
  a2f_server::Engine engine = a2f_server::make_pipeline_engine(a.engine);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  a2f_server::Server server(a.server, std::move(engine));
  int port = server.start();
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "arc2face serve: models loaded in %.1f s; listening on http://%s:%d/ (Ctrl-C stops)", load_s,
                a.server.host.c_str(), port);
  log_line(buf);

  int sig = 0;
  sigwait(&sigs, &sig);
  log_line(std::string("arc2face serve: ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
           ": stopping (running job gets " + std::to_string(int(a.shutdown_grace_s)) + " s to finish)");
  server.stop(std::chrono::milliseconds(int64_t(a.shutdown_grace_s * 1000)));
  log_line("arc2face serve: stopped");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  auto& a = *args;
  CLI::App* cmd =
      app.add_subcommand("serve", "Web page and HTTP API: load the models once, serve generations");
  cmd->add_option("--host", a.server.host, "Address to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  cmd->add_option("--port", a.server.port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--models", a.engine.pipeline.models_dir, "Arc2Face folder with arc2face/ and encoder/")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--base", a.engine.pipeline.base_dir, "SD1.5 folder with vae/, tokenizer/, scheduler/")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--backend", a.engine.pipeline.backend, "cpu | ref | cuda")->capture_default_str();
  cmd->add_option("--dtype", a.engine.pipeline.dtype, "fp32 | bf16 | fp16 (cuda)")->capture_default_str();
  cmd->add_option("--threads", a.engine.pipeline.threads, "CPU threads for generation (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lcm-lora", a.engine.lcm_lora, "LCM-LoRA .safetensors: enables \"Use LCM-LoRA\"")
      ->check(CLI::ExistingFile);
  cmd->add_option("--examples", a.server.examples_dir, "Folder of example photos offered by the page")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--width", a.server.defaults.width, "Default image width")->capture_default_str();
  cmd->add_option("--height", a.server.defaults.height, "Default image height")->capture_default_str();
  cmd->add_option("--max-queue", a.server.queue.max_queued, "Jobs that may wait; more are answered 429")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", a.max_upload_mb, "Largest request body in MiB")
      ->check(CLI::Range(0.1, 1024.0))
      ->capture_default_str();
  cmd->add_option("--max-images", a.server.limits.max_images, "Images per request")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--max-pixels", a.server.limits.max_pixels, "Largest width x height of a generated image")
      ->check(CLI::Range(int64_t(64 * 64), int64_t(4096) * 4096))
      ->capture_default_str();
  cmd->add_option("--http-threads", a.server.http_threads, "Connections served at once")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a.shutdown_grace_s,
                  "Seconds the running job may take to finish on stop")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "No request log on stderr");
  cmd->callback([args] {
    if (args->server.defaults.width % 8 || args->server.defaults.height % 8) {
      throw CLI::ValidationError("--width/--height", "must be multiples of 8");
    }
    run_serve(*args);
  });
}

}  // namespace a2f_cli
