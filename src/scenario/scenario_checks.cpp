#include "stemtwin/scenario/scenario_checks.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/scattering.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

namespace stemtwin {

namespace {

/// ∫_{k1}^{k2} f_e(k)² k dk by Simpson's rule on a log-spaced grid (f_e is smooth and
/// falls as k⁻² at large k; 400 intervals give < 1e-4 relative error).
double f2_moment(int Z, double k1, double k2) {
  if (!(k2 > k1)) return 0;
  const double lo = std::max(k1, 1e-4);
  if (!(k2 > lo)) return 0;
  const int n = 400;
  const double a = std::log(lo), b = std::log(k2), h = (b - a) / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double k = std::exp(a + i * h);
    const double f = scattering_factor(Z, k);
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    sum += w * f * f * k * k;  // dk = k d(ln k)
  }
  double r = sum * h / 3;
  if (k1 < lo) {  // the tiny disc below 1e-4 1/Å: f ≈ f(0)
    const double f0 = scattering_factor(Z, 0);
    r += f0 * f0 * (lo * lo - k1 * k1) / 2;
  }
  return r;
}

std::string mrad(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v << " mrad";
  return s.str();
}

}  // namespace

double estimate_annular_fraction(const std::vector<int>& Z, const std::vector<double>& occupancy, double area_A2,
                                 double energy_eV, double convergence_mrad, double inner_mrad, double outer_mrad) {
  const double lambda = wavelength_A(energy_eV), gamma = lorentz_factor(energy_eV);
  std::map<int, double> count;
  for (std::size_t i = 0; i < Z.size(); ++i) count[Z[i]] += i < occupancy.size() ? occupancy[i] : 1.0;
  auto sigma = [&](double t1_mrad, double t2_mrad) {  // Σσ / area over an angular range
    double s = 0;
    for (const auto& [z, n] : count)
      s += n * 2 * M_PI * lambda * lambda * gamma * gamma * f2_moment(z, t1_mrad * 1e-3 / lambda, t2_mrad * 1e-3 / lambda);
    return s / area_A2;
  };
  const double scattered_total = std::min(1.0, sigma(0, 1000));  // all angles that matter
  const double a = std::max(convergence_mrad, 1e-9);
  const double r1 = std::min(inner_mrad, a), r2 = std::min(outer_mrad, a);
  const double disc = std::max(0.0, (r2 * r2 - r1 * r1) / (a * a));
  const double out = sigma(std::max(inner_mrad, 0.0), outer_mrad);
  return std::min(1.0, disc * (1 - scattered_total) + out);
}

ScenarioCheck check_scenario_physics(const ScenarioSpec& spec, std::size_t max_samples) {
  ScenarioCheck out;
  const std::size_t total = spec.total_samples();
  if (total == 0) return out;
  std::vector<std::size_t> idx;
  if (total <= max_samples) {
    for (std::size_t i = 0; i < total; ++i) idx.push_back(i);
  } else {
    for (std::size_t k = 0; k < max_samples; ++k) idx.push_back(k * (total - 1) / (max_samples - 1));
  }
  auto source_of = [&](const std::string& name) {
    for (const DetectorSpec& d : spec.detectors)
      if (d.name == name) return d.source;
    return SourceRef{};
  };
  // Band limit: the worst case of each detector over the checked samples.
  struct Cut {
    double outer = 0, limit = 1e300, sampling = 0, energy = 0, auto_dx = 0;
    std::size_t sample = 0;
  };
  std::map<std::string, Cut> cuts;
  for (std::size_t i : idx) {
    const SampledScenario s = sample_parameters(spec, i);
    const double bl = wavelength_A(s.energy) / (3 * s.sampling) * 1e3;  // ≤ the real grid's
    if (i == 0) out.sampling_A = s.sampling, out.band_limit_mrad = bl;
    if (s.convergence > bl)
      throw ScenarioError(spec.source_file, 0, 0, "microscope.convergence",
                          "sample " + std::to_string(i) + ": the probe (" + mrad(s.convergence) +
                              ") lies beyond the band limit (" + mrad(bl) + " at " + std::to_string(s.sampling) +
                              " Å): use sampling: auto or a finer sampling");
    for (const SampledDetector& d : s.detectors) {
      double inner = 0, outer = 0;
      switch (d.type) {
        case DetectorType::Annular: inner = d.inner, outer = d.outer; break;
        case DetectorType::Segmented:
          if (d.rings.empty()) continue;
          inner = d.rings.front(), outer = d.rings.back();
          break;
        case DetectorType::Radial: outer = d.max; break;
        case DetectorType::Pixelated:
        case DetectorType::Com: outer = d.max_angle; break;
      }
      // Grids round up to FFT-friendly sizes (at most 10 % finer), so only a detector
      // beyond 1.1 × the estimate is certainly empty.
      if (inner >= 1.1 * bl) {
        const SourceRef r = source_of(d.name);
        throw ScenarioError(r.file.empty() ? spec.source_file : r.file, r.line, r.column, r.path.empty() ? "detectors" : r.path,
                            "detector '" + d.name + "' (" + mrad(inner) + "–" + mrad(outer) +
                                ") lies wholly beyond the band limit of sample " + std::to_string(i) + " (" + mrad(bl) +
                                "): it would record nothing; use sampling: auto or a sampling ≤ " +
                                std::to_string(wavelength_A(s.energy) / (3 * outer * 1e-3)) + " Å");
      }
      if (outer > bl * (1 + 1e-9)) {
        Cut& c = cuts[d.name];
        if (bl / outer < c.limit / std::max(c.outer, 1e-300) || c.outer == 0)
          c = Cut{outer, bl, s.sampling, s.energy, wavelength_A(s.energy) / (3 * outer * 1e-3), i};
      }
    }
  }
  for (const auto& [name, c] : cuts) {
    std::ostringstream w;
    w.precision(4);
    w << "detector '" << name << "' reaches " << c.outer << " mrad but the simulation's band limit is " << c.limit
      << " mrad (sample " << c.sample << ": " << c.sampling << " Å at " << c.energy / 1e3
      << " kV): only the part below the band limit is simulated; use sampling: auto (here " << c.auto_dx
      << " Å) or a finer sampling";
    out.warnings.push_back(w.str());
  }

  // Thermal vibration (the specimen of the first and last checked sample) and counts (sample 0).
  const std::vector<std::size_t> ends = idx.size() > 1 ? std::vector<std::size_t>{idx.front(), idx.back()}
                                                       : std::vector<std::size_t>{idx.front()};
  for (std::size_t i : ends) {
    const SampledScenario s = sample_parameters(spec, i);
    Specimen sp;
    try {
      sp = build_specimen(s);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      if (what.rfind("specimen.thermal", 0) != 0) throw;
      const SourceRef& r = spec.specimen.thermal.source;
      throw ScenarioError(r.file.empty() ? spec.source_file : r.file, r.line, r.column, "specimen.thermal",
                          what.substr(std::string("specimen.thermal: ").size()));
    }
    if (i == idx.front()) {
      const std::string tw = thermal_warning(sp.structure, std::size_t(std::max(1, s.configurations)));
      if (!tw.empty()) out.warnings.push_back(tw);
      std::vector<int> Z;
      std::vector<double> occ;
      for (const Atom& a : sp.structure.atoms) Z.push_back(a.Z), occ.push_back(a.occupancy);
      const double area = sp.structure.cell.x * sp.structure.cell.y;
      const double electrons = s.electrons_per_position();
      for (const SampledDetector& d : s.detectors) {
        if (d.type == DetectorType::Annular) {
          const double f = estimate_annular_fraction(Z, occ, area, s.energy, s.convergence, d.inner, d.outer);
          out.counts.push_back({d.name, f, f * electrons});
        } else if (d.type == DetectorType::Segmented && d.rings.size() >= 2) {
          const double f = estimate_annular_fraction(Z, occ, area, s.energy, s.convergence, d.rings.front(), d.rings.back()) /
                           double(std::max(1, d.segments) * int(d.rings.size() - 1));
          out.counts.push_back({d.name + " (per segment)", f, f * electrons});
        }
      }
      if (spec.acquisition)
        for (const CountEstimate& c : out.counts)
          if (c.counts_per_pixel < 1) {
            std::ostringstream w;
            w.precision(3);
            w << "detector '" << c.detector << "' expects about " << c.counts_per_pixel
              << " electrons per pixel (kinematic estimate, sample 0): the image will be mostly noise; raise the "
                 "dose (current × dwell) or the detector's collection angle";
            out.warnings.push_back(w.str());
          }
    }
  }
  return out;
}

}  // namespace stemtwin
