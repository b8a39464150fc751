#pragma once
// Typed key tables of the scenario's free-form sections: one row per key (its path inside the
// section, type, unit, default and a line of doc), the one list that the key check
// (scenario_checks.cpp: an unknown key is an error naming it and the allowed ones) and the
// docs' key lists (docs/scenario.md, checked by tests/test_key_tables.py) follow. A numeric
// key's range is the range table's row for "<section>.<path>" (acquisition/ranges.hpp).
#include <set>
#include <span>
#include <string>

namespace stemtwin {

enum class KeyType {
  Number,   ///< a number or a distribution of numbers
  Pair,     ///< a number (both axes) or a list [x, y]
  Numbers,  ///< a list of numbers
  Flag,     ///< true / false
  Word,     ///< one of a few words
  Map,      ///< a map of further keys (their rows are "<path>.<key>")
  MapList,  ///< a list of maps (their keys' rows are "<path>.<key>")
  Species,  ///< a map element → fraction
  Element,  ///< an element symbol
};

struct KeySpec {
  const char* path;           ///< inside the section: "noise", "drift.velocity_A_per_s", "annular.afterglow"
  KeyType type;
  const char* unit;           ///< "" for pure numbers, flags and words
  const char* default_value;  ///< as docs/scenario.md writes it
  const char* doc;            ///< one line: what it sets
};

/// The keys of `acquisition:` (docs/scenario.md "acquisition", docs/acquisition.md).
std::span<const KeySpec> acquisition_keys();

/// `specimen.builder` keys (docs/scenario.md "specimen"), besides `type`:
/// a perovskite's (builder types perovskite, amorphous, defects; and film's substrate and film;
/// Python's perovskite keyword arguments are these too, plus O and repeats),
std::span<const KeySpec> perovskite_keys();
/// the modifiers applied after a perovskite or film is built (film: all but antiphase_boundary),
std::span<const KeySpec> builder_modifier_keys();
/// a film's own keys and a nanoparticle's,
std::span<const KeySpec> film_keys();
std::span<const KeySpec> nanoparticle_keys();
/// `type: world`: the World's parameters (also the keywords of Python's stemtwin.World), and
/// a dataset sample's window of it (x, y, size).
std::span<const KeySpec> world_keys();
std::span<const KeySpec> world_window_keys();

/// The table's top-level keys joined by ", " (for messages such as Python's "known: …").
std::string key_list(std::span<const KeySpec> table);

/// The keys allowed directly below `parent` ("" = the section itself) in `table`.
std::set<std::string> allowed_keys(std::span<const KeySpec> table, const std::string& parent);

}  // namespace stemtwin
