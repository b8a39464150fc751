#pragma once
// Scenario: the YAML description of a family of experiments (docs/scenario.md documents
// every key). Parsing validates everything before any work starts; a bad file throws
// ScenarioError whose message starts "file:line:column: key.path: ...".
//
// Any scalar may be a fixed value or a Distribution (uniform, normal, loguniform, choice,
// sweep). sample_parameters(spec, i) turns the spec into concrete values for sample i:
// draws come from Rng(seed, RngPurpose::Parameters, i, hash(key path)), so a draw depends
// only on (seed, sample index, key) — never on thread count, shard or the other keys.
//
// Sweeps form a grid: G = Π len(sweep_k), in document order with the first sweep varying
// slowest (nested loops). total_samples = samples × G; sample i is grid point i / samples,
// replicate i % samples.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/dataset/parameter_info.hpp"
#include "stemtwin/dataset/shard.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/scenario/spectrometers.hpp"

namespace stemtwin {

/// A parse or validation error; what() = "file:line:column: key: message".
class ScenarioError : public std::runtime_error {
 public:
  ScenarioError(std::string file, int line, int column, std::string key, const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }      ///< 1-based; 0 when unknown
  int column() const { return column_; }  ///< 1-based; 0 when unknown
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_, column_;
  std::string key_;
};

/// Where a value came from: the YAML key path ("microscope.energy", "specimen.repeat[2]",
/// "detectors.haadf.inner") and its 1-based line/column in the file.
struct SourceRef {
  std::string path;
  int line = 0, column = 0;
  std::string file;  ///< the scenario file (for messages)
};

/// A scalar value: a number or a word (e.g. a choice of "lobato"/"kirkland").
struct Value {
  double number = 0;
  std::string text;
  bool is_text = false;
  static Value of(double v) { return Value{v, {}, false}; }
  static Value of(std::string s) { return Value{0, std::move(s), true}; }
};

/// A fixed value or a distribution over values.
struct Distribution {
  enum class Kind { Fixed, Uniform, Normal, LogUniform, Choice, Sweep };
  Kind kind = Kind::Fixed;
  double a = 0, b = 0;         ///< Uniform/LogUniform: [a, b); Normal: mean a, sd b
  std::vector<Value> options;  ///< Fixed: one value; Choice/Sweep: the list
  SourceRef source;

  static Distribution fixed(double v, SourceRef src = {});
  bool is_fixed() const { return kind == Kind::Fixed; }
  bool is_text() const;  ///< options are words (Fixed/Choice/Sweep of strings)
  /// Smallest and largest value a draw can take (normal: mean ± 6 sd); text: {0, n-1}.
  std::pair<double, double> support() const;
};

/// A generic (sampled) key/value tree for sections whose fields another module defines:
/// the specimen builder and the acquisition section. Keys keep document order.
///
/// `map` holds Entry (first = key, second = subtree), not std::pair: a pair of an
/// incomplete type inside its own class does not compile with clang + libstdc++ 12.
struct ParamTree {
  enum class Kind { Leaf, Map, List };
  struct Entry;
  Kind kind = Kind::Map;
  Distribution leaf;
  std::vector<Entry> map;
  std::vector<ParamTree> list;
  SourceRef source;
  const ParamTree* find(const std::string& key) const;
};
struct ParamTree::Entry {
  std::string first;
  ParamTree second;
  Entry(std::string key, ParamTree value) : first(std::move(key)), second(std::move(value)) {}
};

/// A ParamTree with every leaf drawn. Accessors throw ScenarioError naming the key path.
struct SampledTree {
  struct Entry;
  ParamTree::Kind kind = ParamTree::Kind::Map;
  Value leaf;
  std::vector<Entry> map;  ///< as ParamTree::map
  std::vector<SampledTree> list;
  SourceRef source;
  bool has(const std::string& key) const;
  const SampledTree& at(const std::string& key) const;
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  std::string text(const std::string& key) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  bool flag(const std::string& key, bool fallback) const;  ///< numbers ≠ 0 and true/yes/on
};
struct SampledTree::Entry {
  std::string first;
  SampledTree second;
  Entry(std::string key, SampledTree value) : first(std::move(key)), second(std::move(value)) {}
};

/// `specimen.thermal`: present = thermal vibration on (frozen phonons); absent = a static
/// lattice. `rms: 0` (scalar or per element) means static for those atoms.
struct ThermalSpec {
  bool enabled = false;                ///< a `thermal` block is present
  SourceRef source;                    ///< where the block is (for messages)
  std::optional<Distribution> rms;     ///< Å, all elements (absent: per element, file, table)
  std::vector<std::pair<std::string, Distribution>> rms_by_element;  ///< when a map is given
  Distribution configurations = Distribution::fixed(8);  ///< frozen-phonon configurations
};

struct SpecimenSpec {
  std::string structure;             ///< absolute or YAML-relative path resolved; "" with builder
  std::optional<ParamTree> builder;  ///< `builder:` map, including its `type`
  std::string builder_type;          ///< perovskite|film|amorphous|defects|nanoparticle
  std::array<Distribution, 3> zone_axis{Distribution::fixed(0), Distribution::fixed(0), Distribution::fixed(1)};
  std::array<Distribution, 3> repeat{Distribution::fixed(1), Distribution::fixed(1), Distribution::fixed(1)};
  ThermalSpec thermal;
};

struct MicroscopeSpec {
  Distribution energy = Distribution::fixed(200e3);     ///< eV
  Distribution convergence = Distribution::fixed(20);   ///< mrad semi-angle
  /// As written (canonical Krivanek names C10…C56, phi12…phi56 (rad), or an alias:
  /// defocus (= −C10), Cs (C30), C5 (C50), astigmatism (C12), astigmatism_angle (phi12),
  /// coma (C21), coma_angle (phi21), trefoil (C23), trefoil_angle (phi23)); Å.
  std::vector<std::pair<std::string, Distribution>> aberrations;
  Distribution focal_spread = Distribution::fixed(0);  ///< Å (1/e half-width of the defocus spread)
  Distribution source_size = Distribution::fixed(0);   ///< Å (Gaussian sd)
  Distribution current = Distribution::fixed(20);      ///< pA
};

struct ScanSpec {
  std::array<Distribution, 2> start{Distribution::fixed(0), Distribution::fixed(0)};  ///< Å
  bool use_fov = false;                                 ///< fov+pixels instead of end+step
  std::array<Distribution, 2> end;                       ///< Å, excluded
  std::array<Distribution, 2> step;                      ///< Å (x, y)
  std::array<Distribution, 2> fov;                       ///< Å
  std::array<std::size_t, 2> pixels{0, 0};               ///< nx, ny (fixed: the image size)
  Distribution dwell = Distribution::fixed(2);           ///< µs
};

enum class DetectorType { Annular, Radial, Segmented, Pixelated, Com };
const char* to_string(DetectorType t);

struct DetectorSpec {
  std::string name;
  DetectorType type = DetectorType::Annular;
  SourceRef source;
  // annular
  Distribution inner = Distribution::fixed(0), outer = Distribution::fixed(0);  ///< mrad
  std::optional<std::array<Distribution, 2>> azimuth;                           ///< deg [from, to)
  // radial (fixed: they set the stored array's shape)
  double step = 1;   ///< mrad bin width
  double max = 0;    ///< mrad; 0 = up to the simulation's band limit (set by the runner)
  // segmented
  std::vector<double> rings;  ///< mrad ring edges, ascending (≥ 2)
  int segments = 4;
  Distribution rotation = Distribution::fixed(0);  ///< deg
  // pixelated (fixed) and com (max_angle 0 = band limit)
  double max_angle = 0;  ///< mrad
  int bin = 1;
};

struct SimulationSpec {
  std::string method = "auto";             ///< auto (default) | multislice | prism | windowed
  int interpolation = 1;                   ///< PRISM interpolation factor f
  /// `error_budget:` of method auto (unset = ErrorBudget's defaults, physics/engine.hpp):
  /// annular means within `mean` (fraction), correlation ≥ `correlation`, `positions` calibrated.
  std::optional<double> budget_mean_rel, budget_min_correlation;
  std::optional<int> budget_calibration_positions;
  /// `sampling: auto` (the default): per sample, auto_sampling_A() — the coarsest sampling
  /// whose band limit covers every detector and the probe. Otherwise `sampling` (Å).
  bool auto_sampling = true;
  Distribution sampling = Distribution::fixed(0.05);         ///< Å (when not auto)
  Distribution slice_thickness = Distribution::fixed(2.0);   ///< Å
  std::string parametrization = "lobato";  ///< lobato | kirkland
  std::string projection = "infinite";     ///< infinite | finite
  /// `symmetry:` multislice simulates one position per translational-symmetry class of a
  /// static crystal (StemSettings::symmetry_reuse, physics/translational_symmetry.hpp).
  bool symmetry = true;
};

struct LabelsSpec {
  bool columns = true;             ///< write the column table
  std::vector<std::string> masks;  ///< per-pixel masks: "columns" (uint8 disks), "species" (int16 ids)
  double mask_radius = 0.5;        ///< Å
  std::string class_param;         ///< a sampled key path whose value is the class id ("" = none)
  std::vector<std::string> class_names;
};

struct OutputSpec {
  std::string file;         ///< default <name>.h5 (relative to the working directory)
  int compression = 4;      ///< deflate level 0–9
  bool clean = true;        ///< also store /clean/<detector>
  int preview_samples = 8;  ///< columns of the contact sheet
};

struct ScenarioSpec {
  std::string source_file;  ///< as given to the parser (for messages)
  std::string text;         ///< the full YAML text (stored in the dataset)
  std::string name;
  std::uint64_t seed = 0;
  std::size_t samples = 1;
  SpecimenSpec specimen;
  MicroscopeSpec microscope;
  ScanSpec scan;
  std::vector<DetectorSpec> detectors;
  std::vector<ScenarioSpectrometer> spectrometers;  ///< `detectors` of type eds/eels (spectrometers.hpp)
  SimulationSpec simulation;
  std::optional<ParamTree> acquisition;  ///< absent: images = clean signals
  LabelsSpec labels;
  OutputSpec output;

  /// Sweep grid size G (1 without sweeps) and samples × G.
  std::size_t grid_size() const;
  std::size_t total_samples() const;
  /// Every distribution-valued scalar in document order (the /params columns).
  std::vector<const Distribution*> sampled() const;
  /// Sweeps in document order (grid axes, first slowest).
  std::vector<const Distribution*> sweeps() const;
};

/// Parses and validates; throws ScenarioError. `name_for_errors` is used in messages and
/// as the base for relative structure paths (its directory).
ScenarioSpec parse_scenario_text(const std::string& text, const std::string& name_for_errors);
ScenarioSpec parse_scenario_file(const std::string& path);
/// Throws ScenarioError when samples × sweep grid exceeds the limit of docs/scenario.md
/// "Ranges" (for a `samples` changed after parsing, e.g. by `run --samples`).
void check_sample_count(const ScenarioSpec& spec);

/// One detector of a sample: the physics detector (its name, kind and settings — the one
/// place of the per-kind fields, physics/detectors.hpp) plus what only the scenario knows.
/// Made by SampledDetector::of, which sets `name` and `type` from `detector`.
struct SampledDetector {
  std::string name;  ///< = detector_name(detector): what read-out, layout and checks key on
  DetectorType type = DetectorType::Annular;  ///< the alternative `detector` holds
  Detector detector;
  /// com only: the largest angle (mrad) the simulation must reach for it (the scenario's
  /// `max_angle`; 0 = the band limit). The centre of mass itself takes the whole pattern.
  double com_max_angle_mrad = 0;

  static SampledDetector of(Detector detector, double com_max_angle_mrad = 0);
};

/// Concrete values for one sample.
struct SampledScenario {
  std::size_t index = 0;      ///< global sample index
  std::size_t grid_point = 0; ///< index into the sweep grid
  std::size_t replicate = 0;
  std::uint64_t seed = 0;     ///< the scenario seed (streams are keyed by (seed, index, purpose))

  // specimen
  std::string structure;
  std::optional<SampledTree> builder;
  std::string builder_type;
  std::array<int, 3> zone_axis{0, 0, 1};
  std::array<int, 3> repeat{1, 1, 1};
  bool thermal = false;                ///< thermal vibration requested (a `thermal` block)
  std::optional<double> thermal_rms;   ///< Å, all elements (when given as a scalar)
  std::map<std::string, double> thermal_rms_by_element;  ///< element symbol → Å (when a map was given)
  int configurations = 1;              ///< frozen-phonon configurations (1 without thermal vibration)
  // microscope
  double energy = 0, convergence = 0, focal_spread = 0, source_size = 0, current = 0;
  /// Canonical Krivanek coefficients (C10…, phi…); `defocus` d is stored as C10 = −d.
  std::map<std::string, double> aberrations;
  // scan
  ScanGrid scan;
  double dwell_us = 0;
  std::vector<SampledDetector> detectors;
  // simulation
  /// The engine's choices, parsed once from the words when sampling (physics/names.hpp).
  Method method = Method::Multislice;
  Parametrization parametrization = Parametrization::Lobato;
  Projection projection = Projection::Infinite;
  int interpolation = 1;
  std::optional<double> budget_mean_rel, budget_min_correlation;  ///< method auto's error budget (unset: defaults)
  std::optional<int> budget_calibration_positions;
  bool auto_sampling = false;          ///< sampling chosen by auto_sampling_A()
  bool symmetry = true;                ///< StemSettings::symmetry_reuse
  double sampling = 0, slice_thickness = 0;
  std::optional<SampledTree> acquisition;
  int class_id = -1;  ///< from labels.class (−1: none)

  /// Every distribution-valued scalar: key path → number (text values: index into the list).
  std::map<std::string, double> values;
  /// Dwell-time dose: electrons per probe position, I·t/e.
  double electrons_per_position() const;
};

/// The angle (mrad) up to which a sample must be simulated: the largest outer angle of its
/// detectors (annular outer, last segmented ring, radial `max`, pixelated/COM `max_angle`;
/// those that default to the band limit do not ask for more) and twice the probe's
/// convergence semi-angle (the probe and its first scattering out of the aperture).
double required_angle_mrad(const SampledScenario& s);

/// `sampling: auto`: the coarsest sampling (Å) whose 2/3 band limit, k_max = 1/(3·dx), reaches
/// required_angle_mrad(s) at the sample's energy, dx = λ/(3·θ), but never coarser than
/// 0.1 Å (atomic potentials need it). Grids round their point counts up to FFT-friendly
/// sizes, so the band limit of the real grid is never below the requested angle.
double auto_sampling_A(const SampledScenario& s);

/// Draws sample `index` (0 ≤ index < total_samples); throws ScenarioError when a draw is
/// impossible (e.g. a normal energy ≤ 0), naming the key.
SampledScenario sample_parameters(const ScenarioSpec& spec, std::size_t index);

/// Column names of /params for this scenario (every sampled key path) and, for text
/// options, the words behind the stored indices.
std::vector<ParameterInfo> parameter_info(const ScenarioSpec& spec);

/// Stable 64-bit FNV-1a hash of a key path (the stream word of its draws).
std::uint64_t key_hash(const std::string& path);

}  // namespace stemtwin
