// The scenario parser: `microscope` (beam, aberrations) and `scan`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include "stemtwin/physics/probe.hpp"
#include "parser.hpp"

namespace stemtwin::scenario_parse {

void Parser::microscope(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "microscope";
  allow_keys(n, P, {"energy", "convergence", "aberrations", "focal_spread", "source_size", "current"});
  auto& m = s.microscope;
  if (n["energy"]) m.energy = dist(n["energy"], P + ".energy");
  if (n["convergence"]) m.convergence = dist(n["convergence"], P + ".convergence");
  if (n["aberrations"]) {
    const YAML::Node& a = n["aberrations"];
    expect_map(a, P + ".aberrations");
    std::set<std::string> canon;
    for (const auto& kv : a) {
      const std::string k = kv.first.as<std::string>();
      const std::string p = P + ".aberrations." + k;
      const std::optional<AberrationName> name = resolve_aberration(k);
      if (!name)
        fail(kv.first, p,
             "unknown aberration (Krivanek C10…C56 / phi12…phi56, or defocus, Cs, C5, astigmatism, "
             "astigmatism_angle, coma, coma_angle, trefoil, trefoil_angle)");
      if (!canon.insert(name->krivanek).second)
        fail(kv.first, p, "given twice (an alias and its Krivanek name name the same coefficient)");
      m.aberrations.emplace_back(k, dist(kv.second, p));
    }
  }
  if (n["focal_spread"]) m.focal_spread = dist(n["focal_spread"], P + ".focal_spread");
  if (n["source_size"]) m.source_size = dist(n["source_size"], P + ".source_size");
  if (n["current"]) m.current = dist(n["current"], P + ".current");
}

void Parser::scan(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "scan";
  allow_keys(n, P, {"start", "end", "step", "fov", "pixels", "dwell"});
  auto& sc = s.scan;
  if (n["start"]) sc.start = vec<2>(n["start"], P + ".start");
  const bool range = n["end"] || n["step"], fov = n["fov"] || n["pixels"];
  if (range && fov) fail(n, P, "give either end + step or fov + pixels, not both");
  if (!range && !fov) fail(n, P, "needs end + step or fov + pixels");
  const std::string why = "it sets the image size, which must be the same for every sample";
  if (range) {
    require(n, "end", P);
    require(n, "step", P);
    sc.end = vec<2>(n["end"], P + ".end");
    if (n["step"].IsSequence()) {
      sc.step = vec<2>(n["step"], P + ".step");
    } else {
      const Distribution d = dist(n["step"], P + ".step");
      sc.step = {d, d};
    }
    for (int i = 0; i < 2; ++i) {
      must_be_fixed(sc.end[i], why);
      must_be_fixed(sc.step[i], why);
      must_be_fixed(sc.start[i], why + " (with end + step; use fov + pixels to vary start)");
      const double span = sc.end[i].options[0].number - sc.start[i].options[0].number;
      if (!(span > 0)) fail(sc.end[i].source, "end must exceed start");
      // The same limit as fov + pixels (ScanGrid::from_range rounds the count up).
      const double positions = std::ceil(span / sc.step[i].options[0].number - 1e-9), most = range_for("scan.pixels[]")->hi;
      if (positions > most)
        fail(sc.step[i].source, "(end − start) / step = " + fmt(positions) + " positions; at most " + fmt(most) + " per axis");
    }
  } else {
    require(n, "fov", P);
    require(n, "pixels", P);
    sc.use_fov = true;
    sc.fov = vec<2>(n["fov"], P + ".fov");
    const YAML::Node& px = n["pixels"];
    if (!px.IsSequence() || px.size() != 2) fail(px, P + ".pixels", "expected [nx, ny], got " + kind_name(px));
    for (int i = 0; i < 2; ++i) {
      if (px[i].IsMap()) fail(px[i], P + ".pixels[" + std::to_string(i) + "]", "must be a fixed value (" + why + ")");
      sc.pixels[i] = static_cast<std::size_t>(integer(px[i], P + ".pixels[" + std::to_string(i) + "]", 1));
    }
  }
  if (n["dwell"]) sc.dwell = dist(n["dwell"], P + ".dwell");
}

}  // namespace stemtwin::scenario_parse
