#include "stemtwin/acquisition/spectrometer.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <stdexcept>

#include "stemtwin/physics/xray_data.hpp"

namespace stemtwin {

const char* to_string(SpectrometerKind k) { return k == SpectrometerKind::Eds ? "eds" : "eels"; }

std::string SpectrometerMap::name() const { return element_symbol(Z) + "_" + line; }

namespace {

std::invalid_argument bad(const SpectrometerSpec& s, const std::string& what) {
  return std::invalid_argument("spectrometer '" + s.name + "': " + what);
}

EdgeRequest edge_request(const SpectrometerSpec& s, const SpectrometerMap& m) {
  return EdgeRequest{m.Z, shell_from_name(m.line), s.pre_edge_eV, s.gap_eV, s.signal_eV};
}

/// The default EELS maps: every modelled edge whose pre-edge and signal windows lie on the axis.
std::vector<SpectrometerMap> default_edge_maps(const SpectrometerSpec& s, const EelsModel& m) {
  std::vector<SpectrometerMap> out;
  const double lo = m.settings.energy_start_eV, hi = lo + double(m.settings.channels) * m.settings.channel_width_eV;
  for (std::size_t e = 0; e < m.elements.size(); ++e)
    for (const EelsEdge& edge : m.edges[e]) {
      const double first = edge.onset_eV - s.gap_eV - s.pre_edge_eV;
      if (first > std::max(0.0, lo) && edge.onset_eV + s.signal_eV < hi) out.push_back({edge.Z, shell_name(edge.shell)});
    }
  return out;
}

std::vector<std::pair<int, std::string>> eds_requests(const std::vector<SpectrometerMap>& maps) {
  std::vector<std::pair<int, std::string>> r;
  for (const auto& m : maps) r.emplace_back(m.Z, m.line);
  return r;
}

std::vector<EdgeRequest> eels_requests(const SpectrometerSpec& s, const std::vector<SpectrometerMap>& maps) {
  std::vector<EdgeRequest> r;
  for (const auto& m : maps) r.push_back(edge_request(s, m));
  return r;
}

/// A zero spectrum image of one position on the spectrometer's axis (to check map windows).
SpectrumImage empty_axis(const SpectrometerSpec& s) {
  SpectrumImage im;
  if (s.kind == SpectrometerKind::Eds) {
    im.energy_start_eV = s.eds.energy_start_eV, im.channel_width_eV = s.eds.channel_width_eV, im.channels = s.eds.channels;
  } else {
    im.energy_start_eV = s.eels.energy_start_eV, im.channel_width_eV = s.eels.channel_width_eV, im.channels = s.eels.channels;
  }
  im.positions = 1;
  im.values.assign(im.channels, 0.0);
  return im;
}

/// Checks the maps' windows by making them from an empty spectrum (the physics's own rule).
void check_maps(const SpectrometerSpec& s, const Structure& specimen, double beam_energy_eV,
                const std::vector<SpectrometerMap>& maps, const std::vector<int>& elements) {
  try {
    if (s.kind == SpectrometerKind::Eds) {
      EdsDetector d = s.eds;
      d.self_absorption = false;  // the windows do not depend on it
      const EdsModel m = eds_model(specimen, beam_energy_eV, d, elements);
      (void)element_maps(empty_axis(s), m, eds_requests(maps));
    } else {
      const EelsModel m = eels_model(specimen, beam_energy_eV, s.eels, elements);
      (void)eels_edge_maps(empty_axis(s), m, eels_requests(s, maps));
    }
  } catch (const std::invalid_argument& e) {
    throw bad(s, e.what());
  }
}

}  // namespace

std::vector<int> spectrometer_elements(const SpectrometerSpec& spec, const Structure& specimen) {
  if (!spec.elements.empty()) return spec.elements;
  std::set<int> z;
  for (const Atom& a : specimen.atoms) z.insert(a.Z);
  return {z.begin(), z.end()};
}

std::vector<SpectrometerMap> spectrometer_maps(const SpectrometerSpec& spec, const Structure& specimen,
                                               double beam_energy_eV) {
  const std::vector<int> elements = spectrometer_elements(spec, specimen);
  if (!spec.maps.empty()) {
    check_maps(spec, specimen, beam_energy_eV, spec.maps, elements);
    return spec.maps;
  }
  std::vector<SpectrometerMap> out;
  try {
    if (spec.kind == SpectrometerKind::Eds) {
      EdsDetector d = spec.eds;
      d.self_absorption = false;
      for (const auto& [Z, fam] : default_map_requests(eds_model(specimen, beam_energy_eV, d, elements))) out.push_back({Z, fam});
    } else {
      out = default_edge_maps(spec, eels_model(specimen, beam_energy_eV, spec.eels, elements));
    }
  } catch (const std::invalid_argument& e) {
    throw bad(spec, e.what());
  }
  return out;
}

void check_spectrometer(const SpectrometerSpec& spec, double beam_energy_eV) {
  std::set<int> z(spec.elements.begin(), spec.elements.end());
  for (const auto& m : spec.maps) {
    if (!spec.elements.empty() && !z.count(m.Z))
      throw bad(spec, "map " + m.name() + ": " + element_symbol(m.Z) + " is not among the listed elements");
    z.insert(m.Z);
  }
  if (z.empty()) z.insert(8);  // only the detector settings to check: any element will do
  Structure probe;
  probe.cell = Cell{10, 10, 10};
  for (int Z : z) probe.atoms.push_back(Atom{Z, 5, 5, 5, 1, 0});
  check_maps(spec, probe, beam_energy_eV, spec.maps, {z.begin(), z.end()});
}

SpectrometerSpectra spectrometer_spectra(const SpectrometerSpec& spec, const Structure& specimen, double beam_energy_eV,
                                         const ElementIntensity& intensity, const std::vector<double>& electrons,
                                         std::uint64_t seed, std::uint64_t sample, std::uint64_t stream) {
  if (electrons.size() != 1 && electrons.size() != intensity.positions)
    throw bad(spec, "electrons per position: " + std::to_string(electrons.size()) + " values for " +
                        std::to_string(intensity.positions) + " positions");
  for (double e : electrons)
    if (!(e >= 0) || !std::isfinite(e)) throw bad(spec, "electrons per position must be finite numbers ≥ 0");
  const std::vector<int> elements = spectrometer_elements(spec, specimen);
  std::function<SpectrumImage(const ElementIntensity&, double)> expected;
  if (spec.kind == SpectrometerKind::Eds) {
    auto m = std::make_shared<const EdsModel>(eds_model(specimen, beam_energy_eV, spec.eds, elements));
    expected = [m](const ElementIntensity& I, double dose) { return eds_expected(I, *m, dose); };
  } else {
    auto m = std::make_shared<const EelsModel>(eels_model(specimen, beam_energy_eV, spec.eels, elements));
    expected = [m](const ElementIntensity& I, double dose) { return eels_expected(I, *m, dose); };
  }
  SpectrometerSpectra r;
  const bool uniform = std::all_of(electrons.begin(), electrons.end(), [&](double e) { return e == electrons.front(); });
  if (uniform) {
    r.expected = expected(intensity, electrons.empty() ? 0.0 : electrons.front());
  } else {
    // A dose per position: each position at its own dose (the models' dose is not only a
    // factor on the intensity: EELS's low loss is dose × the same spectrum everywhere), so
    // position p is exactly what a run at electrons[p] alone gives it.
    const std::size_t ne = intensity.elements.size(), nd = std::max<std::size_t>(1, intensity.depths_A.size());
    ElementIntensity one = intensity;
    one.positions = 1;
    one.values.assign(nd * ne, 0.0);
    for (std::size_t p = 0; p < intensity.positions; ++p) {
      for (std::size_t d = 0; d < nd; ++d)
        std::copy_n(intensity.values.begin() + long((d * intensity.positions + p) * ne), ne, one.values.begin() + long(d * ne));
      SpectrumImage e = expected(one, electrons[p]);
      if (p == 0) {
        r.expected = e;
        r.expected.positions = intensity.positions;
        r.expected.values.assign(intensity.positions * e.channels, 0.0);
      }
      std::copy(e.values.begin(), e.values.end(), r.expected.values.begin() + long(p * e.channels));
    }
  }
  r.counts = poisson_spectra(r.expected, seed, sample, stream);
  return r;
}

SpectrometerReadout read_spectrometer(const SpectrometerSpec& spec, const Structure& specimen, double beam_energy_eV,
                                      const ElementIntensity& intensity, double electrons_per_position,
                                      const std::vector<SpectrometerMap>& maps, std::uint64_t seed, std::uint64_t sample,
                                      std::uint64_t stream) {
  SpectrometerReadout r;
  r.maps = maps;
  SpectrometerSpectra sp =
      spectrometer_spectra(spec, specimen, beam_energy_eV, intensity, {electrons_per_position}, seed, sample, stream);
  r.expected = std::move(sp.expected);
  r.counts = std::move(sp.counts);
  const std::vector<int> elements = spectrometer_elements(spec, specimen);
  if (spec.kind == SpectrometerKind::Eds) {
    const EdsModel m = eds_model(specimen, beam_energy_eV, spec.eds, elements);
    for (const ElementMap& e : element_maps(r.expected, m, eds_requests(maps))) r.clean_maps.push_back(e.counts);
    for (const ElementMap& e : element_maps(r.counts, m, eds_requests(maps))) r.noisy_maps.push_back(e.counts);
  } else {
    const EelsModel m = eels_model(specimen, beam_energy_eV, spec.eels, elements);
    for (const EdgeMap& e : eels_edge_maps(r.expected, m, eels_requests(spec, maps))) r.clean_maps.push_back(e.counts);
    for (const EdgeMap& e : eels_edge_maps(r.counts, m, eels_requests(spec, maps))) r.noisy_maps.push_back(e.counts);
  }
  return r;
}

std::vector<double> spectrometer_energy_axis(const SpectrometerSpec& spec) {
  const SpectrumImage a = empty_axis(spec);
  std::vector<double> e(a.channels);
  for (std::size_t c = 0; c < a.channels; ++c) e[c] = a.energy_start_eV + (double(c) + 0.5) * a.channel_width_eV;
  return e;
}

}  // namespace stemtwin
