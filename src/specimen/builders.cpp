#include "stemtwin/specimen/builders.hpp"

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

namespace stemtwin {
namespace {

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

int cls(SpecimenClass c) { return static_cast<int>(c); }

void check_axis(int axis, const char* what) {
  if (axis < 0 || axis > 2) throw std::invalid_argument(std::string(what) + " must be 0 (x), 1 (y) or 2 (z)");
}

double coord(const Atom& a, int axis) { return axis == 0 ? a.x : axis == 1 ? a.y : a.z; }
double cell_len(const Cell& c, int axis) { return axis == 0 ? c.x : axis == 1 ? c.y : c.z; }

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

double wrap(double v, double L) {
  v -= L * std::floor(v / L);
  return v >= L ? 0.0 : v;
}

}  // namespace

// --- perovskite ------------------------------------------------------------------------------
Specimen build_perovskite(const PerovskiteParams& p, std::uint64_t seed, std::uint64_t sample) {
  if (!(p.a > 0)) throw std::invalid_argument("perovskite a must be > 0 Å");
  for (int r : p.repeats)
    if (r < 1) throw std::invalid_argument("perovskite repeats must be ≥ 1");
  element_symbol(p.O);
  const auto& n = p.repeats;
  const double corr = p.correlation_length / p.a;
  std::vector<int> Asp = arrange_sites(p.A, n, p.arrangement, p.layer_axis, corr,
                                       Rng(seed, RngPurpose::Structure, sample, kASites), "A");
  std::vector<int> Bsp = arrange_sites(p.B, n, p.arrangement, p.layer_axis, corr,
                                       Rng(seed, RngPurpose::Structure, sample, kBSites), "B");
  if (p.vacancy_order) check_axis(p.vacancy_axis, "vacancy_axis");
  Specimen s;
  s.structure.cell = {n[0] * p.a, n[1] * p.a, n[2] * p.a};
  const double a = p.a;
  for (int l = 0; l < n[2]; ++l)
    for (int j = 0; j < n[1]; ++j)
      for (int i = 0; i < n[0]; ++i) {
        std::size_t site = (static_cast<std::size_t>(l) * n[1] + j) * n[0] + i;
        s.structure.atoms.push_back({Asp[site], i * a, j * a, l * a, 1.0, 0.0});
        s.structure.atoms.push_back({Bsp[site], (i + .5) * a, (j + .5) * a, (l + .5) * a, 1.0, 0.0});
        // the three oxygens of the cell: the one missing coordinate offset is 0
        const std::array<std::array<double, 3>, 3> O{{{.5, .5, 0}, {.5, 0, .5}, {0, .5, .5}}};
        for (const auto& o : O) {
          Atom at{p.O, (i + o[0]) * a, (j + o[1]) * a, (l + o[2]) * a, 1.0, 0.0};
          bool vacant = false;
          if (p.vacancy_order) {
            // half-integer units (·2): O sites of BO2 planes ⊥ axis have that coordinate odd
            const int ax = p.vacancy_axis;
            const int h[3] = {static_cast<int>(std::lround(2 * (i + o[0]))), static_cast<int>(std::lround(2 * (j + o[1]))),
                              static_cast<int>(std::lround(2 * (l + o[2])))};
            const int u = (ax + 1) % 3, v = (ax + 2) % 3;
            const bool bo2_plane = (h[ax] % 2) != 0;
            const int plane = (h[ax] - 1) / 2;  // index of the BO2 plane
            if (bo2_plane && plane % 2 == 1) {
              // rows along the in-plane diagonal (u + v direction): h[u] − h[v] is odd for O;
              // every other row ((h[u] − h[v]) mod 4 == 1) is vacant
              int m = ((h[u] - h[v]) % 4 + 4) % 4;
              vacant = (m == 1);
            }
          }
          if (vacant) s.vacancies.push_back(at);
          else s.structure.atoms.push_back(at);
        }
      }
  s.atom_class.assign(s.structure.atoms.size(), cls(SpecimenClass::Crystal));
  s.info["a"] = p.a;
  s.info["oxygen_vacancies"] = static_cast<double>(s.vacancies.size());
  const double nA = static_cast<double>(Asp.size());
  for (const auto& sp : p.A)
    s.info["A_fraction_" + std::to_string(sp.Z)] = std::count(Asp.begin(), Asp.end(), sp.Z) / nA;
  return s;
}

// --- film on substrate ------------------------------------------------------------------------
Specimen build_film_on_substrate(const FilmParams& p, std::uint64_t seed, std::uint64_t sample) {
  if (p.substrate_cells < 1 || p.film_cells < 1) throw std::invalid_argument("film and substrate need ≥ 1 cell each");
  if (!(p.film.a > 0) || !(p.substrate.a > 0)) throw std::invalid_argument("lattice parameters must be > 0 Å");
  if (!(p.poisson > -1 && p.poisson < 0.5)) throw std::invalid_argument("Poisson ratio must lie in (−1, 0.5)");
  if (!(p.vacuum >= 0)) throw std::invalid_argument("vacuum must be ≥ 0 Å");
  const double as = p.substrate.a, af = p.film.a;
  const double eps_in = (as - af) / af;
  const double c = af * (1 - 2 * p.poisson / (1 - p.poisson) * eps_in);
  PerovskiteParams sub = p.substrate;
  sub.repeats = {p.substrate.repeats[0], p.substrate_cells, p.substrate.repeats[2]};
  PerovskiteParams fil = p.film;
  fil.a = as;
  fil.repeats = {sub.repeats[0], p.film_cells, sub.repeats[2]};
  Specimen s = build_perovskite(sub, seed, sample);
  Specimen f = build_perovskite(fil, seed, sample + kFilmOffset * 1000003ULL);
  const double y0 = p.substrate_cells * as;
  auto place = [&](Atom at) {
    at.y = y0 + at.y * (c / as);
    return at;
  };
  for (const Atom& at : f.structure.atoms) {
    s.structure.atoms.push_back(place(at));
    s.atom_class.push_back(cls(SpecimenClass::Film));
  }
  for (const Atom& at : f.vacancies) s.vacancies.push_back(place(at));
  s.structure.cell.y = y0 + p.film_cells * c + p.vacuum;
  s.info.clear();
  s.info["interface_y"] = y0 - as / 4;
  s.info["film_c"] = c;
  s.info["film_strain"] = eps_in;
  s.info["oxygen_vacancies"] = static_cast<double>(s.vacancies.size());
  return s;
}

// --- amorphous region ---------------------------------------------------------------------------
namespace {
struct Front {
  int axis, uaxis;
  double base, amplitude, period_u;
  int shape;
  std::vector<double> rough;  // unit-rms profile on a fine grid over u
  double at(double u) const {
    if (shape == 0) return base;
    if (shape == 1) return base + amplitude * std::sin(2 * std::numbers::pi * u / period_u);
    const std::size_t n = rough.size();
    double t = (u - period_u * std::floor(u / period_u)) / period_u * n;
    std::size_t i0 = static_cast<std::size_t>(t) % n;
    double w = t - std::floor(t);
    return base + amplitude * ((1 - w) * rough[i0] + w * rough[(i0 + 1) % n]);
  }
};

Front make_front(const Specimen& s, const AmorphousParams& p, std::uint64_t seed, std::uint64_t sample) {
  check_axis(p.axis, "amorphous axis");
  if (!(p.fraction >= 0 && p.fraction <= 1)) throw std::invalid_argument("amorphous fraction must lie in 0..1");
  if (!(p.amplitude >= 0)) throw std::invalid_argument("front amplitude must be ≥ 0 Å");
  Front f;
  f.axis = p.axis;
  f.uaxis = p.axis == 0 ? 1 : 0;
  f.base = p.fraction * cell_len(s.structure.cell, p.axis);
  f.amplitude = p.amplitude;
  const double Lu = cell_len(s.structure.cell, f.uaxis);
  f.shape = p.shape == FrontShape::Planar ? 0 : p.shape == FrontShape::Sinusoidal ? 1 : 2;
  if (f.shape != 0 && !(p.wavelength > 0)) throw std::invalid_argument("front wavelength must be > 0 Å");
  if (f.shape == 1) f.period_u = Lu / std::max(1.0, std::round(Lu / p.wavelength));  // periodic in the cell
  if (f.shape == 2) {
    f.period_u = Lu;
    const std::size_t n = 512;
    Rng rng(seed, RngPurpose::Structure, sample, kFront);
    std::vector<double> g(n);
    for (double& v : g) v = rng.normal();
    std::array<int, 3> dims{static_cast<int>(n), 1, 1};
    smooth_periodic(g, dims, p.wavelength / Lu * n);
    double mean = std::accumulate(g.begin(), g.end(), 0.0) / n, var = 0;
    for (double& v : g) v -= mean;
    for (double v : g) var += v * v;
    double sd = std::sqrt(var / n);
    for (double& v : g) v = sd > 0 ? v / sd : 0;
    f.rough = g;
  }
  return f;
}
}  // namespace

std::vector<double> amorphous_front(const Specimen& s, const AmorphousParams& p, const std::vector<double>& u,
                                    std::uint64_t seed, std::uint64_t sample) {
  const Front f = make_front(s, p, seed, sample);
  std::vector<double> out;
  out.reserve(u.size());
  for (double v : u) out.push_back(f.at(v));
  return out;
}

void amorphize(Specimen& s, const AmorphousParams& p, std::uint64_t seed, std::uint64_t sample) {
  check_specimen(s);
  const Front f = make_front(s, p, seed, sample);
  auto in_region = [&](const Vec3& r) { return r[f.axis] < f.at(r[f.uaxis]) && r[f.axis] >= 0; };
  std::vector<char> in(s.structure.atoms.size(), 0);
  std::vector<int> species;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const Atom& a = s.structure.atoms[i];
    if (in_region({a.x, a.y, a.z})) {
      in[i] = 1;
      species.push_back(a.Z);
    }
  }
  // vacancies inside the region lose their meaning: there are no sites there any more
  std::erase_if(s.vacancies, [&](const Atom& v) { return in_region({v.x, v.y, v.z}); });
  const Cell& cell = s.structure.cell;
  double dmin = p.min_distance;
  if (p.mode == AmorphousMode::Displacement) {
    if (!(p.displacement_rms >= 0)) throw std::invalid_argument("displacement_rms must be ≥ 0 Å");
    Rng rng(seed, RngPurpose::Structure, sample, kAmorphousDisplace);
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i]) {
        Atom& a = s.structure.atoms[i];
        a.x = wrap(a.x + p.displacement_rms * rng.normal(), cell.x);
        a.y = wrap(a.y + p.displacement_rms * rng.normal(), cell.y);
        a.z += p.displacement_rms * rng.normal();
        s.atom_class[i] = cls(SpecimenClass::Amorphous);
      }
  } else if (!species.empty()) {
    // region volume from the atoms' density: the region keeps the crystal's number density
    const double n_density = static_cast<double>(s.structure.atoms.size()) / (cell.x * cell.y * cell.z);
    if (!(dmin > 0)) dmin = 0.7 * std::cbrt(1.0 / n_density);
    Rng shuffle(seed, RngPurpose::Structure, sample, kAmorphousSpecies);
    for (std::size_t i = species.size(); i > 1; --i) std::swap(species[i - 1], species[shuffle.below(i)]);
    erase_atoms(s, in);
    Vec3 lo{0, 0, 0}, hi{cell.x, cell.y, cell.z};
    hi[f.axis] = std::min(cell_len(cell, f.axis), f.base + f.amplitude * (f.shape == 2 ? 6.0 : 1.0) + 1e-9);
    std::vector<Atom> placed = rsa(s.structure, species, lo, hi, in_region, dmin,
                                   Rng(seed, RngPurpose::Structure, sample, kAmorphousPlace));
    for (const Atom& a : placed) {
      s.structure.atoms.push_back(a);
      s.atom_class.push_back(cls(SpecimenClass::Amorphous));
    }
  }
  std::size_t n_am = std::count(s.atom_class.begin(), s.atom_class.end(), cls(SpecimenClass::Amorphous));
  s.info["amorphous_fraction"] = s.structure.atoms.empty() ? 0.0 : double(n_am) / s.structure.atoms.size();
  s.info["amorphous_min_distance"] = dmin;
}

// --- point defects ------------------------------------------------------------------------------
namespace {
std::vector<std::size_t> pick(const Specimen& s, int Z, double fraction, Rng rng, const char* what) {
  if (!(fraction >= 0 && fraction <= 1)) throw std::invalid_argument(std::string(what) + " fraction must lie in 0..1");
  std::vector<std::size_t> cand;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i)
    if (s.structure.atoms[i].Z == Z &&
        (s.atom_class[i] == cls(SpecimenClass::Crystal) || s.atom_class[i] == cls(SpecimenClass::Film)))
      cand.push_back(i);
  const std::size_t k = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(cand.size())));
  for (std::size_t i = 0; i < k; ++i) std::swap(cand[i], cand[i + rng.below(cand.size() - i)]);  // partial shuffle
  cand.resize(k);
  return cand;
}
}  // namespace

std::size_t add_vacancies(Specimen& s, int Z, double fraction, std::uint64_t seed, std::uint64_t sample) {
  check_specimen(s);
  auto idx = pick(s, Z, fraction, Rng(seed, RngPurpose::Structure, sample, kVacancies), "vacancy");
  std::vector<char> rm(s.structure.atoms.size(), 0);
  for (std::size_t i : idx) {
    rm[i] = 1;
    s.vacancies.push_back(s.structure.atoms[i]);
  }
  erase_atoms(s, rm);
  return idx.size();
}

std::size_t add_dopants(Specimen& s, int host_Z, int dopant_Z, double fraction, std::uint64_t seed,
                        std::uint64_t sample) {
  check_specimen(s);
  element_symbol(dopant_Z);
  auto idx = pick(s, host_Z, fraction, Rng(seed, RngPurpose::Structure, sample, kDopants), "dopant");
  for (std::size_t i : idx) {
    s.structure.atoms[i].Z = dopant_Z;
    // rms stays the host site's: a substitutional dopant vibrates with its site
    s.atom_class[i] = cls(SpecimenClass::Dopant);
  }
  return idx.size();
}

std::size_t add_interstitials(Specimen& s, int Z, std::size_t count, double min_distance, std::uint64_t seed,
                              std::uint64_t sample) {
  check_specimen(s);
  element_symbol(Z);
  if (!(min_distance > 0)) throw std::invalid_argument("interstitial min_distance must be > 0 Å");
  const Cell& c = s.structure.cell;
  std::vector<int> sp(count, Z);
  auto placed = rsa(s.structure, sp, {0, 0, 0}, {c.x, c.y, c.z}, [](const Vec3&) { return true; }, min_distance,
                    Rng(seed, RngPurpose::Structure, sample, kInterstitials));
  for (const Atom& a : placed) {
    s.structure.atoms.push_back(a);
    s.atom_class.push_back(cls(SpecimenClass::Interstitial));
  }
  return placed.size();
}

std::vector<Atom> random_sequential_atoms(const Structure& existing, const std::vector<int>& species, const Vec3& lo,
                                          const Vec3& hi, double min_distance, std::uint64_t seed,
                                          std::uint64_t sample, std::uint64_t stream) {
  if (!(min_distance > 0)) throw std::invalid_argument("min_distance must be > 0 Å");
  return rsa(existing, species, lo, hi, [](const Vec3&) { return true; }, min_distance,
             Rng(seed, RngPurpose::Structure, sample, stream));
}

// --- planar faults ---------------------------------------------------------------------------
std::size_t add_planar_fault(Specimen& s, const PlanarFault& f) {
  check_specimen(s);
  check_axis(f.axis, "fault axis");
  Cell& c = s.structure.cell;
  const double L = cell_len(c, f.axis);
  if (!(f.position > 0 && f.position < L)) throw std::invalid_argument("fault position must lie inside the cell");
  std::vector<char> shifted(s.structure.atoms.size(), 0);
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    Atom& a = s.structure.atoms[i];
    if (coord(a, f.axis) < f.position) continue;
    shifted[i] = 1;
    a.x = wrap(a.x + f.shift[0], c.x);
    a.y = wrap(a.y + f.shift[1], c.y);
    a.z += f.shift[2];
    if (f.axis == 2 || c.z > 0) a.z = wrap(a.z, c.z);
  }
  // remove shifted atoms that landed on kept ones
  Structure kept{c, {}};
  for (std::size_t i = 0; i < shifted.size(); ++i)
    if (!shifted[i]) kept.atoms.push_back(s.structure.atoms[i]);
  std::vector<char> rm(s.structure.atoms.size(), 0);
  std::size_t removed = 0;
  if (f.overlap_distance > 0) {
    PointHash hash(c, -1, c.z + 1, f.overlap_distance);
    for (const Atom& a : kept.atoms) hash.add({a.x, a.y, a.z});
    for (std::size_t i = 0; i < shifted.size(); ++i) {
      const Atom& a = s.structure.atoms[i];
      if (shifted[i] && !hash.clear({a.x, a.y, a.z}, f.overlap_distance)) {
        rm[i] = 1;
        ++removed;
      }
    }
  }
  erase_atoms(s, rm);
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    double v = coord(s.structure.atoms[i], f.axis);
    double d1 = std::abs(v - f.position), d2 = std::min(v, L - v);
    if ((d1 < f.boundary_width || d2 < f.boundary_width) && s.atom_class[i] != cls(SpecimenClass::Dopant) &&
        s.atom_class[i] != cls(SpecimenClass::Interstitial))
      s.atom_class[i] = cls(SpecimenClass::Boundary);
  }
  s.info["fault_removed_atoms"] = static_cast<double>(removed);
  return removed;
}

PlanarFault perovskite_antiphase_boundary(double a, double position) {
  PlanarFault f;
  f.axis = 0;
  f.position = position;
  f.shift = {0, a / 2, a / 2};
  f.overlap_distance = 0.8;
  f.boundary_width = a / 2;
  return f;
}

// --- stacking fault ----------------------------------------------------------------------------
Specimen build_fcc_stacking_fault(const StackingFaultParams& p) {
  if (!(p.a > 0)) throw std::invalid_argument("fcc a must be > 0 Å");
  if (p.planes < 5 || p.planes % 3 != 2)
    throw std::invalid_argument("stacking fault: planes must be ≥ 5 and ≡ 2 (mod 3) so one intrinsic fault is periodic");
  if (p.fault_after < 0 || p.fault_after >= p.planes - 1) throw std::invalid_argument("fault_after outside the planes");
  if (p.repeats_x < 1 || p.repeats_z < 1) throw std::invalid_argument("repeats must be ≥ 1");
  const double lx = p.a * std::sqrt(6.0) / 2, lz = p.a * std::sqrt(2.0) / 2, d111 = p.a / std::sqrt(3.0);
  // In a (111) plane the atoms of one layer, in the cell lx × lz, are at (0,0) and (lx/2, lz/2);
  // layers B and C are shifted along x by lx/3 and 2·lx/3 (the Shockley partial a/6[11-2]).
  std::vector<int> letter(p.planes);
  letter[0] = 0;
  for (int i = 1; i < p.planes; ++i) letter[i] = (letter[i - 1] + (i - 1 == p.fault_after ? 2 : 1)) % 3;
  if ((letter[p.planes - 1] + 1) % 3 != letter[0]) throw std::logic_error("stacking sequence not periodic");
  Specimen s;
  s.structure.cell = {lx * p.repeats_x, d111 * p.planes, lz * p.repeats_z};
  for (int i = 0; i < p.planes; ++i) {
    int prev = letter[(i + p.planes - 1) % p.planes], next = letter[(i + 1) % p.planes];
    const bool hcp = prev == next;  // the layer sits between two equal layers
    for (int rx = 0; rx < p.repeats_x; ++rx)
      for (int rz = 0; rz < p.repeats_z; ++rz)
        for (int k = 0; k < 2; ++k) {
          double x = (rx + letter[i] / 3.0 + 0.5 * k) * lx, z = (rz + 0.5 * k) * lz;
          s.structure.atoms.push_back({p.Z, wrap(x, s.structure.cell.x), (i + 0.5) * d111, z, 1.0, 0.0});
          s.atom_class.push_back(cls(hcp ? SpecimenClass::Boundary : SpecimenClass::Crystal));
        }
  }
  s.info["fault_y"] = (p.fault_after + 1) * d111;
  return s;
}

// --- nanoparticle on support ------------------------------------------------------------------------
Specimen build_nanoparticle_on_support(const NanoparticleParams& p, std::uint64_t seed, std::uint64_t sample) {
  if (!(p.a > 0) || !(p.radius > 0)) throw std::invalid_argument("nanoparticle a and radius must be > 0 Å");
  if (!(p.cell_x > 2 * p.radius) || !(p.cell_y > 2 * p.radius))
    throw std::invalid_argument("nanoparticle cell must be wider than the particle (2·radius)");
  if (!(p.support_thickness >= 0) || !(p.support_density > 0) || !(p.support_min_distance > 0))
    throw std::invalid_argument("support thickness ≥ 0, density and min distance > 0 required");
  Crystal fcc;
  fcc.name = element_symbol(p.Z) + " fcc";
  fcc.a = fcc.b = fcc.c = p.a;
  for (const Vec3& f : {Vec3{0, 0, 0}, Vec3{.5, .5, 0}, Vec3{.5, 0, .5}, Vec3{0, .5, .5}})
    fcc.sites.push_back({p.Z, f[0], f[1], f[2], 1.0, 0.0, element_symbol(p.Z)});
  OrientedCell oc = orient_along(fcc, p.zone_axis);
  const Cell& uc = oc.structure.cell;
  const double span = 2 * p.radius + 2 * p.a;
  Structure block = tile(oc.structure, static_cast<int>(std::ceil(span / uc.x)), static_cast<int>(std::ceil(span / uc.y)),
                         static_cast<int>(std::ceil(span / uc.z)));
  // centre on the atom nearest the block centre
  const Vec3 mid{block.cell.x / 2, block.cell.y / 2, block.cell.z / 2};
  Vec3 ctr = mid;
  double best = 1e300;
  for (const Atom& a : block.atoms) {
    double d = std::hypot(a.x - mid[0], a.y - mid[1], a.z - mid[2]);
    if (d < best) {
      best = d;
      ctr = {a.x, a.y, a.z};
    }
  }
  // lab → crystal Cartesian for the facet test
  const Mat3 to_crystal = inverse(mat_mul(oc.deformation, oc.rotation));
  const double tol = 1e-6;
  std::vector<Atom> particle;
  for (const Atom& a : block.atoms) {
    Vec3 r{a.x - ctr[0], a.y - ctr[1], a.z - ctr[2]};
    bool keep;
    if (p.shape == ParticleShape::Sphere) {
      keep = norm(r) <= p.radius + tol;
    } else {
      Vec3 c = mat_vec(to_crystal, r);
      keep = std::abs(c[0]) <= p.radius / std::sqrt(2.0) + tol && std::abs(c[1]) <= p.radius / std::sqrt(2.0) + tol &&
             std::abs(c[2]) <= p.radius / std::sqrt(2.0) + tol &&
             std::abs(c[0]) + std::abs(c[1]) + std::abs(c[2]) <= std::sqrt(2.0) * p.radius + tol;
    }
    if (keep) particle.push_back(a);
  }
  double zmin = 1e300, zmax = -1e300;
  for (const Atom& a : particle) {
    zmin = std::min(zmin, a.z);
    zmax = std::max(zmax, a.z);
  }
  Specimen s;
  const double z0 = p.margin - zmin;  // particle's lowest z → margin
  const double support_top = p.margin + (zmax - zmin) + p.gap;
  s.structure.cell = {p.cell_x, p.cell_y, support_top + p.support_thickness + p.margin};
  for (Atom a : particle) {
    a.x += p.cell_x / 2 - ctr[0];
    a.y += p.cell_y / 2 - ctr[1];
    a.z += z0;
    s.structure.atoms.push_back(a);
    s.atom_class.push_back(cls(SpecimenClass::Particle));
  }
  std::size_t n_support = 0;
  if (p.support_thickness > 0) {
    const std::size_t n = static_cast<std::size_t>(
        std::llround(p.support_density * p.cell_x * p.cell_y * p.support_thickness));
    std::vector<int> sp(n, p.support_Z);
    Structure empty{s.structure.cell, {}};
    auto c = rsa(empty, sp, {0, 0, support_top}, {p.cell_x, p.cell_y, support_top + p.support_thickness},
                 [](const Vec3&) { return true; }, p.support_min_distance,
                 Rng(seed, RngPurpose::Structure, sample, kSupport));
    for (const Atom& a : c) {
      s.structure.atoms.push_back(a);
      s.atom_class.push_back(cls(SpecimenClass::Support));
    }
    n_support = c.size();
  }
  s.info["particle_atoms"] = static_cast<double>(particle.size());
  s.info["support_atoms"] = static_cast<double>(n_support);
  s.info["particle_centre_x"] = p.cell_x / 2;
  s.info["particle_centre_y"] = p.cell_y / 2;
  s.info["particle_centre_z"] = ctr[2] + z0;
  return s;
}

// --- from a file -----------------------------------------------------------------------------------
Specimen specimen_from_file(const FileSpecimenParams& p) {
  Structure cell;
  double strain = 0;
  const StructureFormat fmt = detect_format(p.path);
  if (fmt == StructureFormat::Cif || fmt == StructureFormat::Poscar) {
    OrientedCell oc = orient_along(read_crystal(p.path), p.zone_axis, p.orient);
    cell = std::move(oc.structure);
    strain = oc.max_strain;
  } else {
    if (p.zone_axis != std::array<int, 3>{0, 0, 1})
      throw std::invalid_argument(p.path + ": an XYZ file holds atoms, not a crystal: it cannot be re-oriented "
                                           "(zone axis must be [0 0 1]; use a CIF or POSCAR)");
    cell = read_structure(p.path);
  }
  const Cell& c = cell.cell;
  auto r = repeats_for_size(c, p.size_x > 0 ? p.size_x : c.x, p.size_y > 0 ? p.size_y : c.y,
                            p.thickness > 0 ? p.thickness : c.z);
  Specimen s = make_specimen(tile(cell, r[0], r[1], r[2]));
  if (p.tilt_x_mrad != 0 || p.tilt_y_mrad != 0) tilt(s.structure, p.tilt_x_mrad, p.tilt_y_mrad);
  override_rms(s.structure, p.rms_override);
  s.info["max_strain"] = strain;
  s.info["repeats_x"] = r[0];
  s.info["repeats_y"] = r[1];
  s.info["repeats_z"] = r[2];
  return s;
}

}  // namespace stemtwin
