#pragma once
// Internal to src/session: what the Microscope's spectra (EDS, EELS) need besides the
// acquisition machinery of microscope_impl.hpp — recording the probe intensity at the
// window's atoms block by block, and turning it into spectra at a dose.
#include <cstdint>
#include <vector>

#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/session/microscope.hpp"

namespace stemtwin::microscope_detail {

/// The elements of a structure (Z), ascending, each once.
std::vector<int> elements_of(const Structure& s);
/// The structure with every atom at its mean position (rms 0): the recorder reads the probe
/// at the atoms' mean positions, since the window's own thermal configurations displace the
/// whole specimen with keys the recorder cannot reproduce (docs/server.md, "Spectra").
Structure static_atoms(Structure s);
/// The recorder's settings for the session's spectrometers and the given elements.
InelasticSettings inelastic_settings(const Spectrometers& sp, std::vector<int> elements);
/// Refuses spectrometers the models refuse (invalid_argument naming why).
void check_spectrometers(const Structure& specimen, double beam_energy_eV, const Spectrometers& sp);

/// The probe intensity at the window's atoms, recorded block after block (a recorder per
/// block; positions appended in the order simulated) into `out`, by multislice over the
/// session window or by windowed multislice (windowed.hpp; the recorder reads each tile's
/// window, SliceObserver::set_window). One recording depth (the whole specimen): values are
/// [position][element].
struct SpectraRecording {
  SpectraRecording(Structure window_atoms, std::uint64_t seed, InelasticSettings settings, ElementIntensity& out);
  StemResult scan(const std::vector<Transmission>& configs, const ProbeOptics& probe, const std::vector<Point2>& part,
                  const std::vector<Detector>& dets, const StemSettings& st, const Fft2& fft, PatternSink* sink);
  /// Windowed multislice of `structure` (the window's atoms, static) on the session window's grid.
  StemResult scan_windowed(const Structure& structure, const Grid& grid, const ProbeOptics& probe, const std::vector<Point2>& part,
                           const std::vector<Detector>& dets, const StemSettings& st);
  /// Puts the positions recorded in simulation order back in the acquisition's order:
  /// `slot[j]` is the place in simulation order of the acquisition's position j.
  void reorder(const std::vector<std::size_t>& slot);
  Structure atoms;
  std::uint64_t seed;
  InelasticSettings settings;
  ElementIntensity& out;

 private:
  void append(const ElementIntensity& block);
};

/// Spectra of `kind` from the recorded intensity at `electrons[i]` per position: the ideal
/// spectrum and Poisson counts from stream (seed, Spectra, 2·call + kind, position).
SpectrumResult make_spectra(const Structure& specimen, double beam_energy_eV, const Spectrometers& sp, SpectrumKind kind,
                            const ElementIntensity& intensity, const std::vector<double>& electrons, std::uint64_t seed,
                            std::uint64_t call, const std::vector<Point2>& positions);

}  // namespace stemtwin::microscope_detail
