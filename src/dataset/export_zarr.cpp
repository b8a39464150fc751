// zarr v2 directory store, written directly: the format is JSON metadata (.zgroup, .zarray,
// .zattrs) plus one file per chunk, and an uncompressed chunk is the array's bytes in C
// order — no zarr library is needed (Debian has none for C++). Read with python3-zarr 2.x
// or xarray.open_zarr (dimension names in _ARRAY_DIMENSIONS).
//   <out>/.zgroup, .zattrs                   program, source file, scenario text
//   <out>/<title>/.zarray                   shape [N, ...], chunks [1, ...] (one sample), dtype <f4 (masks <i2)
//   <out>/<title>/.zattrs                   _ARRAY_DIMENSIONS, long_name, units, axes (offset/scale or values, units);
//                                           spectrum images: spectrometer {technique, spectrometer_settings()}
//   <out>/<title>/<row>.0.0...              chunk of sample row <row>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "export_source.hpp"

namespace stemtwin::exporting {
namespace {

using json = nlohmann::json;

void write_text(const std::filesystem::path& p, const json& j) {
  std::ofstream o(p);
  o << j.dump(2, ' ', true) << '\n';  // zarr reads its metadata as ASCII JSON
  if (!o) throw std::runtime_error("zarr: cannot write '" + p.string() + "'");
}

template <typename T>
void write_chunk(const std::filesystem::path& p, const std::vector<T>& v) {
  static_assert(std::endian::native == std::endian::little, "zarr chunks are written little-endian");
  std::ofstream o(p, std::ios::binary);
  o.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  if (!o) throw std::runtime_error("zarr: cannot write '" + p.string() + "'");
}

}  // namespace

void write_zarr(const Source& s, const std::string& output) {
  const std::filesystem::path root(output);
  std::filesystem::create_directories(root);
  write_text(root / ".zgroup", {{"zarr_format", 2}});
  write_text(root / ".zattrs", {{"program", "stemtwin"}, {"source_file", s.path}, {"scenario", s.scenario_text}});
  for (const ArrayInfo& a : s.arrays) {
    const auto dir = root / title_of(a);
    std::filesystem::create_directories(dir);
    const bool mask = a.kind == ArrayKind::Mask;
    json shape = json::array(), chunks = json::array(), names = json::array(), axes = json::array();
    for (std::size_t i = 0; i < a.axes.size(); ++i) {
      const AxisInfo& ax = a.axes[i];
      shape.push_back(ax.size);
      chunks.push_back(i == 0 ? 1 : ax.size);
      names.push_back(ax.name);
      json j = {{"name", ax.name}, {"units", ax.units}, {"long_name", ax.long_name}};
      if (ax.values.empty()) j["offset"] = ax.offset, j["scale"] = ax.scale;
      else j["values"] = ax.values;
      if (!ax.alt_name.empty()) j["alternative"] = {{"units", ax.alt_units}, {"offset", ax.alt_offset}, {"scale", ax.alt_scale}};
      axes.push_back(j);
    }
    write_text(dir / ".zarray", {{"zarr_format", 2},
                                 {"shape", shape},
                                 {"chunks", chunks},
                                 {"dtype", mask ? "<i2" : "<f4"},
                                 {"compressor", nullptr},
                                 {"fill_value", 0},
                                 {"filters", nullptr},
                                 {"order", "C"},
                                 {"dimension_separator", "."}});
    json attrs = {{"_ARRAY_DIMENSIONS", names}, {"long_name", a.long_name}, {"units", a.units}, {"axes", axes},
                  {"source_dataset", "/" + a.path}};
    if (!a.value_names.empty()) attrs["values"] = a.value_names;
    if (const SpectraLayout* l = s.spectrometer_of(a); l && !spectrometer_settings(*l).empty()) {
      json sp = {{"technique", l->technique}};
      for (const auto& [key, value] : spectrometer_settings(*l)) sp[key] = value;
      attrs["spectrometer"] = sp;
    }
    write_text(dir / ".zattrs", attrs);
    std::string rest;
    for (std::size_t i = 1; i < a.axes.size(); ++i) rest += ".0";
    for (std::size_t r = 0; r < s.rows; ++r) {
      const auto v = s.read(a, r);
      const auto chunk = dir / (std::to_string(r) + rest);
      if (mask) {
        std::vector<std::int16_t> m(v.size());
        for (std::size_t k = 0; k < v.size(); ++k) m[k] = static_cast<std::int16_t>(std::lround(v[k]));
        write_chunk(chunk, m);
      } else {
        write_chunk(chunk, v);
      }
    }
  }
}

}  // namespace stemtwin::exporting
