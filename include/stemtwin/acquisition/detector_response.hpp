#pragma once
// Single-channel detector response for annular (and segmented) detectors: what the ADC of
// a scintillator/photomultiplier detector reads, given the clean signal (fraction of the
// incident probe) per scan pixel.
//
// Chain (each stage usable alone):
//   clean fraction s_i ─► count_electrons: n_i ~ Poisson(η·N·m_i·s_i)       [detected e⁻]
//                       ─► apply_gain: S_i | n_i ~ Gamma(n_i·k, g/k)         [ADU, no offset]
//                       ─► apply_afterglow (scintillator decay, acquisition order)
//                       ─► apply_readout: + dark offset + N(0, σ_read²), ADC round/clip  [ADU]
// with N = I·t/e electrons per position (dose.hpp), m_i the per-pixel dose multiplier
// (probe-current fluctuation, scan_distortion.hpp), η the detection efficiency, g the mean
// pulse height (ADU per detected electron) and k the shape of the pulse-height distribution.
// Output units: ADU; with the defaults (g = 1, no spread, no offset, no read noise, no ADC)
// the output is the number of detected electrons.
//
// Moments (compound Poisson; derived in docs/acquisition.md):
//   E[S] = λg,  Var[S] = Var[n]·g² + E[n]·Var[pulse] = λg² + λg²/k = λg²(1 + 1/k),  λ = η·N·m·s;
//   after readout Var adds σ_read² (+ 1/12 ADU² from rounding when σ_read ≳ 1 ADU).
//
// Random numbers: Rng(seed, RngPurpose::Noise, sample, key) with one stream per (channel,
// stage, row); rows run in parallel (OpenMP) and give the same bytes on any thread count.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stemtwin/core/image.hpp"
#include "stemtwin/acquisition/scan_distortion.hpp"

namespace stemtwin {

/// Identifies a noise stream: the run's seed, the sample (frame) index and the detector
/// channel (one per detector; channel < 4096 so sub-channels of segmented detectors fit).
struct NoiseStream {
  std::uint64_t seed = 0;
  std::uint64_t sample = 0;
  std::uint64_t channel = 0;
};

/// Scintillator afterglow: a fraction of each pixel's signal is emitted with an exponential
/// decay of time constant τ; light emitted during flyback is not recorded.
struct AfterglowParams {
  double time_constant_us = 0;   ///< τ, µs; ≤ 0: off
  double delayed_fraction = 1;   ///< share of the signal that decays with τ (the rest is prompt)
};

/// Where the signal went (sums over the frame, same units as the image).
struct AfterglowBudget {
  double input = 0;                 ///< Σ signal before afterglow
  double recorded = 0;              ///< Σ signal after afterglow (in the frame's pixels)
  double lost_in_flyback = 0;       ///< emitted while the beam flew back
  double remaining_after_frame = 0; ///< still to be emitted when the frame ended (the tail)
};

/// Annular detector response parameters (one channel).
struct AnnularResponse {
  double detection_efficiency = 1;  ///< η: fraction of electrons hitting the detector that are counted
  bool shot_noise = true;           ///< Poisson counting; false: the mean count (no shot noise)
  double gain_ADU_per_electron = 1; ///< g: mean pulse height; 1/g is electrons per ADU
  double gain_shape = 0;            ///< k: gamma shape of pulse heights (relative spread 1/√k); ≤ 0: no spread
  double dark_offset_ADU = 0;       ///< constant added before the ADC
  double read_noise_ADU = 0;        ///< rms of the Gaussian read noise
  int adc_bits = 0;                 ///< > 0: round to integer ADU and clip to [0, 2^bits − 1]; 0: no ADC
  AfterglowParams afterglow;        ///< applied between gain and readout
};

/// Stage 1: detected electrons n_i ~ Poisson(η·N·m_i·s_i). clean_fraction is the signal as a
/// fraction of the incident probe; dose_multiplier (size nx·ny, or empty for all 1).
Image count_electrons(const Image& clean_fraction, double electrons_per_position,
                      std::span<const double> dose_multiplier, double detection_efficiency, bool shot_noise,
                      const NoiseStream& stream);

/// Stage 2: pulse heights: S | n ~ Gamma(n·k, g/k) (sum of n independent Gamma(k, g/k)),
/// or g·n when k ≤ 0. Counts must be whole numbers ≥ 0 (non-integers are rounded).
Image apply_gain(const Image& electrons, double gain_ADU_per_electron, double gain_shape, const NoiseStream& stream);

/// Stage 3: afterglow on the signal stream in acquisition order (timing from geometry;
/// pixel times as in ScanGeometry). In place; returns the budget so conservation can be
/// checked: input = recorded + lost_in_flyback + remaining_after_frame.
AfterglowBudget apply_afterglow(Image& signal, const ScanGeometry& geometry, const AfterglowParams& params);

/// Stage 4: dark offset, read noise and ADC, in place.
void apply_readout(Image& signal, double dark_offset_ADU, double read_noise_ADU, int adc_bits, const NoiseStream& stream);

/// The whole chain. geometry gives the timing for afterglow (and the size check).
Image acquire_annular(const Image& clean_fraction, double electrons_per_position,
                      std::span<const double> dose_multiplier, const AnnularResponse& response,
                      const ScanGeometry& geometry, const NoiseStream& stream);

/// Expected output and its variance for a pixel of mean detected electrons λ (before ADC,
/// without afterglow): the compound-Poisson moments above.
double annular_expected_mean(double lambda, const AnnularResponse& response);
double annular_expected_variance(double lambda, const AnnularResponse& response);

/// Converts a read-out value back to detected-electron units: (v − dark)/g.
double to_electrons(double value_ADU, const AnnularResponse& response);

// ------------------------------------------------------------ angle-dependent sensitivity --

/// Detector sensitivity vs scattering angle (e.g. a scintillator's radial response):
/// piecewise-linear in angle, constant beyond the ends; empty means 1 everywhere.
struct RadialSensitivity {
  std::vector<double> angle_mrad;
  std::vector<double> sensitivity;
  double at(double angle_mrad) const;
};

/// Annular signal from radial-bin signals: Σ_j w_j·b_j with w_j = (overlap of bin j with
/// [inner, outer]) / (bin width) × sensitivity at the centre of the overlap (the signal is
/// taken as uniform in angle within a bin). bins: nx·ny positions × n_bins, row-major
/// [position][bin]; bin_edges_mrad: n_bins + 1 increasing edges.
Image annular_from_radial_bins(std::span<const double> bins, std::span<const double> bin_edges_mrad,
                               std::size_t nx, std::size_t ny, double inner_mrad, double outer_mrad,
                               const RadialSensitivity& sensitivity = {});

// ------------------------------------------------------------ segmented detectors / COM ----

/// Rings × segments of a segmented detector; segment s of each ring spans azimuth
/// [φ0 + s·2π/S, φ0 + (s+1)·2π/S], φ0 = rotation_deg. Must match the physics detector.
struct SegmentLayout {
  std::vector<double> ring_edges_mrad;  ///< rings + 1 increasing radii
  std::size_t segments = 4;
  double rotation_deg = 0;
  std::size_t rings() const { return ring_edges_mrad.size() < 2 ? 0 : ring_edges_mrad.size() - 1; }
  std::size_t channels() const { return rings() * segments; }
  /// Centroid (mrad) of segment s of ring r: radius (2/3)(r₂³ − r₁³)/(r₂² − r₁²)·sinc(Δφ/2).
  Point2 centroid_mrad(std::size_t ring, std::size_t segment) const;
};

/// Per-position x/y images, e.g. centre of mass in mrad.
struct ComImages {
  Image x_mrad, y_mrad;
};

/// Noisy segmented read-out: each segment is an annular channel (sub-channel of the stream)
/// through the full chain; clean and result are [position][ring][segment] (ADU).
std::vector<double> acquire_segmented(std::span<const double> clean_fraction, const SegmentLayout& layout,
                                      double electrons_per_position, std::span<const double> dose_multiplier,
                                      const AnnularResponse& response, const ScanGeometry& geometry,
                                      const NoiseStream& stream);

/// Centre of mass from segment signals (converted to electrons with to_electrons, negative
/// values kept so that read noise stays unbiased): Σ c_e·n_e / Σ n_e, 0 where Σ n_e ≤ 0.
ComImages com_from_segments(std::span<const double> signals_ADU, const SegmentLayout& layout, std::size_t nx,
                            std::size_t ny, const AnnularResponse& response);

}  // namespace stemtwin
