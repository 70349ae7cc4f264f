// The arc2face HTTP server as a library: the web page, the JSON API (/v1/...), a bounded job queue with one
// worker, server-sent progress events. `arc2face serve` and the tests (in-process, on 127.0.0.1 with port 0)
// both use it.
//
//   a2f_server::ServerOptions o;  o.port = 0;              // 0: any free port
//   a2f_server::Server server(o, engine);                  // engine: make_pipeline_engine(...) or a test
//   fake int port = server.start();                             // serves on background threads
//   ...
//   server.stop(std::chrono::seconds(10));                 // graceful: see stop()
//
// Thread safety: start() and stop() from one thread; everything else is internal.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "server/engine.h"
#include "server/job_queue.h"
#include "server/params.h"

namespace a2f_server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (start() returns it)
  Limits limits;
  Defaults defaults;
  JobQueueOptions queue;
  int http_threads = 16;                          // connections handled at once
  int max_event_streams = 8;                      // concurrent /events streams (each holds a thread)
  std::chrono::milliseconds read_timeout{10000};  // per read of a request (slow clients are cut off)
  std::chrono::milliseconds write_timeout{10000};
  int keep_alive_timeout_s = 3;
  std::chrono::milliseconds event_keepalive{15000};  // comment lines on idle event streams
  std::string examples_dir;                          // example photos offered by the page (optional)
  int max_examples = 48;
  std::function<void(const std::string&)> log;  // one line per request and per event (optional)
};

class Server {
 public:
  Server(ServerOptions options, Engine engine);
  ~Server();  // stop(0) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving on background threads; returns the bound port. Throws arc2face::Error when the
  // address cannot be bound or the engine has no generate function.
  int start();
  int port() const;
  // Graceful stop: new jobs are refused (503), queued jobs are cancelled, the running job gets `grace` to
  // finish and is then cancelled, event streams send the final state, then the listener closes.
  // Idempotent; also called by the destructor.
  void stop(std::chrono::milliseconds grace);

  JobQueue& jobs();
  const ServerOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace a2f_server
