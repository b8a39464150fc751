#pragma once
// Scanning multislice: probe → slices → detectors, for every probe position.
//
// The engine is split in two so that callers can cache the expensive half:
//   frozen_phonon_transmissions(): structure → N seeded thermal configurations →
//       potentials → band-limited transmission functions (depends on the specimen, the grid,
//       the energy and the slicing only);
//   scan_multislice(): transmission functions × probe optics × positions → detector signals
//       (a defocus or aberration change re-uses the transmission functions).
// simulate_stem() does both.
//
// Threads (OpenMP) run over probe positions; each has its own wave buffer and detector
// accumulators, allocated once; the FFT plans are shared (new-array execute). Intensities are
// averaged over phonon configurations (Einstein model; Loane, Xu & Silcox, Acta Cryst. A47
// (1991) 267) and over focal-spread quadrature nodes in a fixed order, so results are
// bit-identical for any thread count.
// The shared types live in their own headers, re-exported here: stem_settings.hpp (Method,
// StemSettings, ErrorBudget, AutoChoice, …) and stem_result.hpp (StemResult, PatternSink); the
// methods the dispatch reaches (prism.hpp, windowed.hpp, auto_method.hpp) include those, not
// this header, and this header includes them.
#include <cstddef>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/potential.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/translational_symmetry.hpp"
#include "stemtwin/physics/windowed.hpp"

namespace stemtwin {

/// The simulation grid of a periodic lx × ly Å cell at `sampling_A`: FFT-friendly point counts
/// (Grid::from_sampling) and, for PRISM, counts divisible by the interpolation factor as well
/// (each rounded up to the next FFT-friendly multiple). The one grid rule of the dataset runner,
/// the session and Python's simulate_stem (src/physics/make_grid.cpp).
Grid make_grid(double lx_A, double ly_A, double sampling_A, Method method, std::size_t interpolation);

/// Thermal configurations → transmission functions (one per configuration).
std::vector<Transmission> frozen_phonon_transmissions(const Structure& structure, const Grid& grid, double energy_eV,
                                                      const StemSettings& settings, const Fft2& fft);

/// Runs the probe over `positions` through every configuration and records the detectors.
/// An `observer` (e.g. an InelasticRecorder, spectroscopy.hpp) also sees the wave entering
/// every slice; it does not change the detector signals.
StemResult scan_multislice(const std::vector<Transmission>& configurations, const ProbeOptics& optics,
                           const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                           const StemSettings& settings, const Fft2& fft, PatternSink* sink = nullptr,
                           SliceObserver* observer = nullptr);

/// Both steps: the whole STEM simulation of a structure, by multislice (one position per
/// class of translational symmetry of a static structure, the others copied:
/// translational_symmetry.hpp, StemSettings::symmetry_reuse) or — with
/// settings.method = Method::Prism — by PRISM (prism.hpp), Method::Windowed (windowed.hpp) or
/// Method::Auto (auto_method.hpp). An `observer` sees the wave inside the specimen with
/// multislice, windowed (per window, windowed.hpp), PRISM (its intensities at the pixels the
/// observer reads, prism.hpp; partitioned PRISM refuses it) and auto (among all three).
StemResult simulate_stem(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

/// Partial spatial coherence: convolves a raster image (pixel steps in Å) with a Gaussian
/// of 1σ = source_size_A, periodically (Fourier space).
Image apply_source_size(const Image& image, double step_x_A, double step_y_A, double source_size_A);

/// Integrated DPC (iDPC) from COM images (mrad): the potential-like scalar field φ whose
/// gradient best matches the COM vector field, by Fourier integration
/// φ = F⁻¹[(kx·Cx + ky·Cy)/(2πi |k|²)], with the k = 0 term set to 0.
Image integrate_com(const Image& com_x, const Image& com_y, double step_x_A, double step_y_A);

}  // namespace stemtwin
