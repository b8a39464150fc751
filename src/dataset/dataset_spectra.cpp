// Spectroscopy arrays of a dataset (dataset_spectra.hpp; layout in docs/dataset.md).
#include "dataset_spectra.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "stemtwin/dataset/hdf5.hpp"

namespace stemtwin::detail {

namespace {
std::vector<float> floats(const Image& im) { return std::vector<float>(im.data.begin(), im.data.end()); }
}  // namespace

}  // namespace stemtwin::detail

namespace stemtwin {

std::vector<std::pair<std::string, double>> spectrometer_settings(const SpectraLayout& s) {
  std::vector<std::pair<std::string, double>> v;
  const std::pair<const char*, double> all[] = {{"resolution_mn_ka_eV", s.resolution_mn_ka_eV},
                                                {"solid_angle_sr", s.solid_angle_sr},
                                                {"takeoff_deg", s.takeoff_deg},
                                                {"collection_semiangle_mrad", s.collection_mrad}};
  for (const auto& [key, value] : all)
    if (value > 0) v.emplace_back(key, value);
  return v;
}

}  // namespace stemtwin

namespace stemtwin::detail {

bool has_column_composition(const DatasetLayout& l) { return l.columns && !l.composition_elements.empty(); }

std::vector<std::string> column_composition_paths(const DatasetLayout& l) {
  std::vector<std::string> p;
  if (has_column_composition(l))
    for (const auto& e : l.composition_elements) p.push_back("labels/columns/composition/" + e);
  return p;
}

std::vector<std::string> spectra_per_sample_paths(const DatasetLayout& l) {
  std::vector<std::string> p;
  for (const auto& s : l.spectra) {
    p.push_back("spectra/" + s.name);
    if (s.clean_spectra) p.push_back("clean/spectra/" + s.name);
    for (const auto& m : s.maps) {
      p.push_back("maps/" + s.name + "/" + m);
      if (l.store_clean) p.push_back("clean/maps/" + s.name + "/" + m);
    }
  }
  if (!l.composition_elements.empty()) p.push_back("labels/regions/composition");
  return p;
}

void validate_spectra(const DatasetLayout& l) {
  auto bad = [](const std::string& m) { return std::invalid_argument("dataset layout: " + m); };
  auto ok = [](const std::string& n) { return !n.empty() && n.find('/') == std::string::npos && n != "." && n != ".."; };
  std::set<std::string> names;
  for (const auto& s : l.spectra) {
    if (!ok(s.name) || !names.insert(s.name).second) throw bad("bad or repeated spectrometer name '" + s.name + "'");
    if (s.clean_spectra && !l.store_clean) throw bad("spectrometer '" + s.name + "': clean spectra need store_clean");
    if (s.channels == 0 || !(s.channel_width_eV > 0)) throw bad("spectrometer '" + s.name + "' needs channels and a width");
    std::set<std::string> maps;
    for (const auto& m : s.maps)
      if (!ok(m) || !maps.insert(m).second) throw bad("bad or repeated map '" + m + "' of '" + s.name + "'");
  }
  if (!l.composition_elements.empty() && l.region_classes.empty()) throw bad("composition needs region classes");
}

void create_spectra(hid_t f, const DatasetLayout& l) {
  const hsize_t nx = l.nx, ny = l.ny;
  const int z = l.compression;
  auto scan_scale = [&](const char* name, std::size_t n, std::size_t which) {
    // The image datasets' scan axes (axes.cpp) when they exist; otherwise made here.
    const bool have_A = l.pixel_size_A.size() == 2;
    const std::string path = std::string("axes/") + name + (have_A ? "_A" : "_px");
    if (!h5::exists(f, path)) {
      std::vector<double> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = have_A ? double(i) * l.pixel_size_A[which] : double(i);
      auto d = h5::create_dataset(f, path, v);
      h5::make_scale(d, name);
      h5::write_attr(d, "units", std::string(have_A ? "Å" : "px"));
      h5::write_attr(d, "long_name", std::string("scan ") + name);
    }
    return h5::open_dataset(f, path);
  };
  auto sample_scale = h5::open_dataset(f, "params/sample_index");
  auto label = [&](hid_t d, bool spectral) {
    h5::set_dim_label(d, 0, "sample");
    h5::attach_scale(d, sample_scale, 0);
    h5::set_dim_label(d, 1, "y");
    h5::attach_scale(d, scan_scale("y", l.ny, 1), 1);
    h5::set_dim_label(d, 2, "x");
    h5::attach_scale(d, scan_scale("x", l.nx, 0), 2);
    if (spectral) h5::set_dim_label(d, 3, "energy");
  };
  for (const auto& s : l.spectra) {
    std::vector<double> e(s.channels);
    for (std::size_t c = 0; c < s.channels; ++c) e[c] = s.energy_start_eV + (double(c) + 0.5) * s.channel_width_eV;
    auto axis = h5::create_dataset(f, "axes/" + s.name + "/energy_eV", e);
    h5::make_scale(axis, "energy");
    h5::write_attr(axis, "units", std::string("eV"));
    h5::write_attr(axis, "long_name", std::string("energy (channel centre)"));
    for (const std::string g : {"spectra/", "clean/spectra/"}) {
      if (g == "clean/spectra/" && !s.clean_spectra) continue;
      auto d = h5::create_extendible(f, g + s.name, H5T_IEEE_F32LE, {ny, nx, s.channels}, {1, nx, s.channels}, z);
      label(d, true);
      h5::attach_scale(d, axis, 3);
      h5::write_attr(d, "technique", s.technique);
      h5::write_attr(d, "units", std::string("counts"));
      for (const auto& [key, value] : spectrometer_settings(s)) h5::write_attr(d, key, value);
      h5::write_attr(d, "long_name", s.name + " spectrum image (" + s.technique +
                                         (g == "spectra/" ? ", Poisson counts per channel)" : ", expected counts per channel)"));
    }
    for (const auto& m : s.maps)
      for (const std::string g : {"maps/", "clean/maps/"}) {
        if (g == "clean/maps/" && !l.store_clean) continue;
        auto md = h5::create_extendible(f, g + s.name + "/" + m, H5T_IEEE_F32LE, {ny, nx}, {}, z);
        label(md, false);
        h5::write_attr(md, "units", std::string("counts"));
        h5::write_attr(md, "long_name", m + " map of " + s.name + (g == "maps/" ? " (from the Poisson spectra)" : " (expected counts)") +
                                            ": counts in the line window after background subtraction");
      }
  }
  if (!l.composition_elements.empty()) {
    auto d = h5::create_extendible(f, "labels/regions/composition", H5T_IEEE_F32LE,
                                   {l.region_classes.size(), l.composition_elements.size()}, {}, z);
    h5::write_attr(d, "elements", l.composition_elements);
    h5::write_attr(d, "classes", l.region_classes);
    h5::write_attr(d, "units", std::string("atoms (Σ occupancy) in the specimen cell"));
    h5::write_attr(d, "long_name", std::string("atoms of each element per specimen region class [sample, class, element]"));
  }
  if (has_column_composition(l)) {
    for (const auto& p : column_composition_paths(l)) {
      auto d = h5::create_extendible(f, p, H5T_IEEE_F32LE, {}, {}, 0);  // 1-D, 1024-row chunks, as the column table
      h5::write_attr(d, "units", std::string("atoms (Σ occupancy) of this element in the column"));
    }
    h5::write_attr(h5::open_group(f, "labels/columns/composition"), "elements", l.composition_elements);
  }
}

void check_spectra(const SampleRecord& r, const DatasetLayout& l, const std::string& who) {
  const std::size_t n = l.nx * l.ny;
  for (const auto& s : l.spectra) {
    const auto it = r.spectra.find(s.name);
    if (it == r.spectra.end() || it->second.size() != n * s.channels)
      throw std::invalid_argument(who + "spectra/" + s.name + " missing or of the wrong size");
    if (s.clean_spectra) {
      const auto c = r.clean_spectra.find(s.name);
      if (c == r.clean_spectra.end() || c->second.size() != n * s.channels)
        throw std::invalid_argument(who + "clean/spectra/" + s.name + " missing or of the wrong size");
    }
    for (const auto& m : s.maps) {
      const std::string k = s.name + "/" + m;
      for (const auto* group : {&r.maps, &r.clean_maps}) {
        if (group == &r.clean_maps && !l.store_clean) continue;
        const auto im = group->find(k);
        if (im == group->end() || im->second.data.size() != n)
          throw std::invalid_argument(who + (group == &r.maps ? "maps/" : "clean/maps/") + k + " missing or of the wrong size");
      }
    }
  }
  if (!l.composition_elements.empty() &&
      r.region_composition.size() != l.region_classes.size() * l.composition_elements.size())
    throw std::invalid_argument(who + "labels/regions/composition missing or of the wrong size");
  if (has_column_composition(l))
    for (const auto& c : r.columns)
      if (c.composition.size() != l.composition_elements.size())
        throw std::invalid_argument(who + "a column's composition has the wrong number of elements");
}

void append_spectra(const SampleRecord& r, const DatasetLayout& l,
                    const std::function<void(const std::string&, hid_t, const void*)>& append) {
  for (const auto& s : l.spectra) {
    append("spectra/" + s.name, H5T_NATIVE_FLOAT, r.spectra.at(s.name).data());
    if (s.clean_spectra) append("clean/spectra/" + s.name, H5T_NATIVE_FLOAT, r.clean_spectra.at(s.name).data());
    for (const auto& m : s.maps) {
      const std::string k = s.name + "/" + m;
      append("maps/" + k, H5T_NATIVE_FLOAT, floats(r.maps.at(k)).data());
      if (l.store_clean) append("clean/maps/" + k, H5T_NATIVE_FLOAT, floats(r.clean_maps.at(k)).data());
    }
  }
  if (!l.composition_elements.empty()) append("labels/regions/composition", H5T_NATIVE_FLOAT, r.region_composition.data());
}

void read_spectra(hid_t f, const DatasetLayout& l, std::size_t row, SampleRecord& r) {
  const std::size_t n = l.nx * l.ny;
  auto image = [&](const std::string& p) {
    std::vector<float> v(n);
    h5::read_rows(h5::open_dataset(f, p), H5T_NATIVE_FLOAT, row, 1, v.data());
    Image im(l.nx, l.ny);
    std::copy(v.begin(), v.end(), im.data.begin());
    return im;
  };
  for (const auto& s : l.spectra) {
    std::vector<float> v(n * s.channels);
    h5::read_rows(h5::open_dataset(f, "spectra/" + s.name), H5T_NATIVE_FLOAT, row, 1, v.data());
    r.spectra[s.name] = std::move(v);
    if (s.clean_spectra) {
      std::vector<float> c(n * s.channels);
      h5::read_rows(h5::open_dataset(f, "clean/spectra/" + s.name), H5T_NATIVE_FLOAT, row, 1, c.data());
      r.clean_spectra[s.name] = std::move(c);
    }
    for (const auto& m : s.maps) {
      r.maps[s.name + "/" + m] = image("maps/" + s.name + "/" + m);
      if (l.store_clean) r.clean_maps[s.name + "/" + m] = image("clean/maps/" + s.name + "/" + m);
    }
  }
  if (!l.composition_elements.empty()) {
    r.region_composition.resize(l.region_classes.size() * l.composition_elements.size());
    h5::read_rows(h5::open_dataset(f, "labels/regions/composition"), H5T_NATIVE_FLOAT, row, 1, r.region_composition.data());
  }
}

}  // namespace stemtwin::detail
