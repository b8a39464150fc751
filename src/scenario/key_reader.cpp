// The one reader of the typed key tables (key_reader.hpp): finds each row's key in a sampled
// section, converts it by the row's type and stores it in the row's field.
#include "stemtwin/scenario/key_reader.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "stemtwin/core/atoms.hpp"

namespace stemtwin {
namespace {

template <class>
inline constexpr bool kAlwaysFalse = false;

[[noreturn]] void fail_at(const SourceRef& src, const std::string& key, const std::string& msg) {
  throw ScenarioError(src.file.empty() ? "scenario" : src.file, src.line, src.column, key, msg);
}

/// The map holding the last part of `path` below `section`, or nullptr when a map on the way
/// is absent (then the row is not read).
const SampledTree* parent_of(const SampledTree& section, const std::string& path, std::string& leaf) {
  const SampledTree* node = &section;
  std::string rest = path;
  for (std::size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
    const std::string part = rest.substr(0, dot);
    if (node->kind != ParamTree::Kind::Map || !node->has(part)) return nullptr;
    node = &node->at(part);
  }
  if (node->kind != ParamTree::Kind::Map) return nullptr;
  leaf = rest;
  return node;
}

/// A species map element → fraction, normalised to sum 1 (so independently sampled fractions stay valid).
std::vector<SpeciesFraction> read_species(const SampledTree& t, const std::string& key) {
  if (t.kind != ParamTree::Kind::Map) fail_at(t.source, key, "expected a map element → fraction");
  std::vector<SpeciesFraction> out;
  double sum = 0;
  for (const auto& [sym, v] : t.map) {
    if (!(v.leaf.number >= 0)) fail_at(v.source, v.source.path, "a site fraction must be ≥ 0");
    out.push_back({atomic_number(sym), v.leaf.number});
    sum += v.leaf.number;
  }
  if (!(sum > 0)) fail_at(t.source, t.source.path, "site fractions sum to 0");
  for (auto& f : out) f.fraction /= sum;
  return out;
}

/// One row's value from parent[leaf] into target.
template <class T>
void read_row(const KeyRow<T>& row, const SampledTree& parent, const std::string& leaf, T& target, const std::string& key) {
  const SampledTree& node = parent.at(leaf);
  std::visit(
      [&](auto f) {
        using F = decltype(f);
        if constexpr (std::is_same_v<F, std::monostate>) {
        } else if constexpr (std::is_same_v<F, double& (*)(T&)>) {
          f(target) = parent.number(leaf);
        } else if constexpr (std::is_same_v<F, int& (*)(T&)>) {
          f(target) = row.key.type == KeyType::Element ? atomic_number(parent.text(leaf)) : int(parent.number(leaf));
        } else if constexpr (std::is_same_v<F, std::uint64_t& (*)(T&)>) {
          f(target) = std::uint64_t(parent.number(leaf));
        } else if constexpr (std::is_same_v<F, bool& (*)(T&)>) {
          f(target) = parent.flag(leaf, false);
        } else if constexpr (std::is_same_v<F, std::vector<double>& (*)(T&)>) {
          if (node.kind != ParamTree::Kind::List) fail_at(node.source, key, "expected a list of numbers");
          std::vector<double>& v = f(target);
          v.clear();
          for (const SampledTree& e : node.list) v.push_back(e.leaf.number);
        } else if constexpr (std::is_same_v<F, std::vector<SpeciesFraction>& (*)(T&)>) {
          f(target) = read_species(node, key);
        } else if constexpr (std::is_same_v<F, XY (*)(T&)>) {
          const XY xy = f(target);
          if (node.kind == ParamTree::Kind::List && node.list.size() == 2) xy.x = node.list[0].leaf.number, xy.y = node.list[1].leaf.number;
          else if (row.key.type == KeyType::Pair && node.kind == ParamTree::Kind::Leaf && !node.leaf.is_text) xy.x = xy.y = node.leaf.number;
          else fail_at(node.source, key, row.key.type == KeyType::Pair ? "expected a number or [x, y]" : "expected [x, y]");
        } else if constexpr (std::is_same_v<F, WordField<T>>) {
          f.set(target, parent.text(leaf));
        } else {
          static_assert(kAlwaysFalse<F>, "a KeyField alternative without a reader");
        }
      },
      row.field);
}

}  // namespace

template <class T>
void read_keys(const SampledTree& section, std::span<const KeyRow<T>> table, T& target, const std::string& where,
               std::string_view under) {
  const std::string prefix = under.empty() ? "" : std::string(under) + ".";
  for (const KeyRow<T>& row : table) {
    if (std::holds_alternative<std::monostate>(row.field)) continue;
    const std::string path = row.key.path;
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rel = path.substr(prefix.size());
    const std::string key = where + "." + rel;
    std::string leaf;
    const SampledTree* parent = parent_of(section, rel, leaf);
    if (!parent) continue;
    if (!parent->has(leaf)) {
      if (*row.key.default_value == '\0') fail_at(parent->source, key, "missing key (required)");
      continue;
    }
    try {
      read_row(row, *parent, leaf, target, key);
    } catch (const ScenarioError&) {
      throw;
    } catch (const std::invalid_argument& e) {  // an unknown word or element
      const SourceRef& src = parent->at(leaf).source;
      fail_at(src, key, e.what());
    }
  }
}

namespace {

/// The default column as a number (false when it is not one).
bool literal_number(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == '\0';
}

/// What reading nothing gives for the row, when its default column is a literal that differs
/// ("" when it agrees, or when the default is described in words: species, lists, maps).
template <class T>
std::string default_mismatch(const KeyRow<T>& row, T& t) {
  const std::string d = row.key.default_value;
  std::ostringstream reads;
  bool agrees = true;
  std::visit(
      [&](auto f) {
        using F = decltype(f);
        double n = 0, x = 0, y = 0;
        if constexpr (std::is_same_v<F, double& (*)(T&)> || std::is_same_v<F, std::uint64_t& (*)(T&)>) {
          if (literal_number(d, n)) agrees = double(f(t)) == n, reads << f(t);
        } else if constexpr (std::is_same_v<F, int& (*)(T&)>) {
          if (row.key.type == KeyType::Element) agrees = atomic_number(d) == f(t), reads << "Z = " << f(t);
          else if (literal_number(d, n)) agrees = double(f(t)) == n, reads << f(t);
        } else if constexpr (std::is_same_v<F, bool& (*)(T&)>) {
          if (d == "true" || d == "false") agrees = (d == "true") == f(t), reads << (f(t) ? "true" : "false");
        } else if constexpr (std::is_same_v<F, XY (*)(T&)>) {
          const XY xy = f(t);
          if (std::sscanf(d.c_str(), "[%lf, %lf]", &x, &y) == 2 || (literal_number(d, x) && (y = x, true)))
            agrees = x == xy.x && y == xy.y, reads << "[" << xy.x << ", " << xy.y << "]";
        } else if constexpr (std::is_same_v<F, WordField<T>>) {
          agrees = d == f.get(t), reads << f.get(t);
        }
      },
      row.field);
  return agrees ? "" : reads.str();
}

}  // namespace

template <class T>
std::vector<std::string> key_default_mismatches(std::span<const KeyRow<T>> table, const std::string& name) {
  std::vector<std::string> out;
  for (const KeyRow<T>& row : table) {
    if (std::holds_alternative<std::monostate>(row.field) || *row.key.default_value == '\0') continue;
    T t{};
    std::string reads;
    try {
      reads = default_mismatch(row, t);
    } catch (const std::exception& e) {  // a default element symbol that is not one
      reads = e.what();
    }
    if (!reads.empty())
      out.push_back(name + ": " + row.key.path + ": default says " + row.key.default_value + ", reads " + reads);
  }
  return out;
}

std::vector<std::string> key_default_mismatches() {
  std::vector<std::string> out;
  auto add = [&](std::vector<std::string> v) { out.insert(out.end(), v.begin(), v.end()); };
  add(key_default_mismatches(acquisition_rows(), "acquisition"));
  add(key_default_mismatches(perovskite_rows(), "perovskite"));
  add(key_default_mismatches(builder_modifier_rows(), "builder modifiers"));
  add(key_default_mismatches(film_rows(), "film"));
  add(key_default_mismatches(nanoparticle_rows(), "nanoparticle"));
  add(key_default_mismatches(world_rows(), "world"));
  add(key_default_mismatches(world_window_rows(), "world window"));
  return out;
}

#define STEMTWIN_KEY_READER(T)                                                                                         \
  template void read_keys<T>(const SampledTree&, std::span<const KeyRow<T>>, T&, const std::string&, std::string_view); \
  template std::vector<std::string> key_default_mismatches<T>(std::span<const KeyRow<T>>, const std::string&);
STEMTWIN_KEY_READER(AcquisitionKeys)
STEMTWIN_KEY_READER(PerovskiteParams)
STEMTWIN_KEY_READER(ModifierKeys)
STEMTWIN_KEY_READER(FilmParams)
STEMTWIN_KEY_READER(NanoparticleParams)
STEMTWIN_KEY_READER(WorldParams)
STEMTWIN_KEY_READER(WorldWindowKeys)
#undef STEMTWIN_KEY_READER

}  // namespace stemtwin
