#pragma once
// Internal to src/specimen/: what the builders share: the random streams of RngPurpose::Structure
// (part of the determinism contract), site arrangement, random sequential addition, small
// helpers. The builders themselves: builders.cpp (perovskite, film on substrate, from a file),
// builders_amorphous.cpp, builders_defects.cpp (point defects, planar and stacking faults),
// builders_nanoparticle.cpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "stemtwin/core/rng.hpp"
#include "stemtwin/specimen/builders.hpp"

namespace stemtwin::builder_detail {

// Stream ids inside RngPurpose::Structure (part of the determinism contract).
enum Stream : std::uint64_t {
  kASites = 1,
  kBSites = 2,
  kFront = 10,
  kAmorphousPlace = 11,
  kAmorphousSpecies = 12,
  kAmorphousDisplace = 13,
  kVacancies = 20,
  kDopants = 21,
  kInterstitials = 22,
  kSupport = 30,
  kFilmOffset = 100,
};

inline int cls(SpecimenClass c) { return static_cast<int>(c); }
inline void check_axis(int axis, const char* what) {
  if (axis < 0 || axis > 2) throw std::invalid_argument(std::string(what) + " must be 0 (x), 1 (y) or 2 (z)");
}
inline double coord(const Atom& a, int axis) { return axis == 0 ? a.x : axis == 1 ? a.y : a.z; }
inline double cell_len(const Cell& c, int axis) { return axis == 0 ? c.x : axis == 1 ? c.y : c.z; }
inline double wrap(double v, double L) {
  v -= L * std::floor(v / L);
  return v >= L ? 0.0 : v;
}

// Periodic-in-x,y spatial hash of points for minimum-distance queries.
class PointHash {
 public:
  PointHash(const Cell& cell, double zmin, double zmax, double bin) : cell_(cell), zmin_(zmin) {
    bin = std::max(bin, 1e-3);
    n_[0] = std::max(1, static_cast<int>(std::floor(cell.x / bin)));
    n_[1] = std::max(1, static_cast<int>(std::floor(cell.y / bin)));
    n_[2] = std::max(1, static_cast<int>(std::floor((zmax - zmin) / bin)) + 1);
    b_ = {cell.x / n_[0], cell.y / n_[1], bin};
    bins_.resize(static_cast<std::size_t>(n_[0]) * n_[1] * n_[2]);
  }
  void add(const Vec3& p) {
    pts_.push_back(p);
    bins_[key(bx(p, 0), bx(p, 1), bz(p[2]))].push_back(pts_.size() - 1);
  }
  // true if no point lies closer than d to p
  bool clear(const Vec3& p, double d) const {
    const int rx = static_cast<int>(std::ceil(d / b_[0])), ry = static_cast<int>(std::ceil(d / b_[1])),
              rz = static_cast<int>(std::ceil(d / b_[2]));
    const int ix = bx(p, 0), iy = bx(p, 1), iz = bz(p[2]);
    const double d2 = d * d;
    for (int dz = -rz; dz <= rz; ++dz) {
      int z = iz + dz;
      if (z < 0 || z >= n_[2]) continue;
      for (int dy = -std::min(ry, n_[1]); dy <= std::min(ry, n_[1]); ++dy)
        for (int dx = -std::min(rx, n_[0]); dx <= std::min(rx, n_[0]); ++dx) {
          int x = ((ix + dx) % n_[0] + n_[0]) % n_[0], y = ((iy + dy) % n_[1] + n_[1]) % n_[1];
          for (std::size_t i : bins_[key(x, y, z)]) {
            double ex = pts_[i][0] - p[0], ey = pts_[i][1] - p[1], ez = pts_[i][2] - p[2];
            ex -= cell_.x * std::round(ex / cell_.x);
            ey -= cell_.y * std::round(ey / cell_.y);
            if (ex * ex + ey * ey + ez * ez < d2) return false;
          }
        }
    }
    return true;
  }

 private:
  int bx(const Vec3& p, int a) const {
    double L = a == 0 ? cell_.x : cell_.y;
    double v = p[a] - L * std::floor(p[a] / L);
    return std::min(n_[a] - 1, static_cast<int>(v / b_[a]));
  }
  int bz(double z) const { return std::clamp(static_cast<int>(std::floor((z - zmin_) / b_[2])), 0, n_[2] - 1); }
  std::size_t key(int x, int y, int z) const { return (static_cast<std::size_t>(z) * n_[1] + y) * n_[0] + x; }
  Cell cell_;
  double zmin_;
  std::array<int, 3> n_{};
  Vec3 b_{};
  std::vector<Vec3> pts_;
  std::vector<std::vector<std::size_t>> bins_;
};

// Exact counts per species for n sites (largest remainder), checking the fractions.
std::vector<std::size_t> exact_counts(const std::vector<SpeciesFraction>& sp, std::size_t n, const char* site);

// Periodic Gaussian smoothing of a field on an nx × ny × nz grid (separable), σ in grid units.
void smooth_periodic(std::vector<double>& f, const std::array<int, 3>& n, double sigma);

// Species for the n = nx·ny·nz sites of one sublattice (index (l·ny + j)·nx + i).
std::vector<int> arrange_sites(const std::vector<SpeciesFraction>& sp, const std::array<int, 3>& n,
                               SiteArrangement arr, int layer_axis, double corr_cells, Rng rng, const char* site);

std::vector<Atom> rsa(const Structure& existing, const std::vector<int>& species, const Vec3& lo, const Vec3& hi,
                      const std::function<bool(const Vec3&)>& inside, double dmin, Rng rng);

void erase_atoms(Specimen& s, const std::vector<char>& remove);

}  // namespace stemtwin::builder_detail
