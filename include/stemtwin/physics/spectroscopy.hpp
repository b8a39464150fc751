#pragma once
// The inelastic (core-loss) signal of a STEM scan in the local approximation, recorded
// from the elastic multislice wave.
//
// Model (e.g. Allen, D'Alfonso, Findlay et al., Ultramicroscopy 151 (2015) 11, section 2;
// Kirkland 2010 ch. 8 for the frozen-phonon elastic wave): the probability that an incident
// electron ionises shell n of an atom at r_a is σ_n · ρ(r_a), where σ_n is the shell's
// total ionisation cross section (ionisation.hpp) and ρ(r) the probe's intensity per unit
// area at the atom's depth. ρ comes from the multislice wave (SliceObserver), so channelling,
// beam spreading and thermal diffuse scattering (through frozen phonons) are in it: at an
// atom a fraction t of the way through its slice, ρ = (1 − t)·|ψ_entrance|² + t·|ψ_next|²,
// the intensities entering its slice and entering the next (the exit wave below the last
// slice), so ρ is continuous in z and an atom displaced across a boundary by a frozen
// phonon is not read a whole slice early (docs/spectroscopy.md). The inelastic
// electrons themselves are not propagated (the signal is collected whatever their angle:
// right for EDS and for EELS with a large collection angle).
//
// Locality: the δ-function local approximation takes ρ at the atom's centre (bilinear
// interpolation of |ψ|² between the four nearest pixels). A real ionisation interaction has
// a finite range (the "effective ionisation potential"; for K shells of 3d metals at
// 100–300 kV about 0.2–0.5 Å, for L shells more, see docs/spectroscopy.md); width_A > 0
// replaces the δ by a normalised 2-D Gaussian of that 1σ radius, i.e. ρ is averaged over
// the Gaussian footprint (cut at ±3σ in x and y: the Gaussian is separable, so the average is
// a sum of contiguous row sums, cheap enough to ride on the scan). One width for all elements.
//
// Units: ElementIntensity values are Σ over the element's atoms of occupancy × ρ (1/Å²,
// ρ = fraction of the incident beam per Å²), averaged over frozen-phonon configurations and
// focal-spread nodes with the engine's weights. Multiply by a cross section in Å² to get
// ionisations per incident electron.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/slice_observer.hpp"

namespace stemtwin {

struct InelasticSettings {
  /// 1σ radius (Å) of the Gaussian footprint of the ionisation interaction; 0 = δ-function
  /// local approximation. Must be ≥ 0.
  double width_A = 0.0;
  /// Elements (Z) to record; empty = every element present in the structure.
  std::vector<int> elements;
  /// Per-element widths (Z → Å) overriding width_A, e.g. {{38, 0.05}, {8, 0.7}}
  /// (docs/spectroscopy.md gives estimates per shell).
  std::map<int, double> element_width_A;
  /// Thickness series: the signal accumulated from the entrance surface down to each depth
  /// (Å), each rounded to the nearest slice boundary as StemSettings::depths_A is; empty =
  /// the whole specimen.
  std::vector<double> depths_A;
};

/// Probe intensity at the atoms of each element, per probe position (and recording depth).
struct ElementIntensity {
  std::vector<int> elements;      ///< Z, ascending
  std::size_t positions = 0;
  std::vector<double> depths_A;   ///< actual recording depths (slice boundaries); one = the whole specimen
  std::vector<double> values;     ///< [depth][position][element index], 1/Å² (see the header comment)
  /// Value for element Z at a position and depth (default: the deepest); throws
  /// std::out_of_range naming Z, the position or the depth if out of range.
  double at(std::size_t position, int Z, std::size_t depth_index = SIZE_MAX) const;
  std::size_t element_index(int Z) const;
  /// The elements' values at one position and depth (default: the deepest).
  const double* row(std::size_t position, std::size_t depth_index = SIZE_MAX) const;
};

/// The SliceObserver that records ElementIntensity during a multislice, windowed or PRISM scan:
///   InelasticRecorder rec(structure, settings.seed, {});
///   simulate_stem(structure, grid, optics, positions, detectors, settings, nullptr, &rec);
///   const ElementIntensity& I = rec.result();
/// The atoms are those of `structure`, displaced per frozen-phonon configuration exactly as
/// frozen_phonon_transmissions() displaces them (same seed; displace_atoms), and assigned to
/// slices as build_potential() assigns them (the slice holding the centre; an atom on a
/// boundary belongs to the slice starting there and reads only its entrance wave; thermal
/// excursions outside [0, lz] are clamped to the entrance or exit surface). Cost per slice:
/// the footprints' pixels of the atoms read there (an atom inside a slice is read at both its
/// slice's entrance and the next: 2 × 4 pixels for δ, 2 × (6σ/dx)² for a width σ), read row
/// by row; see bench_eds. One recorder serves one scan at a time.
class InelasticRecorder : public SliceObserver {
 public:
  InelasticRecorder(Structure structure, std::uint64_t seed, InelasticSettings settings = {});
  void begin(const Grid& grid, const std::vector<double>& slice_thickness_A, std::size_t configurations,
             std::size_t positions) override;
  void observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
               const cfloat* psi) override;
  /// Windowed multislice: from now on the atoms read are those whose whole footprint lies in
  /// the window (pixel coordinates relative to it); atoms outside see no probe (the window
  /// holds it, windowed.hpp), so they record 0 for these positions (src/physics/inelastic_window.cpp).
  void set_window(std::size_t x0, std::size_t y0, std::size_t nx, std::size_t ny) override;
  /// PRISM: the pixels of every footprint (whole cell), per configuration and wave read;
  /// observe_intensities() then reads them as observe() reads a wave (src/physics/inelastic_prism.cpp).
  bool reads_intensities() const override { return true; }
  std::vector<std::vector<std::vector<std::uint32_t>>> read_pixels() override;
  void observe_intensities(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                           const float* intensity) override;
  /// After begin(): from now on observe_intensities() reads intensity arrays over `pixels`
  /// ([configuration][wave read], ascending), which must hold every pixel read_pixels() gives
  /// (e.g. the union of several recorders' lists; std::invalid_argument naming a missing one).
  void index_pixels(const std::vector<std::vector<std::vector<std::uint32_t>>>& pixels);
  /// A recorder of the same structure, seed and settings.
  std::unique_ptr<SliceObserver> fresh_copy() const override;
  /// One signal per (depth, element): its values over the positions.
  std::vector<std::vector<double>> recorded_signals() const override;
  /// The recorded intensities (complete after the scan returns).
  const ElementIntensity& result() const { return result_; }

 private:
  /// One atom's footprint: separable weights wx (nx_span columns from x0) × wy (ny_span rows
  /// from y0), wrapped periodically; bilinear interpolation is the 2 × 2 case.
  struct Footprint {
    std::uint32_t element;       // index into result_.elements
    std::uint32_t slice;         // the slice holding the atom (which recording depths include it)
    std::uint32_t x0, y0, nx_span, ny_span;
    std::uint32_t weights;       // offset of wx (then wy) in weights_[configuration]
    double scale;                // occupancy / pixel area (1/Å²)
  };
  Structure structure_;
  std::uint64_t seed_;
  InelasticSettings settings_;
  // [configuration][wave read: slice entrance 0 … ns−1, exit ns]; an atom inside a slice is
  // in two lists, scale × (1 − t) and scale × t (t: its fractional depth in the slice).
  std::vector<std::vector<std::vector<Footprint>>> footprints_;
  std::vector<std::vector<std::uint32_t>> depths_of_slice_;      // [slice]: depth indices whose signal includes it
  std::vector<std::vector<float>> weights_;                     // [configuration]
  std::size_t nx_ = 0, ny_ = 0;  // begin()'s grid
  // The footprints observe() reads, and the row length and rows of the waves it gets: the
  // whole cell's (after begin) or a window's (after set_window).
  bool windowed_ = false;
  std::vector<std::vector<std::vector<Footprint>>> window_footprints_;  // [configuration][slice]
  std::size_t wave_nx_ = 0, wave_ny_ = 0;
  // PRISM (read_pixels): [configuration][wave read] the slot in read_pixels()'s list of every
  // pixel of every footprint of footprints_[configuration][wave read], in order, row by row.
  std::vector<std::vector<std::vector<std::uint32_t>>> slots_;
  /// Calls visit(y·nx + x) for every pixel of every footprint read from wave `read` of
  /// `configuration`, in observe()'s order (footprints, rows, columns; wrapped).
  template <class F>
  void for_each_pixel(std::size_t configuration, std::size_t read, F visit) const {
    for (const Footprint& f : footprints_[configuration][read])
      for (std::size_t j = 0; j < f.ny_span; ++j) {
        const std::size_t row = (f.y0 + j) % ny_;
        for (std::size_t i = 0; i < f.nx_span; ++i) visit(std::uint32_t(row * nx_ + (f.x0 + i) % nx_));
      }
  }
  ElementIntensity result_;
};

}  // namespace stemtwin
