#pragma once
// Internal to src/session: the progressive image of the Microscope's scans
// (Microscope::scan_lines, AcquisitionControl::lines). A LineBuffer keeps the running or last
// scan's read-out rows under a lock of its own, held only to copy rows in or out (never across
// physics or a read-out); a RowStream, made by scan() for one frame, reads out the rows that
// each finished block of positions completes (readout_rows, acquisition/readout_rows.hpp), so
// the rows handed out are the finished frame's bytes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "stemtwin/acquisition/readout_rows.hpp"
#include "stemtwin/session/microscope.hpp"

namespace stemtwin::microscope_detail {

/// Called by Impl::simulate after each block of positions with the signals of every position
/// simulated so far (the first `simulated` positions, in order).
using BlockHook = std::function<void(const StemResult& so_far, std::size_t simulated)>;

class LineBuffer {
 public:
  /// A new frame: no rows yet, state "running".
  void begin(std::uint64_t call, std::size_t nx, std::size_t ny, std::vector<std::string> channels,
             std::vector<std::string> whole_frame);
  /// The first `rows` rows of the streamed channels (`part`, from readout_rows); returns the
  /// rows new since the last call (none: rows_done unchanged).
  ScanLines add_rows(const ReadOut& part, std::size_t rows);
  /// The finished frame (every channel): state "done"; returns the rows not handed out before.
  ScanLines finish(const std::map<std::string, Image>& images);
  /// The frame stopped: state "cancelled" or "failed"; its rows so far stay readable.
  void stop(const std::string& state);
  /// Rows [from_row, rows_done) of the running or last frame.
  ScanLines since(std::size_t from_row) const;
  std::size_t rows_done() const;
  /// The frame's call, state, size and rows_done, without rows (status()).
  ScanLines summary() const;

 private:
  ScanLines since_locked(std::size_t from_row) const;
  mutable std::mutex mutex_;
  ScanLines frame_;  // rows: full nx × ny images of the channels that have rows, [0, rows_done) filled
};

/// The progressive read-out of one frame: its block hook reads out the rows completed so far
/// with the frame's own settings and hands them to the buffer and to `on_lines` (may be empty).
class RowStream {
 public:
  RowStream(LineBuffer& buffer, const std::vector<Detector>& detectors, const ReadoutSettings& settings,
            const AcquisitionSettings& acquisition, const DistortedScan& scan, std::function<void(const ScanLines&)> on_lines);
  BlockHook hook();
  /// The finished frame's images: every channel, every row.
  void finish(const std::map<std::string, Image>& images);

 private:
  void block_done(const StemResult& so_far, std::size_t simulated);
  LineBuffer& buffer_;
  const std::vector<Detector>& detectors_;
  const ReadoutSettings& settings_;
  const AcquisitionSettings& acquisition_;
  const DistortedScan& scan_;
  std::function<void(const ScanLines&)> on_lines_;
  bool streams_ = false;  // some channel streams by row
};

}  // namespace stemtwin::microscope_detail
