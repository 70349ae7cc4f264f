#include "server/params.h"

#include <cmath>
#include <limits>
#include <set>

namespace a2f_server {

namespace {

using nlohmann::json;

ApiError bad(const std::string& message) {
  return ApiError(400, "invalid_parameter", message);
}

bool is_integer(const json& v) {
  return v.is_number_integer() || v.is_number_unsigned();
}

int64_t get_int(const json& body, const char* key, int64_t lo, int64_t hi, int64_t fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!is_integer(*it)) {
    throw bad(std::string(key) + " must be an integer from " + std::to_string(lo) + " to " +
              std::to_string(hi) + ", got " + json_type_name(*it));
  }
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    throw bad(std::string(key) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
              ", got " + it->dump());
  }
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    throw bad(std::string(key) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
              ", got " + std::to_string(v));
  }
  return v;
}

double get_number(const json& body, const char* key, double lo, double hi, double fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) {
    throw bad(std::string(key) + " must be a number, got " + json_type_name(*it));
  }
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo - 1e-9 || v > hi + 1e-9) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s must be from %g to %g, got %s", key, lo, hi, it->dump().c_str());
    throw bad(buf);
  }
  return v;
}

std::optional<bool> get_bool(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) throw bad(std::string(key) + " must be true or false, got " + json_type_name(*it));
  return it->get<bool>();
}

}  // namespace

std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a fractional number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    default:
      return "an unsupported value";
  }
}

const std::vector<std::string>& scheduler_names() {
  static const std::vector<std::string> names = {
      "dpm++2m", "dpm++2m-karras", "euler", "euler-a", "ddim", "pndm", "lms", "unipc", "lcm"};
  return names;
}

GenerateParams parse_generate_params(const json& body, const Limits& limits, const Defaults& defaults,
                                     bool lcm_available, uint64_t random_seed) {
  if (!body.is_object()) throw bad("the request body must be a JSON object, got " + json_type_name(body));
  static const std::set<std::string> known = {
      "num_images",    "steps",  "guidance", "seed",         "randomize_seed",
      "lcm",           "width",  "height",   "scheduler",    "per_image_seeds",
      "control_scale", "photos", "photo",    "id_embedding", "pose_image"};
  for (const auto& [key, value] : body.items()) {
    if (!known.count(key)) {
      throw bad(
          "unknown field '" + key +
          "'; the parameters are num_images, steps, guidance, seed, randomize_seed, lcm, width, height, "
          "scheduler, per_image_seeds, control_scale, and the inputs photo(s), id_embedding, pose_image "
          "(see /openapi.json)");
    }
  }
  GenerateParams p;
  p.lcm = get_bool(body, "lcm").value_or(false);
  if (p.lcm && !lcm_available) {
    throw ApiError(
        400, "lcm_unavailable",
        "this server was started without --lcm-lora, so \"lcm\": true cannot be used; turn LCM off or "
        "restart the server with --lcm-lora FILE");
  }
  p.num_images = int(get_int(body, "num_images", 1, limits.max_images, defaults.num_images));
  p.steps = int(get_int(body, "steps", 1, limits.max_steps, p.lcm ? defaults.lcm_steps : defaults.steps));
  p.guidance = get_number(body, "guidance", 0.1, 10.0, p.lcm ? defaults.lcm_guidance : defaults.guidance);

  const int64_t max_side = 4096;
  p.width = int(get_int(body, "width", 64, max_side, defaults.width));
  p.height = int(get_int(body, "height", 64, max_side, defaults.height));
  if (p.width % 8 || p.height % 8) {
    throw bad("width and height must be multiples of 8, got " + std::to_string(p.width) + "x" +
              std::to_string(p.height));
  }
  if (int64_t(p.width) * p.height > limits.max_pixels) {
    throw bad("width x height must be at most " + std::to_string(limits.max_pixels) +
              " pixels on this server, got " + std::to_string(p.width) + "x" + std::to_string(p.height));
  }

  auto sched = body.find("scheduler");
  if (sched != body.end() && !sched->is_null()) {
    if (!sched->is_string()) throw bad("scheduler must be a string, got " + json_type_name(*sched));
    p.scheduler = sched->get<std::string>();
    bool ok = false;
    for (const auto& n : scheduler_names()) ok = ok || n == p.scheduler;
    if (!ok) {
      std::string list;
      for (const auto& n : scheduler_names()) list += (list.empty() ? "" : ", ") + n;
      throw bad("unknown scheduler '" + p.scheduler + "'; use one of " + list);
    }
    if (p.scheduler == "lcm" && !p.lcm)
      throw bad("the lcm scheduler needs the LCM-LoRA: send \"lcm\": true instead");
    if (p.lcm && p.scheduler != "lcm") throw bad("\"lcm\": true uses the lcm scheduler; leave scheduler out");
  } else {
    p.scheduler = p.lcm ? "lcm" : defaults.scheduler;
  }

  p.control_scale =
      get_number(body, "control_scale", kMinControlScale, kMaxControlScale, defaults.control_scale);
  p.per_image_seeds = get_bool(body, "per_image_seeds").value_or(true);
  bool randomize = get_bool(body, "randomize_seed").value_or(false);
  auto seed = body.find("seed");
  bool has_seed = seed != body.end() && !seed->is_null();
  int64_t given = get_int(body, "seed", 0, std::numeric_limits<int64_t>::max(), 0);
  if (randomize || !has_seed) {
    p.seed = int64_t(random_seed %
                     (uint64_t(std::numeric_limits<int32_t>::max()) + 1));  // 0 .. 2^31-1 like the demo
    p.seed_was_random = true;
  } else {
    p.seed = given;
  }
  if (p.per_image_seeds && p.seed > std::numeric_limits<int64_t>::max() - limits.max_images) {
    throw bad("seed is too large for per-image seeds (seed + index must fit in 63 bits)");
  }
  return p;
}

std::vector<float> parse_id_embedding(const json& value) {
  if (!value.is_array())
    throw bad("id_embedding must be an array of 512 numbers, got " + json_type_name(value));
  if (value.size() != 512) {
    throw bad("id_embedding must have 512 numbers (an ArcFace embedding), got " +
              std::to_string(value.size()));
  }
  std::vector<float> out(512);
  double norm = 0;
  for (size_t i = 0; i < 512; ++i) {
    const auto& v = value[i];
    if (!v.is_number())
      throw bad("id_embedding[" + std::to_string(i) + "] must be a number, got " + json_type_name(v));
    double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 1e6) {
      throw bad("id_embedding[" + std::to_string(i) + "] must be a finite number of magnitude below 1e6");
    }
    out[i] = float(d);
    norm += d * d;
  }
  if (norm <= 1e-12) throw bad("id_embedding must not be all zeros");
  return out;
}

json GenerateParams::to_json() const {
  return json{
      {"num_images", num_images},
      {"steps", steps},
      {"guidance", guidance},
      {"seed", seed},
      {"randomize_seed", seed_was_random},
      {"lcm", lcm},
      {"width", width},
      {"height", height},
      {"scheduler", scheduler},
      {"per_image_seeds", per_image_seeds},
      {"pose_image", pose_width > 0 ? json{{"width", pose_width}, {"height", pose_height}} : json(nullptr)},
      {"control_scale", pose_width > 0 ? json(control_scale) : json(nullptr)}};
}

arc2face::GenerateRequest GenerateParams::to_request() const {
  arc2face::GenerateRequest r;
  r.num_images = num_images;
  r.steps = steps;
  r.guidance = float(guidance);
  r.scheduler = scheduler;
  r.lcm = lcm;
  r.seed = seed;
  r.per_image_seeds = per_image_seeds;
  r.width = width;
  r.height = height;
  r.control_scale = float(control_scale);
  return r;
}

}  // namespace a2f_server
