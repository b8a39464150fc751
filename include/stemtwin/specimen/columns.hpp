#pragma once
// Labels from the specimen: projected atom columns (along the beam, z) and per-pixel masks.
//
// A column is a group of atoms whose projected (x, y) positions lie within `tolerance` of
// each other (single linkage, periodic in x and y). Vacancy sites join the column they
// project onto (a column can be empty: all of its atoms removed). Masks are drawn on any
// pixel grid (a ScanGrid: pixel (ix, iy) sits at start + (ix·step_x, iy·step_y)), with the
// columns' periodic images, so a field of view larger than the cell is labelled too.
#include <cstddef>
#include <map>
#include <vector>

#include "stemtwin/core/image.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin {

struct Column {
  double x = 0, y = 0;               ///< occupancy-weighted mean projected position, Å, in [0, cell)
  std::map<int, double> composition;  ///< Z → Σ occupancy of that element in the column
  double count = 0;                   ///< Σ occupancy of all atoms in the column
  int dominant_Z = 0;                 ///< element with the largest Σ occupancy, ties → heavier (0 if empty)
  int cls = 0;                        ///< SpecimenClass id (see column_class rule in docs/specimens.md)
  std::size_t vacancies = 0;          ///< vacancy sites in the column
  std::vector<std::size_t> atoms;     ///< indices into specimen.structure.atoms
};

/// Columns of the specimen. Class rule: Dopant, then Interstitial, then Vacancy, then
/// Boundary if any member has it; otherwise the class with the largest Σ occupancy.
std::vector<Column> find_columns(const Specimen& s, double tolerance = 0.1);
/// Columns of bare atoms (every atom class Crystal).
std::vector<Column> find_columns(const Structure& s, double tolerance = 0.1);

/// Pixel value = dominant_Z of the nearest column within `radius` Å, else `background`.
Image species_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius,
                   double background = 0);
/// Pixel value = class id of the nearest column within `radius` Å, else `background`.
Image class_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius,
                 double background = static_cast<double>(SpecimenClass::Vacuum));
/// Pixel value = 1 within `radius` of a defect column (Dopant, Interstitial, Vacancy, Boundary), else 0.
Image defect_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius);
/// Pixel value = Σ occupancy (atoms in the column) of the nearest column within radius, else 0.
Image count_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius);

/// Region map: each pixel takes the class of the nearest projected atom (periodic) within
/// max_distance Å (else Vacuum), counting only region classes — point-defect atoms
/// (Dopant, Interstitial) and Boundary atoms are skipped so they do not punch holes — except
/// that Particle atoms within overlay_radius win over anything below or above them.
Image region_map(const Specimen& s, const ScanGrid& grid, double max_distance = 3.0, double overlay_radius = 1.5);

/// Everything a dataset stores as labels for one specimen on one pixel grid.
struct GroundTruth {
  std::vector<Column> columns;
  Image region;   ///< region_map
  Image species;  ///< species_mask
  Image classes;  ///< class_mask
  Image defects;  ///< defect_mask
};
/// Columns (tolerance Å) and all maps on `grid`; column discs of `radius` Å.
GroundTruth ground_truth(const Specimen& s, const ScanGrid& grid, double radius = 0.5, double tolerance = 0.1);

}  // namespace stemtwin
