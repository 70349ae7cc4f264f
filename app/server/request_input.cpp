// Reading a POST body into photos + a JSON object of parameters, with limits that keep a hostile body from
// costing more than its (bounded) size.
#include <set>

#include "server/codecs.h"
#include "server/server_impl.h"

namespace a2f_server {

namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 16;
constexpr size_t kMaxJsonValues = 8192;  // id_embedding has 512; photos are single strings

json parse_json_strict(const std::string& text, const char* what) {
  size_t values = 0;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json&) {
    if (depth > kMaxJsonDepth) {
      throw ApiError(
          400, "invalid_json",
          std::string(what) + " is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    if (event == json::parse_event_t::value && ++values > kMaxJsonValues) {
      throw ApiError(400, "invalid_json",
                     std::string(what) + " has more than " + std::to_string(kMaxJsonValues) + " values");
    }
    return true;
  };
  try {
    return json::parse(text, cb);
  } catch (const json::exception& e) {
    throw ApiError(400, "invalid_json", std::string(what) + " is not valid JSON: " + e.what());
  }
}

// A form field: a JSON literal when it parses as one ("25", "3.0", "true", "[...]"), else the plain string.
json form_value(const std::string& text) {
  if (text.empty()) return json(nullptr);
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded() || v.is_object()) return json(text);
  return v;
}

bool is_photo_field(const std::string& name) {
  return name == "photo" || name == "photos";
}

std::string media_type(const httplib::Request& req) {
  std::string ct = req.get_header_value("Content-Type");
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (auto& c : ct) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ct;
}

void add_base64_photo(RequestInput& in, const json& v, size_t index) {
  if (!v.is_string()) {
    throw ApiError(400, "invalid_parameter",
                   "photos[" + std::to_string(index) + "] must be a base64 string, got " + json_type_name(v));
  }
  auto bytes = base64_decode(v.get_ref<const std::string&>());
  if (!bytes || bytes->empty()) {
    throw ApiError(400, "invalid_parameter", "photos[" + std::to_string(index) + "] is not valid base64");
  }
  in.photos.push_back(std::move(*bytes));
}

void set_pose_image(RequestInput& in, std::string bytes) {
  if (in.pose_image) throw ApiError(400, "invalid_parameter", "pose_image is repeated; send one pose image");
  if (bytes.empty()) throw ApiError(400, "invalid_pose_image", "the pose image is empty (0 bytes)");
  in.pose_image = std::move(bytes);
}

// A "pose_image" among the JSON values (a JSON body, or the params field of a form): base64 or a data URL.
void take_base64_pose_image(RequestInput& in) {
  auto pose = in.body.find("pose_image");
  if (pose == in.body.end()) return;
  if (!pose->is_null()) {
    if (!pose->is_string()) {
      throw ApiError(400, "invalid_parameter",
                     "pose_image must be a base64 string (or a data URL), got " + json_type_name(*pose));
    }
    auto bytes = base64_decode(pose->get_ref<const std::string&>());
    if (!bytes) throw ApiError(400, "invalid_pose_image", "pose_image is not valid base64");
    set_pose_image(in, std::move(*bytes));
  }
  in.body.erase(pose);
}

}  // namespace

RequestInput read_request_input(const httplib::Request& req, const Limits& limits) {
  RequestInput in;
  std::string type = media_type(req);
  if (type == "multipart/form-data") {
    std::set<std::string> seen;
    for (const auto& [name, field] : req.files) {
      if (is_photo_field(name)) {
        if (field.content.empty()) {
          throw ApiError(400, "invalid_parameter",
                         "photo " + std::to_string(in.photos.size() + 1) + " is empty" +
                             (field.filename.empty() ? "" : " ('" + field.filename + "')"));
        }
        if (int(in.photos.size()) >= limits.max_photos) {
          throw ApiError(
              413, "too_many_photos",
              "at most " + std::to_string(limits.max_photos) + " photos per request on this server");
        }
        in.photos.push_back(field.content);
        continue;
      }
      if (name == "pose_image") {
        set_pose_image(in, field.content);
        continue;
      }
      if (!seen.insert(name).second)
        throw ApiError(400, "invalid_parameter", "field '" + name + "' is repeated");
      if (name == "params") {
        json p = parse_json_strict(field.content, "the params field");
        if (!p.is_object())
          throw ApiError(400, "invalid_parameter", "the params field must be a JSON object");
        for (auto& [k, v] : p.items()) {
          if (!seen.insert(k).second)
            throw ApiError(400, "invalid_parameter", "field '" + k + "' is repeated");
          in.body[k] = v;
        }
      } else if (name == "id_embedding") {
        in.body[name] = parse_json_strict(field.content, "the id_embedding field");
      } else {
        in.body[name] = form_value(field.content);
      }
    }
    take_base64_pose_image(in);  // from the params field
    return in;
  }
  bool looks_json = type.empty() && !req.body.empty() &&
                    req.body.find_first_not_of(" \t\r\n") != std::string::npos &&
                    req.body[req.body.find_first_not_of(" \t\r\n")] == '{';
  if (type == "application/json" || looks_json) {
    if (req.body.empty())
      throw ApiError(400, "invalid_json", "the request body is empty; send a JSON object");
    in.body = parse_json_strict(req.body, "the request body");
    if (!in.body.is_object()) {
      throw ApiError(400, "invalid_json",
                     "the request body must be a JSON object, got " + json_type_name(in.body));
    }
    for (const char* key : {"photos", "photo"}) {
      auto it = in.body.find(key);
      if (it == in.body.end() || it->is_null()) continue;
      if (it->is_array()) {
        if (int(it->size()) > limits.max_photos) {
          throw ApiError(
              413, "too_many_photos",
              "at most " + std::to_string(limits.max_photos) + " photos per request on this server");
        }
        for (size_t i = 0; i < it->size(); ++i) add_base64_photo(in, (*it)[i], in.photos.size());
      } else {
        add_base64_photo(in, *it, in.photos.size());
      }
      if (int(in.photos.size()) > limits.max_photos) {
        throw ApiError(413, "too_many_photos",
                       "at most " + std::to_string(limits.max_photos) + " photos per request on this server");
      }
      in.body.erase(key);
    }
    take_base64_pose_image(in);
    return in;
  }
  throw ApiError(415, "unsupported_media_type",
                 "send multipart/form-data (photo files + fields) or application/json; got " +
                     (type.empty() ? std::string("no Content-Type") : "'" + type + "'"));
}

}  // namespace a2f_server
