// The progressive image of the Microscope's scans; see microscope_lines.hpp.
#include "microscope_lines.hpp"

#include <algorithm>
#include <cstring>

namespace stemtwin::microscope_detail {

namespace {
/// Rows [from, to) of an nx-wide image as an nx × (to − from) image.
Image rows_of(const Image& im, std::size_t from, std::size_t to) {
  Image out(im.nx, to - from);
  std::copy(im.data.begin() + long(from * im.nx), im.data.begin() + long(to * im.nx), out.data.begin());
  return out;
}
}  // namespace

void LineBuffer::begin(std::uint64_t call, std::size_t nx, std::size_t ny, std::vector<std::string> channels,
                       std::vector<std::string> whole_frame) {
  ScanLines f;
  f.call = call;
  f.state = "running";
  f.nx = nx, f.ny = ny;
  f.channels = std::move(channels);
  f.whole_frame = std::move(whole_frame);
  std::lock_guard<std::mutex> lock(mutex_);
  frame_ = std::move(f);
}

ScanLines LineBuffer::add_rows(const ReadOut& part, std::size_t rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t from = frame_.rows_done;
  if (rows <= from) return since_locked(from);
  for (const std::string& c : part.channels) {
    const Image& src = part.images.at(c);
    Image& dst = frame_.rows[c];
    if (dst.data.empty()) dst = Image(frame_.nx, frame_.ny);
    std::copy(src.data.begin() + long(from * frame_.nx), src.data.begin() + long(rows * frame_.nx), dst.data.begin() + long(from * frame_.nx));
  }
  frame_.rows_done = rows;
  return since_locked(from);
}

ScanLines LineBuffer::finish(const std::map<std::string, Image>& images) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t from = frame_.rows_done;
  for (const auto& [name, im] : images) {
    const bool whole = std::find(frame_.whole_frame.begin(), frame_.whole_frame.end(), name) != frame_.whole_frame.end();
    (whole ? frame_.whole : frame_.rows)[name] = im;
  }
  frame_.rows_done = frame_.ny;
  frame_.state = "done";
  return since_locked(from);
}

ScanLines LineBuffer::summary() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ScanLines s;
  s.call = frame_.call, s.state = frame_.state, s.nx = frame_.nx, s.ny = frame_.ny, s.rows_done = frame_.rows_done;
  s.first_row = frame_.rows_done;
  return s;
}

void LineBuffer::stop(const std::string& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  frame_.state = state;
}

ScanLines LineBuffer::since(std::size_t from_row) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return since_locked(from_row);
}

std::size_t LineBuffer::rows_done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frame_.rows_done;
}

ScanLines LineBuffer::since_locked(std::size_t from_row) const {
  ScanLines out;
  out.call = frame_.call;
  out.state = frame_.state;
  out.nx = frame_.nx, out.ny = frame_.ny;
  out.rows_done = frame_.rows_done;
  out.first_row = std::min(from_row, frame_.rows_done);
  out.channels = frame_.channels;
  out.whole_frame = frame_.whole_frame;
  for (const auto& [name, im] : frame_.rows) out.rows[name] = rows_of(im, out.first_row, frame_.rows_done);
  out.whole = frame_.whole;
  return out;
}

RowStream::RowStream(LineBuffer& buffer, const std::vector<Detector>& detectors, const ReadoutSettings& settings,
                     const AcquisitionSettings& acquisition, const DistortedScan& scan, std::function<void(const ScanLines&)> on_lines)
    : buffer_(buffer), detectors_(detectors), settings_(settings), acquisition_(acquisition), scan_(scan), on_lines_(std::move(on_lines)) {
  std::vector<std::string> channels, whole;
  for (const ReadoutChannel& c : readout_channels(detectors)) {
    channels.push_back(c.name);
    if (streams_by_row(c, settings)) streams_ = true;
    else whole.push_back(c.name);
  }
  buffer_.begin(settings.sample, settings.nx, settings.ny, std::move(channels), std::move(whole));
}

BlockHook RowStream::hook() {
  return [this](const StemResult& so_far, std::size_t simulated) { block_done(so_far, simulated); };
}

void RowStream::block_done(const StemResult& so_far, std::size_t simulated) {
  const std::size_t rows = simulated / settings_.nx;
  if (!streams_ || rows == 0 || rows <= buffer_.rows_done()) return;
  // The read-out runs outside the buffer's lock: scan_lines() answers meanwhile.
  const ReadOut part = readout_rows(so_far, rows, detectors_, settings_, acquisition_, scan_);
  const ScanLines fresh = buffer_.add_rows(part, rows);
  if (on_lines_) on_lines_(fresh);
}

void RowStream::finish(const std::map<std::string, Image>& images) {
  const ScanLines last = buffer_.finish(images);
  if (on_lines_) on_lines_(last);
}

}  // namespace stemtwin::microscope_detail
