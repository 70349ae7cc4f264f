// Internals of a2f_server::Server shared by server.cpp (setup, static files, lifecycle), api_handlers.cpp
// (the /v1 API) and request_input.cpp (reading photos and parameters out of a request). Not for other users.
#pragma once
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "server/server.h"

namespace a2f_server {

// The body of a POST: photos and the pose image (encoded bytes) and everything else as one JSON object.
struct RequestInput {
  std::vector<std::string> photos;
  std::optional<std::string> pose_image;  // ControlNet condition (file field / JSON "pose_image")
  nlohmann::json body = nlohmann::json::object();
};
// Reads multipart/form-data (file fields "photo"/"photos" and "pose_image"; other fields are JSON literals or
// plain strings; a "params" field may hold a JSON object) or application/json ("photos": [base64...],
// "pose_image": base64). Throws ApiError.
RequestInput read_request_input(const httplib::Request& req, const Limits& limits);

// Serialises JSON for a response (invalid UTF-8 from user input is replaced, never thrown on).
std::string json_body(const nlohmann::json& j);
void send_json(httplib::Response& res, int status, const nlohmann::json& j);
void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message);

struct Example {
  std::string name, path, mime;
};

struct Server::Impl {
  Impl(ServerOptions options, Engine engine);
  ~Impl();

  // server.cpp
  void install_routes();
  int start();
  void stop(std::chrono::milliseconds grace);
  void load_examples();
  void on_static(const httplib::Request& req, httplib::Response& res);
  void on_example_file(const httplib::Request& req, httplib::Response& res);

  // api_handlers.cpp
  void on_generate(const httplib::Request& req, httplib::Response& res);
  void on_embed(const httplib::Request& req, httplib::Response& res);
  void on_job(const httplib::Request& req, httplib::Response& res);
  void on_job_events(const httplib::Request& req, httplib::Response& res);
  void on_job_delete(const httplib::Request& req, httplib::Response& res);
  void on_job_image(const httplib::Request& req, httplib::Response& res);
  void on_health(const httplib::Request& req, httplib::Response& res);
  void on_config(const httplib::Request& req, httplib::Response& res);
  void on_examples(const httplib::Request& req, httplib::Response& res);

  struct Identity {
    std::vector<float> embedding;                     // L2-normalised
    nlohmann::json inputs = nlohmann::json::array();  // per photo: size, faces, chosen, similarity
  };
  Identity identity_from_photos(const std::vector<std::string>& photos);
  // The uploaded pose image decoded to RGB (as arc2face::decode_image_rgb decodes it, unchanged); ApiError
  // when it is not an image, too large, or unreadable.
  arc2face::RgbImage read_pose_image(const std::string& bytes);
  std::vector<JobImage> run_job(const Job& job, const ProgressSink& progress);
  nlohmann::json job_json(const Job& job, const JobSnapshot& s, bool with_base64);
  uint64_t next_random_seed();

  ServerOptions opt;
  Engine engine;
  std::vector<Example> examples;
  std::mutex analyze_mu;  // face analysis runs one photo at a time (bounds decode memory)
  std::mutex seed_mu;
  std::mt19937_64 seed_rng;
  std::unique_ptr<JobQueue> queue;  // after engine: destroyed (worker joined) before it
  httplib::Server http;
  std::thread listener;
  int port = -1;
  int listen_fd = -1;  // captured when httplib creates the listening socket
  bool started = false, stopped = false;
  std::atomic<int> event_streams{0};
};

}  // namespace a2f_server
