#include "stemtwin/physics/eds.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/ionisation.hpp"
#include "stemtwin/core/parallel.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin {

namespace {

constexpr double kFineStructure = 7.2973525693e-3;        // CODATA 2018
constexpr double kClassicalElectronRadius_A = 2.8179403262e-5;  // CODATA 2018, Å
constexpr double kAvogadro = 6.02214076e23;               // 1/mol
constexpr double kFwhmPerSigma = 2.3548200450309493;      // 2√(2 ln 2)

std::string element_text(int Z) { return element_symbol(Z) + " (Z=" + std::to_string(Z) + ")"; }

/// Vacancies per atom per unit ρ (Å²) in each shell: direct ionisation plus Coster–Kronig
/// transfers within the L (1–3) and M (4–8) groups, in order of increasing binding.
std::vector<double> vacancies_A2(int Z, double E0) {
  std::vector<double> nu(kNumShells, 0.0);
  for (int s = 0; s < kNumShells; ++s)
    if (bote_salvat_available(Z, Shell(s))) nu[std::size_t(s)] = bote_salvat_cross_section_A2(Z, Shell(s), E0);
  auto cascade = [&](int first, int last) {
    for (int i = first; i <= last; ++i)
      for (int j = first; j < i; ++j) nu[std::size_t(i)] += coster_kronig(Z, Shell(j), Shell(i)) * nu[std::size_t(j)];
  };
  cascade(1, 3);
  cascade(4, 8);
  return nu;
}

}  // namespace

double EdsModel::fwhm_eV(double E) const {
  // FWHM² = FWHM_noise² + (2.355)² F ε E, the electronic-noise term fixed by the FWHM at Mn Kα.
  const double e_mn = xray_line(25, -3).energy_eV;  // Mn K-L3 (Kα1), xraylib
  const double fano = kFwhmPerSigma * kFwhmPerSigma * detector.fano_factor * detector.pair_energy_eV;
  const double noise2 = detector.fwhm_mn_ka_eV * detector.fwhm_mn_ka_eV - fano * e_mn;
  return std::sqrt(std::max(0.0, noise2 + fano * std::max(E, 0.0)));
}

EdsModel eds_model(const Structure& specimen, double E0, const EdsDetector& d, const std::vector<int>& elements) {
  if (!(E0 > 0)) throw std::invalid_argument("EDS: beam energy must be > 0 eV");
  if (d.channels == 0 || !(d.channel_width_eV > 0)) throw std::invalid_argument("EDS detector: need channels > 0 and a channel width > 0 eV");
  if (!(d.solid_angle_sr > 0 && d.solid_angle_sr <= 4 * kPi)) throw std::invalid_argument("EDS detector: solid angle must be in (0, 4π] sr");
  if (!(d.window_transmission >= 0 && d.window_transmission <= 1)) throw std::invalid_argument("EDS detector: window transmission must be in [0, 1]");
  if (!(d.sensor_thickness_um >= 0)) throw std::invalid_argument("EDS detector: sensor thickness must be ≥ 0 µm");
  if (!(d.fano_factor > 0 && d.pair_energy_eV > 0)) throw std::invalid_argument("EDS detector: Fano factor and pair energy must be > 0");
  if (d.self_absorption && !(d.takeoff_deg > 0 && d.takeoff_deg <= 90))
    throw std::invalid_argument("EDS detector: take-off angle must be in (0, 90] degrees for self-absorption");
  EdsModel m;
  m.beam_energy_eV = E0;
  m.detector = d;
  const double e_mn = xray_line(25, -3).energy_eV;  // Mn K-L3 (Kα1), xraylib
  const double fano = kFwhmPerSigma * kFwhmPerSigma * d.fano_factor * d.pair_energy_eV;
  if (d.fwhm_mn_ka_eV * d.fwhm_mn_ka_eV < fano * e_mn)
    throw std::invalid_argument("EDS detector: FWHM at Mn Kα of " + std::to_string(d.fwhm_mn_ka_eV) +
                                " eV is below the Fano limit of " + std::to_string(std::sqrt(fano * e_mn)) + " eV");

  // Composition (mass fractions), density and thickness for self-absorption.
  std::map<int, double> mass_per_cell;  // g/mol per cell
  std::set<int> present;
  for (const Atom& a : specimen.atoms) {
    if (a.Z < 1 || a.Z > 103) throw std::invalid_argument("EDS: atom with atomic number " + std::to_string(a.Z));
    if (a.occupancy <= 0) continue;
    present.insert(a.Z);
    mass_per_cell[a.Z] += a.occupancy;
  }
  double total_mass = 0;
  for (auto& [Z, n] : mass_per_cell) total_mass += (n *= atomic_weight_g_per_mol(Z));
  const double volume_cm3 = specimen.cell.x * specimen.cell.y * specimen.cell.z * 1e-24;
  const double density = volume_cm3 > 0 ? total_mass / kAvogadro / volume_cm3 : 0.0;  // g/cm³
  const double thickness_cm = specimen.cell.z * 1e-8;
  if (d.self_absorption && !(density > 0)) throw std::invalid_argument("EDS: self-absorption needs a specimen with atoms and a cell volume > 0");
  const double rho_si = element_density_g_per_cm3(14);

  auto detected = [&](double E) {
    if (E < d.threshold_eV || E <= 0) return 0.0;
    double f = d.solid_angle_sr / (4 * kPi) * d.window_transmission;
    if (d.sensor_thickness_um > 0) f *= -std::expm1(-mass_attenuation_cm2_per_g(14, E) * rho_si * d.sensor_thickness_um * 1e-4);
    if (d.self_absorption) {
      double mu = 0;  // cm²/g of the specimen
      for (const auto& [Z, mz] : mass_per_cell) mu += mz / total_mass * mass_attenuation_cm2_per_g(Z, E);
      const double chi = mu * density * thickness_cm / std::sin(d.takeoff_deg * kPi / 180);
      f *= chi > 1e-12 ? -std::expm1(-chi) / chi : 1.0;
    }
    return f;
  };

  std::set<int> wanted(elements.begin(), elements.end());
  if (wanted.empty()) wanted = present;
  m.elements.assign(wanted.begin(), wanted.end());
  const double lo = d.energy_start_eV, w = d.channel_width_eV;
  const double mc2 = kElectronRestEnergy_eV;
  const double beta2 = 1.0 - (mc2 / (E0 + mc2)) * (mc2 / (E0 + mc2));
  for (int Z : m.elements) {
    if (Z < 1 || Z > 103) throw std::invalid_argument("EDS: element Z=" + std::to_string(Z) + " outside 1..103");
    std::vector<double> unit(d.channels, 0.0);
    std::vector<EdsLine> lines;
    if (Z <= 99) {
      const std::vector<double> nu = vacancies_A2(Z, E0);
      for (int s = 0; s < kNumShells; ++s) {
        if (!(nu[std::size_t(s)] > 0)) continue;
        const double omega = fluorescence_yield(Z, Shell(s));
        if (!(omega > 0)) continue;
        for (const XrayLine& l : xray_lines(Z, Shell(s))) {
          EdsLine el{l, nu[std::size_t(s)] * omega * l.radiative_rate, detected(l.energy_eV), m.fwhm_eV(l.energy_eV)};
          // Gaussian response integrated over each channel within ±6σ of the line.
          const double sigma = el.fwhm_eV / kFwhmPerSigma;
          const double amp = el.production_A2 * el.detected;
          if (amp > 0) {
            const long c0 = std::max(0L, long(std::floor((l.energy_eV - 6 * sigma - lo) / w)));
            const long c1 = std::min(long(d.channels) - 1, long(std::floor((l.energy_eV + 6 * sigma - lo) / w)));
            for (long c = c0; c <= c1; ++c) {
              const double a = (lo + double(c) * w - l.energy_eV) / (sigma * std::sqrt(2.0));
              const double b = (lo + double(c + 1) * w - l.energy_eV) / (sigma * std::sqrt(2.0));
              unit[std::size_t(c)] += amp * 0.5 * (std::erf(b) - std::erf(a));
            }
          }
          lines.push_back(std::move(el));
        }
      }
    }
    if (d.bremsstrahlung) {
      // Kramers: dσ/dE = K Z²/(β² E); over a channel ∫dE/E = ln(E_hi/E_lo), D at the centre.
      const double K = 16 * kPi / (3 * std::sqrt(3.0)) * kFineStructure * kClassicalElectronRadius_A * kClassicalElectronRadius_A;
      for (std::size_t c = 0; c < d.channels; ++c) {
        const double e_lo = std::max(lo + double(c) * w, 0.0), e_hi = std::min(lo + double(c + 1) * w, E0);
        if (!(e_hi > e_lo) || e_lo <= 0) continue;
        unit[c] += K * double(Z) * double(Z) / beta2 * std::log(e_hi / e_lo) * detected(m.channel_energy_eV(c));
      }
    }
    // Channels below the threshold count nothing (a line's tail included).
    for (std::size_t c = 0; c < d.channels; ++c)
      if (m.channel_energy_eV(c) < d.threshold_eV) unit[c] = 0;
    m.lines.push_back(std::move(lines));
    m.unit.push_back(std::move(unit));
  }
  return m;
}

SpectrumImage eds_expected(const ElementIntensity& I, const EdsModel& m, double dose, std::size_t depth) {
  if (!(dose >= 0) || !std::isfinite(dose)) throw std::invalid_argument("EDS: electrons per position must be a finite number ≥ 0");
  std::vector<std::size_t> idx;
  for (int Z : m.elements) idx.push_back(I.element_index(Z));  // throws naming a missing element
  SpectrumImage out;
  out.energy_start_eV = m.detector.energy_start_eV;
  out.channel_width_eV = m.detector.channel_width_eV;
  out.channels = m.detector.channels;
  out.positions = I.positions;
  out.values.assign(out.positions * out.channels, 0.0);
  const std::size_t nc = out.channels;
  if (I.positions > 0) (void)I.row(0, depth);  // a bad depth index throws here, not in the parallel loop
#pragma omp parallel for schedule(static)
  for (long p = 0; p < long(out.positions); ++p) {
    double* dst = out.values.data() + std::size_t(p) * nc;
    for (std::size_t e = 0; e < m.elements.size(); ++e) {
      const double f = dose * I.row(std::size_t(p), depth)[idx[e]];
      const double* u = m.unit[e].data();
      for (std::size_t c = 0; c < nc; ++c) dst[c] += f * u[c];
    }
  }
  return out;
}

SpectrumImage poisson_spectra(const SpectrumImage& expected, std::uint64_t seed, std::uint64_t sample,
                              std::uint64_t stream) {
  if (stream >= (1ull << 24) || expected.positions >= (1ull << 40))
    throw std::invalid_argument("poisson_spectra: stream must be < 2^24 and positions < 2^40");
  SpectrumImage out = expected;
  const std::size_t nc = expected.channels;
  ParallelErrors errors;
#pragma omp parallel for schedule(static)
  for (long p = 0; p < long(expected.positions); ++p) errors.run([&] {
    Rng rng(seed, RngPurpose::Spectra, sample, (stream << 40) | std::uint64_t(p));
    double* v = out.values.data() + std::size_t(p) * nc;
    for (std::size_t c = 0; c < nc; ++c) {
      if (!(v[c] >= 0) || !std::isfinite(v[c]))
        throw std::invalid_argument("poisson_spectra: expected count at position " + std::to_string(p) + ", channel " +
                                    std::to_string(c) + " is not a finite number ≥ 0");
      v[c] = v[c] > 0 ? double(rng.poisson(v[c])) : 0.0;
    }
  });
  errors.rethrow();
  return out;
}

std::vector<ElementMap> element_maps(const SpectrumImage& s, const EdsModel& m,
                                     const std::vector<std::pair<int, std::string>>& requests) {
  std::vector<ElementMap> out;
  const double lo = s.energy_start_eV, w = s.channel_width_eV;
  const long nch = long(s.channels);
  auto first_channel_from = [&](double e) { return long(std::ceil((e - lo) / w - 0.5)); };  // first centre ≥ e
  auto last_channel_to = [&](double e) { return long(std::floor((e - lo) / w - 0.5)); };     // last centre ≤ e
  for (const auto& [Z, family] : requests) {
    const auto it = std::find(m.elements.begin(), m.elements.end(), Z);
    if (it == m.elements.end()) throw std::invalid_argument("EDS map: element " + element_text(Z) + " is not in the model");
    const auto& lines = m.lines[std::size_t(it - m.elements.begin())];
    double sw = 0, se = 0;
    for (const EdsLine& l : lines)
      if (l.line.family == family) {
        const double weight = l.production_A2 * std::max(l.detected, 1e-300);
        sw += weight;
        se += weight * l.line.energy_eV;
      }
    if (!(sw > 0)) throw std::invalid_argument("EDS map: " + element_text(Z) + " has no " + family + " line at this beam energy");
    ElementMap map;
    map.Z = Z;
    map.family = family;
    map.energy_eV = se / sw;
    const double fwhm = m.fwhm_eV(map.energy_eV);
    const long a = first_channel_from(map.energy_eV - fwhm), b = last_channel_to(map.energy_eV + fwhm);
    if (a < 0 || b >= nch || b < a || lo + (double(a) + 0.5) * w < m.detector.threshold_eV)
      throw std::invalid_argument("EDS map: the " + element_text(Z) + " " + family + " window (" +
                                  std::to_string(map.energy_eV - fwhm) + "–" + std::to_string(map.energy_eV + fwhm) +
                                  " eV) is not on the energy axis above the threshold");
    map.window_first = std::size_t(a);
    map.window_last = std::size_t(b);
    // Side windows one FWHM wide, centred 2 FWHM away.
    struct Side {
      long a, b;
      bool ok;
    };
    auto side = [&](double centre) {
      const long sa = first_channel_from(centre - fwhm / 2), sb = last_channel_to(centre + fwhm / 2);
      const bool ok = sa >= 0 && sb < nch && sb >= sa && lo + (double(sa) + 0.5) * w >= m.detector.threshold_eV;
      return Side{sa, sb, ok};
    };
    const Side L = side(map.energy_eV - 2 * fwhm), R = side(map.energy_eV + 2 * fwhm);
    map.counts.assign(s.positions, 0.0);
    for (std::size_t p = 0; p < s.positions; ++p) {
      const double* v = s.values.data() + p * s.channels;
      auto mean = [&](const Side& sd, double& e_mean) {
        double sum = 0;
        for (long c = sd.a; c <= sd.b; ++c) sum += v[c];
        e_mean = lo + (double(sd.a + sd.b) / 2 + 0.5) * w;
        return sum / double(sd.b - sd.a + 1);
      };
      double peak = 0;
      for (long c = a; c <= b; ++c) peak += v[c];
      double bg = 0;
      if (L.ok && R.ok) {
        double el, er;
        const double ml = mean(L, el), mr = mean(R, er);
        for (long c = a; c <= b; ++c) {
          const double e = lo + (double(c) + 0.5) * w;
          bg += ml + (mr - ml) * (e - el) / (er - el);
        }
      } else if (L.ok || R.ok) {
        double e;
        bg = mean(L.ok ? L : R, e) * double(b - a + 1);
      }
      map.counts[p] = peak - bg;
    }
    out.push_back(std::move(map));
  }
  return out;
}

std::vector<std::pair<int, std::string>> default_map_requests(const EdsModel& m) {
  std::vector<std::pair<int, std::string>> out;
  const double top = m.detector.energy_start_eV + double(m.detector.channels) * m.detector.channel_width_eV;
  for (std::size_t e = 0; e < m.elements.size(); ++e)
    for (const char* fam : {"Ka", "La", "Ma"}) {
      bool have = false;
      for (const EdsLine& l : m.lines[e])
        if (l.line.family == fam && l.production_A2 > 0) {
          const double f = m.fwhm_eV(l.line.energy_eV);
          if (l.line.energy_eV - 3 * f > std::max(m.detector.threshold_eV, m.detector.energy_start_eV) && l.line.energy_eV + 3 * f < top)
            have = true;
        }
      if (have) out.emplace_back(m.elements[e], fam);
    }
  return out;
}

}  // namespace stemtwin
