// The JSON API: POST /v1/generate, POST /v1/embed, GET/DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/events (SSE),
// GET /v1/jobs/{id}/images/{i}.png, GET /health, GET /v1/config, GET /v1/examples.
#include <algorithm>
#include <cmath>

#include "server/codecs.h"
#include "server/server_impl.h"

namespace a2f_server {

namespace {

using nlohmann::json;

std::string photo_label(size_t i, size_t n) {
  return n == 1 ? "the photo" : "photo " + std::to_string(i + 1);
}

std::string megapixels(int64_t px) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MP", double(px) / 1e6);
  return buf;
}

json faces_json(const PhotoAnalysis& a) {
  json faces = json::array();
  for (const auto& f : a.faces) {
    faces.push_back({{"box", {f.x1, f.y1, f.x2, f.y2}}, {"score", f.score}});
  }
  return faces;
}

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

}  // namespace

Server::Impl::Identity Server::Impl::identity_from_photos(const std::vector<std::string>& photos) {
  if (!engine.analyze_photo) {
    throw ApiError(501, "no_face_analysis",
                   "this server was started without face models (--antelope DIR), so it cannot read photos; "
                   "send an id_embedding (512 numbers) instead");
  }
  Identity id;
  std::vector<std::vector<float>> embeddings;
  std::vector<PhotoAnalysis> analyses;
  for (size_t i = 0; i < photos.size(); ++i) {
    auto info = sniff_image(photos[i]);
    if (!info) {
      throw ApiError(415, "unsupported_image",
                     photo_label(i, photos.size()) + " is not a PNG, JPEG or WebP image");
    }
    if (info->width <= 0 || info->height <= 0) {
      throw ApiError(400, "invalid_image", photo_label(i, photos.size()) + " has no pixels");
    }
    if (info->width * info->height > opt.limits.max_photo_pixels) {
      throw ApiError(413, "photo_too_large",
                     photo_label(i, photos.size()) + " is " + std::to_string(info->width) + "x" +
                         std::to_string(info->height) + " (" + megapixels(info->width * info->height) +
                         "); the limit is " + megapixels(opt.limits.max_photo_pixels) + " on this server");
    }
    PhotoAnalysis a;
    try {
      std::lock_guard lock(analyze_mu);
      a = engine.analyze_photo(photos[i]);
    } catch (const ApiError&) {
      throw;
    } catch (const arc2face::Error& e) {
      throw ApiError(400, "invalid_image", photo_label(i, photos.size()) + " could not be read: " + e.what());
    }
    if (a.chosen < 0 || a.embedding.empty()) {
      throw ApiError(
          422, "no_face",
          "no face found in " + photo_label(i, photos.size()) +
              " — try a photo with more margin around the face (tightly cropped faces are not detected)");
    }
    embeddings.push_back(a.embedding);
    analyses.push_back(std::move(a));
  }
  CombinedIdentity combined =
      engine.combine ? engine.combine(embeddings) : CombinedIdentity{mean_identity(embeddings), {}};
  id.embedding = std::move(combined.embedding);
  for (size_t i = 0; i < analyses.size(); ++i) {
    const auto& a = analyses[i];
    bool used = std::find(combined.dropped.begin(), combined.dropped.end(), int(i)) == combined.dropped.end();
    id.inputs.push_back({{"width", a.width},
                         {"height", a.height},
                         {"faces", faces_json(a)},
                         {"chosen", a.chosen},
                         {"used", used},
                         {"similarity_to_identity", cosine(a.embedding, id.embedding)}});
  }
  return id;
}

arc2face::RgbImage Server::Impl::read_pose_image(const std::string& bytes) {
  auto info = sniff_image(bytes);
  if (!info) throw ApiError(415, "unsupported_image", "the pose image is not a PNG, JPEG or WebP image");
  if (info->width <= 0 || info->height <= 0)
    throw ApiError(400, "invalid_pose_image", "the pose image has no pixels");
  if (info->width * info->height > opt.limits.max_pose_pixels) {
    throw ApiError(413, "pose_image_too_large",
                   "the pose image is " + std::to_string(info->width) + "x" + std::to_string(info->height) +
                       " (" + megapixels(info->width * info->height) + "); the limit is " +
                       megapixels(opt.limits.max_pose_pixels) +
                       " on this server (it is resized to the output size anyway)");
  }
  try {
    std::lock_guard lock(analyze_mu);  // one decode at a time, like the photos
    return arc2face::decode_image_rgb(bytes.data(), bytes.size());
  } catch (const arc2face::Error& e) {
    throw ApiError(400, "invalid_pose_image", std::string("the pose image could not be read: ") + e.what());
  }
}

void Server::Impl::on_generate(const httplib::Request& req, httplib::Response& res) {
  if (queue->shutting_down()) throw ApiError(503, "shutting_down", "the server is shutting down");
  RequestInput in = read_request_input(req, opt.limits);
  GenerateParams p =
      parse_generate_params(in.body, opt.limits, opt.defaults, engine.lcm_available, next_random_seed());
  if (in.pose_image && !engine.controlnet_available) {
    throw ApiError(
        400, "controlnet_unavailable",
        "this server was started without the pose ControlNet, so a pose_image cannot be used; leave "
        "the pose image out or restart the server with --controlnet DIR");
  }
  bool has_embedding = in.body.contains("id_embedding") && !in.body["id_embedding"].is_null();
  if (has_embedding && !in.photos.empty()) {
    throw ApiError(400, "invalid_parameter", "send photos or an id_embedding, not both");
  }
  if (!has_embedding && in.photos.empty()) {
    throw ApiError(
        400, "missing_input",
        "no input: upload one or more photos (field 'photo') or send an id_embedding of 512 numbers");
  }
  // Refuse early (before face analysis) when the queue is already full; submit() re-checks.
  if (queue->stats().queued >= queue->options().max_queued) {
    res.set_header("Retry-After", "10");
    throw ApiError(429, "queue_full",
                   "the queue is full (" + std::to_string(queue->options().max_queued) +
                       " jobs waiting); retry in a few seconds");
  }
  arc2face::RgbImage pose;
  if (in.pose_image) {
    pose = read_pose_image(*in.pose_image);
    in.pose_image.reset();  // the encoded bytes are not needed any more
    p.pose_width = pose.width;
    p.pose_height = pose.height;
  }
  JobSpec spec;
  if (has_embedding) {
    auto e = parse_id_embedding(in.body["id_embedding"]);
    spec.identity = mean_identity({e});
    spec.inputs = json::array();
  } else {
    Identity id = identity_from_photos(in.photos);
    spec.identity = std::move(id.embedding);
    spec.inputs = std::move(id.inputs);
  }
  spec.request = p.to_request();
  spec.request.id_embedding = spec.identity;
  if (p.pose_width > 0) {
    spec.request.control_rgb = std::move(pose.rgb);
    spec.request.control_width = p.pose_width;
    spec.request.control_height = p.pose_height;
  }
  spec.params = p.to_json();
  auto job = JobQueue::make_job(std::move(spec));
  switch (queue->submit(job)) {
    case SubmitResult::accepted:
      break;
    case SubmitResult::queue_full:
      res.set_header("Retry-After", "10");
      throw ApiError(429, "queue_full",
                     "the queue is full (" + std::to_string(queue->options().max_queued) +
                         " jobs waiting); retry in a few seconds");
    case SubmitResult::shutting_down:
      throw ApiError(503, "shutting_down", "the server is shutting down");
  }
  res.set_header("Location", "/v1/jobs/" + job->id());
  send_json(res, 202, job_json(*job, queue->snapshot(*job), false));
}

void Server::Impl::on_embed(const httplib::Request& req, httplib::Response& res) {
  RequestInput in = read_request_input(req, opt.limits);
  for (const auto& [key, value] : in.body.items()) {
    throw ApiError(400, "invalid_parameter", "unknown field '" + key + "'; /v1/embed takes only photos");
  }
  if (in.pose_image)
    throw ApiError(400, "invalid_parameter", "/v1/embed takes only photos, not a pose_image");
  if (in.photos.empty())
    throw ApiError(400, "missing_input", "no photo: upload one or more photos (field 'photo')");
  Identity id = identity_from_photos(in.photos);
  send_json(res, 200, json{{"embedding", id.embedding}, {"photos", id.inputs}});
}

std::vector<JobImage> Server::Impl::run_job(const Job& job, const ProgressSink& progress) {
  auto images = engine.generate(job.spec().request, progress);
  std::vector<JobImage> out;
  out.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& im = images[i];
    JobImage r;
    r.index = im.index;
    r.seed = im.seed;
    r.width = im.width;
    r.height = im.height;
    auto png = arc2face::encode_png(im);
    r.png.assign(png.begin(), png.end());
    if (!engine.embed_image) {
      r.note = "face analysis is not loaded (start the server with --antelope DIR)";
    } else {
      if (!progress({"similarity", int(i) + 1, int(images.size())})) throw arc2face::Cancelled();
      std::optional<std::vector<float>> e;
      {
        std::lock_guard lock(analyze_mu);
        e = engine.embed_image(im);
      }
      if (e && !e->empty()) {
        r.id_similarity = cosine(*e, job.spec().identity);
      } else {
        r.note = "no face detected in this image";
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

json Server::Impl::job_json(const Job& job, const JobSnapshot& s, bool with_base64) {
  std::string base = "/v1/jobs/" + s.id;
  json images = json::array();
  for (const auto& im : s.images) {
    json j = {{"index", im.index},
              {"seed", im.seed},
              {"width", im.width},
              {"height", im.height},
              {"url", base + "/images/" + std::to_string(im.index) + ".png"},
              {"id_similarity", im.id_similarity ? json(*im.id_similarity) : json(nullptr)},
              {"note", nullable(im.note)}};
    if (with_base64) {
      auto full = queue->image(s.id, im.index);
      if (full) j["png_base64"] = base64_encode(full->png);
    }
    images.push_back(std::move(j));
  }
  auto time_or_null = [](double t) { return t > 0 ? json(t) : json(nullptr); };
  json j = {{"id", s.id},
            {"state", to_string(s.state)},
            {"progress",
             {{"stage", s.progress.stage},
              {"step", s.progress.step},
              {"total", s.progress.total},
              {"fraction", s.progress.fraction}}},
            {"params", job.spec().params},
            {"inputs", job.spec().inputs},
            {"images", images},
            {"error", nullable(s.error)},
            {"created_at", time_or_null(s.created_at)},
            {"started_at", time_or_null(s.started_at)},
            {"finished_at", time_or_null(s.finished_at)},
            {"urls", {{"self", base}, {"events", base + "/events"}}}};
  if (s.state == JobState::queued) j["queue_position"] = s.queue_position;
  return j;
}

void Server::Impl::on_job(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  auto job = queue->find(id);
  if (!job) throw ApiError(404, "job_not_found", "no job with id '" + id + "' (unknown, deleted or expired)");
  std::string include = req.get_param_value("include");
  if (!include.empty() && include != "base64") {
    throw ApiError(400, "invalid_parameter", "include must be 'base64' (PNG bytes inline) or left out");
  }
  send_json(res, 200, job_json(*job, queue->snapshot(*job), include == "base64"));
}

void Server::Impl::on_job_image(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  int index = std::stoi(req.matches[2]);
  if (!queue->find(id))
    throw ApiError(404, "job_not_found", "no job with id '" + id + "' (unknown, deleted or expired)");
  auto im = queue->image(id, index);
  if (!im)
    throw ApiError(404, "image_not_found",
                   "job '" + id + "' has no image " + std::to_string(index) + " (yet)");
  res.set_header("Content-Disposition", "inline; filename=\"arc2face_seed" + std::to_string(im->seed) + "_" +
                                            std::to_string(index) + ".png\"");
  res.set_header("Cache-Control", "private, max-age=3600");
  res.set_content(std::move(im->png), "image/png");
}

void Server::Impl::on_job_delete(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  auto before = queue->snapshot(id);
  if (!before)
    throw ApiError(404, "job_not_found", "no job with id '" + id + "' (unknown, deleted or expired)");
  if (is_terminal(before->state)) {  // finished: forget it and free its images
    queue->remove(id);
    send_json(res, 200, json{{"id", id}, {"state", "deleted"}});
    return;
  }
  auto state = queue->cancel(id).value_or(JobState::cancelled);
  // A running job stops at its next progress report; its final state arrives on /events and GET.
  send_json(res, 200,
            json{{"id", id}, {"state", state == JobState::running ? "cancelling" : to_string(state)}});
}

void Server::Impl::on_job_events(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  auto job = queue->find(id);
  if (!job) throw ApiError(404, "job_not_found", "no job with id '" + id + "' (unknown, deleted or expired)");
  if (event_streams.fetch_add(1) >= opt.max_event_streams) {
    event_streams.fetch_sub(1);
    throw ApiError(503, "too_many_streams",
                   "too many event streams are open; poll GET /v1/jobs/" + id + " instead");
  }
  struct StreamState {
    uint64_t seen = 0;
    bool started = false;
  };
  auto st = std::make_shared<StreamState>();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, st](size_t, httplib::DataSink& sink) {
        if (!st->started) {
          st->started = true;
          static const std::string retry = "retry: 2000\n\n";
          if (!sink.write(retry.data(), retry.size())) return false;
        }
        uint64_t v = queue->wait_for_change(*job, st->seen, opt.event_keepalive);
        if (v == st->seen && !queue->waiters_aborted()) {
          static const std::string ping = ": keep-alive\n\n";
          return sink.write(ping.data(), ping.size());
        }
        st->seen = v;
        JobSnapshot s = queue->snapshot(*job);
        bool done = is_terminal(s.state) || queue->waiters_aborted();
        std::string ev = std::string("id: ") + std::to_string(s.version) +
                         "\nevent: " + (done ? "done" : "progress") +
                         "\ndata: " + json_body(job_json(*job, s, false)) + "\n\n";
        if (!sink.write(ev.data(), ev.size())) return false;
        if (done) sink.done();
        return true;
      },
      [this](bool) { event_streams.fetch_sub(1); });
}

void Server::Impl::on_health(const httplib::Request&, httplib::Response& res) {
  auto st = queue->stats();
  send_json(res, 200,
            json{{"status", st.shutting_down ? "shutting_down" : "ok"},
                 {"version", "0.1.0"},
                 {"queue",
                  {{"queued", st.queued},
                   {"running", st.running},
                   {"finished_kept", st.finished},
                   {"completed_total", st.completed_total},
                   {"max_queued", queue->options().max_queued}}},
                 {"face_analysis", bool(engine.analyze_photo)},
                 {"lcm", engine.lcm_available},
                 {"controlnet", engine.controlnet_available},
                 {"engine", engine.description}});
}

void Server::Impl::on_config(const httplib::Request&, httplib::Response& res) {
  const auto& l = opt.limits;
  const auto& d = opt.defaults;
  send_json(res, 200,
            json{{"limits",
                  {{"max_body_bytes", l.max_body_bytes},
                   {"max_photos", l.max_photos},
                   {"max_photo_pixels", l.max_photo_pixels},
                   {"max_images", l.max_images},
                   {"min_steps", 1},
                   {"max_steps", l.max_steps},
                   {"min_guidance", 0.1},
                   {"max_guidance", 10.0},
                   {"max_pixels", l.max_pixels},
                   {"max_pose_pixels", l.max_pose_pixels},
                   {"min_control_scale", kMinControlScale},
                   {"max_control_scale", kMaxControlScale},
                   {"max_seed", 2147483647}}},
                 {"defaults",
                  {{"steps", d.steps},
                   {"guidance", d.guidance},
                   {"lcm_steps", d.lcm_steps},
                   {"lcm_guidance", d.lcm_guidance},
                   {"num_images", d.num_images},
                   {"width", d.width},
                   {"height", d.height},
                   {"scheduler", d.scheduler},
                   {"control_scale", d.control_scale}}},
                 {"schedulers", scheduler_names()},
                 {"lcm_available", engine.lcm_available},
                 {"controlnet_available", engine.controlnet_available},
                 {"face_analysis", bool(engine.analyze_photo)},
                 {"examples", examples.size()}});
}

void Server::Impl::on_examples(const httplib::Request&, httplib::Response& res) {
  json list = json::array();
  for (const auto& e : examples) list.push_back({{"name", e.name}, {"url", "/examples/" + e.name}});
  send_json(res, 200, json{{"examples", list}});
}

}  // namespace a2f_server
