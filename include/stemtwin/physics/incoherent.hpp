#pragma once
// The incoherent imaging model: what the session uses for overviews (scan pixels coarser
// than ~0.3 Å, where atomic columns are not resolved and a full multislice would cost hours).
//
// An annular detector's signal at probe position r is modelled as
//     I(r) = D · (1 − Σ_a σ_tot,a · P(r − r_a)) + Σ_a σ_a · P(r − r_a)
// where P is the probe intensity per Å² (∫P = 1; aberrations, focal spread and source size
// included), the sums run over the atoms of the (periodic) specimen weighted by occupancy,
//   σ_a     = γ² λ² ∫_{θ1/λ}^{θ2/λ} |f_e(k)|² 2πk dk   the atom's kinematic (first Born)
//             cross-section for scattering into the detector's annulus θ1…θ2 (Å²),
//   σ_tot,a = the same over all angles (0–1 rad): every scattered electron leaves the direct
//             beam, and those scattered into the annulus come back through σ_a,
//   D       = the fraction of the (uniformly filled) bright-field disc inside the annulus
//             (0 for a dark-field detector, 1 for a BF detector covering the whole disc).
// For HAADF this is the classic incoherent Z-contrast image (Kirkland 2010, §5.4 and §7.2;
// σ grows as ~Z^1.7 through the screened scattering factor, tested). Limits, stated: atoms
// add linearly along a column (no channelling, no saturation with thickness), and bright-
// field detectors see mass-thickness contrast only (no phase contrast). Measured against
// frozen-phonon multislice HAADF of SrTiO3 [001] at 0.35 Å/pixel (tests/test_incoherent.cpp,
// docs/physics.md): correlation 0.98; mean 13 % low at 7.8 Å thickness and 45 % low at 23 Å
// (channelling concentrates the probe on the columns, which the model lacks), so the scale is
// calibrated per material and thickness: calibrate_incoherent() gives the factor that makes a
// model's mean match a multislice reference, and transfers to other fields of the same
// specimen within 5 %. The session calibrates itself from its own full-physics frames.
//
// The map is computed once per specimen cell on a fine periodic grid by FFT convolution
// (atoms deposited by cloud-in-cell weights, a 0.1 Å smoothing far below the ~1 Å probe),
// then sampled at any probe positions (bilinear, periodic): milliseconds for any frame.
// Pixels wider than `box_above_A` average the signal over their footprint (a sinc filter),
// so an overview shows the mean over each pixel rather than a moiré of the lattice.
#include <cstddef>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/scattering.hpp"

namespace stemtwin {

/// Kinematic cross-section (Å²) of a neutral atom Z for scattering into polar angles
/// [inner_mrad, outer_mrad] at beam energy energy_eV: γ²λ²∫|f_e(k)|² 2πk dk (Simpson rule,
/// relative error < 1e-6).
double annular_cross_section_A2(int Z, double energy_eV, double inner_mrad, double outer_mrad,
                                Parametrization p = Parametrization::Lobato);

/// D: the share of the (uniformly filled) bright-field disc inside the detector's annulus
/// (0 for a dark-field detector).
double bright_field_share(const ProbeOptics& optics, const AnnularDetector& detector);
/// One atom's weight in the model: σ_annulus − D·σ_total (Å², σ_total over 0–1 rad), so a
/// signal is D + Σ weight·P(r − r_a); averaged over a pixel much wider than the probe, D +
/// Σ_Z weight_Z·(atoms of Z per Å²). The one place of this rule (incoherent_map and the
/// session's world overview use it).
double incoherent_weight_A2(int Z, const ProbeOptics& optics, const AnnularDetector& detector,
                            Parametrization p = Parametrization::Lobato);

struct IncoherentSettings {
  double sampling_A = 0.1;         ///< the map's grid (the probe and the atoms are sampled on it)
  double min_probe_field_A = 40;   ///< the probe intensity is computed over at least this field
  double box_above_A = 1.0;        ///< pixels wider than this average over their footprint
  Parametrization parametrization = Parametrization::Lobato;
};

/// One detector's clean signal (fractions of the beam) over one periodic specimen cell.
struct IncoherentMap {
  Grid grid;                   ///< the specimen cell (lx, ly) and the map's points
  std::vector<double> values;  ///< [y][x], signal with the probe at each grid point
  /// Bilinear, periodic interpolation at a specimen position (Å).
  double at(double x_A, double y_A) const;
  /// The image at `positions` (row-major nx × ny).
  Image sample(const std::vector<Point2>& positions, std::size_t nx, std::size_t ny) const;
};

/// The incoherent map of `detector` (annular) over the cell of `structure` (periodic in x, y),
/// for the probe `optics` and scan pixels of pixel_x_A × pixel_y_A (for the footprint average).
/// Throws std::invalid_argument for an empty cell or a detector with inner ≥ outer.
IncoherentMap incoherent_map(const Structure& structure, const ProbeOptics& optics, const AnnularDetector& detector,
                             double pixel_x_A, double pixel_y_A, const IncoherentSettings& settings = {});

/// How a model image compares with a reference (e.g. multislice HAADF at the same positions).
struct IncoherentCalibration {
  double scale = 1;            ///< reference mean / model mean: multiply the model by it
  double correlation = 0;      ///< Pearson correlation of the two images (scale-free)
  double relative_rms = 0;     ///< rms(scale·model − reference) / mean(reference)
};
/// Compares `model` with `reference` (same shape); throws std::invalid_argument otherwise or
/// when the model's mean is not positive.
IncoherentCalibration calibrate_incoherent(const Image& model, const Image& reference);

}  // namespace stemtwin
