#include "stemtwin/scenario/scenario.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/physics/probe.hpp"
#include "parse_spectrometers.hpp"
#include "parser.hpp"
#include "yaml_bounds.hpp"

namespace stemtwin {

namespace {

using scenario_parse::fmt;
using scenario_parse::range_for;

std::string format_error(const std::string& file, int line, int column, const std::string& key,
                         const std::string& message) {
  std::ostringstream s;
  s << file;
  if (line > 0) s << ':' << line << ':' << column;
  s << ": ";
  if (!key.empty()) s << key << ": ";
  s << message;
  return s.str();
}

/// "" when samples × sweep grid is within the range table's limit on `samples`.
std::string sample_count_problem(const ScenarioSpec& s) {
  double grid = 1;  // in double: a product of sweep lengths may overflow size_t
  for (const Distribution* d : s.sweeps()) grid *= static_cast<double>(d->options.size());
  const double total = static_cast<double>(s.samples) * grid, most = range_for("samples")->hi;
  return total > most ? "samples × sweep grid = " + fmt(total) + " is more than " + fmt(most) + " samples" : "";
}

}  // namespace

ScenarioError::ScenarioError(std::string file, int line, int column, std::string key, const std::string& message)
    : std::runtime_error(format_error(file, line, column, key, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)) {}

// ------------------------------------------------------------------------------------
// Distribution, trees

Distribution Distribution::fixed(double v, SourceRef src) {
  Distribution d;
  d.kind = Kind::Fixed;
  d.options = {Value::of(v)};
  d.source = std::move(src);
  return d;
}

bool Distribution::is_text() const {
  if (kind == Kind::Uniform || kind == Kind::Normal || kind == Kind::LogUniform) return false;
  return !options.empty() && options.front().is_text;
}

std::pair<double, double> Distribution::support() const {
  switch (kind) {
    case Kind::Uniform:
    case Kind::LogUniform:
      return {a, b};
    case Kind::Normal:
      return {a - 6 * b, a + 6 * b};
    default:
      break;
  }
  if (is_text()) return {0.0, static_cast<double>(options.size()) - 1.0};
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const Value& v : options) lo = std::min(lo, v.number), hi = std::max(hi, v.number);
  return {lo, hi};
}

const ParamTree* ParamTree::find(const std::string& key) const {
  for (const auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}

namespace {
[[noreturn]] void tree_error(const SourceRef& src, const std::string& key, const std::string& msg) {
  throw ScenarioError(src.file.empty() ? "scenario" : src.file, src.line, src.column,
                      src.path.empty() ? key : src.path + "." + key, msg);
}
}  // namespace

bool SampledTree::has(const std::string& key) const {
  for (const auto& [k, v] : map)
    if (k == key) return true;
  return false;
}

const SampledTree& SampledTree::at(const std::string& key) const {
  for (const auto& [k, v] : map)
    if (k == key) return v;
  tree_error(source, key, "missing key");
}

double SampledTree::number(const std::string& key) const {
  const SampledTree& t = at(key);
  if (t.kind != ParamTree::Kind::Leaf || t.leaf.is_text) tree_error(source, key, "expected a number");
  return t.leaf.number;
}

double SampledTree::number(const std::string& key, double fallback) const { return has(key) ? number(key) : fallback; }

std::string SampledTree::text(const std::string& key) const {
  const SampledTree& t = at(key);
  if (t.kind != ParamTree::Kind::Leaf || !t.leaf.is_text) tree_error(source, key, "expected a word");
  return t.leaf.text;
}

std::string SampledTree::text(const std::string& key, const std::string& fallback) const {
  return has(key) ? text(key) : fallback;
}

bool SampledTree::flag(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const SampledTree& t = at(key);
  if (t.kind != ParamTree::Kind::Leaf) tree_error(source, key, "expected true/false");
  if (!t.leaf.is_text) return t.leaf.number != 0;
  const std::string& s = t.leaf.text;
  if (s == "true" || s == "yes" || s == "on" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "no" || s == "off" || s == "False" || s == "FALSE") return false;
  tree_error(source, key, "expected true/false, got '" + s + "'");
}

const char* to_string(DetectorType t) {
  switch (t) {
    case DetectorType::Annular: return "annular";
    case DetectorType::Radial: return "radial";
    case DetectorType::Segmented: return "segmented";
    case DetectorType::Pixelated: return "pixelated";
    case DetectorType::Com: return "com";
  }
  return "?";
}

std::uint64_t key_hash(const std::string& path) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : path) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// ------------------------------------------------------------------------------------
// Walking every distribution of a spec in schema order (the order of /params and of the
// sweep grid's axes).

namespace {

void walk_tree(const ParamTree& t, const std::function<void(const Distribution&)>& f) {
  switch (t.kind) {
    case ParamTree::Kind::Leaf: f(t.leaf); break;
    case ParamTree::Kind::Map:
      for (const auto& [k, v] : t.map) walk_tree(v, f);
      break;
    case ParamTree::Kind::List:
      for (const auto& v : t.list) walk_tree(v, f);
      break;
  }
}

void walk(const ScenarioSpec& s, const std::function<void(const Distribution&)>& f) {
  const auto& sp = s.specimen;
  if (sp.builder) walk_tree(*sp.builder, f);
  for (const auto& d : sp.zone_axis) f(d);
  for (const auto& d : sp.repeat) f(d);
  if (sp.thermal.enabled) {
    if (sp.thermal.rms) f(*sp.thermal.rms);
    for (const auto& [el, d] : sp.thermal.rms_by_element) f(d);
    f(sp.thermal.configurations);
  }
  const auto& m = s.microscope;
  f(m.energy);
  f(m.convergence);
  for (const auto& [k, d] : m.aberrations) f(d);
  f(m.focal_spread);
  f(m.source_size);
  f(m.current);
  for (const auto& d : s.scan.start) f(d);
  if (s.scan.use_fov) {
    for (const auto& d : s.scan.fov) f(d);
  } else {
    for (const auto& d : s.scan.end) f(d);
    for (const auto& d : s.scan.step) f(d);
  }
  f(s.scan.dwell);
  for (const auto& d : s.detectors) {
    f(d.inner);
    f(d.outer);
    if (d.azimuth) f((*d.azimuth)[0]), f((*d.azimuth)[1]);
    f(d.rotation);
  }
  if (!s.simulation.auto_sampling) f(s.simulation.sampling);
  f(s.simulation.slice_thickness);
  if (s.acquisition) walk_tree(*s.acquisition, f);
}

}  // namespace

std::vector<const Distribution*> ScenarioSpec::sampled() const {
  std::vector<const Distribution*> out;
  walk(*this, [&](const Distribution& d) {
    if (!d.is_fixed()) out.push_back(&d);
  });
  return out;
}

std::vector<const Distribution*> ScenarioSpec::sweeps() const {
  std::vector<const Distribution*> out;
  walk(*this, [&](const Distribution& d) {
    if (d.kind == Distribution::Kind::Sweep) out.push_back(&d);
  });
  return out;
}

std::size_t ScenarioSpec::grid_size() const {
  std::size_t g = 1;
  for (const Distribution* d : sweeps()) g *= d->options.size();
  return g;
}

std::size_t ScenarioSpec::total_samples() const { return samples * grid_size(); }

std::vector<ParameterInfo> parameter_info(const ScenarioSpec& spec) {
  std::vector<ParameterInfo> out;
  for (const Distribution* d : spec.sampled()) {
    ParameterInfo p{d->source.path, {}};
    if (d->is_text())
      for (const Value& v : d->options) p.categories.push_back(v.text);
    out.push_back(std::move(p));
  }
  return out;
}

// ------------------------------------------------------------------------------------
// Parser: the whole document (the sections are read in parse_*.cpp; parser.hpp)

namespace scenario_parse {

ScenarioSpec Parser::parse(const std::string& text) {
  auto mark_error = [&](const YAML::Mark& m, const std::string& msg) {
    return ScenarioError(file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, "", msg);
  };
  YAML::Node root;
  try {
    std::istringstream in(text);
    YAML::Parser events(in);
    YamlBounds bounds;
    while (events.HandleNextDocument(bounds)) {
    }
    root = YAML::Load(text);
  } catch (const YamlLimitError& e) {
    throw mark_error(e.mark, e.message);
  } catch (const YAML::Exception& e) {
    throw mark_error(e.mark, "YAML syntax error: " + e.msg);
  }
  try {
    return parse_root(root, text);
  } catch (const YAML::Exception& e) {  // e.g. a map or list used as a key
    throw mark_error(e.mark, "unexpected YAML structure: " + e.msg);
  }
}

ScenarioSpec Parser::parse_root(const YAML::Node& root, const std::string& text) const {
  ScenarioSpec s;
  s.source_file = file_;
  s.text = text;
  if (!root.IsMap()) fail(root, "", "a scenario is a map of keys (name, seed, samples, specimen, ...)");
  allow_keys(root, "", {"name", "seed", "samples", "specimen", "microscope", "scan", "detectors", "simulation",
                        "acquisition", "labels", "output"});
  for (const char* k : {"specimen", "microscope", "scan", "detectors"}) require(root, k, "");
  s.name = root["name"] ? word(root["name"], "name") : std::filesystem::path(file_).stem().string();
  if (root["seed"]) s.seed = static_cast<std::uint64_t>(integer(root["seed"], "seed", 0));
  if (root["samples"]) s.samples = static_cast<std::size_t>(integer(root["samples"], "samples", 1));
  specimen(root["specimen"], s);
  microscope(root["microscope"], s);
  scan(root["scan"], s);
  detectors(root["detectors"], s);
  if (root["simulation"]) simulation(root["simulation"], s);
  if (root["acquisition"]) {
    const YAML::Node& a = root["acquisition"];
    expect_map(a, "acquisition");
    s.acquisition = tree(a, "acquisition");
  }
  if (root["labels"]) labels(root["labels"], s);
  if (root["output"]) output(root["output"], s);
  if (s.output.file.empty()) s.output.file = s.name + ".h5";

  // labels.class must name a sampled (or fixed) key of this scenario
  if (!s.labels.class_param.empty()) {
    const Distribution* found = nullptr;
    walk(s, [&](const Distribution& d) {
      if (d.source.path == s.labels.class_param) found = &d;
    });
    if (!found) fail(root["labels"]["class"], "labels.class", "no key '" + s.labels.class_param + "' in this scenario");
    if (found->is_text()) {
      std::vector<std::string> words;
      for (const Value& v : found->options) words.push_back(v.text);
      if (s.labels.class_names.empty()) s.labels.class_names = words;
      else if (s.labels.class_names != words)
        fail(root["labels"]["class_names"], "labels.class_names", "must list the words of " + s.labels.class_param + " in order");
    } else {
      whole(*found);
      at_least(*found, -0.5, true, "a class id");
      if (!s.labels.class_names.empty()) at_most(*found, static_cast<double>(s.labels.class_names.size()) - 1);
    }
  } else if (!s.labels.class_names.empty()) {
    fail(root["labels"]["class_names"], "labels.class_names", "needs labels.class (the key whose value is the class)");
  }
  if (const std::string why = sample_count_problem(s); !why.empty())
    fail(root["samples"] ? root["samples"] : root, "samples", why);
  check_spectrometers(s);
  return s;
}


}  // namespace scenario_parse


ScenarioSpec parse_scenario_text(const std::string& text, const std::string& name_for_errors) {
  const std::string dir = std::filesystem::path(name_for_errors).parent_path().string();
  return scenario_parse::Parser(name_for_errors, dir, false).parse(text);
}

void check_sample_count(const ScenarioSpec& spec) {
  if (const std::string why = sample_count_problem(spec); !why.empty())
    throw ScenarioError(spec.source_file, 0, 0, "samples", why);
}

ScenarioSpec parse_scenario_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScenarioError(path, 0, 0, "", "cannot open scenario file");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return scenario_parse::Parser(path, dir, true).parse(ss.str());
}


}  // namespace stemtwin
