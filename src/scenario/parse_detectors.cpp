// The scenario parser: `detectors`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include "parse_spectrometers.hpp"
#include "parser.hpp"

namespace stemtwin::scenario_parse {

void Parser::detectors(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "detectors";
  if (!n.IsSequence() || n.size() == 0) fail(n, P, "expected a non-empty list of detectors, got " + kind_name(n));
  list_length(n, P);
  std::set<std::string> names;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& d = n[i];
    const std::string pi = P + "[" + std::to_string(i) + "]";
    expect_map(d, pi);
    if (!d["name"]) fail(d, pi + ".name", "missing required key");
    if (!d["type"]) fail(d, pi + ".type", "missing required key");
    DetectorSpec det;
    det.name = word(d["name"], pi + ".name");
    if (det.name.empty() || !std::all_of(det.name.begin(), det.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        }))
      fail(d["name"], pi + ".name", "use letters, digits, '_' or '-' (it names HDF5 datasets)");
    if (!names.insert(det.name).second) fail(d["name"], pi + ".name", "detector name '" + det.name + "' used twice");
    const std::string P2 = P + "." + det.name;
    det.source = ref(d, P2);
    const std::string type = word(d["type"], P2 + ".type");
    if (type == "eds" || type == "eels") {  // spectrometers: a list of their own (spectrometers.hpp)
      s.spectrometers.push_back(detail::parse_spectrometer(d, det.name, type, P2, file_));
      continue;
    }
    auto fixed_num = [&](const char* key, double& out, double lo, bool strict) {
      if (!d[key]) return;
      const std::string p = P2 + "." + key;
      const Distribution x = dist(d[key], p);
      must_be_fixed(x, "it sets the stored array's shape");
      at_least(x, lo, strict);
      out = x.options[0].number;
    };
    if (type == "annular") {
      det.type = DetectorType::Annular;
      allow_keys(d, P2, {"name", "type", "inner", "outer", "azimuth"});
      require(d, "inner", P2);
      require(d, "outer", P2);
      det.inner = dist(d["inner"], P2 + ".inner");
      det.outer = dist(d["outer"], P2 + ".outer");
      const double in_max = det.inner.support().second, out_min = det.outer.support().first;
      if (!(out_min > in_max))
        fail(det.outer.source, "outer angle must exceed inner angle (outer " + fmt(out_min) + " ≤ inner " +
                                   fmt(in_max) + " mrad" + (det.inner.is_fixed() && det.outer.is_fixed() ? "" : " for some draw") + ")");
      if (d["azimuth"]) {
        det.azimuth = vec<2>(d["azimuth"], P2 + ".azimuth");
        const auto& az = *det.azimuth;
        if (az[0].is_fixed() && az[1].is_fixed() && !(az[1].options[0].number > az[0].options[0].number))
          fail(az[1].source, "azimuth needs from < to (deg)");
      }
    } else if (type == "radial") {
      det.type = DetectorType::Radial;
      allow_keys(d, P2, {"name", "type", "step", "max"});
      fixed_num("step", det.step, 0, true);
      fixed_num("max", det.max, 0, false);
      if (det.max > 0 && det.max < det.step) fail(d["max"], P2 + ".max", "must be at least one step");
    } else if (type == "segmented") {
      det.type = DetectorType::Segmented;
      allow_keys(d, P2, {"name", "type", "rings", "segments", "rotation"});
      require(d, "rings", P2);
      const YAML::Node& r = d["rings"];
      if (!r.IsSequence() || r.size() < 2) fail(r, P2 + ".rings", "expected at least two ring edges (mrad)");
      list_length(r, P2 + ".rings");
      for (std::size_t k = 0; k < r.size(); ++k) {
        const std::string p = P2 + ".rings[" + std::to_string(k) + "]";
        if (r[k].IsMap()) fail(r[k], p, "must be a fixed value (it sets the number of segments)");
        det.rings.push_back(number(r[k], p));
        if (det.rings.back() < 0) fail(r[k], p, "must be ≥ 0");
        if (k > 0 && !(det.rings[k] > det.rings[k - 1])) fail(r[k], p, "ring edges must increase (outer > inner)");
      }
      if (d["segments"]) det.segments = static_cast<int>(integer(d["segments"], P2 + ".segments", 1));
      if (d["rotation"]) det.rotation = dist(d["rotation"], P2 + ".rotation");
    } else if (type == "pixelated") {
      det.type = DetectorType::Pixelated;
      allow_keys(d, P2, {"name", "type", "max_angle", "bin"});
      require(d, "max_angle", P2);
      fixed_num("max_angle", det.max_angle, 0, true);
      if (d["bin"]) det.bin = static_cast<int>(integer(d["bin"], P2 + ".bin", 1));
    } else if (type == "com") {
      det.type = DetectorType::Com;
      allow_keys(d, P2, {"name", "type", "max_angle"});
      fixed_num("max_angle", det.max_angle, 0, false);
    } else {
      fail(d["type"], P2 + ".type", "unknown detector type '" + type + "' (annular, radial, segmented, pixelated, com, eds, eels)");
    }
    s.detectors.push_back(std::move(det));
  }
}

}  // namespace stemtwin::scenario_parse
