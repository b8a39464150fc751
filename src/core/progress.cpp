#include "stemtwin/core/progress.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <sstream>

namespace stemtwin {

namespace {
double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressReporter::ProgressReporter(std::size_t total, std::ostream& out, bool interactive, double interval_s, Clock clock)
    : total_(total), out_(out), interactive_(interactive), interval_(interval_s), clock_(clock ? clock : steady_seconds) {}

ProgressReporter::ProgressReporter(std::size_t total, std::ostream& out)
    : ProgressReporter(total, out, isatty(STDERR_FILENO) != 0) {}

void ProgressReporter::start(std::size_t already_done) {
  first_ = done_ = already_done;
  t0_ = clock_();
  last_print_ = -1e300;
}

double ProgressReporter::rate() const {
  const double dt = clock_() - t0_;
  const std::size_t n = done_ - first_;
  return (n == 0 || dt <= 0) ? 0.0 : static_cast<double>(n) / dt;
}

double ProgressReporter::eta_seconds() const {
  const double r = rate();
  if (r <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(total_ > done_ ? total_ - done_ : 0) / r;
}

std::string format_duration(double s) {
  if (!std::isfinite(s)) return "?";
  std::ostringstream o;
  const long t = std::lround(s);
  if (t < 60) o << t << " s";
  else if (t < 3600) o << t / 60 << " min " << std::setw(2) << std::setfill('0') << t % 60 << " s";
  else o << t / 3600 << " h " << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << " min";
  return o.str();
}

std::string ProgressReporter::status() const {
  std::ostringstream o;
  const double pct = total_ ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
  o << done_ << '/' << total_ << " (" << std::fixed << std::setprecision(1) << pct << "%)";
  const double r = rate();
  if (r > 0) {
    if (r >= 1) o << ' ' << std::setprecision(2) << r << " samples/s";
    else o << ' ' << std::setprecision(1) << 1.0 / r << " s/sample";
    o << " ETA " << format_duration(eta_seconds());
  }
  return o.str();
}

void ProgressReporter::print(bool final) {
  if (interactive_) {
    constexpr int width = 30;
    const double f = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    const int fill = static_cast<int>(f * width);
    out_ << '\r' << '[' << std::string(static_cast<std::size_t>(fill), '#')
         << std::string(static_cast<std::size_t>(width - fill), '.') << "] " << status() << "\033[K";
    bar_open_ = true;
    if (final) out_ << '\n', bar_open_ = false;
  } else {
    out_ << "progress: " << status() << (final ? " done" : "") << '\n';
  }
  out_.flush();
}

void ProgressReporter::update(std::size_t done) {
  done_ = done;
  const double now = clock_();
  const double gap = interactive_ ? 0.1 : interval_;
  if (now - last_print_ >= gap || done_ == total_) {
    last_print_ = now;
    print(false);
  }
}

void ProgressReporter::finish() { print(true); }

namespace {
std::atomic<bool> g_interrupt{false};
extern "C" void on_sigint(int) {
  g_interrupt.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills
}
}  // namespace

void install_interrupt_handler() {
  g_interrupt.store(false);
  std::signal(SIGINT, on_sigint);
}
bool interrupt_requested() { return g_interrupt.load(); }
void clear_interrupt() { g_interrupt.store(false); }
void request_interrupt() { g_interrupt.store(true); }

}  // namespace stemtwin
