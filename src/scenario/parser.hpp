#pragma once
// Internal to src/scenario/: the scenario parser. Its generic readers (numbers checked against
// the range table, distributions, words, free-form trees) are here; each top-level section is
// read in its own file: parse_specimen.cpp, parse_instrument.cpp (microscope, scan),
// parse_detectors.cpp, parse_settings.cpp (simulation, labels, output); the whole document
// (YAML bounds, the root, cross-section checks) in scenario.cpp.
#include <yaml-cpp/yaml.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "scenario_ranges.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin::scenario_parse {

using scenario_ranges::describe_range;
using scenario_ranges::range_for;
using scenario_ranges::range_problem;

/// A number for messages: 10 significant digits, no trailing zeros.
inline std::string fmt(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

class Parser {
 public:
  Parser(std::string file, std::string base_dir, bool check_files)
      : file_(std::move(file)), base_(std::move(base_dir)), check_files_(check_files) {}

  ScenarioSpec parse(const std::string& text);

 private:
  ScenarioSpec parse_root(const YAML::Node& root, const std::string& text) const;
  std::string file_, base_;
  bool check_files_;

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    throw ScenarioError(file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, key, msg);
  }
  [[noreturn]] void fail(const SourceRef& r, const std::string& msg) const {
    throw ScenarioError(file_, r.line, r.column, r.path, msg);
  }
  SourceRef ref(const YAML::Node& n, const std::string& path) const {
    const YAML::Mark m = n.Mark();
    return SourceRef{path, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, file_};
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string kind_name(const YAML::Node& n) {
    if (n.IsMap()) return "a map";
    if (n.IsSequence()) return "a list";
    if (n.IsNull()) return "nothing";
    return "'" + n.Scalar() + "'";
  }

  void expect_map(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap()) fail(n, path, "expected a map of keys, got " + kind_name(n));
  }
  void allow_keys(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const {
    expect_map(n, path);
    std::set<std::string> seen;
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first, join(path, k), "unknown key (allowed here: " + list + ")");
      }
      if (!seen.insert(k).second) fail(kv.first, join(path, k), "key given twice");
    }
  }
  void require(const YAML::Node& parent, const char* key, const std::string& path) const {
    if (!parent[key]) fail(parent, join(path, key), "missing required key");
  }

  static bool scalar_number(const YAML::Node& n, double& out) {
    if (!n.IsScalar()) return false;
    const std::string& s = n.Scalar();
    if (s.empty()) return false;
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end && *end == '\0' && std::isfinite(out);
  }
  double number(const YAML::Node& n, const std::string& path) const {
    double v;
    if (!scalar_number(n, v)) fail(n, path, "expected a number, got " + kind_name(n));
    if (const std::string why = range_problem(path, v, v, true); !why.empty()) fail(n, path, why);
    return v;
  }
  /// A list's length against the range table ("path#").
  void list_length(const YAML::Node& n, const std::string& path) const {
    const auto size = static_cast<double>(n.size());
    if (const Range* r = range_for(path + "#"); r && !(size >= r->lo && size <= r->hi))
      fail(n, path, "holds " + fmt(size) + " entries; " + describe_range(*r));
  }
  std::string word(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, "expected a word, got " + kind_name(n));
    return n.Scalar();
  }
  bool boolean(const YAML::Node& n, const std::string& path) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "False" || s == "no" || s == "off") return false;
    }
    fail(n, path, "expected true or false, got " + kind_name(n));
  }
  long long integer(const YAML::Node& n, const std::string& path, long long lo) const {
    const double v = number(n, path);
    if (v != std::floor(v)) fail(n, path, "expected a whole number, got " + n.Scalar());
    if (v < static_cast<double>(lo)) fail(n, path, "must be ≥ " + std::to_string(lo) + " (got " + n.Scalar() + ")");
    if (v > 9007199254740992.0) fail(n, path, "must be ≤ 2^53 (got " + n.Scalar() + ")");
    return static_cast<long long>(v);
  }
  Value value(const YAML::Node& n, const std::string& path) const {
    double v;
    if (scalar_number(n, v)) return Value::of(v);
    if (n.IsScalar()) return Value::of(n.Scalar());
    fail(n, path, "expected a number or a word, got " + kind_name(n));
  }

  /// A scalar or a one-key map {uniform|normal|loguniform|choice|sweep: ...}, within the
  /// range table's bounds for `path`.
  Distribution dist(const YAML::Node& n, const std::string& path, bool allow_text = false) const {
    Distribution d = any_dist(n, path, allow_text);
    if (!d.is_text()) {
      const auto [lo, hi] = d.support();
      if (const std::string why = range_problem(path, lo, hi, d.is_fixed()); !why.empty()) fail(n, path, why);
    }
    return d;
  }
  Distribution any_dist(const YAML::Node& n, const std::string& path, bool allow_text) const {
    Distribution d;
    d.source = ref(n, path);
    if (n.IsScalar()) {
      d.kind = Distribution::Kind::Fixed;
      d.options = {value(n, path)};
      if (d.options[0].is_text && !allow_text) fail(n, path, "expected a number, got '" + n.Scalar() + "'");
      return d;
    }
    if (!n.IsMap() || n.size() != 1)
      fail(n, path,
           "expected a number or one of {uniform: [a, b]}, {normal: [mean, sd]}, {loguniform: [a, b]}, "
           "{choice: [...]}, {sweep: [...]}; got " + kind_name(n));
    const auto kv = *n.begin();
    const std::string k = kv.first.as<std::string>();
    const YAML::Node& arg = kv.second;
    const std::string p = path + "." + k;
    auto pair = [&](double& a, double& b) {
      if (!arg.IsSequence() || arg.size() != 2) fail(arg, p, "expected a list of two numbers, got " + kind_name(arg));
      a = number(arg[0], p + "[0]");
      b = number(arg[1], p + "[1]");
    };
    if (k == "uniform") {
      d.kind = Distribution::Kind::Uniform;
      pair(d.a, d.b);
      if (!(d.b > d.a)) fail(arg, p, "needs a < b (got [" + fmt(d.a) + ", " + fmt(d.b) + "])");
    } else if (k == "loguniform") {
      d.kind = Distribution::Kind::LogUniform;
      pair(d.a, d.b);
      if (!(d.a > 0) || !(d.b > d.a)) fail(arg, p, "needs 0 < a < b (got [" + fmt(d.a) + ", " + fmt(d.b) + "])");
    } else if (k == "normal") {
      d.kind = Distribution::Kind::Normal;
      pair(d.a, d.b);
      if (!(d.b >= 0)) fail(arg, p, "needs sd ≥ 0 (got " + fmt(d.b) + ")");
    } else if (k == "choice" || k == "sweep") {
      d.kind = k == "choice" ? Distribution::Kind::Choice : Distribution::Kind::Sweep;
      if (!arg.IsSequence() || arg.size() == 0) fail(arg, p, "expected a non-empty list, got " + kind_name(arg));
      for (std::size_t i = 0; i < arg.size(); ++i) {
        d.options.push_back(value(arg[i], p + "[" + std::to_string(i) + "]"));
        if (d.options.back().is_text != d.options.front().is_text)
          fail(arg[i], p, "mixes numbers and words");
      }
      if (d.options.front().is_text && !allow_text) fail(arg, p, "expected numbers, got words");
    } else {
      fail(kv.first, p, "unknown distribution (use uniform, normal, loguniform, choice or sweep)");
    }
    return d;
  }

  // Constraints on every value a distribution can draw (its support).
  void at_least(const Distribution& d, double lo, bool strict, const std::string& what = "") const {
    const double m = d.support().first;
    if (strict ? !(m > lo) : !(m >= lo))
      fail(d.source, (what.empty() ? std::string("must be ") : what + " must be ") + (strict ? "> " : "≥ ") +
                         fmt(lo) + (d.is_fixed() ? " (got " + fmt(m) + ")" : " for every draw (lowest " + fmt(m) + ")"));
  }
  void at_most(const Distribution& d, double hi) const {
    const double m = d.support().second;
    if (!(m <= hi)) fail(d.source, "must be ≤ " + fmt(hi) + " (got " + fmt(m) + ")");
  }
  void whole(const Distribution& d) const {
    // Integers are rounded from draws; fixed values must be whole already.
    if (d.is_fixed() && d.options[0].number != std::round(d.options[0].number))
      fail(d.source, "expected a whole number, got " + fmt(d.options[0].number));
  }
  void must_be_fixed(const Distribution& d, const std::string& why) const {
    if (!d.is_fixed()) fail(d.source, "must be a fixed value (" + why + ")");
  }
  Distribution text_choice(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const {
    Distribution d = dist(n, path, true);
    if (!d.is_text()) fail(n, path, "expected a word");
    for (const Value& v : d.options)
      if (!allowed.count(v.text)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(n, path, "unknown value '" + v.text + "' (allowed: " + list + ")");
      }
    return d;
  }
  template <std::size_t N>
  std::array<Distribution, N> vec(const YAML::Node& n, const std::string& path) const {
    if (!n.IsSequence() || n.size() != N)
      fail(n, path, "expected a list of " + std::to_string(N) + " values, got " + kind_name(n));
    std::array<Distribution, N> out;
    for (std::size_t i = 0; i < N; ++i) out[i] = dist(n[i], path + "[" + std::to_string(i) + "]");
    return out;
  }

  ParamTree tree(const YAML::Node& n, const std::string& path) const {
    ParamTree t;
    t.source = ref(n, path);
    if (n.IsSequence()) {
      t.kind = ParamTree::Kind::List;
      list_length(n, path);
      for (std::size_t i = 0; i < n.size(); ++i) t.list.push_back(tree(n[i], path + "[" + std::to_string(i) + "]"));
      return t;
    }
    if (n.IsMap()) {
      static const std::set<std::string> dists = {"uniform", "normal", "loguniform", "choice", "sweep"};
      if (n.size() == 1 && dists.count(n.begin()->first.as<std::string>())) {
        t.kind = ParamTree::Kind::Leaf;
        t.leaf = dist(n, path, true);
        return t;
      }
      t.kind = ParamTree::Kind::Map;
      std::set<std::string> seen;
      for (const auto& kv : n) {
        const std::string k = kv.first.as<std::string>();
        if (!seen.insert(k).second) fail(kv.first, join(path, k), "key given twice");
        t.map.emplace_back(k, tree(kv.second, join(path, k)));
      }
      return t;
    }
    if (n.IsNull()) fail(n, path, "expected a value, got nothing");
    t.kind = ParamTree::Kind::Leaf;
    t.leaf = dist(n, path, true);
    return t;
  }
  /// Generic sanity rules for the builder's free-form keys (documented in docs/scenario.md).
  void check_tree(const ParamTree& t) const {
    if (t.kind == ParamTree::Kind::Map) {
      for (const auto& [k, v] : t.map) {
        if (v.kind == ParamTree::Kind::Leaf && !v.leaf.is_text()) {
          if (k == "thickness" || k == "size" || k == "radius" || k == "diameter") at_least(v.leaf, 0, true);
          if (k == "rms") at_least(v.leaf, 0, false);
          if (k.find("fraction") != std::string::npos || k.find("probability") != std::string::npos) {
            at_least(v.leaf, 0, false);
            at_most(v.leaf, 1);
          }
        }
        check_tree(v);
      }
    } else if (t.kind == ParamTree::Kind::List) {
      for (const auto& v : t.list) check_tree(v);
    }
  }

  void specimen(const YAML::Node& n, ScenarioSpec& s) const;
  void microscope(const YAML::Node& n, ScenarioSpec& s) const;
  void scan(const YAML::Node& n, ScenarioSpec& s) const;
  void detectors(const YAML::Node& n, ScenarioSpec& s) const;
  void simulation(const YAML::Node& n, ScenarioSpec& s) const;
  void labels(const YAML::Node& n, ScenarioSpec& s) const;
  void output(const YAML::Node& n, ScenarioSpec& s) const;
};

}  // namespace stemtwin::scenario_parse
