#pragma once
// Labeled HDF5 datasets: an append-only, resumable writer and a reader (docs/dataset.md).
//
//   /images/<channel>        float32 [N, ny, nx]       acquired (noisy) images
//   /clean/<channel>         float32 [N, ny, nx]       noise-free signals (layout.store_clean)
//   /radial/<detector>       float32 [N, ny, nx, nbins] attr bin_edges (mrad, nbins + 1)
//   /diffraction/<detector>  float32 [N, ny, nx, ky, kx] chunk [1, 1, nx, ky, kx], written row by row
//   /params/sample_index     int64   [N]               global sample index of each row
//   /params/<key path>       float64 [N]               every sampled parameter (attr categories for words)
//   /labels/class            int32   [N]               attr names
//   /labels/masks/<name>     uint8|int16 [N, ny, nx]   attr values (what the numbers mean)
//   /labels/columns/{sample,x_A,y_A,x_px,y_px,species,count,class}  1-D, one row per atomic column
//   /spectra/<spectrometer>  float32 [N, ny, nx, channels] chunk [1, 1, nx, channels] (Poisson counts;
//                            attrs technique, units, spectrometer_settings()); /clean/spectra/… expected counts
//   /maps/<spectrometer>/<El>_<line>, /clean/maps/… float32 [N, ny, nx] (counts after background)
//   /instrument/…            float64 [N]               microscope and detector settings per sample (instrument.hpp)
//   /labels/columns/composition float32 [columns, elements], /labels/regions/composition
//                            float32 [N, classes, elements] (atoms; attrs elements, classes)
//   root attrs: program, version, scenario, scenario_name, seed, created, units, layout (JSON),
//               layout_doc, total_samples, shard, complete_samples (written last per sample)
//
// Every per-sample dataset has an unlimited first dimension, one chunk per sample (per
// pattern row for diffraction), shuffle + deflate. A sample is complete when the root
// attribute `complete_samples` counts it: the writer writes all of a sample's data, flushes,
// then updates the counter and flushes again. Readers only show complete samples; resume
// truncates anything beyond the counter. The file uses HDF5's default (earliest) format, so
// a file left by a killed writer opens again without h5clear.
//
// This header does not include <hdf5.h> (the handles live behind a pointer).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <utility>

#include "stemtwin/core/image.hpp"
#include "stemtwin/dataset/instrument.hpp"
#include "stemtwin/dataset/parameter_info.hpp"
#include "stemtwin/dataset/shard.hpp"

namespace stemtwin {

enum class MaskType { UInt8, Int16 };

struct MaskLayout {
  std::string name;                 ///< e.g. "columns", "species"
  MaskType type = MaskType::UInt8;
  std::vector<std::string> values;  ///< meaning of value v = values[v] (may be empty)
};

struct RadialLayout {
  std::string name;
  std::vector<double> edges;  ///< mrad, nbins + 1 ascending
  std::size_t bins() const { return edges.empty() ? 0 : edges.size() - 1; }
};

/// A spectrometer's arrays (dataset_spectra.cpp): the energy axis and its maps.
struct SpectraLayout {
  std::string name;
  std::string technique;               ///< "EDS" or "EELS"
  double energy_start_eV = 0, channel_width_eV = 0;  ///< left edge of channel 0, channel width
  std::size_t channels = 0;
  std::vector<std::string> maps;       ///< "<Element>_<line>"
  /// The clean (expected-count) spectrum image is stored too, /clean/spectra/<name>, when the
  /// layout stores clean images (store_clean); layouts written before it had none (false).
  bool clean_spectra = false;
  /// The spectrometer's settings, for readers and exports (HyperSpy's EDS/EELS metadata); fixed
  /// in a scenario, so stored once: in the layout and as attributes of /spectra/<name>
  /// (spectrometer_settings). 0 = not stored (layouts written before them, hand-made files).
  double resolution_mn_ka_eV = 0;  ///< EDS: FWHM at Mn Kα, eV
  double solid_angle_sr = 0;       ///< EDS: collection solid angle, sr
  double takeoff_deg = 0;          ///< EDS: elevation of the detector above the specimen plane, degrees
  double collection_mrad = 0;      ///< EELS: collection semi-angle β, mrad
};

/// The stored settings of a spectrometer as (name with its unit, value) pairs, in a fixed
/// order, only those set (> 0): resolution_mn_ka_eV, solid_angle_sr, takeoff_deg,
/// collection_semiangle_mrad. The one naming of them: /spectra/<name> attributes, and the
/// EMD, NSID and zarr exports.
std::vector<std::pair<std::string, double>> spectrometer_settings(const SpectraLayout& spectrometer);

struct DiffractionLayout {
  std::string name;
  std::size_t kx = 0, ky = 0;                   ///< pattern size (after binning)
  double sampling_x = 0, sampling_y = 0;        ///< mrad per pattern pixel
};

/// Everything that fixes the file's shapes; stored as JSON in the root attribute `layout`.
struct DatasetLayout {
  std::string scenario_name;
  std::uint64_t seed = 0;
  std::size_t total_samples = 0;  ///< samples the scenario defines (all shards)
  Shard shard;                    ///< which samples this file holds
  std::size_t nx = 0, ny = 0;     ///< scan image size
  std::vector<std::string> images;   ///< image channels (/images and /clean)
  bool store_clean = true;
  std::vector<RadialLayout> radial;
  std::vector<DiffractionLayout> diffraction;
  std::vector<ParameterInfo> params;      ///< /params columns (besides sample_index)
  bool has_class = false;
  std::vector<std::string> class_names;
  std::vector<MaskLayout> masks;
  bool columns = false;                   ///< write /labels/columns
  std::vector<std::string> species;       ///< names of ColumnLabel::species ids (e.g. "Sr", "TiO")
  std::vector<SpectraLayout> spectra;     ///< spectrometers (/spectra, /maps)
  /// Elements (symbols) of the composition labels (/labels/columns/composition when columns
  /// are on, /labels/regions/composition); empty = none stored.
  std::vector<std::string> composition_elements;
  std::vector<std::string> region_classes;  ///< classes of /labels/regions/composition
  int compression = 4;                    ///< deflate 0–9
  /// Scan step (x, y) in Å when every sample shares it (root attribute `pixel_size_A`);
  /// empty when the step varies (then /params holds it).
  std::vector<double> pixel_size_A;
  /// The instrument settings stored per sample (/instrument) and the fixed calibrations the
  /// readers need (energy, channel units); JSON key `instrument`, absent when !stored.
  InstrumentLayout instrument;
  /// Warnings of the scenario checks (band limit, dose, thermal snapshot); root attribute
  /// `warnings` (one per line). Not part of the JSON layout: they do not fix shapes.
  std::vector<std::string> warnings;
  /// Further root attributes (text), e.g. the runner's `method` and `error_budget`; not part
  /// of the JSON layout. Must not reuse a name the writer sets itself.
  std::map<std::string, std::string> attributes;

  std::string to_json() const;
  static DatasetLayout from_json(const std::string& json);
  bool same_shapes(const DatasetLayout& other) const;  ///< equal except shard
};

/// One labelled atomic column (or atom) in one sample.
struct ColumnLabel {
  double x = 0, y = 0;    ///< Å (specimen frame, through the same scan mapping as the image)
  double px = 0, py = 0;  ///< image pixels (fractional; pixel centres at integers)
  int species = 0;        ///< index into DatasetLayout::species
  int count = 0;          ///< atoms in the column
  int class_id = -1;
  std::vector<float> composition;  ///< atoms per layout.composition_elements (Σ occupancy)
};

/// One sample's data. Diffraction is not here: it is streamed with write_diffraction_row.
struct SampleRecord {
  std::size_t index = 0;                          ///< global sample index
  std::map<std::string, Image> images;            ///< every layout.images channel
  std::map<std::string, Image> clean;             ///< same channels when layout.store_clean
  std::map<std::string, std::vector<float>> radial;  ///< [ny][nx][nbins]
  std::map<std::string, double> params;           ///< every layout.params name
  int class_id = -1;                              ///< when layout.has_class
  std::map<std::string, Image> masks;             ///< every layout.masks name
  std::vector<ColumnLabel> columns;
  /// The FFT plan that produced the sample (StemResult::fft_plan); "" = not recorded. The
  /// file's root attribute `fft_plan` lists every distinct plan of its samples (space-separated,
  /// in order of first use): same seed and same plans ⇒ same bytes on the same machine.
  std::string fft_plan;
  std::map<std::string, std::vector<float>> spectra;  ///< per spectrometer, [ny][nx][channels]
  std::map<std::string, std::vector<float>> clean_spectra;  ///< same keys, expected counts (SpectraLayout::clean_spectra)
  std::map<std::string, Image> maps;        ///< "<spectrometer>/<map>" (noisy)
  std::map<std::string, Image> clean_maps;  ///< same keys when layout.store_clean
  std::vector<float> region_composition;    ///< [region_classes][composition_elements]
  /// The sample's microscope and detectors; required when layout.instrument.stored, ignored
  /// otherwise (a file from before /instrument, resumed, stays without it).
  std::optional<InstrumentSettings> instrument;
};

/// A file written under a temporary name beside its destination (same directory, so the
/// rename is atomic: ".<name>.partial-<pid>") and renamed over the destination by commit().
/// Not committed, the temporary file is removed: a failed or interrupted write never
/// touches the destination, and a killed one leaves at most the temporary file.
class StagedFile {
 public:
  explicit StagedFile(std::string destination);
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile();
  const std::string& path() const { return temp_; }  ///< where to write
  const std::string& destination() const { return destination_; }
  void commit();  ///< renames path() over destination()

 private:
  std::string destination_, temp_;
  bool committed_ = false;
};

/// Why an existing file at `path` is an unfinished dataset, interrupted before its first
/// complete sample (empty, an HDF5 file that does not open, one without stemtwin's layout
/// attributes and nothing but stemtwin's groups, or a dataset with 0 complete samples);
/// nullopt for a dataset with samples and for any other file (which nobody may overwrite
/// unasked).
std::optional<std::string> unfinished_dataset(const std::string& path);

class DatasetWriter {
 public:
  /// Creates a new file; throws when it exists and !force (the message says --force). The
  /// layout is written under a temporary name and renamed into place (over an existing file
  /// when force), so `path` is never a file without its complete layout.
  static DatasetWriter create(const std::string& path, const DatasetLayout& layout, const std::string& scenario_text,
                              bool force);
  /// Reopens a file for appending after its last complete sample, truncating any rows a
  /// killed writer left beyond it.
  static DatasetWriter open_for_resume(const std::string& path);

  DatasetWriter(DatasetWriter&&) noexcept;
  DatasetWriter& operator=(DatasetWriter&&) noexcept;
  ~DatasetWriter();  ///< closes (a sample not appended is discarded)

  const DatasetLayout& layout() const;
  const std::string& path() const;
  std::size_t rows() const;                       ///< complete samples in the file
  std::size_t last_index() const;                 ///< sample index of the last row (rows() > 0)
  std::string scenario_text() const;

  /// Streams pattern row y ([nx][ky][kx] floats) of detector `name` for the sample about
  /// to be appended. Every row must be written before append_sample.
  void write_diffraction_row(const std::string& name, std::size_t y, const float* data);
  /// Appends one complete sample (indices must increase); flushes; counts it complete.
  void append_sample(const SampleRecord& record);
  void close();

 private:
  struct Impl;
  explicit DatasetWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class DatasetReader {
 public:
  explicit DatasetReader(const std::string& path);
  DatasetReader(DatasetReader&&) noexcept;
  DatasetReader& operator=(DatasetReader&&) noexcept;
  ~DatasetReader();

  const DatasetLayout& layout() const;
  std::size_t size() const;                        ///< complete samples (rows)
  std::vector<std::string> detectors() const;      ///< image channels
  std::string scenario_text() const;
  std::string version() const;
  std::string created() const;
  std::size_t sample_index(std::size_t row) const;
  std::vector<std::int64_t> sample_indices() const;

  Image image(const std::string& channel, std::size_t row) const;
  Image clean(const std::string& channel, std::size_t row) const;
  std::vector<float> radial(const std::string& name, std::size_t row) const;          ///< [ny][nx][nbins]
  std::vector<float> diffraction_row(const std::string& name, std::size_t row, std::size_t y) const;  ///< [nx][ky][kx]
  /// Spectrum image [ny][nx][channels] of spectrometer `name` (/spectra/<name>, counts), or with
  /// `clean` the expected counts (/clean/spectra/<name>). Throws std::invalid_argument naming the
  /// spectrometer when the file has none of that name, or no clean spectra of it.
  std::vector<float> spectra(const std::string& name, std::size_t row, bool clean = false) const;
  /// Element map "<spectrometer>/<El>_<line>" (/maps/…, or /clean/maps/… with `clean`).
  Image map(const std::string& key, std::size_t row, bool clean = false) const;
  std::vector<std::string> param_names() const;
  std::vector<double> param(const std::string& name) const;  ///< all complete rows
  int class_id(std::size_t row) const;
  Image mask(const std::string& name, std::size_t row) const;
  std::vector<ColumnLabel> columns(std::size_t row) const;
  std::size_t column_count() const;                ///< labelled columns over all complete samples
  SampleRecord record(std::size_t row) const;      ///< everything but diffraction
  /// The microscope and detector settings of a row (/instrument); nullopt for a file written
  /// before stemtwin stored them (or from a hand-made layout without them).
  std::optional<InstrumentSettings> instrument(std::size_t row) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct MergeReport {
  std::size_t samples = 0;   ///< rows written
  std::size_t missing = 0;   ///< total_samples − samples (incomplete shards)
};
/// Joins shard files (same scenario and layout) into one file in global sample order.
/// Throws on mismatched inputs, duplicate samples, or an existing output without force.
MergeReport merge_datasets(const std::vector<std::string>& inputs, const std::string& output, bool force);

/// Sample indices still to compute for a shard, given the rows already complete (resume).
std::vector<std::size_t> remaining_samples(std::size_t total, Shard shard, std::size_t complete_rows);

}  // namespace stemtwin
