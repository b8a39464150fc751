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
#include "scenario_ranges.hpp"

namespace stemtwin {

namespace {

using scenario_ranges::describe_range;
using scenario_ranges::Range;
using scenario_ranges::range_for;
using scenario_ranges::range_problem;

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

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

/// "" when samples × sweep grid is within the range table's limit on `samples`.
std::string sample_count_problem(const ScenarioSpec& s) {
  double grid = 1;  // in double: a product of sweep lengths may overflow size_t
  for (const Distribution* d : s.sweeps()) grid *= static_cast<double>(d->options.size());
  const double total = static_cast<double>(s.samples) * grid, most = range_for("samples")->hi;
  return total > most ? "samples × sweep grid = " + fmt(total) + " is more than " + fmt(most) + " samples" : "";
}

// ------------------------------------------------------------------------------------
// YAML bounds: before the document is loaded into a node tree (which shares aliased
// nodes) and walked (which expands them), one pass over yaml-cpp's events computes the
// expanded size and depth of every anchor, so a self-referencing alias (a cycle that would
// recurse forever) or an alias "billion laughs" (10^9 nodes from a few lines) is refused
// with its line. Limits: a complete scenario has a few hundred nodes nested at most ~8
// deep; 10^5 nodes (long choice/sweep lists included) parse in milliseconds and a few MB,
// and 64 levels keep every recursive walk of the tree far from the stack's end.

constexpr std::uint64_t kMaxYamlNodes = 100000;
constexpr std::size_t kMaxYamlDepth = 64;

struct YamlLimitError {
  YAML::Mark mark;
  std::string message;
};

class YamlBounds : public YAML::EventHandler {
 public:
  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents > 1)
      throw YamlLimitError{mark, "a second YAML document ('---'): a scenario file holds exactly one document"};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end())
      throw YamlLimitError{mark, "alias refers to its own enclosing anchor (a cycle): the tree would be infinite"};
    add(mark, it->second.nodes, it->second.depth);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Size {
    std::uint64_t nodes = 1;  // expanded node count, ≤ kMaxYamlNodes (checked on every addition)
    std::size_t depth = 1;
  };
  struct Open {
    YAML::Mark mark;
    YAML::anchor_t anchor;
    Size size;
  };
  std::vector<Open> stack_;
  std::map<YAML::anchor_t, Size> anchors_;  // complete anchors only
  std::uint64_t document_nodes_ = 0;

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Size{};
    add(mark, 1, 1);
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (stack_.size() + 1 > kMaxYamlDepth)
      throw YamlLimitError{mark, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels"};
    stack_.push_back(Open{mark, anchor, Size{}});
  }
  void close() {
    const Open o = stack_.back();
    stack_.pop_back();
    if (o.anchor != YAML::NullAnchor) anchors_[o.anchor] = o.size;
    add(o.mark, o.size.nodes, o.size.depth);
  }
  void add(const YAML::Mark& mark, std::uint64_t nodes, std::size_t depth) {
    // Both terms are ≤ kMaxYamlNodes, so the sum cannot overflow.
    std::uint64_t& total = stack_.empty() ? document_nodes_ : stack_.back().size.nodes;
    total += nodes;
    if (total > kMaxYamlNodes)
      throw YamlLimitError{mark, "the document expands to more than " + std::to_string(kMaxYamlNodes) +
                                     " nodes (aliases are expanded; a scenario needs a few hundred)"};
    if (stack_.size() + depth > kMaxYamlDepth)
      throw YamlLimitError{mark, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels (aliases expanded)"};
    if (!stack_.empty()) stack_.back().size.depth = std::max(stack_.back().size.depth, depth + 1);
  }
};


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
// Parser

namespace {

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
    static const std::set<std::string> types = {"perovskite", "film", "amorphous", "defects", "nanoparticle"};
    sp.builder_type = word(b["type"], P + ".builder.type");
    if (!types.count(sp.builder_type))
      fail(b["type"], P + ".builder.type",
           "unknown builder '" + sp.builder_type + "' (allowed: amorphous, defects, film, nanoparticle, perovskite)");
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
      fail(d["type"], P2 + ".type", "unknown detector type '" + type + "' (annular, radial, segmented, pixelated, com)");
    }
    s.detectors.push_back(std::move(det));
  }
}

void Parser::simulation(const YAML::Node& n, ScenarioSpec& s) const {
  const std::string P = "simulation";
  allow_keys(n, P, {"method", "interpolation", "sampling", "slice_thickness", "parametrization", "projection", "error_budget"});
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
  return s;
}

}  // namespace

ScenarioSpec parse_scenario_text(const std::string& text, const std::string& name_for_errors) {
  const std::string dir = std::filesystem::path(name_for_errors).parent_path().string();
  return Parser(name_for_errors, dir, false).parse(text);
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
  return Parser(path, dir, true).parse(ss.str());
}


}  // namespace stemtwin
