#pragma once
// Reading the scenario's free-form sections through their typed key tables (key_tables.hpp).
// A row of a typed table is a KeySpec (path, type, unit, default, doc) and the field of the
// value type the section fills (KeyField); read_keys() reads every row from a sampled
// section, so a new key is one table row: the key check, the docs' key lists and the reading
// all follow it.
//
// Defaults: a key that is absent keeps the value the target starts with — the value type's
// own initialiser (AnnularResponse{}, PerovskiteParams{}, …: the defaults Python and the
// session share) or the caller's start (a film's film starts as LaFeO3, `beam_current_pA`
// as microscope.current). Each row's default column states that value; key_default_mismatches()
// compares the two for every literal default (tests/test_key_reader.cpp). A row whose default
// is "" is required: reading a section (or list entry) that lacks it is an error naming it.
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/core/names.hpp"
#include "stemtwin/scenario/key_tables.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/world.hpp"

namespace stemtwin {

/// Two numbers read as one key: a number (both) or a list [x, y].
struct XY {
  double& x;
  double& y;
};

/// An enum field read as a word of its names table (core/names.hpp).
template <class T>
struct WordField {
  void (*set)(T&, const std::string& word);  ///< throws std::invalid_argument for a word not in the table
  const char* (*get)(T&);
};

/// Where a row's value goes in T. monostate: a map or list of maps (their keys have rows).
template <class T>
using KeyField = std::variant<std::monostate, double& (*)(T&), int& (*)(T&), std::uint64_t& (*)(T&), bool& (*)(T&),
                              std::vector<double>& (*)(T&), std::vector<SpeciesFraction>& (*)(T&), XY (*)(T&), WordField<T>>;

template <class T>
struct KeyRow {
  KeySpec key;
  KeyField<T> field;
};

namespace key_detail {
template <auto M, auto... Rest, class C>
constexpr auto& member(C& c) {
  if constexpr (sizeof...(Rest) == 0) return c.*M;
  else return member<Rest...>(c.*M);
}
}  // namespace key_detail

/// The field of T at a chain of member pointers: field<AcquisitionKeys, &AcquisitionSettings::annular,
/// &AnnularResponse::gain_shape>() is t.annular.gain_shape.
template <class T, auto... Ms>
constexpr KeyField<T> field() {
  return +[](T& t) -> auto& { return key_detail::member<Ms...>(t); };
}

/// An enum field at a chain of member pointers, read as a word of `Names`.
template <class T, auto& Names, auto... Ms>
constexpr KeyField<T> word() {
  return WordField<T>{+[](T& t, const std::string& w) { key_detail::member<Ms...>(t) = parse_name("word", w, Names); },
                      +[](T& t) { return name_of(key_detail::member<Ms...>(t), Names); }};
}

/// `acquisition:` fills AcquisitionSettings and whether counting noise is on.
struct AcquisitionKeys : AcquisitionSettings {
  bool noise = true;
};

/// What the builder modifiers' keys fill: the amorphous region, and one entry of each list.
struct VacancyKeys {
  int element = 0;
  double fraction = 0;
};
struct DopantKeys {
  int host = 0, dopant = 0;
  double fraction = 0;
};
struct InterstitialKeys {
  int element = 0;
  double count = 0;
  double min_distance = 1.5;  ///< Å
};
struct AntiphaseKeys {
  double position = 0;  ///< Å
};
struct ModifierKeys {
  AmorphousParams amorphous;
  VacancyKeys vacancies;
  DopantKeys dopants;
  InterstitialKeys interstitials;
  AntiphaseKeys antiphase_boundary;
};

/// A `world` dataset sample's window: centre x, y (NaN: the world's centre) and side `size`, Å.
struct WorldWindowKeys {
  double x = std::nan(""), y = std::nan("");
  double size = 40;
};

/// The typed tables (the same rows as key_tables.hpp's acquisition_keys(), … in the same order).
std::span<const KeyRow<AcquisitionKeys>> acquisition_rows();
std::span<const KeyRow<PerovskiteParams>> perovskite_rows();
std::span<const KeyRow<ModifierKeys>> builder_modifier_rows();
std::span<const KeyRow<FilmParams>> film_rows();
std::span<const KeyRow<NanoparticleParams>> nanoparticle_rows();
std::span<const KeyRow<WorldParams>> world_rows();
std::span<const KeyRow<WorldWindowKeys>> world_window_rows();

/// Reads the rows of `table` below `under` ("" = all) from `section` (the node at `under`)
/// into `target`. `where` names the section in messages ("acquisition",
/// "specimen.builder.vacancies[0]"). A row is read only when its parent map is present;
/// a wrong type, an unknown word or element, or a missing required key throws ScenarioError
/// naming the key and its place in the file.
template <class T>
void read_keys(const SampledTree& section, std::span<const KeyRow<T>> table, T& target, const std::string& where,
               std::string_view under = "");

/// For each typed table: rows whose literal default (a number, true/false, a word, an element,
/// [x, y]) differs from what reading an empty section into the value type's default gives
/// ("<table>: <path>: default says …, reads …"); empty when the tables agree.
std::vector<std::string> key_default_mismatches();

/// The same check on one table (for tests of the check itself).
template <class T>
std::vector<std::string> key_default_mismatches(std::span<const KeyRow<T>> table, const std::string& name);

}  // namespace stemtwin
