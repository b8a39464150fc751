#pragma once
// A defocus series from one PRISM pass.
//
// PRISM's S-matrix holds the specimen's response to plane waves; the probe optics (aperture,
// aberrations, defocus, focal spread) enter only when the waves are summed into probes
// (prism.hpp). So one S-matrix per phonon configuration serves every defocus of a series:
// each member is *exactly* (the same bytes as) simulate_prism with that defocus, at the cost
// of one scan per member instead of one S-matrix build plus one scan. Plain and partitioned
// PRISM alike (the partitioned beamlets are rebuilt per defocus, the S-matrix is not).
#include <vector>

#include "stemtwin/physics/prism.hpp"

namespace stemtwin {

/// One StemResult per defocus (Å, the `defocus` = −C10 convention of probe.hpp), in order;
/// everything else as simulate_prism with `settings` (its method is taken to be PRISM, with
/// interpolation_x/y as given). Pixelated (4D) detectors are refused (no sink per member);
/// an empty or non-finite defocus list is refused naming the entry, before any work.
std::vector<StemResult> simulate_prism_defocus_series(const Structure& structure, const Grid& grid,
                                                      const ProbeOptics& optics, const std::vector<double>& defocus_A,
                                                      const std::vector<Point2>& positions,
                                                      const std::vector<Detector>& detectors,
                                                      const StemSettings& settings);

}  // namespace stemtwin
