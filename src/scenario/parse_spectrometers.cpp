// The YAML side of spectrometers (`detectors: - type: eds|eels`, docs/scenario.md).
#include "parse_spectrometers.hpp"

#include <cmath>
#include <set>
#include <sstream>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/physics/xray_data.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {
namespace detail {
namespace {

/// Largest channel count of one spectrum (16 k channels: a 4 MB spectrum image per 64×64 scan
/// row block at float32; commercial EDS/EELS read-outs use ≤ 16 k channels).
constexpr double kMaxChannels = 16384;

const std::set<std::string> kEdsFamilies = {"Ka", "Kb", "La", "Lb", "Lg", "Ll", "Ma", "Mb", "Mg", "Mz"};
const std::set<std::string> kShells = {"K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5"};

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

struct Reader {
  const YAML::Node& node;
  std::string path, file;

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    throw ScenarioError(file, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, key, msg);
  }
  std::string key(const std::string& k) const { return path + "." + k; }
  void allow(const std::set<std::string>& keys) const {
    for (const auto& kv : node) {
      const std::string k = kv.first.as<std::string>();
      if (!keys.count(k)) {
        std::string list;
        for (const auto& a : keys) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first, key(k), "unknown key for a spectrometer of this type (allowed: " + list + ")");
      }
    }
  }
  double scalar(const YAML::Node& n, const std::string& k) const {
    if (!n.IsScalar()) fail(n, k, "expected a fixed number (spectrometer settings are not sampled: they set array shapes)");
    try {
      const double v = n.as<double>();
      if (!std::isfinite(v)) fail(n, k, "must be a finite number");
      return v;
    } catch (const YAML::Exception&) {
      fail(n, k, "expected a number, got '" + n.Scalar() + "'");
    }
  }
  /// A number in [lo, hi] (strict: lo excluded); absent: `out` unchanged.
  void number(const char* k, double& out, double lo, double hi, bool strict_lo, const char* unit) const {
    if (!node[k]) return;
    const double v = scalar(node[k], key(k));
    if (strict_lo ? !(v > lo) : !(v >= lo))
      fail(node[k], key(k), std::string("must be ") + (strict_lo ? "> " : "≥ ") + fmt(lo) + " " + unit + ", got " + fmt(v));
    if (!(v <= hi)) fail(node[k], key(k), "must be ≤ " + fmt(hi) + " " + unit + ", got " + fmt(v));
    out = v;
  }
  void flag(const char* k, bool& out) const {
    if (!node[k]) return;
    try {
      out = node[k].as<bool>();
    } catch (const YAML::Exception&) {
      fail(node[k], key(k), "expected true or false");
    }
  }
  /// energy_range [start, end] and channel_width → start, width, channels.
  void axis(double& start, double& width, std::size_t& channels, double min_start) const {
    double end = start + width * double(channels);
    if (node["energy_range"]) {
      const YAML::Node& r = node["energy_range"];
      if (!r.IsSequence() || r.size() != 2) fail(r, key("energy_range"), "expected [start, end] in eV");
      start = scalar(r[0], key("energy_range[0]"));
      end = scalar(r[1], key("energy_range[1]"));
      if (start < min_start) fail(r[0], key("energy_range[0]"), "must be ≥ " + fmt(min_start) + " eV, got " + fmt(start));
      if (!(end > start)) fail(r[1], key("energy_range[1]"), "must exceed the start (" + fmt(start) + " eV)");
      if (end > 500e3) fail(r[1], key("energy_range[1]"), "must be ≤ 500000 eV, got " + fmt(end));
    }
    number("channel_width", width, 0, 1000, true, "eV");
    const double n = (end - start) / width;
    const YAML::Node& where = node["channel_width"] ? node["channel_width"] : node;
    if (std::abs(n - std::round(n)) > 1e-6 * std::max(1.0, n))
      fail(where, key("channel_width"), "the energy range (" + fmt(end - start) + " eV) must be a whole number of channels of " +
                                            fmt(width) + " eV (" + fmt(n) + ")");
    if (std::round(n) < 1 || std::round(n) > kMaxChannels)
      fail(where, key("channel_width"), fmt(std::round(n)) + " channels; between 1 and " + fmt(kMaxChannels));
    channels = std::size_t(std::round(n));
  }
  std::vector<int> elements() const {
    std::vector<int> out;
    if (!node["elements"]) return out;
    const YAML::Node& e = node["elements"];
    if (!e.IsSequence() || e.size() == 0) fail(e, key("elements"), "expected a list of element symbols, e.g. [Sr, Ti, O]");
    std::set<int> seen;
    for (std::size_t i = 0; i < e.size(); ++i) {
      const std::string k = key("elements[" + std::to_string(i) + "]");
      if (!e[i].IsScalar()) fail(e[i], k, "expected an element symbol");
      int Z = 0;
      try {
        Z = atomic_number(e[i].Scalar());
      } catch (const std::exception&) {
        fail(e[i], k, "unknown element symbol '" + e[i].Scalar() + "'");
      }
      if (!seen.insert(Z).second) fail(e[i], k, element_symbol(Z) + " listed twice");
      out.push_back(Z);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<SpectrometerMap> maps(bool eds, const std::vector<int>& elements) const {
    std::vector<SpectrometerMap> out;
    if (!node["maps"]) return out;
    const YAML::Node& m = node["maps"];
    const char* example = eds ? "e.g. [Sr_Ka, Ti_Ka, La_La]" : "e.g. [O_K, Ti_L3]";
    if (!m.IsSequence() || m.size() == 0) fail(m, key("maps"), std::string("expected a list of <Element>_<line>, ") + example);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < m.size(); ++i) {
      const std::string k = key("maps[" + std::to_string(i) + "]");
      if (!m[i].IsScalar()) fail(m[i], k, std::string("expected <Element>_<line>, ") + example);
      const std::string w = m[i].Scalar();
      const auto u = w.find('_');
      if (u == std::string::npos) fail(m[i], k, "'" + w + "': expected <Element>_<line>, " + example);
      SpectrometerMap map;
      try {
        map.Z = atomic_number(w.substr(0, u));
      } catch (const std::exception&) {
        fail(m[i], k, "'" + w + "': unknown element symbol '" + w.substr(0, u) + "'");
      }
      map.line = w.substr(u + 1);
      const auto& allowed = eds ? kEdsFamilies : kShells;
      if (!allowed.count(map.line)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(m[i], k, "'" + w + "': unknown " + (eds ? "line family" : "edge") + " '" + map.line + "' (" + list + ")");
      }
      if (!elements.empty() && std::find(elements.begin(), elements.end(), map.Z) == elements.end())
        fail(m[i], k, "'" + w + "': " + element_symbol(map.Z) + " is not in this spectrometer's `elements`");
      if (!seen.insert(map.name()).second) fail(m[i], k, "'" + w + "' listed twice");
      out.push_back(map);
    }
    return out;
  }
};

}  // namespace

ScenarioSpectrometer parse_spectrometer(const YAML::Node& node, const std::string& name, const std::string& type,
                                        const std::string& path, const std::string& file) {
  const Reader r{node, path, file};
  ScenarioSpectrometer out;
  const YAML::Mark mark = node.Mark();
  out.file = file;
  out.path = path;
  out.line = mark.line >= 0 ? mark.line + 1 : 0;
  out.column = mark.column >= 0 ? mark.column + 1 : 0;
  SpectrometerSpec& s = out.spec;
  s.name = name;
  const bool eds = type == "eds";
  s.kind = eds ? SpectrometerKind::Eds : SpectrometerKind::Eels;
  if (eds) {
    r.allow({"name", "type", "energy_range", "channel_width", "resolution", "solid_angle", "takeoff",
             "window_transmission", "sensor_thickness", "threshold", "self_absorption", "bremsstrahlung", "elements", "maps",
             "width"});
    s.eds.energy_start_eV = 0;
    s.eds.channel_width_eV = 10;
    s.eds.channels = 2048;
    r.axis(s.eds.energy_start_eV, s.eds.channel_width_eV, s.eds.channels, 0.0);
    r.number("resolution", s.eds.fwhm_mn_ka_eV, 0, 1000, true, "eV (FWHM at Mn Kα)");
    r.number("solid_angle", s.eds.solid_angle_sr, 0, 4 * M_PI, true, "sr");
    r.number("takeoff", s.eds.takeoff_deg, 0, 90, true, "deg");
    r.number("window_transmission", s.eds.window_transmission, 0, 1, true, "");
    r.number("sensor_thickness", s.eds.sensor_thickness_um, 0, 1e4, false, "µm");
    r.number("threshold", s.eds.threshold_eV, 0, 1e5, false, "eV");
    r.flag("self_absorption", s.eds.self_absorption);
    r.flag("bremsstrahlung", s.eds.bremsstrahlung);
  } else {
    r.allow({"name", "type", "energy_range", "channel_width", "collection", "zlp_fwhm", "plasmon_energy",
             "plasmon_width", "mean_free_path", "edge_exponent", "low_loss", "core_loss", "window", "elements", "maps",
             "width"});
    r.axis(s.eels.energy_start_eV, s.eels.channel_width_eV, s.eels.channels, -1000.0);
    r.number("collection", s.eels.collection_semiangle_mrad, 0, 1000, true, "mrad");
    r.number("zlp_fwhm", s.eels.zlp_fwhm_eV, 0, 100, true, "eV");
    r.number("plasmon_energy", s.eels.plasmon_energy_eV, 0, 200, true, "eV");
    r.number("plasmon_width", s.eels.plasmon_width_eV, 0, 200, true, "eV");
    r.number("mean_free_path", s.eels.mean_free_path_A, 0, 1e6, false, "Å (0: Malis et al.)");
    r.number("edge_exponent", s.eels.edge_exponent, 1, 10, true, "");
    r.flag("low_loss", s.eels.low_loss);
    r.flag("core_loss", s.eels.core_loss);
    if (node["window"]) {
      const YAML::Node& w = node["window"];
      if (!w.IsMap()) r.fail(w, path + ".window", "expected a map {pre_edge, gap, signal} in eV");
      const Reader rw{w, path + ".window", file};
      rw.allow({"pre_edge", "gap", "signal"});
      rw.number("pre_edge", s.pre_edge_eV, 0, 5000, true, "eV");
      rw.number("gap", s.gap_eV, 0, 5000, false, "eV");
      rw.number("signal", s.signal_eV, 0, 5000, true, "eV");
    }
  }
  r.number("width", s.width_A, 0, 5, false, "Å (1σ of the ionisation footprint)");
  s.elements = r.elements();
  s.maps = r.maps(eds, s.elements);
  return out;
}

}  // namespace detail

void check_spectrometers(const ScenarioSpec& spec) {
  for (const ScenarioSpectrometer& sp : spec.spectrometers) {
    auto fail = [&](const std::string& msg) { throw ScenarioError(sp.file, sp.line, sp.column, sp.path, msg); };
    // The maps' windows at the lowest and highest beam energy a sample can draw (the windows
    // do not depend on it; the check builds the model, which needs one).
    const auto [lo, hi] = spec.microscope.energy.support();
    for (double e : {lo, hi}) {
      try {
        check_spectrometer(sp.spec, e);
      } catch (const std::invalid_argument& ex) {
        fail(ex.what());
      }
    }
  }
}

}  // namespace stemtwin
