#include "server/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "server/server_impl.h"
#include "server/web_assets.h"

namespace a2f_server {

namespace fs = std::filesystem;
using nlohmann::json;

std::string json_body(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(json_body(j), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  send_json(res, status, json{{"error", {{"code", code}, {"message", message}}}});
}

namespace {

std::string default_code(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 411:
      return "length_required";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 415:
      return "unsupported_media_type";
    case 416:
      return "range_not_satisfiable";
    case 429:
      return "queue_full";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal_error" : "error";
  }
}

std::string default_message(int status, const Limits& limits) {
  switch (status) {
    case 400:
      return "malformed request (bad request line, headers or body)";
    case 404:
      return "not found";
    case 413:
      return "request body too large: the limit is " + std::to_string(limits.max_body_bytes >> 20) +
             " MiB on this server";
    case 414:
      return "request URI too long";
    default:
      return "HTTP error " + std::to_string(status);
  }
}

// Wraps a handler: ApiError → its JSON error; anything else → 500/503 JSON, never a crash.
template <typename Fn>
httplib::Server::Handler guarded(Server::Impl* impl, Fn fn) {
  return [impl, fn](const httplib::Request& req, httplib::Response& res) {
    try {
      (impl->*fn)(req, res);
    } catch (const ApiError& e) {
      send_error(res, e.status, e.code, e.what());
    } catch (const std::bad_alloc&) {
      send_error(res, 503, "out_of_memory",
                 "the server ran out of memory for this request; try a smaller one");
    } catch (const std::exception& e) {
      send_error(res, 500, "internal_error", e.what());
    }
  };
}

}  // namespace

Server::Impl::Impl(ServerOptions options, Engine eng) : opt(std::move(options)), engine(std::move(eng)) {
  std::random_device rd;
  seed_rng.seed((uint64_t(rd()) << 32) ^ rd());
  queue = std::make_unique<JobQueue>(
      opt.queue, [this](const Job& job, const ProgressSink& p) { return run_job(job, p); });
}

Server::Impl::~Impl() {
  if (started && !stopped) stop(std::chrono::milliseconds(0));
  queue.reset();
}

uint64_t Server::Impl::next_random_seed() {
  std::lock_guard lock(seed_mu);
  return seed_rng();
}

void Server::Impl::load_examples() {
  examples.clear();
  if (opt.examples_dir.empty()) return;
  std::error_code ec;
  if (!fs::is_directory(opt.examples_dir, ec)) {
    throw arc2face::Error("--examples: '" + opt.examples_dir + "' is not a folder");
  }
  for (const auto& entry : fs::directory_iterator(opt.examples_dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    std::string name = entry.path().filename().string();
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    std::string mime = ext == ".png"                     ? "image/png"
                       : ext == ".jpg" || ext == ".jpeg" ? "image/jpeg"
                       : ext == ".webp"                  ? "image/webp"
                                                         : "";
    bool plain_name = std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
    if (mime.empty() || !plain_name || name[0] == '.') continue;
    if (entry.file_size(ec) > opt.limits.max_body_bytes) continue;
    examples.push_back({name, entry.path().string(), mime});
  }
  std::sort(examples.begin(), examples.end(),
            [](const Example& a, const Example& b) { return a.name < b.name; });
  if (int(examples.size()) > opt.max_examples) examples.resize(size_t(opt.max_examples));
}

void Server::Impl::install_routes() {
  auto& s = http;
  s.new_task_queue = [n = std::max(2, opt.http_threads)] { return new httplib::ThreadPool(size_t(n)); };
  s.set_payload_max_length(opt.limits.max_body_bytes);
  s.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(opt.read_timeout));
  s.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(opt.write_timeout));
  s.set_keep_alive_timeout(opt.keep_alive_timeout_s);
  s.set_keep_alive_max_count(100);
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server silently share the port.
  s.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });
  s.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}});

  // Before any body is read: refuse methods we do not serve and bodies whose size is not declared (chunked or
  // until-close bodies are not bounded by the payload limit in this httplib version).
  s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    static const char* allowed[] = {"GET", "HEAD", "POST", "DELETE"};
    if (std::none_of(std::begin(allowed), std::end(allowed),
                     [&](const char* m) { return req.method == m; })) {
      res.set_header("Connection", "close");
      res.set_header("Allow", "GET, HEAD, POST, DELETE");
      send_error(res, 405, "method_not_allowed", "method " + req.method + " is not allowed");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      res.set_header("Connection", "close");
      send_error(res, 411, "length_required",
                 "chunked request bodies are not accepted; send a Content-Length");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method == "POST" && !req.has_header("Content-Length")) {
      res.set_header("Connection", "close");
      send_error(res, 411, "length_required", "POST requests need a Content-Length header");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // httplib's own errors (bad request line, 413 after the payload limit, unknown routes) become JSON too.
  s.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, res.status, default_code(res.status), default_message(res.status, opt.limits));
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal_error", "internal error");
  });
  if (opt.log) {
    s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      opt.log(req.remote_addr + " " + req.method + " " + req.path + " " + std::to_string(res.status));
    });
  }

  s.Get("/health", guarded(this, &Impl::on_health));
  s.Get("/v1/config", guarded(this, &Impl::on_config));
  s.Get("/v1/examples", guarded(this, &Impl::on_examples));
  s.Get(R"(/examples/([^/]+))", guarded(this, &Impl::on_example_file));
  s.Post("/v1/generate", guarded(this, &Impl::on_generate));
  s.Post("/v1/embed", guarded(this, &Impl::on_embed));
  s.Get(R"(/v1/jobs/([^/]+)/events)", guarded(this, &Impl::on_job_events));
  s.Get(R"(/v1/jobs/([^/]+)/images/(\d{1,3})(\.png)?)", guarded(this, &Impl::on_job_image));
  s.Get(R"(/v1/jobs/([^/]+))", guarded(this, &Impl::on_job));
  s.Delete(R"(/v1/jobs/([^/]+))", guarded(this, &Impl::on_job_delete));
  s.Get(R"(/([A-Za-z0-9_.-]*))", guarded(this, &Impl::on_static));
}

void Server::Impl::on_static(const httplib::Request& req, httplib::Response& res) {
  std::string name = req.matches[1];
  if (name.empty()) name = "index.html";
  const WebAsset* a = find_web_asset(name);
  if (!a) throw ApiError(404, "not_found", "no page or API route at " + req.path + " (the API is under /v1)");
  res.set_content(a->data.data(), a->data.size(), std::string(a->mime).c_str());
  res.set_header("Cache-Control", "no-cache");
  if (name == "index.html") {
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                   "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
  }
}

void Server::Impl::on_example_file(const httplib::Request& req, httplib::Response& res) {
  std::string name = req.matches[1];
  for (const auto& e : examples) {
    if (e.name != name) continue;
    std::ifstream f(e.path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) throw ApiError(500, "io_error", "cannot read example " + name);
    res.set_content(std::move(bytes), e.mime.c_str());
    res.set_header("Cache-Control", "max-age=3600");
    return;
  }
  throw ApiError(404, "not_found", "no example photo named '" + name + "'");
}

int Server::Impl::start() {
  if (started) return port;
  if (!engine.generate) throw arc2face::Error("the server needs a generate function (Engine::generate)");
  load_examples();
  install_routes();
  if (opt.port == 0) {
    port = http.bind_to_any_port(opt.host);
  } else {
    port = http.bind_to_port(opt.host, opt.port) ? opt.port : -1;
  }
  if (port <= 0) {
    throw arc2face::Error("cannot listen on " + opt.host + ":" + std::to_string(opt.port) + ": " +
                          std::strerror(errno) +
                          " (is the port in use, or the host not an address of this machine?)");
  }
  // This httplib was built with a listen backlog of 5: a burst of connections overflows it, and the dropped
  // handshakes come back a second or more later (clients time out). listen() again raises the backlog.
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  listener = std::thread([this] { http.listen_after_bind(); });
  // stop() only works once the listen loop runs; the socket already accepts connections meanwhile.
  for (int i = 0; i < 5000 && !http.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  started = true;
  return port;
}

void Server::Impl::stop(std::chrono::milliseconds grace) {
  if (!started || stopped) return;
  stopped = true;
  queue->shutdown(grace);  // event streams keep running meanwhile and report the final states
  queue->abort_waiters();
  // Let event streams send their final event and end before the listener closes (httplib stops calling
  // content providers once it is stopping, which would cut a stream mid-way).
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (event_streams.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  http.stop();
  if (listener.joinable()) listener.join();
}

Server::Server(ServerOptions options, Engine engine)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(engine))) {}
Server::~Server() = default;
int Server::start() {
  return impl_->start();
}
int Server::port() const {
  return impl_->port;
}
void Server::stop(std::chrono::milliseconds grace) {
  impl_->stop(grace);
}
JobQueue& Server::jobs() {
  return *impl_->queue;
}
const ServerOptions& Server::options() const {
  return impl_->opt;
}

}  // namespace a2f_server
