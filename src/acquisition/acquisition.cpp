#include "stemtwin/acquisition/acquisition.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace stemtwin {
namespace {

void require(bool ok, const char* key, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string("acquisition.") + key + ": " + what);
}

void check_scan_size(const AcquisitionSettings& s, const DistortedScan& scan) {
  if (scan.nx != s.scan.nx() || scan.ny != s.scan.ny() || scan.dose_multiplier.size() != scan.nx * scan.ny)
    throw std::invalid_argument("acquisition: distorted scan does not belong to these settings (size differs)");
}

}  // namespace

void AcquisitionSettings::validate() const {
  require(scan.grid.nx >= 1 && scan.grid.ny >= 1, "scan.pixels", "must be ≥ 1");
  require(scan.grid.step_x > 0 && scan.grid.step_y > 0, "scan.fov_A", "must be > 0 Å");
  require(std::isfinite(scan.rotation_deg), "scan.rotation_deg", "must be finite");
  require(scan.dwell_us > 0, "scan.dwell_us", "must be > 0 µs");
  require(scan.flyback_us >= 0, "scan.flyback_us", "must be ≥ 0 µs");
  require(beam_current_pA >= 0, "beam_current_pA", "must be ≥ 0 pA");
  require(distortion.drift.diffusion_A_per_sqrt_s >= 0, "drift.diffusion_A_per_sqrt_s", "must be ≥ 0");
  require(distortion.jitter.rms_A >= 0, "jitter.rms_A", "must be ≥ 0 Å");
  require(distortion.flyback.decay_us >= 0, "flyback.decay_us", "must be ≥ 0 µs");
  require(distortion.scan_noise.rms_A >= 0, "scan_noise.rms_A", "must be ≥ 0 Å");
  for (double f : distortion.scan_noise.frequencies_Hz)
    require(f >= 0 && std::isfinite(f), "scan_noise.frequencies_Hz", "must be ≥ 0 Hz");
  require(distortion.mains.frequency_Hz >= 0, "mains.frequency_Hz", "must be ≥ 0 Hz");
  require(distortion.current.relative_rms >= 0, "current.relative_rms", "must be ≥ 0");
  require(distortion.current.correlation_time_us >= 0, "current.correlation_time_us", "must be ≥ 0 µs");
  require(annular.detection_efficiency >= 0 && annular.detection_efficiency <= 1, "annular.detection_efficiency",
          "must be in [0, 1]");
  require(annular.gain_ADU_per_electron > 0, "annular.gain_ADU_per_electron", "must be > 0");
  require(annular.read_noise_ADU >= 0, "annular.read_noise_ADU", "must be ≥ 0");
  require(annular.adc_bits >= 0 && annular.adc_bits <= 52, "annular.adc_bits", "must be in [0, 52]");
  require(annular.afterglow.time_constant_us >= 0, "annular.afterglow.time_constant_us", "must be ≥ 0 µs");
  require(annular.afterglow.delayed_fraction >= 0 && annular.afterglow.delayed_fraction <= 1,
          "annular.afterglow.delayed_fraction", "must be in [0, 1]");
  require(sensitivity.angle_mrad.size() == sensitivity.sensitivity.size(), "annular.sensitivity",
          "angle_mrad and value lists must have the same length");
  for (std::size_t i = 1; i < sensitivity.angle_mrad.size(); ++i)
    require(sensitivity.angle_mrad[i] > sensitivity.angle_mrad[i - 1], "annular.sensitivity.angle_mrad",
            "must increase");
  require(camera.detection_efficiency >= 0 && camera.detection_efficiency <= 1, "camera.detection_efficiency",
          "must be in [0, 1]");
  require(camera.counting.dead_time_s >= 0, "camera.dead_time_s", "must be ≥ 0 s");
  require(camera.integrating.gain_ADU_per_electron > 0, "camera.gain_ADU_per_electron", "must be > 0");
  require(camera.integrating.psf_sigma_px >= 0, "camera.psf_sigma_px", "must be ≥ 0 px");
  require(camera.integrating.read_noise_ADU >= 0, "camera.read_noise_ADU", "must be ≥ 0");
  require(camera.integrating.adc_bits >= 0 && camera.integrating.adc_bits <= 52, "camera.adc_bits",
          "must be in [0, 52]");
}

DistortedScan plan_scan(const AcquisitionSettings& s, std::uint64_t seed, std::uint64_t sample) {
  s.validate();
  return distort_scan(s.scan, s.distortion, seed, sample);
}

DoseReport dose_report(const AcquisitionSettings& s, const DistortedScan& scan) {
  check_scan_size(s, scan);
  return dose_report(s.beam_current_pA, s.scan.dwell_us, s.scan.grid.step_x, s.scan.grid.step_y, scan.nx * scan.ny,
                     scan.dose_multiplier);
}

Image acquire_annular(const Image& clean, const AcquisitionSettings& s, const DistortedScan& scan,
                      const NoiseStream& stream) {
  check_scan_size(s, scan);
  return acquire_annular(clean, s.electrons_per_position(), scan.dose_multiplier, s.annular, s.scan, stream);
}

Image acquire_annular_from_bins(std::span<const double> bins, std::span<const double> edges, double inner,
                                double outer, const AcquisitionSettings& s, const DistortedScan& scan,
                                const NoiseStream& stream) {
  check_scan_size(s, scan);
  const Image clean = annular_from_radial_bins(bins, edges, scan.nx, scan.ny, inner, outer, s.sensitivity);
  return acquire_annular(clean, s, scan, stream);
}

std::vector<double> acquire_segmented(std::span<const double> clean, const SegmentLayout& layout,
                                      const AcquisitionSettings& s, const DistortedScan& scan,
                                      const NoiseStream& stream) {
  check_scan_size(s, scan);
  return acquire_segmented(clean, layout, s.electrons_per_position(), scan.dose_multiplier, s.annular, s.scan, stream);
}

void acquire_4d(std::span<float> stack, std::size_t pnx, std::size_t pny, const AcquisitionSettings& s,
                const DistortedScan& scan, const NoiseStream& stream) {
  check_scan_size(s, scan);
  if (stack.size() != scan.nx * scan.ny * pnx * pny)
    throw std::invalid_argument("acquire_4d: stack size does not match scan × pattern size");
  apply_camera(stack, pnx, pny, s.electrons_per_position(), scan.dose_multiplier, s.scan.dwell_us, s.camera, stream);
}

}  // namespace stemtwin
