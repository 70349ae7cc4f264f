#include "hub/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "hub/fs_util.h"

namespace a2f::hub {
namespace {

double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string rate(double bytes_per_s) {
  return bytes_per_s > 0 ? human_bytes(uint64_t(bytes_per_s)) + "/s" : "-";
}

std::string clock_text(double s) {
  if (s < 0 || s > 99 * 3600) return "--:--";
  long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

std::string shorten(const std::string& s, size_t max_len) {
  if (s.size() <= max_len) return s;
  if (max_len <= 3) return s.substr(s.size() - max_len);
  return "..." + s.substr(s.size() - (max_len - 3));
}

}  // namespace

ProgressPrinter::ProgressPrinter(FILE* out, bool is_tty, int width, Clock clock)
    : out_(out),
      tty_(is_tty),
      width_(width > 0 ? width : 100),
      clock_(clock ? std::move(clock) : steady_now) {}

std::string ProgressPrinter::format_bar_line(const TransferProgress& p, double bytes_per_s, double eta_s,
                                             int width) {
  std::string head = cat("[", p.index, "/", p.count, "] ");
  // Fixed-width fields, so that the line does not jitter as numbers change.
  char tail[96];
  if (p.total > 0) {
    int pct = int(100.0 * double(p.done) / double(p.total));
    std::snprintf(tail, sizeof(tail), " %3d%% %8s/%-8s %10s %5s", pct, human_bytes(p.done).c_str(),
                  human_bytes(p.total).c_str(), rate(bytes_per_s).c_str(),
                  p.finished ? "done" : clock_text(eta_s).c_str());
  } else {
    std::snprintf(tail, sizeof(tail), " %8s %10s", human_bytes(p.done).c_str(), rate(bytes_per_s).c_str());
  }
  // Room for the name and the bar; the bar shrinks (or goes) before the name gets shorter than 8 characters.
  int avail = width - int(head.size() + std::strlen(tail)) - 1;
  int bar_w = p.total > 0 ? std::clamp(width / 4, 10, 30) : 0;
  if (bar_w && avail - (bar_w + 3) < 8) bar_w = std::max(0, avail - 3 - 8);
  if (bar_w < 5) bar_w = 0;
  int name_w = std::max(1, avail - (bar_w ? bar_w + 3 : 0));
  std::string line = head + shorten(p.name, size_t(name_w));
  line.append(size_t(std::max(0, name_w - int(shorten(p.name, size_t(name_w)).size()))), ' ');
  if (bar_w) {
    int fill = int(double(bar_w) * double(p.done) / double(p.total));
    line += " [" + std::string(size_t(std::clamp(fill, 0, bar_w)), '#') +
            std::string(size_t(bar_w - std::clamp(fill, 0, bar_w)), ' ') + "]";
  }
  return line + tail;
}

std::string ProgressPrinter::format_plain_line(const TransferProgress& p, double bytes_per_s) {
  std::string s = cat("[", p.index, "/", p.count, "] ", p.name, ": ");
  if (p.finished) return s + cat("done, ", human_bytes(p.done));
  s += human_bytes(p.done);
  if (p.total > 0)
    s += cat(" of ", human_bytes(p.total), " (", int(100.0 * double(p.done) / double(p.total)), "%)");
  return s + ", " + rate(bytes_per_s);
}

void ProgressPrinter::update(const TransferProgress& p) {
  double now = clock_();
  std::string key = cat(p.index, "/", p.name);
  if (key != current_) {
    if (line_open_) std::fputc('\n', out_);
    line_open_ = false;
    current_ = key;
    file_start_t_ = now;
    file_start_bytes_ = p.done;
    last_print_t_ = -1e9;
  }
  double elapsed = now - file_start_t_;
  double speed = elapsed > 0.2 ? double(p.done - std::min(p.done, file_start_bytes_)) / elapsed : 0;
  double eta = (speed > 0 && p.total > p.done) ? double(p.total - p.done) / speed : -1;
  if (tty_) {
    if (!p.finished && now - last_print_t_ < 0.1) return;
    std::string line = format_bar_line(p, speed, eta, width_);
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());
    line_open_ = true;
    if (p.finished) {
      std::fputc('\n', out_);
      line_open_ = false;
    }
  } else {
    if (!p.finished && now - last_print_t_ < 10.0) return;
    std::fprintf(out_, "%s\n", format_plain_line(p, speed).c_str());
  }
  last_print_t_ = now;
  std::fflush(out_);
}

ProgressFn stderr_progress() {
  bool tty = ::isatty(STDERR_FILENO) == 1;
  int width = 100;
  struct winsize ws;
  if (tty && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) width = ws.ws_col - 1;
  auto printer = std::make_shared<ProgressPrinter>(stderr, tty, width);
  return [printer](const TransferProgress& p) { printer->update(p); };
}

}  // namespace a2f::hub
