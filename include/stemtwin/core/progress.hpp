#pragma once
// Progress reporting for long runs, and a Ctrl-C flag for stopping cleanly.
//
// ProgressReporter prints a one-line bar (rewritten with '\r') when its stream is a
// terminal, and plain periodic lines otherwise (logs, CI). Rate and ETA come from the
// samples done in this run (resumed samples count as done but not towards the rate).
// The clock is injectable so tests are deterministic.
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

namespace stemtwin {

class ProgressReporter {
 public:
  using Clock = std::function<double()>;  ///< seconds, monotonic

  /// `interactive`: draw a bar; by default, whether stderr is a terminal (isatty).
  /// `interval_s`: at most one plain line per interval (bars redraw at most 10× per second).
  ProgressReporter(std::size_t total, std::ostream& out, bool interactive, double interval_s = 5.0,
                   Clock clock = {});
  ProgressReporter(std::size_t total, std::ostream& out);

  /// Starts timing; `already_done` samples (resume) are excluded from the rate.
  void start(std::size_t already_done = 0);
  /// Reports that `done` samples (in total) are complete.
  void update(std::size_t done);
  /// Final line (always printed).
  void finish();

  double rate() const;         ///< samples per second in this run (0 before the first)
  double eta_seconds() const;  ///< remaining / rate (infinity before the first sample)
  std::size_t done() const { return done_; }
  /// The text of the current status, e.g. "12/100 (12.0%) 3.1 samples/s ETA 28 s".
  std::string status() const;

 private:
  void print(bool final);
  std::size_t total_, done_ = 0, first_ = 0;
  std::ostream& out_;
  bool interactive_;
  double interval_;
  Clock clock_;
  double t0_ = 0, last_print_ = -1e300;
  bool bar_open_ = false;
};

/// Human form of a duration: "42 s", "3 min 20 s", "2 h 05 min".
std::string format_duration(double seconds);

/// Installs a SIGINT handler that sets a flag (a second Ctrl-C restores the default action,
/// so it kills). The runner checks interrupt_requested() after each sample and stops cleanly.
void install_interrupt_handler();
bool interrupt_requested();
/// Clears the flag (tests; a new run).
void clear_interrupt();
/// Sets the flag as if Ctrl-C were pressed (tests).
void request_interrupt();

}  // namespace stemtwin
