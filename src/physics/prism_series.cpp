#include "stemtwin/physics/prism_series.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <variant>

namespace stemtwin {

std::vector<StemResult> simulate_prism_defocus_series(const Structure& structure, const Grid& grid,
                                                      const ProbeOptics& optics, const std::vector<double>& defocus_A,
                                                      const std::vector<Point2>& positions,
                                                      const std::vector<Detector>& detectors,
                                                      const StemSettings& settings) {
  if (defocus_A.empty()) throw std::invalid_argument("PRISM defocus series: no defocus values");
  for (std::size_t i = 0; i < defocus_A.size(); ++i)
    if (!std::isfinite(defocus_A[i]))
      throw std::invalid_argument("PRISM defocus series: defocus[" + std::to_string(i) + "] is not a finite number");
  for (const Detector& d : detectors)
    if (std::holds_alternative<PixelatedDetector>(d))
      throw std::invalid_argument("PRISM defocus series: pixelated detector '" + detector_name(d) +
                                  "' is not supported (4D patterns need a sink per member; run simulate_prism per defocus)");
  const Fft2 fft(grid, settings.planning, settings.fftw_wisdom_file);
  const std::vector<SMatrix> smats = build_prism_smatrices(structure, grid, optics, detectors, settings, fft);
  std::vector<StemResult> out;
  out.reserve(defocus_A.size());
  for (double df : defocus_A) {
    ProbeOptics o = optics;
    o.aberrations.set("defocus", df);
    StemResult r = scan_prism(smats, o, positions, detectors, settings);
    r.fft_plan = fft.plan_id() + "/" + r.fft_plan;  // as simulate_prism: S-matrix plan / window plan
    r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace stemtwin
