#pragma once
// The one read-out: from a physics StemResult to named image channels, clean and acquired.
// The dataset runner (scenario/simulate_sample.cpp) and the Microscope session
// (session/microscope.cpp) both call readout(), and the dataset's channel list
// (scenario/dataset_layout.cpp, image_channels) comes from readout_channels(), so the file
// layout, the session and the runner cannot name or number a channel differently.
//
// Channels, in the detectors' order (radial and pixelated detectors make none: they have
// their own arrays):
//   annular    <name>                                  fraction of the probe → ADU
//   segmented  <name>_r<ring>s<segment>, ring-major    fraction of the probe → ADU
//   com        <name>_x, <name>_y (mrad), <name>_idpc (mrad·Å, integrate_com of the two)
//
// Noise streams: channel k of the list above (counting from 1) draws from
// NoiseStream{seed, sample, k}; <name>_idpc takes no number (it is computed from the COM
// pair, never drawn), so adding it left every other channel's stream as it was. `sample` is
// the dataset's sample index, or the session's call number (the n-th acquisition of a
// Microscope plays the role of sample n): a session's first scan and a dataset's sample 0
// with the same seed, specimen, optics, scan and detectors read out the same bytes.
//
// Partial spatial coherence (source size) is applied here, once, to every clean channel
// before the read-out; iDPC integrates the blurred COM images, so it is exactly the
// integral of the stored <name>_x, <name>_y. COM and iDPC are not acquired (their images
// equal the clean ones); annular and segmented channels go through acquire_annular.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

enum class ChannelKind { Annular, Segment, ComX, ComY, Idpc };

/// One image channel of a detector set.
struct ReadoutChannel {
  std::string name;       ///< e.g. "haadf", "dpc_r0s1", "com_x", "com_idpc"
  std::string detector;   ///< the detector it comes from
  ChannelKind kind = ChannelKind::Annular;
  std::size_t bin = 0;    ///< bin of the detector's signal (segment: ring·segments + segment; COM: 0 x, 1 y)
  std::uint64_t noise_channel = 0;  ///< its noise stream's channel: 1, 2, … in order; 0 for iDPC (none)
};

/// The image channels of a detector set in the canonical order, named and numbered as above.
std::vector<ReadoutChannel> readout_channels(const std::vector<Detector>& detectors);
/// The channel names alone (the dataset's /images and /clean arrays).
std::vector<std::string> readout_channel_names(const std::vector<Detector>& detectors);

/// Units of a channel: acquired (true) or clean. Annular and segmented: "ADU" acquired,
/// "fraction of the incident probe" clean; COM "mrad"; iDPC "mrad·Å".
std::string channel_units(ChannelKind kind, bool acquired);

/// How one frame is read out.
struct ReadoutSettings {
  std::size_t nx = 0, ny = 0;          ///< the raster: nx·ny positions, x fastest
  double step_x_A = 0, step_y_A = 0;   ///< pixel steps (source-size blur and iDPC)
  double source_size_A = 0;            ///< Gaussian 1σ of the source; 0: none (e.g. already in the signal)
  bool acquire = true;                 ///< false: images are the clean channels (no detector chain, no noise)
  std::uint64_t seed = 0;              ///< noise streams: NoiseStream{seed, sample, channel}
  std::uint64_t sample = 0;            ///< dataset sample index, or the session's call number
};

/// A frame read out: channel names in canonical order and the images by name.
struct ReadOut {
  std::vector<std::string> channels;
  std::map<std::string, Image> clean;   ///< clean channels (after the source-size blur)
  std::map<std::string, Image> images;  ///< acquired (equal to clean where not acquired)
};

/// Reads out `result` (signals of `detectors` at nx·ny positions, at the exit surface) through
/// the acquisition chain `acquisition` over the scan as it happened (`scan`: dose multipliers
/// and times). Throws std::invalid_argument when a signal's size does not match the raster,
/// std::out_of_range when a detector has no signal.
ReadOut readout(const StemResult& result, const std::vector<Detector>& detectors, const ReadoutSettings& settings,
                const AcquisitionSettings& acquisition, const DistortedScan& scan);

}  // namespace stemtwin
