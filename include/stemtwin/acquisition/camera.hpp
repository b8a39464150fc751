#pragma once
// Pixelated cameras for 4D-STEM: turn clean diffraction patterns (fractions of the incident
// probe per camera pixel) into what a counting or an integrating camera reads out.
//
// A stack is row-major [position][ky][kx] floats, positions in scan order, each pattern
// pattern_nx × pattern_ny. Pixel j of the pattern at position p receives on average
// λ = η·N·m_p·f_j electrons during the dwell T, with N = I·t/e (dose.hpp) and m_p the
// per-position dose multiplier (probe-current fluctuation from distort_scan).
//
// Counting mode (output: counts):
//   dead time 0: n ~ Poisson(λ);
//   non-paralyzable: after each recorded electron the pixel is dead for τ_d (arrivals are
//     lost, not extending it); paralyzable: every arrival, recorded or not, restarts τ_d.
//   Both simulated exactly from the arrival process (rate r = λ/T), the pixel live at the
//   start of each dwell (the frame readout resets it). Stationary means, which the
//   simulation approaches when T ≫ τ_d: non-paralyzable rT/(1 + rτ_d), paralyzable
//   rT·e^{−rτ_d}; counting_mean_counts gives the exact mean of the live-start model.
//   Cost ∝ recorded counts (non-paralyzable) or arrivals λ (paralyzable).
//   A counter of finite depth clips at counter_max.
// Integrating mode (output: ADU):
//   n ~ Poisson(λ) → pulse heights Gamma(n·k, g/k) (or g·n) → Gaussian PSF of σ pixels
//   (charge spreading: applied to the noisy signal, so the shot noise is blurred too;
//   charge leaving the sensor is folded back at its edges, so the total is conserved)
//   → + dark offset + N(0, σ_read²) → ADC round/clip.
//
// Random numbers: one stream per probe position, Rng(seed, RngPurpose::Noise, sample,
// key(channel, camera stage, position)); positions run in parallel (OpenMP) with the same
// result on any thread count.
#include <cstddef>
#include <cstdint>
#include <span>

#include "stemtwin/core/names.hpp"
#include "stemtwin/acquisition/detector_response.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin {

enum class CameraMode { Counting, Integrating };
/// The words of CameraMode (core/names.hpp), for the scenario's `mode` and Python.
inline constexpr NamedValue<CameraMode> kCameraModeNames[] = {{"counting", CameraMode::Counting},
                                                              {"integrating", CameraMode::Integrating}};
enum class DeadTimeModel { NonParalyzable, Paralyzable };

struct CountingParams {
  double dead_time_s = 0;                          ///< τ_d per pixel, s; 0: no dead time
  DeadTimeModel model = DeadTimeModel::NonParalyzable;
  std::uint64_t counter_max = 0;                   ///< counter saturation (e.g. 4095 for 12 bit); 0: none
};

struct IntegratingParams {
  double gain_ADU_per_electron = 1;  ///< g: mean signal per detected electron
  double gain_shape = 0;             ///< k: gamma shape of the per-electron signal; ≤ 0: no spread
  double psf_sigma_px = 0;           ///< Gaussian PSF standard deviation, camera pixels; 0: none
  double dark_offset_ADU = 0;
  double read_noise_ADU = 0;         ///< rms per pixel per frame
  int adc_bits = 0;                  ///< > 0: round and clip to [0, 2^bits − 1]
};

struct CameraResponse {
  CameraMode mode = CameraMode::Counting;
  double detection_efficiency = 1;   ///< η: fraction of incident electrons detected
  bool shot_noise = true;            ///< false: mean values, no noise at all (clean references; counting
                                     ///< mode then uses the stationary dead-time curve)
  CountingParams counting;
  IntegratingParams integrating;
};

/// Applies the camera to a whole stack in place (clean fractions in, counts/ADU out).
/// dose_multiplier: one per position (or empty for all 1); dwell_us: the per-position
/// exposure, used for dead time.
void apply_camera(std::span<float> stack, std::size_t pattern_nx, std::size_t pattern_ny,
                  double electrons_per_position, std::span<const double> dose_multiplier, double dwell_us,
                  const CameraResponse& camera, const NoiseStream& stream);

/// One counting pixel: recorded counts for mean incident electrons λ in dwell T (exact
/// simulation of the arrival process, see above).
std::uint64_t count_with_dead_time(double lambda, double dwell_s, const CountingParams& params, Rng& rng);

/// Stationary expected counts for mean incident λ in dwell T (the classical formulas above).
double counting_expected_counts(double lambda, double dwell_s, double dead_time_s, DeadTimeModel model);

/// Exact mean of the simulated (live at the start of the dwell) counter, before counter_max:
///   paralyzable: an arrival at t counts iff no arrival in [max(0, t − τ), t), so
///     E = (1 − e^{−rτ}) + r(T − τ)e^{−rτ} for T ≥ τ, else 1 − e^{−rT};
///   non-paralyzable: the k-th record happens at (k−1)τ + Gamma(k, 1/r), so
///     E = Σ_k P(Gamma(k, 1) < r(T − (k−1)τ)).
double counting_mean_counts(double lambda, double dwell_s, double dead_time_s, DeadTimeModel model);

/// Gaussian PSF blur of one pattern in place (charge-conserving, edges folded back).
void blur_gaussian(std::span<float> pattern, std::size_t nx, std::size_t ny, double sigma_px);

/// How the pattern's pixels map to scattering angles: angle = (pixel − centre)·mrad_per_px.
struct PatternSampling {
  double mrad_per_px_x = 1;
  double mrad_per_px_y = 1;
  double center_x_px = 0;
  double center_y_px = 0;
};

/// Centre of mass (mrad) of each pattern of a stack of scan size nx × ny, after subtracting
/// offset (e.g. the dark offset); 0 where a pattern's total is ≤ 0. From noisy patterns this
/// gives COM noise consistent with the counts.
ComImages com_from_patterns(std::span<const float> stack, std::size_t nx, std::size_t ny, std::size_t pattern_nx,
                            std::size_t pattern_ny, const PatternSampling& sampling, double offset = 0);

}  // namespace stemtwin
