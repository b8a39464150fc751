#pragma once
// Windowed multislice: for each probe position only a window of the specimen around the
// probe is propagated, so the cost per position no longer grows with the field's area.
//
// Why it works. Multislice on the full periodic cell propagates a wave that, for a focused
// probe, is negligible outside a disc around the probe position: the geometric cone of the
// convergent beam through the thickness (the aberration function's ray displacement
// λ/2π·∇χ plus depth × angle), widened by diffraction (the probe's own width and its
// Airy tails, a few λ/α) and by scattering inside the specimen. A window of the same sampling
// that contains that disc reproduces the full-cell wave wherever the wave is not negligible,
// provided that inside the window the transmission functions equal those of the full cell.
//
// The engine:
//  1. The window: radius R = r_geom + margin, with
//       r_geom = max over the aperture (α ≤ α_max, all azimuths), the focal-spread nodes and
//                the depths z ∈ {0, t} of |λ/2π·∇_α χ(α, φ) + z·α| (for a pure defocus Δf
//                this is α_max·max(|Δf|, |t − Δf|): the cone's widest section);
//       margin = margin_A (default kDefaultWindowMargin_A + kDefaultWindowMarginLambdas·λ/α_max),
//                for the probe's width and tails and for scattering (tuned and tested, see
//                docs/physics.md "Windowed multislice").
//     Positions are grouped in square tiles of side T; one window of side T + 2R (rounded up
//     to an FFT-friendly point count at the full grid's sampling, never more than the full
//     grid) serves every position of a tile, so each position sits at least R from the
//     window's edge. T is chosen automatically from a cost model (FFT work per position vs
//     the potential built per tile) unless given.
//  2. Per tile, the window's potential is built from the atoms (every periodic image) of a
//     region padded by kWindowPotentialPad_A on each side, then cropped to the window: the
//     potential of every atom that reaches the window is included, and the padded grid's own
//     periodic wrap-around stays in the discarded pad. So inside the window the potential is
//     the full cell's (up to the band limit applied on the window's grid: the 2/3-Nyquist
//     disc depends only on the sampling, which is unchanged).
//  3. Each position's probe is formed on the window's grid and propagated exactly as
//     scan_multislice does. Detectors are recorded in one of two ways:
//     - dark field (every angle ≥ kDarkFieldInner·α: HAADF, ADF, outer segments): on the
//       window's periodic grid, with area-weighted pixels (each pixel split into 5 × 5
//       sub-pixels classified at their own angle), so the coarse reciprocal pixel 1/window
//       does not bias annulus areas. Electrons scattered to high angles leave the probe's
//       cone and wrap around the window keeping their k, so their intensity is kept;
//     - bright field and anything reaching into the disc (BF, ABF, radial, COM): the wave is
//       tapered to 0 over the outer kWindowTaper_A (Hann), zero-padded onto the cell's grid
//       (at most 4× the window per axis) and recorded there with the cell's pixels, as
//       multislice does: the probe's Airy tails that wrapped around would otherwise interfere
//       with the probe.
//     Detector angles are θ = λ|k| with the recording grid's k.
// Threads run over the positions of a tile; every position's numbers depend only on its
// tile's window, which depends only on the positions and settings: the same bytes on any
// thread count.
// Not supported: pixelated (4D) detectors — their pattern sampling would be the window's,
// and positions are visited tile by tile rather than in order (use multislice or PRISM).
#include <cstddef>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"

namespace stemtwin {

/// Default fixed part of the window margin (Å) and its part in units of λ/α_max (the
/// probe's diffraction scale); chosen on an LSFO-like perovskite and tested on SrTiO3 [001]
/// and Si [110] (tests/test_windowed.cpp): HAADF/ADF/BF within 1 %, correlation ≥ 0.995.
/// The probe's Airy tails (sharp aperture: intensity beyond radius r ≈ 2λ/(π²α r)) set the
/// scale: the errors fall as 1/margin (bench_windowed --only margin), 8.3 Å at 20 mrad and
/// 200 kV keeps them at about half the budget.
inline constexpr double kDefaultWindowMargin_A = 2.0;
inline constexpr double kDefaultWindowMarginLambdas = 5.0;
/// Width (Å) of the Hann ramp that takes the wave to 0 at the window's edge before it is
/// zero-padded onto the detector grid.
inline constexpr double kWindowTaper_A = 0.5;
/// Detectors whose every angle is at least this many probe semi-angles are recorded on the
/// window's periodic grid (dark field); the others on the zero-padded cell grid.
inline constexpr double kDarkFieldInner = 1.5;
/// Padding (Å) of the region whose atoms build a window's potential (cropped afterwards):
/// the Lobato/Kirkland projected potentials of every element fall below 1e-3 of their value
/// at 0.5 Å beyond this distance.
inline constexpr double kWindowPotentialPad_A = 3.0;

/// The probe's geometric spread radius r_geom (Å) through a specimen of thickness t (Å):
/// see the header comment (aberrations, defocus and focal-spread nodes included).
double probe_spread_radius_A(const ProbeOptics& optics, double thickness_A);

/// The window one tile of positions is simulated in.
struct WindowPlan {
  std::size_t nx = 0, ny = 0;  ///< window points (the full grid's sampling)
  double lx_A = 0, ly_A = 0;   ///< window extent
  double margin_A = 0;         ///< the margin in R (Å)
  double radius_A = 0;         ///< R = r_geom + margin: every position is at least R from the window's edge
  double tile_A = 0;           ///< side of the square tiles of positions sharing a window
  std::size_t tiles = 0;       ///< tiles holding positions (potentials built)
  bool full = false;           ///< the window is the whole cell (then plain multislice is run)
};

/// Chooses the window for `positions` on `grid` (see the header comment): radius from the
/// optics and thickness, tile side from settings.window.tile_A or the cost model.
WindowPlan plan_window(const Grid& grid, const ProbeOptics& optics, double thickness_A, const std::vector<Point2>& positions,
                       const StemSettings& settings);

/// Tiles of side `tile_A` over the grid's periodic cell (positions wrapped into it): for each
/// tile holding positions, the indices of its positions in position order; tiles ordered by
/// their first position. simulate_windowed builds one window (and potential) per tile.
std::vector<std::vector<std::size_t>> window_tiles(const Grid& grid, const std::vector<Point2>& positions, double tile_A);

/// Windowed multislice of a structure on `grid` (the full cell's sampling): the same
/// detectors and result layout as simulate_stem with Method::Multislice. Throws
/// std::invalid_argument for pixelated detectors.
/// An `observer` (e.g. an InelasticRecorder for EDS/EELS) gets begin() with the full grid,
/// then per tile set_window() with the window's place on the grid, and observe() with the
/// window's real-space wave entering every slice (normalised as scan_multislice's: |ψ|² is
/// the fraction of the beam per pixel), for every position (its index in `positions`),
/// configuration and focal node. When the window is the whole cell, scan_multislice runs
/// with the observer as it is (no set_window).
StemResult simulate_windowed(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                             const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                             const StemSettings& settings, SliceObserver* observer = nullptr);

}  // namespace stemtwin
