// Validation of the generation parameters of POST /v1/generate (JSON object or form fields turned into one)
// and of an `id_embedding` array. Every problem is an ApiError with the HTTP status and a message that says
// which field is wrong and what is allowed.
#pragma once
#include <arc2face/arc2face.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace a2f_server {

// A client error (4xx) or a server condition (5xx) answered as {"error": {"code", "message"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;
};

struct Limits {
  size_t max_body_bytes = 16u << 20;      // a whole request (multipart or JSON)
  int max_photos = 8;                     // photos per request
  int64_t max_photo_pixels = 24'000'000;  // width × height of one uploaded photo
  int max_images = 4;                     // images per request
  int max_steps = 100;
  int64_t max_pixels = 1024 * 1024;  // width × height of a generated image
  int64_t max_pose_pixels =
      4096 * 4096;  // width × height of an uploaded pose image (kept decoded in its job)
};

struct Defaults {
  int steps = 25;
  double guidance = 3.0;
  int lcm_steps = 3;
  double lcm_guidance = 1.0;
  int num_images = 2;  // as the official demo
  int width = 512, height = 512;
  std::string scheduler = "dpm++2m";
  double control_scale = 1.0;  // with a pose image
};

// The schedulers a request may name (those of arc2face::GenerateRequest).
const std::vector<std::string>& scheduler_names();

struct GenerateParams {
  int num_images = 1;
  int steps = 25;
  double guidance = 3.0;
  int64_t seed = 0;  // always set: drawn by the server when the request asked for a random one
  bool seed_was_random = false;
  bool lcm = false;
  int width = 512, height = 512;
  std::string scheduler;
  bool per_image_seeds = true;          // image i uses seed + i, so each image can be reproduced on its own
  double control_scale = 1.0;           // ControlNet conditioning scale (used with a pose image)
  int pose_width = 0, pose_height = 0;  // size of the decoded pose image; 0: none (set by the caller)

  nlohmann::json to_json() const;
  arc2face::GenerateRequest to_request() const;  // without the embedding and the pose pixels
};

// ControlNet conditioning scale, as the library accepts it.
constexpr double kMinControlScale = 0.0, kMaxControlScale = 10.0;

// Validates `body` (a JSON object; keys other than the parameters, "photos", "id_embedding" and "pose_image"
// are refused).
// `random_seed` supplies the seed when the request asks for a random one.
GenerateParams parse_generate_params(const nlohmann::json& body, const Limits& limits,
                                     const Defaults& defaults, bool lcm_available, uint64_t random_seed);

// 512 finite numbers → a float vector (not normalised); throws ApiError 400 otherwise.
std::vector<float> parse_id_embedding(const nlohmann::json& value);

// Human-readable JSON type name for messages ("a string", "an array", ...).
std::string json_type_name(const nlohmann::json& v);

}  // namespace a2f_server
