#pragma once
// Energy-dispersive X-ray (EDS) spectrum images from the inelastic signal (spectroscopy.hpp).
//
// Per probe position p and element Z, the recorder gives I_Z(p) = Σ_atoms occ·ρ(r_atom)
// (1/Å²). Expected counts in channel c at a dose of N electrons per position:
//   n(p, c) = N · Σ_Z I_Z(p) · [ Σ_lines σ_x(line) · D(E_line) · G_c(E_line)
//                               + ∫_c dσ_B/dE (Z) · D(E) dE ]
// with
//  - σ_x(line) = ν_shell · ω_shell · R_line, the X-ray production cross section of a line
//    (Å²): ν the vacancies per atom (Bote–Salvat ionisation cross sections of the shell,
//    plus Coster–Kronig transfers within the L and M groups: ν_i = σ_i + Σ_{j<i} f_ji ν_j),
//    ω the fluorescence yield, R the line's radiative rate (all from xraylib). Vacancies
//    cascading from a deeper shell's radiative/Auger decay (e.g. K → L) are neglected.
//  - D(E) = Ω/(4π) · ε(E) · A(E): isotropic emission into the detector's solid angle Ω,
//    detector efficiency ε(E) = window transmission × (1 − exp(−μ_Si(E) ρ_Si t_sensor)) (a Si
//    sensor of thickness t; photons below the noise threshold are lost), and optional
//    self-absorption A(E) = (1 − e^{−χ})/χ, χ = (μ/ρ)_specimen(E) · ρ · t / sin(take-off),
//    for X-rays generated uniformly through a film of thickness t (the cell's z) leaving
//    towards a detector at the take-off angle (the thin-film correction of Cliff & Lorimer;
//    the depth profile from channelling is not combined with it).
//  - G_c: the Gaussian detector response integrated over channel c, with
//    FWHM(E)² = FWHM_noise² + (2√(2 ln 2))² F ε_pair E (Fano), FWHM_noise fixed by the given
//    FWHM at Mn Kα (E from xraylib).
//  - dσ_B/dE: Kramers' thin-target bremsstrahlung cross section per atom,
//    dσ_B/dE = (16π / (3√3)) α r_e² Z² / (β² E) for photon energies E below the beam energy
//    (H. A. Kramers, Phil. Mag. 46 (1923) 836; isotropic here, which the real, forward-peaked
//    emission is not), taken at the atom like the ionisation (same I_Z).
// Counts are expected values (double); poisson_spectra() draws the noisy spectrum image
// from a counter-based stream keyed by (seed, sample, position), so the same seed gives the
// same counts on any thread count.
//
// Units: energies eV, lengths Å (sensor thickness µm), solid angle sr, angles degrees,
// counts per position.
#include <cstddef>
#include <cstdint>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/physics/xray_data.hpp"

namespace stemtwin {

struct EdsDetector {
  double energy_start_eV = 0.0;    ///< centre of channel 0 minus half a channel (left edge of the axis)
  double channel_width_eV = 10.0;
  std::size_t channels = 2048;
  double fwhm_mn_ka_eV = 130.0;    ///< energy resolution at Mn Kα (must be above the Fano limit, ≈118 eV)
  double fano_factor = 0.115;      ///< Si (Knoll, Radiation Detection and Measurement, 4th ed., ch. 11)
  double pair_energy_eV = 3.64;    ///< Si electron–hole pair energy at room temperature (Knoll, ch. 11)
  double solid_angle_sr = 0.7;     ///< collection solid angle (e.g. a four-quadrant Super-X ≈ 0.7 sr)
  double takeoff_deg = 18.0;       ///< elevation of the detector above the specimen plane
  double window_transmission = 1.0;  ///< energy-independent factor (windowless = 1)
  double sensor_thickness_um = 450.0;  ///< Si sensor depth; 0 = every photon is absorbed
  double threshold_eV = 100.0;     ///< photons below this energy are not counted (noise threshold)
  bool self_absorption = false;    ///< apply A(E) along the take-off direction
  bool bremsstrahlung = true;
};

/// One characteristic line as the model uses it.
struct EdsLine {
  XrayLine line;
  double production_A2 = 0;  ///< σ_x = ν ω R, Å² per atom
  double detected = 0;       ///< D(E_line): fraction of emitted photons counted
  double fwhm_eV = 0;
};

/// Everything that does not depend on the probe position: the spectrum of one unit of I_Z
/// per element, precomputed on the detector's energy axis.
struct EdsModel {
  double beam_energy_eV = 0;
  EdsDetector detector;
  std::vector<int> elements;                   ///< ascending, as ElementIntensity::elements
  std::vector<std::vector<EdsLine>> lines;     ///< per element
  std::vector<std::vector<double>> unit;       ///< per element: counts per channel per electron per unit I_Z (Å²)
  /// Channel centre energy (eV).
  double channel_energy_eV(std::size_t c) const { return detector.energy_start_eV + (double(c) + 0.5) * detector.channel_width_eV; }
  /// Detector FWHM at energy E (eV).
  double fwhm_eV(double energy_eV) const;
};

/// Builds the model for a specimen (for composition, density and thickness in the
/// self-absorption), a beam energy (eV) and a detector. `elements` empty = every element in
/// the structure. Throws std::invalid_argument for an impossible detector (e.g. FWHM below
/// the Fano limit, no channels) or a beam energy ≤ 0.
EdsModel eds_model(const Structure& specimen, double beam_energy_eV, const EdsDetector& detector,
                   const std::vector<int>& elements = {});

/// A spectrum per probe position: values[position · channels + channel] (counts).
struct SpectrumImage {
  double energy_start_eV = 0, channel_width_eV = 0;
  std::size_t channels = 0, positions = 0;
  std::vector<double> values;
};

/// Expected counts at `electrons_per_position` (e.g. I·t_dwell/e), from the intensity at
/// recording depth `depth_index` (default: the deepest). The recorder's elements must
/// include the model's.
SpectrumImage eds_expected(const ElementIntensity& intensity, const EdsModel& model, double electrons_per_position,
                           std::size_t depth_index = SIZE_MAX);

/// Poisson counts with the expected values as means, from Rng(seed, RngPurpose::Spectra,
/// sample, stream·2^40 + position), channels in order. Deterministic for any thread count.
/// `stream` (< 2^24) separates several spectrum images of one sample (e.g. an EDS and an
/// EELS spectrometer on one scan); stream 0 is the stream keyed by the position alone.
SpectrumImage poisson_spectra(const SpectrumImage& expected, std::uint64_t seed, std::uint64_t sample,
                              std::uint64_t stream = 0);

/// Counts of one element's line family per position, after background subtraction.
struct ElementMap {
  int Z = 0;
  std::string family;      ///< "Ka", "La", …
  double energy_eV = 0;    ///< intensity-weighted mean energy of the family's lines
  std::size_t window_first = 0, window_last = 0;  ///< channels summed (inclusive)
  std::vector<double> counts;  ///< per position
};

/// Maps requested as (Z, family) — e.g. {38, "Ka"}. The window is the channels whose centres
/// lie within ±FWHM of the family's mean energy (98 % of a Gaussian line); the background
/// under it is the straight line through the mean counts per channel of two side windows,
/// each one FWHM wide and centred 2 FWHM either side (one side only when the other leaves
/// the axis or falls below the threshold). Throws std::invalid_argument naming the element
/// and family when the model has no such line or the window leaves the energy axis.
std::vector<ElementMap> element_maps(const SpectrumImage& spectra, const EdsModel& model,
                                     const std::vector<std::pair<int, std::string>>& requests);
/// The requests for every element's strongest family of each of K, L and M (Ka, La, Ma)
/// that lies on the energy axis above the threshold.
std::vector<std::pair<int, std::string>> default_map_requests(const EdsModel& model);

}  // namespace stemtwin
