#pragma once
// A spectrometer riding on a STEM scan (EDS or EELS): its settings as one value, and the
// read-out from the inelastic signal (physics/spectroscopy.hpp) to spectrum images and
// element maps, clean and with Poisson counts. Shared by the dataset runner (scenario
// `detectors: - type: eds|eels`, docs/scenario.md) and anything else that records spectra.
//
// Physics is in physics/eds.hpp and physics/eels.hpp (docs/spectroscopy.md); this file only
// chooses elements and maps, keys the noise streams and names the outputs. No YAML or HDF5.
//
// Units: energies eV, solid angle sr, take-off angle degrees, collection semi-angle mrad,
// footprint width Å, counts per probe position.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/eels.hpp"
#include "stemtwin/physics/spectroscopy.hpp"

namespace stemtwin {

enum class SpectrometerKind { Eds, Eels };
const char* to_string(SpectrometerKind k);  ///< "eds" / "eels"

/// One map to make: EDS — an element's line family (Ka, Kb, La, Lb, Lg, Ll, Ma, …: the
/// Siegbahn groups of xray_data.hpp); EELS — an element's ionisation edge (K, L1, L2, L3,
/// M1 … M5).
struct SpectrometerMap {
  int Z = 0;
  std::string line;  ///< EDS family or EELS shell
  /// The dataset name "<Element>_<line>", e.g. "Sr_Ka", "O_K".
  std::string name() const;
};

struct SpectrometerSpec {
  std::string name;  ///< names the dataset arrays (/spectra/<name>, /maps/<name>/…)
  SpectrometerKind kind = SpectrometerKind::Eds;
  EdsDetector eds;    ///< energy axis, resolution, solid angle, take-off (kind Eds)
  EelsSettings eels;  ///< energy axis, collection semi-angle, low loss (kind Eels)
  /// Elements recorded and modelled (Z, ascending); empty = every element of the specimen.
  std::vector<int> elements;
  /// Maps to make; empty = the default: EDS each element's Ka, La, Ma on the axis
  /// (default_map_requests), EELS each element's edges on the axis above min_edge_eV.
  std::vector<SpectrometerMap> maps;
  /// 1σ footprint of the ionisation interaction (Å), InelasticSettings::width_A; 0 = δ.
  double width_A = 0.0;
  /// EELS edge-map windows (eV): pre-edge fit width, gap below the onset, signal width.
  double pre_edge_eV = 40, gap_eV = 5, signal_eV = 50;
};

/// The elements a spectrometer records for a specimen: spec.elements, or the specimen's own.
std::vector<int> spectrometer_elements(const SpectrometerSpec& spec, const Structure& specimen);

/// The maps a spectrometer makes for a specimen (spec.maps or the default for its elements).
/// Throws std::invalid_argument naming the spectrometer, the element and line when a map's
/// windows leave the energy axis or the element has no such line/edge.
std::vector<SpectrometerMap> spectrometer_maps(const SpectrometerSpec& spec, const Structure& specimen,
                                               double beam_energy_eV);

/// Checks a spectrometer without a specimen (before any work): the detector settings are
/// possible at `beam_energy_eV`, and every listed map's windows lie on the energy axis
/// (modelled on a specimen made of the listed elements). Throws std::invalid_argument
/// naming the spectrometer and what is wrong.
void check_spectrometer(const SpectrometerSpec& spec, double beam_energy_eV);

/// A spectrometer's spectrum images of one scan: the expected (clean) counts and the
/// Poisson counts drawn from them.
struct SpectrometerSpectra {
  SpectrumImage expected;  ///< clean: expected counts [position][channel]
  SpectrumImage counts;    ///< Poisson counts
};

/// The one rule from the recorded intensity to spectra, shared by the dataset runner
/// (read_spectrometer) and the session (spectrum_at, scan()): the model of spec.kind
/// (eds_model / eels_model over spectrometer_elements) gives the expected counts at
/// electrons_per_position (one value for every position — the models' own dose argument —
/// or one per position: each position exactly as a run at its own dose), then Poisson counts from
/// Rng(seed, RngPurpose::Spectra, sample, stream·2^40 + position) (poisson_spectra): the same
/// bytes on any thread count. Throws std::invalid_argument for a dose list of the wrong length.
SpectrometerSpectra spectrometer_spectra(const SpectrometerSpec& spec, const Structure& specimen, double beam_energy_eV,
                                         const ElementIntensity& intensity, const std::vector<double>& electrons_per_position,
                                         std::uint64_t seed, std::uint64_t sample, std::uint64_t stream);

/// One spectrometer's read-out of one scan.
struct SpectrometerReadout {
  SpectrumImage expected;  ///< clean: expected counts [position][channel]
  SpectrumImage counts;    ///< Poisson counts
  std::vector<SpectrometerMap> maps;
  std::vector<std::vector<double>> clean_maps;  ///< per map, per position (from `expected`)
  std::vector<std::vector<double>> noisy_maps;  ///< per map, per position (from `counts`)
};

/// Spectra and maps from the recorded intensity (its elements must include the
/// spectrometer's) at `electrons_per_position`; the Poisson counts come from
/// Rng(seed, RngPurpose::Spectra, sample, stream·2^40 + position) (poisson_spectra), so the
/// result is the same on any thread count and after a resume. `stream` separates the
/// spectrometers of one scan (their index, from 0). `maps` as spectrometer_maps() returned.
SpectrometerReadout read_spectrometer(const SpectrometerSpec& spec, const Structure& specimen, double beam_energy_eV,
                                      const ElementIntensity& intensity, double electrons_per_position,
                                      const std::vector<SpectrometerMap>& maps, std::uint64_t seed, std::uint64_t sample,
                                      std::uint64_t stream);

/// Channel-centre energies (eV) of a spectrometer's axis.
std::vector<double> spectrometer_energy_axis(const SpectrometerSpec& spec);

}  // namespace stemtwin
