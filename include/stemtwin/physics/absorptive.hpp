#pragma once
// An independent model of thermal diffuse scattering (TDS) into an annular detector: the
// absorptive ("local") model of Einstein-model phonons, to check frozen-phonon averages.
//
// Physics (Hall & Hirsch, Proc. R. Soc. A 286 (1965) 158; Bird & King, Acta Cryst. A46
// (1990) 202; Weickenmeier & Kohl, Acta Cryst. A47 (1991) 590; for STEM: Allen, Findlay,
// Oxley & Rossouw, Ultramicroscopy 96 (2003) 47 and the muSTEM code, whose "absorptive
// model" this is). Conventions are the project's: spatial frequencies q in 1/Å with
// θ = λ|q| (exactly q = 2 sin(θ/2)/λ: q = 2s with the s = sin θ_B/λ of the crystallographic
// tables, θ_B = θ/2 the Bragg angle),
// `rms` = u = standard deviation of an atom's displacement along each Cartesian axis (Å),
// B = 8π²u². The Debye–Waller factor of an amplitude is then exp(−B s²) = exp(−2π²u²q²).
//
// Derivation, one atom at mean position τ (2-D) displaced by u (2-D Gaussian, variance u²
// per axis; the z part only moves it between slices and is neglected), hit by the wave ψ of
// the slice it sits in. To first order in the atom's projected potential v (Born, thin
// slice), the scattered amplitude is
//     ψ_s(k) = iσ ∫ ψ̃(k') ṽ(k − k') e^{−2πi(k−k')·(τ+u)} d²k',   ṽ(q) = C f_e(q)   [V·Å³],
// with C = 47.8776 V·Å² (scattering.hpp) and σ the interaction parameter (σC = γλ, so
// σ²C²|f_e|² d²q = γ²|f_e|² dΩ: the usual relativistic cross-section). Averaging over u,
// ⟨e^{2πi a·u}⟩ = e^{−2π²u²a²}; the diffuse (TDS) intensity is ⟨|ψ_s|²⟩ − |⟨ψ_s⟩|²:
//     I_TDS(k) = σ²C² ∫∫ ψ̃(k')ψ̃*(k'') e^{2πi(k'−k'')·τ} f(q) f(q')
//                 · [e^{−2π²u²|q−q'|²} − e^{−2π²u²(q²+q'²)}] d²k' d²k'',
//     q = k − k',  q' = k − k''   (momentum transfers of the two partial waves).
// The "local" approximation lets the detector select the momentum transfer q instead of the
// outgoing direction k (the probe's own angles, ≤ α, are neglected against the detector's),
// so with Q = k' − k'' = q' − q the k', k'' integrals become the Fourier transform of |ψ|²:
//     I_TDS,D = ∫ |ψ(r)|² W_D(r − τ) d²r,   W_D(r) = ∫ W̃_D(Q) e^{2πiQ·r} d²Q,
//     W̃_D(Q) = σ²C² · F_D(|Q|),
//     F_D(Q)  = ∫_{q∈D} f(|q|) f(|q+Q|) [e^{−2π²u²Q²} − e^{−2π²u²(q² + |q+Q|²)}] d²q.
// F_D is dimensionless (f in Å, d²q in 1/Å²), W̃_D an area (Å²); W̃_D(0) is the atom's TDS
// cross-section into D, σ²C² ∫_D f²(1 − e^{−4π²u²q²}) d²q (Hall & Hirsch), and W_D(r) is
// dimensionless: the fraction of the local probe intensity |ψ(r)|² (1/Å²) scattered into D.
// With D = all angles the same kernel, W_abs, is the absorption of the elastic wave:
// intensity scattered diffusely leaves the elastic (configuration-averaged) wave, so each
// slice transmits t = exp(iσ v_DW − ½ Σ_atoms W_abs(r − τ)), v_DW being the potential of
// atoms whose f_e is damped by the Debye–Waller factor e^{−2π²u²q²}.
//
// The ADF signal of the model at a probe position is therefore
//     elastic: the damped-and-absorbed elastic wave's intensity in D at the exit surface;
//     tds:     Σ_slices Σ_atoms ∫ |ψ_n(r)|² W_D(r − τ) d²r, ψ_n the elastic wave entering
//              slice n — TDS is assumed to reach the detector without being re-scattered
//              (valid for thin specimens; the source of the model's error with thickness).
// Frozen phonons (incoherent average over configurations) give elastic + TDS and include the
// re-scattering; for thin specimens the two agree to a few per cent (test_absorptive.cpp and
// docs/physics.md give the measured numbers).
//
// Numerics: F_D and F_abs are tabulated in |Q| (step 0.05 1/Å, linear interpolation, < 1e-3
// relative) from a polar quadrature over q: Gauss–Legendre panels of 0.25 1/Å × 6 nodes in |q|
// (2 1/Å beyond |q| = 20 1/Å, where f_e ∝ 1/q² is smooth), and the trapezoid rule over the
// azimuth in [0, π] (the integrand is even in it) with 256 intervals where |q + Q| can come
// near 0 (f_e's central peak is ~0.1 1/Å wide), 32 where it cannot (smooth and periodic).
// f_e and its DW-damped form come from 1-D tables (step 0.002 1/Å). Checked against a
// brute-force Cartesian integration (test_absorptive.cpp): 2e-5. The all-angle absorption
// integral stops at |q| = 50 1/Å; the neglected tail (∝ 1/q²) is 0.1–0.2 % of the
// absorption cross-section (Si to Au), whose own effect on the ADF signal is a few per cent.
// The real-space product |ψ|²·W_D is formed on a 2× oversampled grid, where it is exact: |ψ|²
// of a wave band-limited to k_max holds frequencies up to 2 k_max < the fine grid's Nyquist
// frequency, and W_D is given there by its exact Fourier coefficients.
// Only infinite projection (an atom wholly in the slice of its centre) is supported.
// Occupancy: the elastic potential scales with it (the engine's virtual crystal); the TDS
// scales with it linearly (a site occupied with probability occ scatters incoherently).
// The engine's frozen phonons scale the potential, so their TDS goes as occ²: compare the
// two on fully occupied sites only.
#include <cstddef>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/physics/potential.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/scattering.hpp"

namespace stemtwin {

/// F(Q) of the header (dimensionless): the TDS form factor of one atom (Z, per-axis rms
/// displacement `rms_A`, Å) at interference vector |Q| (1/Å), for momentum transfers
/// q_inner ≤ |q| < q_outer (1/Å). F(0) · (σC)² is the TDS cross-section into that range (Å²).
/// rms_A = 0 gives 0. Throws std::invalid_argument for rms < 0 or q_outer ≤ q_inner.
double tds_form_factor(int Z, double rms_A, double Q_invA, double q_inner_invA, double q_outer_invA,
                       Parametrization p = Parametrization::Lobato);

/// The absorptive model's ADF signal per probe position, split into its two parts
/// (fractions of the incident probe, like StemResult's signals).
struct AbsorptiveAdfResult {
  std::vector<double> elastic;  ///< DW-damped, absorbed elastic wave in the detector at the exit surface
  std::vector<double> tds;      ///< thermal diffuse scattering into the detector, summed over slices
  /// elastic + tds, per position: what a frozen-phonon average should approach.
  std::vector<double> total() const;
};

/// The absorptive-model ADF signal of `structure` (atoms' `rms` taken as given, Å; rms = 0
/// atoms scatter no TDS) for probes at `positions` (Å), an annular detector (no azimuth
/// range) and the slicing of `potential` (slice thickness and parametrisation; infinite
/// projection only). Partial temporal coherence (optics.focal_spread_A) is included by the
/// same quadrature as the engine; the source size is not (apply it to images afterwards).
/// The grid's extent must equal the cell's. OpenMP threads over positions; results do not
/// depend on the thread count. Throws std::invalid_argument for an azimuthal detector,
/// finite projection, or a detector beyond the grid's band limit.
AbsorptiveAdfResult absorptive_adf_signal(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                          const std::vector<Point2>& positions, const AnnularDetector& detector,
                                          const PotentialSettings& potential);

}  // namespace stemtwin
