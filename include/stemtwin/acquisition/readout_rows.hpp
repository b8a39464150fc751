#pragma once
// Progressive read-out: the first rows of a frame, read out while the rest is still being
// simulated, byte for byte as the whole frame's read-out (readout.hpp) gives them.
//
// A row of a channel is final as soon as the positions up to it are simulated when every step
// of its read-out is causal in scan order: the clean signal of a position depends on that
// position only; dose multipliers and times are planned for the whole frame before it starts
// (plan_scan); counting, gain and read noise draw from streams keyed by the row
// (detector_response.cpp); afterglow only carries light forward in scan order. Two steps look
// at the whole frame: the source-size blur (a periodic convolution) and iDPC (a Fourier
// integration of the COM pair). Their channels are not streamed: they arrive with the frame.
//
// Used by the Microscope session (Microscope::scan_lines, AcquisitionControl::lines);
// tests/test_readout_rows.cpp checks the byte identity for every row count.
#include <cstddef>
#include <vector>

#include "stemtwin/acquisition/readout.hpp"

namespace stemtwin {

/// True when the channel's rows are final before the frame is (see above): no source-size
/// blur in `settings`, and not iDPC.
bool streams_by_row(const ReadoutChannel& channel, const ReadoutSettings& settings);

/// The first `rows` rows (1 ≤ rows ≤ settings.ny) of the frame's read-out, for the channels
/// that stream by row (the others are absent from `channels`, `images` and `clean`).
/// `prefix` holds the signals of at least the first rows·nx positions (later ones are
/// ignored); `settings`, `acquisition` and `scan` are the whole frame's, as given to readout().
ReadOut readout_rows(const StemResult& prefix, std::size_t rows, const std::vector<Detector>& detectors,
                     const ReadoutSettings& settings, const AcquisitionSettings& acquisition, const DistortedScan& scan);

}  // namespace stemtwin
