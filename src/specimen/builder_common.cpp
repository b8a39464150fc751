// What the builders share (builder_common.hpp): exact species counts, site arrangement,
// random sequential addition, atom removal.
#include "builder_common.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace stemtwin::builder_detail {

// Exact counts per species for n sites (largest remainder), checking the fractions.
std::vector<std::size_t> exact_counts(const std::vector<SpeciesFraction>& sp, std::size_t n, const char* site) {
  if (sp.empty()) throw std::invalid_argument(std::string(site) + "-site species list is empty");
  double sum = 0;
  for (const auto& s : sp) {
    if (!(s.fraction >= 0)) throw std::invalid_argument(std::string(site) + "-site fraction must be ≥ 0");
    element_symbol(s.Z);  // validates Z
    sum += s.fraction;
  }
  if (std::abs(sum - 1.0) > 1e-6)
    throw std::invalid_argument(std::string(site) + "-site fractions must sum to 1 (got " + std::to_string(sum) + ")");
  std::vector<std::size_t> c(sp.size());
  std::vector<std::pair<double, std::size_t>> rem;
  std::size_t total = 0;
  for (std::size_t k = 0; k < sp.size(); ++k) {
    double want = sp[k].fraction * static_cast<double>(n);
    c[k] = static_cast<std::size_t>(std::floor(want));
    total += c[k];
    rem.push_back({want - std::floor(want), k});
  }
  std::stable_sort(rem.begin(), rem.end(), [](auto& x, auto& y) { return x.first > y.first; });
  for (std::size_t i = 0; total < n; ++i, ++total) ++c[rem[i % rem.size()].second];
  return c;
}

// Periodic Gaussian smoothing of a field on an nx × ny × nz grid (separable), σ in grid units.
void smooth_periodic(std::vector<double>& f, const std::array<int, 3>& n, double sigma) {
  if (!(sigma > 0)) return;
  std::vector<double> out(f.size());
  auto idx = [&](int i, int j, int l) { return (static_cast<std::size_t>(l) * n[1] + j) * n[0] + i; };
  for (int ax = 0; ax < 3; ++ax) {
    // kernel truncated at 3σ and at half the period (each offset counted once)
    const int r = std::min(static_cast<int>(std::ceil(3 * sigma)), (n[ax] - 1) / 2);
    if (r < 1) continue;
    std::vector<double> k(2 * r + 1);
    for (int i = -r; i <= r; ++i) k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
    for (int l = 0; l < n[2]; ++l)
      for (int j = 0; j < n[1]; ++j)
        for (int i = 0; i < n[0]; ++i) {
          double s = 0;
          for (int o = -r; o <= r; ++o) {
            int ii = i, jj = j, ll = l;
            if (ax == 0) ii = ((i + o) % n[0] + n[0]) % n[0];
            if (ax == 1) jj = ((j + o) % n[1] + n[1]) % n[1];
            if (ax == 2) ll = ((l + o) % n[2] + n[2]) % n[2];
            s += k[o + r] * f[idx(ii, jj, ll)];
          }
          out[idx(i, j, l)] = s;
        }
    f.swap(out);
  }
}

// Species for the n = nx·ny·nz sites of one sublattice (index (l·ny + j)·nx + i).
std::vector<int> arrange_sites(const std::vector<SpeciesFraction>& sp, const std::array<int, 3>& n,
                               SiteArrangement arr, int layer_axis, double corr_cells, Rng rng, const char* site) {
  const std::size_t N = static_cast<std::size_t>(n[0]) * n[1] * n[2];
  std::vector<int> out(N, sp.empty() ? 0 : sp[0].Z);
  if (sp.size() == 1) {
    exact_counts(sp, N, site);
    return out;
  }
  if (arr == SiteArrangement::Layered) {
    check_axis(layer_axis, "layer_axis");
    const int planes = n[layer_axis];
    exact_counts(sp, static_cast<std::size_t>(planes), site);  // validates
    std::vector<double> used(sp.size(), 0);
    std::vector<int> plane_species(planes);
    for (int p = 0; p < planes; ++p) {
      // the species furthest behind its target share so far (ties: listed first)
      std::size_t best = 0;
      double deficit = -1e300;
      for (std::size_t k = 0; k < sp.size(); ++k) {
        double d = sp[k].fraction * (p + 1) - used[k];
        if (d > deficit + 1e-12) {
          deficit = d;
          best = k;
        }
      }
      used[best] += 1;
      plane_species[p] = sp[best].Z;
    }
    for (int l = 0; l < n[2]; ++l)
      for (int j = 0; j < n[1]; ++j)
        for (int i = 0; i < n[0]; ++i) {
          int p = layer_axis == 0 ? i : layer_axis == 1 ? j : l;
          out[(static_cast<std::size_t>(l) * n[1] + j) * n[0] + i] = plane_species[p];
        }
    return out;
  }
  std::vector<std::size_t> counts = exact_counts(sp, N, site);
  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  if (arr == SiteArrangement::Random) {
    for (std::size_t i = N; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);  // Fisher–Yates
  } else {
    std::vector<double> field(N);
    for (double& v : field) v = rng.normal();
    smooth_periodic(field, n, corr_cells);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return field[a] < field[b]; });
  }
  std::size_t pos = 0;
  for (std::size_t k = 0; k < sp.size(); ++k)
    for (std::size_t c = 0; c < counts[k]; ++c) out[order[pos++]] = sp[k].Z;
  return out;
}

std::vector<Atom> rsa(const Structure& existing, const std::vector<int>& species, const Vec3& lo, const Vec3& hi,
                      const std::function<bool(const Vec3&)>& inside, double dmin, Rng rng) {
  double zmin = lo[2], zmax = hi[2];
  for (const Atom& a : existing.atoms) {
    zmin = std::min(zmin, a.z);
    zmax = std::max(zmax, a.z);
  }
  PointHash hash(existing.cell, zmin - dmin, zmax + dmin, dmin);
  for (const Atom& a : existing.atoms) hash.add({a.x, a.y, a.z});
  std::vector<Atom> out;
  const std::size_t max_tries = 200 * std::max<std::size_t>(species.size(), 1) + 10000;
  std::size_t tries = 0;
  for (std::size_t i = 0; i < species.size(); ++i) {
    for (;;) {
      if (++tries > max_tries)
        throw std::runtime_error("random packing failed after " + std::to_string(max_tries) + " attempts (" +
                                 std::to_string(i) + " of " + std::to_string(species.size()) +
                                 " atoms placed): lower the minimum distance " + std::to_string(dmin) + " Å");
      Vec3 p{rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), rng.uniform(lo[2], hi[2])};
      if (!inside(p)) continue;
      if (!hash.clear(p, dmin)) continue;
      p[0] -= existing.cell.x * std::floor(p[0] / existing.cell.x);
      p[1] -= existing.cell.y * std::floor(p[1] / existing.cell.y);
      hash.add(p);
      out.push_back({species[i], p[0], p[1], p[2], 1.0, 0.0});
      break;
    }
  }
  return out;
}

void erase_atoms(Specimen& s, const std::vector<char>& remove) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i)
    if (!remove[i]) {
      s.structure.atoms[w] = s.structure.atoms[i];
      s.atom_class[w] = s.atom_class[i];
      ++w;
    }
  s.structure.atoms.resize(w);
  s.atom_class.resize(w);
}

}  // namespace stemtwin::builder_detail
