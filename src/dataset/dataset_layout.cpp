// The dataset layout (the root attribute "layout") as JSON, and the rows a shard has left to
// write. The writer that creates files with it: dataset.cpp; the reader: dataset_reader.cpp.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/shard.hpp"

namespace stemtwin {

using json = nlohmann::json;

std::string DatasetLayout::to_json() const {
  json j;
  j["scenario_name"] = scenario_name;
  j["seed"] = seed;
  j["total_samples"] = total_samples;
  j["shard"] = {shard.index, shard.count};
  j["nx"] = nx;
  j["ny"] = ny;
  j["images"] = images;
  j["store_clean"] = store_clean;
  j["radial"] = json::array();
  for (const auto& r : radial) j["radial"].push_back({{"name", r.name}, {"edges", r.edges}});
  j["diffraction"] = json::array();
  for (const auto& d : diffraction)
    j["diffraction"].push_back(
        {{"name", d.name}, {"kx", d.kx}, {"ky", d.ky}, {"sampling_x", d.sampling_x}, {"sampling_y", d.sampling_y}});
  j["params"] = json::array();
  for (const auto& p : params) j["params"].push_back({{"name", p.name}, {"categories", p.categories}});
  j["has_class"] = has_class;
  j["class_names"] = class_names;
  j["masks"] = json::array();
  for (const auto& m : masks)
    j["masks"].push_back({{"name", m.name}, {"type", m.type == MaskType::UInt8 ? "uint8" : "int16"}, {"values", m.values}});
  j["columns"] = columns;
  j["species"] = species;
  j["compression"] = compression;
  j["pixel_size_A"] = pixel_size_A;
  if (!spectra.empty()) {  // only when present: layouts without spectra stay as they were
    j["spectra"] = json::array();
    for (const auto& s : spectra) {
      j["spectra"].push_back({{"name", s.name}, {"technique", s.technique}, {"energy_start_eV", s.energy_start_eV},
                              {"channel_width_eV", s.channel_width_eV}, {"channels", s.channels}, {"maps", s.maps}});
      if (s.clean_spectra) j["spectra"].back()["clean_spectra"] = true;  // absent: as layouts before it
      for (const auto& [key, value] : spectrometer_settings(s)) j["spectra"].back()[key] = value;  // likewise
    }
  }
  if (!composition_elements.empty()) {
    j["composition_elements"] = composition_elements;
    j["region_classes"] = region_classes;
  }
  if (instrument.stored) {  // only when present: files from before /instrument read as they were
    json in;
    if (instrument.energy_eV) in["energy_eV"] = *instrument.energy_eV;
    in["detectors"] = json::array();
    for (const auto& d : instrument.detectors) in["detectors"].push_back({{"name", d.name}, {"type", d.type}});
    in["acquired_units"] = instrument.acquired_units;
    in["clean_units"] = instrument.clean_units;
    j["instrument"] = in;
  }
  return j.dump();
}

DatasetLayout DatasetLayout::from_json(const std::string& text) {
  const json j = json::parse(text);
  DatasetLayout l;
  l.scenario_name = j.at("scenario_name");
  l.seed = j.at("seed");
  l.total_samples = j.at("total_samples");
  l.shard = {j.at("shard")[0], j.at("shard")[1]};
  l.nx = j.at("nx");
  l.ny = j.at("ny");
  l.images = j.at("images").get<std::vector<std::string>>();
  l.store_clean = j.at("store_clean");
  for (const auto& r : j.at("radial")) l.radial.push_back({r.at("name"), r.at("edges").get<std::vector<double>>()});
  for (const auto& d : j.at("diffraction"))
    l.diffraction.push_back({d.at("name"), d.at("kx"), d.at("ky"), d.at("sampling_x"), d.at("sampling_y")});
  for (const auto& p : j.at("params"))
    l.params.push_back({p.at("name"), p.at("categories").get<std::vector<std::string>>()});
  l.has_class = j.at("has_class");
  l.class_names = j.at("class_names").get<std::vector<std::string>>();
  for (const auto& m : j.at("masks"))
    l.masks.push_back({m.at("name"), m.at("type") == "uint8" ? MaskType::UInt8 : MaskType::Int16,
                       m.at("values").get<std::vector<std::string>>()});
  l.columns = j.at("columns");
  l.species = j.at("species").get<std::vector<std::string>>();
  l.compression = j.at("compression");
  if (j.contains("pixel_size_A")) l.pixel_size_A = j.at("pixel_size_A").get<std::vector<double>>();
  if (j.contains("spectra"))
    for (const auto& s : j.at("spectra"))
    {
      SpectraLayout sl{s.at("name"), s.at("technique"), s.at("energy_start_eV"), s.at("channel_width_eV"), s.at("channels"),
                       s.at("maps").get<std::vector<std::string>>(), s.value("clean_spectra", false)};
      sl.resolution_mn_ka_eV = s.value("resolution_mn_ka_eV", 0.0);
      sl.solid_angle_sr = s.value("solid_angle_sr", 0.0);
      sl.takeoff_deg = s.value("takeoff_deg", 0.0);
      sl.collection_mrad = s.value("collection_semiangle_mrad", 0.0);
      l.spectra.push_back(std::move(sl));
    }
  if (j.contains("composition_elements")) {
    l.composition_elements = j.at("composition_elements").get<std::vector<std::string>>();
    l.region_classes = j.at("region_classes").get<std::vector<std::string>>();
  }
  if (j.contains("instrument")) {
    const json& in = j.at("instrument");
    l.instrument.stored = true;
    if (in.contains("energy_eV")) l.instrument.energy_eV = in.at("energy_eV").get<double>();
    for (const auto& d : in.at("detectors")) l.instrument.detectors.push_back({d.at("name"), d.at("type")});
    l.instrument.acquired_units = in.at("acquired_units").get<std::map<std::string, std::string>>();
    l.instrument.clean_units = in.at("clean_units").get<std::map<std::string, std::string>>();
  }
  return l;
}

bool DatasetLayout::same_shapes(const DatasetLayout& o) const {
  DatasetLayout a = *this, b = o;
  a.shard = b.shard = Shard{};
  return a.to_json() == b.to_json();
}

std::vector<std::size_t> remaining_samples(std::size_t total, Shard shard, std::size_t complete_rows) {
  auto all = shard_samples(total, shard);
  if (complete_rows >= all.size()) return {};
  return {all.begin() + static_cast<std::ptrdiff_t>(complete_rows), all.end()};
}

}  // namespace stemtwin
