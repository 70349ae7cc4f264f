// The download progress display on stderr: on a terminal one bar redrawn in place at most 10 times a second;
// otherwise (logs, CI) one line per file every 10 seconds and when it completes.
#pragma once
#include <cstdio>
#include <functional>
#include <string>

#include "hub/download.h"

namespace a2f::hub {

class ProgressPrinter {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic
  ProgressPrinter(FILE* out, bool is_tty, int width = 0, Clock clock = {});
  void update(const TransferProgress& p);

  // Test hooks.
  static std::string format_bar_line(const TransferProgress& p, double bytes_per_s, double eta_s, int width);
  static std::string format_plain_line(const TransferProgress& p, double bytes_per_s);

 private:
  FILE* out_;
  bool tty_;
  int width_;
  Clock clock_;
  std::string current_;      // file being shown
  double file_start_t_ = 0;  // when its transfer began
  uint64_t file_start_bytes_ = 0;
  double last_print_t_ = -1e9;
  bool line_open_ = false;
};

// A ProgressFn printing to stderr (bar when stderr is a terminal, lines otherwise).
ProgressFn stderr_progress();

}  // namespace a2f::hub
