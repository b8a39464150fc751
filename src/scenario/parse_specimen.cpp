// The scenario parser: `specimen` (structure file or builder, zone axis, repeat, thermal).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include "stemtwin/core/atoms.hpp"
#include "parser.hpp"

namespace stemtwin::scenario_parse {

void Parser::specimen(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "specimen";
  allow_keys(n, P, {"structure", "builder", "zone_axis", "repeat", "thermal"});
  auto& sp = s.specimen;
  if (n["structure"] && n["builder"]) fail(n, P, "give either `structure` or `builder`, not both");
  if (!n["structure"] && !n["builder"]) fail(n, P, "needs `structure: <file>` or `builder: {type: ...}`");
  if (n["structure"]) {
    const std::string f = word(n["structure"], P + ".structure");
    std::filesystem::path p(f);
    if (p.is_relative() && !base_.empty()) p = std::filesystem::path(base_) / p;
    sp.structure = p.lexically_normal().string();
    if (check_files_ && !std::filesystem::exists(p))
      fail(n["structure"], P + ".structure", "file not found: " + sp.structure);
  } else {
    const YAML::Node& b = n["builder"];
    expect_map(b, P + ".builder");
    if (!b["type"]) fail(b, P + ".builder.type", "missing required key");
    static const std::set<std::string> types = {"perovskite", "film", "amorphous", "defects", "nanoparticle", "world"};
    sp.builder_type = word(b["type"], P + ".builder.type");
    if (!types.count(sp.builder_type))
      fail(b["type"], P + ".builder.type",
           "unknown builder '" + sp.builder_type + "' (allowed: amorphous, defects, film, nanoparticle, perovskite, world)");
    sp.builder = tree(b, P + ".builder");
    check_tree(*sp.builder);
  }
  if (n["zone_axis"]) {
    sp.zone_axis = vec<3>(n["zone_axis"], P + ".zone_axis");
    bool nonzero = false;
    for (auto& d : sp.zone_axis) nonzero |= !(d.is_fixed() && d.options[0].number == 0);
    if (!nonzero) fail(n["zone_axis"], P + ".zone_axis", "must not be [0, 0, 0]");
  }
  if (n["repeat"]) {
    sp.repeat = vec<3>(n["repeat"], P + ".repeat");
    double cells = 1;
    for (const auto& d : sp.repeat) cells *= std::round(d.support().second);
    const Range& r = *range_for("specimen.repeat (x·y·z)");
    if (cells > r.hi) fail(n["repeat"], P + ".repeat", "up to " + fmt(cells) + " cells; the product x·y·z " + describe_range(r));
  }
  if (n["thermal"]) {
    const YAML::Node& t = n["thermal"];
    allow_keys(t, P + ".thermal", {"rms", "configurations"});
    sp.thermal.enabled = true;
    sp.thermal.source = ref(t, P + ".thermal");
    if (t["rms"]) {
      static const std::set<std::string> dists = {"uniform", "normal", "loguniform", "choice", "sweep"};
      const YAML::Node& rms = t["rms"];
      const bool per_element = rms.IsMap() && !(rms.size() == 1 && dists.count(rms.begin()->first.as<std::string>()));
      if (per_element) {
        for (const auto& kv : t["rms"]) {
          const std::string el = kv.first.as<std::string>();
          const std::string p = P + ".thermal.rms." + el;
          try {
            (void)atomic_number(el);
          } catch (const std::exception&) {
            fail(kv.first, p, "unknown element symbol");
          }
          Distribution d = dist(kv.second, p);
          sp.thermal.rms_by_element.emplace_back(el, std::move(d));
        }
      } else {
        sp.thermal.rms = dist(t["rms"], P + ".thermal.rms");
      }
    }
    if (t["configurations"]) {
      sp.thermal.configurations = dist(t["configurations"], P + ".thermal.configurations");
    }
  }
}

}  // namespace stemtwin::scenario_parse
