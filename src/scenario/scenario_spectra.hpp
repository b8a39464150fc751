#pragma once
// Internal: spectrometers in a scenario run (docs/scenario.md "Spectrometers", docs/dataset.md):
// the recorders attached to the multislice scan, the read-out into a SampleRecord, and the
// layout entries. Called from simulate_sample.cpp and sample_layout.cpp with one line each.
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin::detail {

/// The spectrometers' recorders of one sample, as one SliceObserver for the engine (one
/// InelasticRecorder per spectrometer: each has its own elements and footprint width).
class SpectraRecorders : public SliceObserver {
 public:
  /// `layout`: completed (complete_spectra_layout); `phonon_seed`: StemSettings::seed.
  SpectraRecorders(const ScenarioSpec& spec, const DatasetLayout& layout, const Specimen& specimen,
                   std::uint64_t phonon_seed);
  bool empty() const { return recorders_.empty(); }
  void begin(const Grid& grid, const std::vector<double>& slice_thickness_A, std::size_t configurations,
             std::size_t positions) override;
  void observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
               const cfloat* psi) override;
  /// Windowed multislice and auto's calibration (slice_observer.hpp): forwarded to each
  /// recorder; recorded_signals() concatenates theirs.
  void set_window(std::size_t x0, std::size_t y0, std::size_t nx, std::size_t ny) override;
  /// PRISM (slice_observer.hpp): the union of the recorders' pixels; each reads its own in it.
  bool reads_intensities() const override { return true; }
  std::vector<std::vector<std::vector<std::uint32_t>>> read_pixels() override;
  void observe_intensities(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                           const float* intensity) override;
  std::unique_ptr<SliceObserver> fresh_copy() const override;
  std::vector<std::vector<double>> recorded_signals() const override;
  const ElementIntensity& result(std::size_t i) const { return recorders_[i]->result(); }

 private:
  SpectraRecorders() = default;
  std::vector<std::unique_ptr<InelasticRecorder>> recorders_;
};

/// Spectra, maps and composition labels of one sample into `rec` (electrons per probe
/// position from the acquisition; Poisson counts when the acquisition is noisy, else the
/// expected counts, as the images).
void read_spectra(SampleRecord& rec, const ScenarioSpec& spec, const SampledScenario& s, const Specimen& specimen,
                  const SpectraRecorders& recorders, const DatasetLayout& layout, double electrons_per_position,
                  bool noisy);

/// The composition of a column over the layout's composition elements.
std::vector<float> column_composition(const std::map<int, double>& composition, const DatasetLayout& layout);

/// Layout entries of the spectrometers (energy axes, map names from sample 0's specimen) and
/// the composition labels' elements and classes. Nothing without spectrometers.
void complete_spectra_layout(DatasetLayout& layout, const ScenarioSpec& spec, const SampledScenario& s0,
                             const Specimen& specimen0);

}  // namespace stemtwin::detail
