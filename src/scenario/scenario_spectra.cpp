// Spectrometers in a scenario run (scenario_spectra.hpp).
#include "scenario_spectra.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <stdexcept>

#include "stemtwin/acquisition/spectrometer.hpp"

namespace stemtwin::detail {

namespace {

std::vector<SpectrometerMap> layout_maps(const SpectraLayout& l) {
  std::vector<SpectrometerMap> maps;
  for (const std::string& name : l.maps) {
    const auto u = name.find('_');
    maps.push_back({atomic_number(name.substr(0, u)), name.substr(u + 1)});
  }
  return maps;
}

/// The spectrometer with its elements made explicit for this sample: the listed ones (or the
/// specimen's) and every element of a stored map (a map's element absent from this sample is
/// then recorded as 0, so its map is 0 within the noise).
SpectrometerSpec sample_spec(const SpectrometerSpec& sc, const Structure& structure, const SpectraLayout& l) {
  SpectrometerSpec out = sc;
  std::set<int> z;
  for (int Z : spectrometer_elements(sc, structure)) z.insert(Z);
  for (const SpectrometerMap& m : layout_maps(l)) z.insert(m.Z);
  out.elements.assign(z.begin(), z.end());
  return out;
}

}  // namespace

SpectraRecorders::SpectraRecorders(const ScenarioSpec& spec, const DatasetLayout& layout, const Specimen& specimen,
                                   std::uint64_t phonon_seed) {
  for (std::size_t k = 0; k < spec.spectrometers.size(); ++k) {
    const SpectrometerSpec sc = sample_spec(spec.spectrometers[k].spec, specimen.structure, layout.spectra.at(k));
    InelasticSettings st;
    st.width_A = sc.width_A;
    st.elements = sc.elements;
    // The same seed as the engine's frozen-phonon configurations: the atoms are displaced alike.
    recorders_.push_back(std::make_unique<InelasticRecorder>(specimen.structure, phonon_seed, st));
  }
}

void SpectraRecorders::begin(const Grid& grid, const std::vector<double>& dz, std::size_t configurations,
                             std::size_t positions) {
  for (auto& r : recorders_) r->begin(grid, dz, configurations, positions);
}

void SpectraRecorders::observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                               const cfloat* psi) {
  for (auto& r : recorders_) r->observe(position, configuration, slice, weight, psi);
}

void SpectraRecorders::set_window(std::size_t x0, std::size_t y0, std::size_t nx, std::size_t ny) {
  for (auto& r : recorders_) r->set_window(x0, y0, nx, ny);
}

std::vector<std::vector<std::vector<std::uint32_t>>> SpectraRecorders::read_pixels() {
  std::vector<std::vector<std::vector<std::uint32_t>>> all;
  for (auto& r : recorders_) {
    const auto own = r->read_pixels();
    if (all.empty()) {
      all = own;
      continue;
    }
    for (std::size_t c = 0; c < all.size(); ++c)
      for (std::size_t s = 0; s < all[c].size(); ++s) {
        std::vector<std::uint32_t> merged;
        std::set_union(all[c][s].begin(), all[c][s].end(), own[c][s].begin(), own[c][s].end(), std::back_inserter(merged));
        all[c][s] = std::move(merged);
      }
  }
  for (auto& r : recorders_) r->index_pixels(all);
  return all;
}

void SpectraRecorders::observe_intensities(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                                           const float* intensity) {
  for (auto& r : recorders_) r->observe_intensities(position, configuration, slice, weight, intensity);
}

std::unique_ptr<SliceObserver> SpectraRecorders::fresh_copy() const {
  std::unique_ptr<SpectraRecorders> out(new SpectraRecorders());
  for (const auto& r : recorders_) {
    std::unique_ptr<SliceObserver> c = r->fresh_copy();
    out->recorders_.emplace_back(static_cast<InelasticRecorder*>(c.release()));
  }
  return out;
}

std::vector<std::vector<double>> SpectraRecorders::recorded_signals() const {
  std::vector<std::vector<double>> out;
  for (const auto& r : recorders_)
    for (auto& v : r->recorded_signals()) out.push_back(std::move(v));
  return out;
}

std::vector<float> column_composition(const std::map<int, double>& composition, const DatasetLayout& layout) {
  std::vector<float> v(layout.composition_elements.size(), 0.0f);
  for (const auto& [Z, occ] : composition) {
    const auto it = std::find(layout.composition_elements.begin(), layout.composition_elements.end(), element_symbol(Z));
    if (it != layout.composition_elements.end()) v[std::size_t(it - layout.composition_elements.begin())] += float(occ);
  }
  return v;
}

void read_spectra(SampleRecord& rec, const ScenarioSpec& spec, const SampledScenario& s, const Specimen& sp,
                  const SpectraRecorders& recorders, const DatasetLayout& layout, double electrons, bool noisy) {
  const std::size_t nx = s.scan.nx, ny = s.scan.ny;
  for (std::size_t k = 0; k < spec.spectrometers.size(); ++k) {
    const SpectraLayout& sl = layout.spectra.at(k);
    const SpectrometerSpec sc = sample_spec(spec.spectrometers[k].spec, sp.structure, sl);
    const std::vector<SpectrometerMap> maps = layout_maps(sl);
    const SpectrometerReadout r =
        read_spectrometer(sc, sp.structure, s.energy, recorders.result(k), electrons, maps, s.seed, s.index, k);
    const SpectrumImage& stored = noisy ? r.counts : r.expected;
    rec.spectra[sc.name].assign(stored.values.begin(), stored.values.end());
    if (sl.clean_spectra) rec.clean_spectra[sc.name].assign(r.expected.values.begin(), r.expected.values.end());
    for (std::size_t m = 0; m < maps.size(); ++m) {
      Image noisy_map(nx, ny), clean_map(nx, ny);
      const std::vector<double>& nm = noisy ? r.noisy_maps[m] : r.clean_maps[m];
      std::copy(nm.begin(), nm.end(), noisy_map.data.begin());
      std::copy(r.clean_maps[m].begin(), r.clean_maps[m].end(), clean_map.data.begin());
      rec.maps[sc.name + "/" + sl.maps[m]] = std::move(noisy_map);
      if (layout.store_clean) rec.clean_maps[sc.name + "/" + sl.maps[m]] = std::move(clean_map);
    }
  }
  if (!layout.composition_elements.empty()) {
    const std::size_t ne = layout.composition_elements.size();
    rec.region_composition.assign(layout.region_classes.size() * ne, 0.0f);
    for (std::size_t i = 0; i < sp.structure.atoms.size(); ++i) {
      const Atom& a = sp.structure.atoms[i];
      const std::size_t cls = std::size_t(sp.atom_class.at(i));
      const auto it = std::find(layout.composition_elements.begin(), layout.composition_elements.end(), element_symbol(a.Z));
      if (it == layout.composition_elements.end() || cls >= layout.region_classes.size()) continue;
      rec.region_composition[cls * ne + std::size_t(it - layout.composition_elements.begin())] += float(a.occupancy);
    }
  }
}

void complete_spectra_layout(DatasetLayout& layout, const ScenarioSpec& spec, const SampledScenario& s0,
                             const Specimen& specimen0) {
  if (spec.spectrometers.empty()) return;
  std::set<int> elements;
  for (const Atom& a : specimen0.structure.atoms) elements.insert(a.Z);
  for (const ScenarioSpectrometer& sp : spec.spectrometers) {
    const SpectrometerSpec& sc = sp.spec;
    SpectraLayout l;
    l.name = sc.name;
    l.clean_spectra = layout.store_clean;  // the noise-free spectra beside the noisy ones
    l.technique = sc.kind == SpectrometerKind::Eds ? "EDS" : "EELS";
    l.energy_start_eV = sc.kind == SpectrometerKind::Eds ? sc.eds.energy_start_eV : sc.eels.energy_start_eV;
    l.channel_width_eV = sc.kind == SpectrometerKind::Eds ? sc.eds.channel_width_eV : sc.eels.channel_width_eV;
    l.channels = sc.kind == SpectrometerKind::Eds ? sc.eds.channels : sc.eels.channels;
    if (sc.kind == SpectrometerKind::Eds) {  // the settings readers show (docs/dataset.md, "Spectroscopy")
      l.resolution_mn_ka_eV = sc.eds.fwhm_mn_ka_eV;
      l.solid_angle_sr = sc.eds.solid_angle_sr;
      l.takeoff_deg = sc.eds.takeoff_deg;
    } else {
      l.collection_mrad = sc.eels.collection_semiangle_mrad;
    }
    for (const SpectrometerMap& m : spectrometer_maps(sc, specimen0.structure, s0.energy)) l.maps.push_back(m.name());
    for (int Z : spectrometer_elements(sc, specimen0.structure)) elements.insert(Z);
    layout.spectra.push_back(std::move(l));
  }
  for (int Z : elements) layout.composition_elements.push_back(element_symbol(Z));
  layout.region_classes = specimen0.class_names;
}

}  // namespace stemtwin::detail
