#pragma once
// Electron energy-loss (EELS) spectrum images: low loss and core-loss edges, from the same
// inelastic signal as EDS (spectroscopy.hpp). See docs/spectroscopy.md for the model.
//
// Low loss (the same at every probe position; thickness from the specimen's cell):
//   J(E) = Σ_n P_n · (Z ⊗ S^{⊗n})(E),   P_n = e^{−t/λ} (t/λ)^n / n!     (Poisson plural scattering)
// with Z the zero-loss peak (a Gaussian of the given FWHM, unit area) and S the single-
// scattering distribution of one bulk plasmon (Drude): S(E) ∝ Im[−1/ε(E)] · ln(1 + β²/θ_E²),
// Im[−1/ε] = E Γ E_p² / ((E² − E_p²)² + (E Γ)²), θ_E = E/(γ m₀ v²), normalised to unit area.
// Hence ln(I_total/I_0) = t/λ (log-ratio method; Egerton, Electron Energy-Loss
// Spectroscopy in the Electron Microscope, 3rd ed. 2011, §5.1). λ, the total inelastic mean
// free path for collection semi-angle β, is from Malis, Cheng & Egerton, Microsc. Microanal.
// Microstruct. Anal. (EMSA Bull.) 18 (1988) 163, in Egerton's form (2011, eq. 5.2):
//   λ = 106 F E0 / (E_m ln(2βE0/E_m)) nm,  E0 in keV, β in mrad, E_m = 7.6 Z_eff^0.36 eV,
//   F = (1 + E0/1022)/(1 + E0/511)²,       Z_eff = Σ f_i Z_i^1.3 / Σ f_i Z_i^0.3 (atom fractions),
// unless a mean free path is given.
//
// Core loss: for each element and shell whose ionisation edge (xraylib) lies on the axis,
//   dσ/dE = σ_n · η_n(β) · (r − 1)/E_n · (E/E_n)^{−r}   for E ≥ E_n (a saw-tooth edge),
// σ_n the Bote–Salvat total ionisation cross section, η_n(β) = ln(1 + β²/θ_n²) /
// ln(1 + θ_r²/θ_n²) (≤ 1) the fraction scattered inside the collection angle (dipole angular
// distribution cut at the Bethe-ridge angle θ_r = √(2θ_n); Egerton 2011, ch. 3), θ_n = E_n/(γ m₀ v²)
// the characteristic angle at the edge, and r the decay exponent (3 by default: the large-energy
// fall-off of hydrogenic K edges). Counts: N · I_Z(p) · ∫_channel dσ/dE. Edges are neither
// broadened by the zero-loss width nor convolved with the low loss (no plural core-loss
// scattering), and have no near-edge structure. An explicit power-law background
// A·(E/E_ref)^{−r_b} per electron may be added; the edges' own tails already make one.
#include <cstddef>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/physics/xray_data.hpp"

namespace stemtwin {

struct EelsSettings {
  double energy_start_eV = -10.0;    ///< left edge of channel 0
  double channel_width_eV = 0.5;
  std::size_t channels = 2048;
  double collection_semiangle_mrad = 50.0;  ///< β
  double zlp_fwhm_eV = 0.8;          ///< energy spread of the source (Gaussian)
  /// Bulk plasmon energy E_p and width Γ (eV) of the Drude single-scattering distribution;
  /// material constants (e.g. SrTiO3 ≈ 29 eV; Si 16.6 eV, Γ 3.7 eV; Egerton 2011 table 3.2).
  double plasmon_energy_eV = 29.0;
  double plasmon_width_eV = 6.0;
  /// Total inelastic mean free path (Å); 0 = the Malis et al. formula for the specimen.
  double mean_free_path_A = 0.0;
  double edge_exponent = 3.0;        ///< r of the saw-tooth edges (> 1)
  /// Shells with edges below this (eV) are outer shells whose excitation belongs to the
  /// valence (plasmon) response: no edge is drawn for them.
  double min_edge_eV = 50.0;
  bool low_loss = true;              ///< include zero loss and plasmons
  bool core_loss = true;             ///< include the edges
  /// Optional power-law background, counts per eV per incident electron at
  /// background_reference_eV, falling as E^{−background_exponent}; 0 = none.
  double background_per_eV = 0.0;
  double background_reference_eV = 100.0;
  double background_exponent = 3.0;
};

/// One ionisation edge as the model uses it.
struct EelsEdge {
  int Z = 0;
  Shell shell = Shell::K;
  double onset_eV = 0;          ///< xraylib edge energy
  double cross_section_A2 = 0;  ///< Bote–Salvat σ at the beam energy
  double collected = 0;         ///< η(β)
};

struct EelsModel {
  double beam_energy_eV = 0;
  EelsSettings settings;
  double thickness_A = 0, mean_free_path_A = 0;
  std::vector<int> elements;               ///< ascending
  std::vector<std::vector<EelsEdge>> edges;  ///< per element
  std::vector<std::vector<double>> unit;   ///< per element: counts per channel per electron per unit I_Z (Å²)
  std::vector<double> low_loss;            ///< counts per channel per electron (position independent)
  double channel_energy_eV(std::size_t c) const { return settings.energy_start_eV + (double(c) + 0.5) * settings.channel_width_eV; }
};

/// Malis et al. (1988) total inelastic mean free path (Å) of a specimen (composition from
/// its atoms and occupancies) for beam energy E0 (eV) and collection semi-angle β (mrad).
double malis_mean_free_path_A(const Structure& specimen, double beam_energy_eV, double collection_semiangle_mrad);

/// Builds the model; `elements` empty = every element of the specimen. Throws
/// std::invalid_argument naming the bad setting.
EelsModel eels_model(const Structure& specimen, double beam_energy_eV, const EelsSettings& settings,
                     const std::vector<int>& elements = {});

/// Expected counts per position (low loss + edges), at `electrons_per_position`, from the
/// intensity at recording depth `depth_index` (default: the deepest; the low loss always
/// uses the specimen's full thickness).
SpectrumImage eels_expected(const ElementIntensity& intensity, const EelsModel& model, double electrons_per_position,
                            std::size_t depth_index = SIZE_MAX);

/// Counts of one ionisation edge per position after power-law background subtraction:
/// the background A·E^{−r} is fitted to the counts I₁, I₂ of two adjacent pre-edge windows
/// [E₁,E₂], [E₂,E₃], each half of `pre_edge_eV` wide and ending `gap_eV` below the onset (the
/// two-area method, Egerton 2011, ch. 4; r solved exactly from I₁/I₂ rather than by the
/// closed-form approximation), and extrapolated under the signal window [onset, onset +
/// signal_eV]. Windows are rounded to whole channels. Throws std::invalid_argument naming
/// the element and shell when the model has no such edge or a window leaves the positive
/// axis. A position whose pre-edge counts are not positive and decreasing (r undefined,
/// e.g. too few counts in a noisy spectrum) gets NaN.
struct EdgeMap {
  int Z = 0;
  Shell shell = Shell::K;
  double onset_eV = 0;
  std::vector<double> counts;  ///< per position
};
struct EdgeRequest {
  int Z = 0;
  Shell shell = Shell::K;
  double pre_edge_eV = 40, gap_eV = 5, signal_eV = 50;
};
std::vector<EdgeMap> eels_edge_maps(const SpectrumImage& spectra, const EelsModel& model,
                                    const std::vector<EdgeRequest>& requests);

/// Log-ratio thickness t/λ = ln(I_total / I_0) of one spectrum (`values` = channels counts on
/// the axis of `axis`), I_0 the counts up to `zero_loss_cut_eV` (e.g. the minimum after the
/// zero-loss peak). Throws if I_0 ≤ 0.
double log_ratio_thickness(const double* values, const SpectrumImage& axis, double zero_loss_cut_eV);

}  // namespace stemtwin
