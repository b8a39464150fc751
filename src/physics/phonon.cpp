#include "stemtwin/physics/phonon.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace stemtwin {

MeanSem mean_and_sem(const std::vector<double>& x) {
  if (x.empty()) throw std::invalid_argument("mean_and_sem: no samples");
  const double n = double(x.size());
  double mean = 0;
  for (double v : x) mean += v;
  mean /= n;
  if (x.size() < 2) return {mean, std::numeric_limits<double>::quiet_NaN()};
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  return {mean, std::sqrt(ss / (n * (n - 1.0)))};
}

std::vector<StemResult> scan_multislice_per_configuration(const std::vector<Transmission>& configs,
                                                          const ProbeOptics& optics,
                                                          const std::vector<Point2>& positions,
                                                          const std::vector<Detector>& detectors,
                                                          const StemSettings& settings, const Fft2& fft) {
  if (configs.empty()) throw std::invalid_argument("scan_multislice_per_configuration: no transmission functions");
  for (const Detector& d : detectors)
    if (std::holds_alternative<PixelatedDetector>(d))
      throw std::invalid_argument("scan_multislice_per_configuration: pixelated detectors are not supported");
  std::vector<StemResult> out;
  out.reserve(configs.size());
  StemSettings st = settings;
  st.progress = nullptr;
  for (const Transmission& t : configs) out.push_back(scan_multislice({t}, optics, positions, detectors, st, fft));
  return out;
}

PhononSummary summarize_configurations(const std::vector<StemResult>& rs) {
  if (rs.empty()) throw std::invalid_argument("summarize_configurations: no configurations");
  const StemResult& first = rs.front();
  for (const StemResult& r : rs) {
    bool same = r.signals.size() == first.signals.size() && r.depths_A == first.depths_A;
    for (std::size_t s = 0; same && s < r.signals.size(); ++s)
      same = r.signals[s].name == first.signals[s].name && r.signals[s].depth_index == first.signals[s].depth_index &&
             r.signals[s].values.size() == first.signals[s].values.size();
    if (!same) throw std::invalid_argument("summarize_configurations: results differ in detectors, depths or positions");
  }
  PhononSummary out{first, first, rs.size()};
  std::vector<double> x(rs.size());
  for (std::size_t s = 0; s < first.signals.size(); ++s)
    for (std::size_t i = 0; i < first.signals[s].values.size(); ++i) {
      for (std::size_t c = 0; c < rs.size(); ++c) x[c] = rs[c].signals[s].values[i];
      const MeanSem m = mean_and_sem(x);
      out.mean.signals[s].values[i] = m.mean;
      out.sem.signals[s].values[i] = m.sem;
    }
  return out;
}

PhononSummary simulate_stem_phonon_statistics(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                              const std::vector<Point2>& positions,
                                              const std::vector<Detector>& detectors, const StemSettings& settings) {
  if (settings.method != Method::Multislice)
    throw std::invalid_argument("simulate_stem_phonon_statistics: multislice only");
  const Fft2 fft(grid, settings.planning);
  const auto configs = frozen_phonon_transmissions(structure, grid, optics.energy_eV, settings, fft);
  return summarize_configurations(scan_multislice_per_configuration(configs, optics, positions, detectors, settings, fft));
}

}  // namespace stemtwin
