// Leveled logging with one user callback; no iostreams in the library.
#pragma once
#include <functional>
#include <string>

#include "core/error.h"

namespace a2f {

enum class LogLevel : int { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

using LogCallback = std::function<void(LogLevel, const std::string&)>;

// Replaces the sink (default: stderr with a level prefix). Pass nullptr to restore the default.
void log_set_callback(LogCallback cb);
void log_set_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& msg);
const char* log_level_name(LogLevel level);

template <class... Args>
void log_debug(const Args&... a) {
  if (log_level() <= LogLevel::Debug) log_message(LogLevel::Debug, cat(a...));
}
template <class... Args>
void log_info(const Args&... a) {
  if (log_level() <= LogLevel::Info) log_message(LogLevel::Info, cat(a...));
}
template <class... Args>
void log_warn(const Args&... a) {
  if (log_level() <= LogLevel::Warn) log_message(LogLevel::Warn, cat(a...));
}
template <class... Args>
void log_error(const Args&... a) {
  if (log_level() <= LogLevel::Error) log_message(LogLevel::Error, cat(a...));
}

}  // namespace a2f
