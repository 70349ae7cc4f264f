#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace a2f {
namespace {
std::mutex g_mutex;
LogCallback g_callback;
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
}  // namespace

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warning";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "?";
}

void log_set_callback(LogCallback cb) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_callback = std::move(cb);
}

void log_set_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log_message(LogLevel level, const std::string& msg) {
  if (static_cast<int>(level) < g_level.load()) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_callback) {
    g_callback(level, msg);
  } else {
    std::fprintf(stderr, "[%s] %s\n", log_level_name(level), msg.c_str());
  }
}

}  // namespace a2f
