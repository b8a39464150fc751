#include "stemtwin/acquisition/readout_rows.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "readout_detail.hpp"

namespace stemtwin {

bool streams_by_row(const ReadoutChannel& channel, const ReadoutSettings& settings) {
  return settings.source_size_A == 0 && channel.kind != ChannelKind::Idpc;
}

ReadOut readout_rows(const StemResult& prefix, std::size_t rows, const std::vector<Detector>& detectors,
                     const ReadoutSettings& settings, const AcquisitionSettings& acquisition, const DistortedScan& scan) {
  if (rows == 0 || rows > settings.ny)
    throw std::invalid_argument("readout_rows: " + std::to_string(rows) + " rows of a frame of " + std::to_string(settings.ny));
  const std::vector<ReadoutChannel> channels = readout_channels(detectors);
  if (std::none_of(channels.begin(), channels.end(), [&](const ReadoutChannel& c) { return streams_by_row(c, settings); }))
    return {};
  // The same read-out on the frame cut after `rows` rows: the causal steps give the same bytes
  // for the rows they see (streams keyed by row, afterglow carried forward only).
  const std::size_t n = rows * settings.nx;
  StemResult part;
  for (const DetectorSignal& s : prefix.signals) {
    if (s.values.size() < n * s.bins)
      throw std::invalid_argument("readout_rows: detector " + s.name + " has " + std::to_string(s.values.size() / s.bins) +
                                  " positions, fewer than " + std::to_string(rows) + " rows");
    part.signals.push_back({s.name, s.depth_index, s.bins, std::vector<double>(s.values.begin(), s.values.begin() + long(n * s.bins))});
  }
  part.depths_A = prefix.depths_A;
  ReadoutSettings rs = settings;
  rs.ny = rows;
  AcquisitionSettings acq = acquisition;
  acq.scan.grid.ny = rows;
  DistortedScan ds;
  ds.nx = scan.nx;
  ds.ny = rows;
  ds.positions_A.assign(scan.positions_A.begin(), scan.positions_A.begin() + long(std::min(n, scan.positions_A.size())));
  ds.dose_multiplier.assign(scan.dose_multiplier.begin(), scan.dose_multiplier.begin() + long(std::min(n, scan.dose_multiplier.size())));
  ds.time_s.assign(scan.time_s.begin(), scan.time_s.begin() + long(std::min(n, scan.time_s.size())));
  return detail::readout_where(part, detectors, rs, acq, ds, [&](const ReadoutChannel& c) { return streams_by_row(c, settings); });
}

}  // namespace stemtwin
