#pragma once
// Inner-shell ionisation cross sections for electron impact: the analytical fits of
// D. Bote, F. Salvat, A. Jablonski & C. J. Powell, At. Data Nucl. Data Tables 95 (2009) 871
// ("Cross sections for ionization of K, L and M shells of atoms by impact of electrons and
// positrons with energies up to 1 GeV: analytical formulas"), which reproduce their
// distorted-wave / plane-wave Born calculations (Phys. Rev. A 77 (2008) 042701) to about 1 %
// from threshold to 1 GeV, for Z = 1–99 and the K, L1–L3 and M1–M5 subshells.
//
// Coefficients: src/physics/data/bote_salvat_2009.txt (source and licence in its header).
// Units: electron kinetic energy in eV; cross sections in Å² (1 barn = 1e-8 Å², so a
// cross section in barn is 1e8 × the value here). The overvoltage U = E/E_i uses Bote &
// Salvat's own ionisation energy E_i (bote_salvat_edge_eV), as in their program xion.f.
#include "stemtwin/physics/xray_data.hpp"

namespace stemtwin {

/// Whether Bote & Salvat give a fit for this element and subshell (e.g. Cu has none for M4/M5,
/// Z ≥ 100 none at all).
bool bote_salvat_available(int Z, Shell shell);
/// The ionisation energy E_i (eV) their fit uses; throws std::invalid_argument if unavailable.
double bote_salvat_edge_eV(int Z, Shell shell);
/// σ(E) in Å² for an electron of kinetic energy E (eV); 0 below E_i. Throws
/// std::invalid_argument naming Z and the shell when no fit exists, or for E ≤ 0.
double bote_salvat_cross_section_A2(int Z, Shell shell, double energy_eV);

}  // namespace stemtwin
