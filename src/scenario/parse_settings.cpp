// The scenario parser: `simulation`, `labels` and `output`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include "stemtwin/physics/names.hpp"
#include "parser.hpp"

namespace stemtwin::scenario_parse {

void Parser::simulation(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "simulation";
  allow_keys(n, P, {"method", "interpolation", "sampling", "slice_thickness", "parametrization", "projection", "error_budget",
                    "symmetry"});
  auto& sim = s.simulation;
  auto fixed_word = [&](const char* key, std::string& out, const std::set<std::string>& allowed) {
    if (!n[key]) return;
    const Distribution d = text_choice(n[key], P + "." + key, allowed);
    must_be_fixed(d, "a choice of engine settings would mix incomparable samples");
    out = d.options[0].text;
  };
  fixed_word("method", sim.method, names_of(kMethodNames));
  fixed_word("parametrization", sim.parametrization, names_of(kParametrizationNames));
  fixed_word("projection", sim.projection, names_of(kProjectionNames));
  if (n["interpolation"]) sim.interpolation = static_cast<int>(integer(n["interpolation"], P + ".interpolation", 1));
  if (parse_method(sim.method) != Method::Prism && sim.interpolation != 1)
    fail(n["interpolation"], P + ".interpolation", "only meaningful with method: prism");
  if (const YAML::Node& b = n["error_budget"]) {  // method auto's accuracy promise (docs/scenario.md)
    const std::string B = P + ".error_budget";
    if (parse_method(sim.method) != Method::Auto) fail(b, B, "only meaningful with method: auto");
    allow_keys(b, B, {"mean", "correlation", "positions"});
    if (b["mean"]) {
      sim.budget_mean_rel = number(b["mean"], B + ".mean");
      if (!(*sim.budget_mean_rel > 0 && *sim.budget_mean_rel < 1)) fail(b["mean"], B + ".mean", "must be a fraction in (0, 1), e.g. 0.01");
    }
    if (b["correlation"]) {
      sim.budget_min_correlation = number(b["correlation"], B + ".correlation");
      if (!(*sim.budget_min_correlation > 0 && *sim.budget_min_correlation <= 1))
        fail(b["correlation"], B + ".correlation", "must be in (0, 1], e.g. 0.995");
    }
    if (b["positions"]) sim.budget_calibration_positions = static_cast<int>(integer(b["positions"], B + ".positions", 2));
  }
  if (n["sampling"]) {
    const YAML::Node& v = n["sampling"];
    sim.auto_sampling = v.IsScalar() && v.Scalar() == "auto";
    if (!sim.auto_sampling) sim.sampling = dist(v, P + ".sampling");
  }
  if (n["slice_thickness"]) sim.slice_thickness = dist(n["slice_thickness"], P + ".slice_thickness");
  if (n["symmetry"]) sim.symmetry = boolean(n["symmetry"], P + ".symmetry");
}

void Parser::labels(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "labels";
  allow_keys(n, P, {"columns", "masks", "mask_radius", "class", "class_names"});
  auto& l = s.labels;
  if (n["columns"]) l.columns = boolean(n["columns"], P + ".columns");
  if (n["masks"]) {
    const YAML::Node& m = n["masks"];
    if (!m.IsSequence()) fail(m, P + ".masks", "expected a list of mask kinds, got " + kind_name(m));
    for (std::size_t i = 0; i < m.size(); ++i) {
      const std::string p = P + ".masks[" + std::to_string(i) + "]", w = word(m[i], p);
      if (w != "columns" && w != "species" && w != "region")
        fail(m[i], p, "unknown mask '" + w + "' (columns, species, region)");
      if (std::find(l.masks.begin(), l.masks.end(), w) != l.masks.end()) fail(m[i], p, "given twice");
      l.masks.push_back(w);
    }
  }
  if (n["mask_radius"]) {
    l.mask_radius = number(n["mask_radius"], P + ".mask_radius");
    if (!(l.mask_radius > 0)) fail(n["mask_radius"], P + ".mask_radius", "must be > 0 Å");
  }
  if (n["class"]) l.class_param = word(n["class"], P + ".class");
  if (n["class_names"]) {
    const YAML::Node& c = n["class_names"];
    if (!c.IsSequence() || c.size() == 0) fail(c, P + ".class_names", "expected a list of names");
    list_length(c, P + ".class_names");
    for (std::size_t i = 0; i < c.size(); ++i) l.class_names.push_back(word(c[i], P + ".class_names[" + std::to_string(i) + "]"));
  }
}

void Parser::output(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "output";
  allow_keys(n, P, {"file", "compression", "clean", "preview_samples"});
  auto& o = s.output;
  if (n["file"]) o.file = word(n["file"], P + ".file");
  if (n["compression"]) {
    o.compression = static_cast<int>(integer(n["compression"], P + ".compression", 0));
  }
  if (n["clean"]) o.clean = boolean(n["clean"], P + ".clean");
  if (n["preview_samples"]) o.preview_samples = static_cast<int>(integer(n["preview_samples"], P + ".preview_samples", 1));
}

}  // namespace stemtwin::scenario_parse
