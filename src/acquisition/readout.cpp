#include "stemtwin/acquisition/readout.hpp"

#include "readout_detail.hpp"

#include <stdexcept>
#include <utility>

namespace stemtwin {

std::vector<ReadoutChannel> readout_channels(const std::vector<Detector>& detectors) {
  std::vector<ReadoutChannel> out;
  std::uint64_t noise = 0;
  auto add = [&](const std::string& detector, std::string name, ChannelKind kind, std::size_t bin, bool numbered) {
    out.push_back({std::move(name), detector, kind, bin, numbered ? ++noise : 0});
  };
  for (const Detector& d : detectors) {
    const std::string& n = detector_name(d);
    if (std::holds_alternative<AnnularDetector>(d)) {
      add(n, n, ChannelKind::Annular, 0, true);
    } else if (const auto* s = std::get_if<SegmentedDetector>(&d)) {
      for (std::size_t r = 0; r + 1 < s->ring_edges_mrad.size(); ++r)
        for (std::size_t g = 0; g < s->segments; ++g)
          add(n, n + "_r" + std::to_string(r) + "s" + std::to_string(g), ChannelKind::Segment, r * s->segments + g, true);
    } else if (std::holds_alternative<ComDetector>(d)) {
      add(n, n + "_x", ChannelKind::ComX, 0, true);
      add(n, n + "_y", ChannelKind::ComY, 1, true);
      add(n, n + "_idpc", ChannelKind::Idpc, 0, false);  // derived from the pair: no stream of its own
    }
    // radial and pixelated detectors: arrays of their own, no image channel
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name)
        throw std::invalid_argument("detectors '" + out[j].detector + "' and '" + out[i].detector + "' both make an image channel '" +
                                    out[i].name + "': give them distinct names");
  return out;
}

std::vector<std::string> readout_channel_names(const std::vector<Detector>& detectors) {
  std::vector<std::string> names;
  for (ReadoutChannel& c : readout_channels(detectors)) names.push_back(std::move(c.name));
  return names;
}

std::string channel_units(ChannelKind kind, bool acquired) {
  switch (kind) {
    case ChannelKind::Annular:
    case ChannelKind::Segment: return acquired ? "ADU" : "fraction of the incident probe";
    case ChannelKind::ComX:
    case ChannelKind::ComY: return "mrad";
    case ChannelKind::Idpc: return "mrad·Å";
  }
  return "";
}

ReadOut readout(const StemResult& result, const std::vector<Detector>& detectors, const ReadoutSettings& rs,
                const AcquisitionSettings& acquisition, const DistortedScan& scan) {
  return detail::readout_where(result, detectors, rs, acquisition, scan, [](const ReadoutChannel&) { return true; });
}

namespace detail {

ReadOut readout_where(const StemResult& result, const std::vector<Detector>& detectors, const ReadoutSettings& rs,
                      const AcquisitionSettings& acquisition, const DistortedScan& scan,
                      const std::function<bool(const ReadoutChannel&)>& wanted) {
  ReadOut out;
  std::map<std::string, std::pair<const Image*, const Image*>> com;  // detector → blurred (x, y)
  for (const ReadoutChannel& c : readout_channels(detectors)) {
    if (!wanted(c)) continue;
    Image clean;
    if (c.kind == ChannelKind::Idpc) {
      const auto& [cx, cy] = com.at(c.detector);
      clean = integrate_com(*cx, *cy, rs.step_x_A, rs.step_y_A);
    } else {
      clean = result.image(c.detector, rs.nx, rs.ny, c.bin);
      if (rs.source_size_A > 0) clean = apply_source_size(clean, rs.step_x_A, rs.step_y_A, rs.source_size_A);
    }
    const bool chain = rs.acquire && (c.kind == ChannelKind::Annular || c.kind == ChannelKind::Segment);
    out.images[c.name] = chain ? acquire_annular(clean, acquisition, scan, NoiseStream{rs.seed, rs.sample, c.noise_channel}) : clean;
    const Image& kept = out.clean[c.name] = std::move(clean);
    if (c.kind == ChannelKind::ComX) com[c.detector].first = &kept;
    if (c.kind == ChannelKind::ComY) com[c.detector].second = &kept;
    out.channels.push_back(c.name);
  }
  return out;
}

}  // namespace detail
}  // namespace stemtwin
