#include "stemtwin/physics/translational_symmetry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <stdexcept>
#include <unordered_map>

#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

namespace {

/// x wrapped into [0, L).
double wrap(double x, double L) {
  double r = x - std::floor(x / L) * L;
  return r >= L ? 0.0 : r;
}

/// Sites hashed into buckets of side ≥ tol: x and y periodic over (px, py), z open.
/// A site within tol of a query lies in one of the 27 buckets around it.
class SiteHash {
 public:
  SiteHash(double px, double py, double tol)
      : px_(px), py_(py), tol_(tol), nbx_(buckets(px, tol)), nby_(buckets(py, tol)), bx_(px / double(nbx_)),
        by_(py / double(nby_)) {}

  void insert(double x, double y, double z, std::size_t index) { map_[key(ix(x), iy(y), iz(z))].push_back(index); }

  /// Calls visit(index) for every inserted site within tol of (x, y, z) per axis (x, y periodic).
  template <class Visit>
  void near(double x, double y, double z, const std::vector<double>& xs, const std::vector<double>& ys,
            const std::vector<double>& zs, Visit visit) const {
    const long long cx = ix(x), cy = iy(y), cz = iz(z);
    const int rx = nbx_ >= 3 ? 1 : 0, ry = nby_ >= 3 ? 1 : 0;
    for (int dx = -rx; dx <= rx; ++dx)
      for (int dy = -ry; dy <= ry; ++dy)
        for (int dz = -1; dz <= 1; ++dz) {
          const auto it = map_.find(key((cx + dx + nbx_) % nbx_, (cy + dy + nby_) % nby_, cz + dz));
          if (it == map_.end()) continue;
          for (std::size_t i : it->second)
            if (std::fabs(std::remainder(xs[i] - x, px_)) <= tol_ && std::fabs(std::remainder(ys[i] - y, py_)) <= tol_ &&
                std::fabs(zs[i] - z) <= tol_)
              visit(i);
        }
  }

 private:
  struct Key {
    long long x, y, z;
    bool operator==(const Key& o) const { return x == o.x && y == o.y && z == o.z; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::uint64_t h = std::uint64_t(k.x) * 0x9E3779B97F4A7C15ull;
      h ^= std::uint64_t(k.y) + 0x7F4A7C159E3779B9ull + (h << 6) + (h >> 2);
      h ^= std::uint64_t(k.z) + 0x94D049BB133111EBull + (h << 6) + (h >> 2);
      return std::size_t(h);
    }
  };
  /// Equal buckets of side ≥ tol over the period, so neighbours modulo the count are adjacent;
  /// fewer than 3: one bucket (every query scans it).
  static long long buckets(double period, double tol) {
    const double n = std::floor(period / tol);
    return n >= 3 ? (long long)std::min(n, 4e18) : 1;
  }
  long long ix(double x) const { return std::min(nbx_ - 1, (long long)(wrap(x, px_) / bx_)); }
  long long iy(double y) const { return std::min(nby_ - 1, (long long)(wrap(y, py_) / by_)); }
  long long iz(double z) const { return (long long)std::floor(z / tol_); }
  static Key key(long long x, long long y, long long z) { return {x, y, z}; }

  double px_, py_, tol_;
  long long nbx_, nby_;
  double bx_, by_;
  std::unordered_map<Key, std::vector<std::size_t>, KeyHash> map_;
};

bool same_kind(const Atom& a, const Atom& b) {
  return a.Z == b.Z && std::fabs(a.occupancy - b.occupancy) <= kSymmetryPropertyTolerance &&
         std::fabs(a.rms - b.rms) <= kSymmetryPropertyTolerance;
}

/// Divisors n > 1 of `count` that divide every species' atom count, largest first.
std::vector<std::size_t> candidates(std::size_t count, const std::map<int, std::size_t>& species) {
  std::vector<std::size_t> out;
  for (std::size_t n = count; n > 1; --n) {
    if (count % n) continue;
    if (std::all_of(species.begin(), species.end(), [&](const auto& s) { return s.second % n == 0; })) out.push_back(n);
  }
  return out;
}

/// The representatives' 4D patterns, kept in representative order per detector (in the order
/// the scan first wrote them), then written to the caller's sink for every position.
class KeptPatterns : public PatternSink {
 public:
  void write(const std::string& det, std::size_t first, std::size_t count, std::size_t ny, std::size_t nx,
             const float* patterns) override {
    auto it = std::find_if(kept_.begin(), kept_.end(), [&](const Stack& k) { return k.name == det; });
    if (it == kept_.end()) it = kept_.insert(kept_.end(), Stack{det, ny, nx, {}});
    const std::size_t n = ny * nx;
    if (it->data.size() < (first + count) * n) it->data.resize((first + count) * n);
    std::copy_n(patterns, count * n, it->data.begin() + std::ptrdiff_t(first * n));
  }
  /// Every position's pattern (its class's), in blocks of `block` positions, in order.
  void replay(PatternSink& sink, const PositionClasses& c, std::size_t block) const {
    const std::size_t np = c.class_of.size();
    std::vector<float> buf;
    for (std::size_t b0 = 0; b0 < np; b0 += block) {
      const std::size_t b1 = std::min(np, b0 + block);
      for (const Stack& k : kept_) {
        const std::size_t n = k.ny * k.nx;
        buf.resize((b1 - b0) * n);
        for (std::size_t p = b0; p < b1; ++p)
          std::copy_n(k.data.begin() + std::ptrdiff_t(c.class_of[p] * n), n, buf.begin() + std::ptrdiff_t((p - b0) * n));
        sink.write(k.name, b0, b1 - b0, k.ny, k.nx, buf.data());
      }
    }
  }

 private:
  struct Stack {
    std::string name;
    std::size_t ny, nx;
    std::vector<float> data;
  };
  std::vector<Stack> kept_;
};

}  // namespace

SubPeriods structure_subperiods(const Structure& s, const Grid& g, double tol) {
  if (!(tol > 0)) throw std::invalid_argument("structure_subperiods: the tolerance must be > 0 Å");
  if (std::fabs(g.lx - s.cell.x) > 1e-9 * s.cell.x || std::fabs(g.ly - s.cell.y) > 1e-9 * s.cell.y)
    throw std::invalid_argument("structure_subperiods: the grid does not span the structure's cell");
  const std::size_t n = s.atoms.size();
  std::vector<double> xs(n), ys(n), zs(n);
  std::map<int, std::size_t> species;
  SiteHash hash(g.lx, g.ly, tol);
  for (std::size_t i = 0; i < n; ++i) {
    xs[i] = wrap(s.atoms[i].x, g.lx), ys[i] = wrap(s.atoms[i].y, g.ly), zs[i] = s.atoms[i].z;
    ++species[s.atoms[i].Z];
    hash.insert(xs[i], ys[i], zs[i], i);
  }
  auto count_at = [&](const Atom& kind, double x, double y, double z) {
    std::size_t c = 0;
    hash.near(x, y, z, xs, ys, zs, [&](std::size_t j) { c += same_kind(kind, s.atoms[j]) ? 1 : 0; });
    return c;
  };
  // How many atoms of its own kind share each atom's site (a doubled atom counts twice), so
  // the translation must map the multiset onto itself.
  std::vector<std::size_t> own(n);
  for (std::size_t i = 0; i < n; ++i) own[i] = count_at(s.atoms[i], xs[i], ys[i], zs[i]);
  auto invariant = [&](double tx, double ty) {
    for (std::size_t i = 0; i < n; ++i)
      if (count_at(s.atoms[i], xs[i] + tx, ys[i] + ty, zs[i]) != own[i]) return false;
    return true;
  };
  // Valid factors are closed under lcm (both divide the point count), so the largest valid
  // one is the smallest sub-period.
  SubPeriods p;
  for (std::size_t f : candidates(g.nx, species))
    if (invariant(g.lx / double(f), 0)) {
      p.nx = f;
      break;
    }
  for (std::size_t f : candidates(g.ny, species))
    if (invariant(0, g.ly / double(f))) {
      p.ny = f;
      break;
    }
  return p;
}

PositionClasses position_classes(const std::vector<Point2>& positions, const Grid& g, const SubPeriods& p) {
  if (p.nx < 1 || p.ny < 1 || g.nx % p.nx || g.ny % p.ny)
    throw std::invalid_argument("position_classes: the sub-periods must divide the grid's point counts");
  const double tx = g.lx / double(p.nx), ty = g.ly / double(p.ny);
  const double tol = kSymmetryPositionTolerance_px * std::min(g.dx(), g.dy());
  PositionClasses c;
  c.class_of.resize(positions.size());
  std::vector<double> rx, ry, rz;  // the representatives' reduced positions
  SiteHash hash(tx, ty, tol);
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const double x = wrap(positions[i].x, tx), y = wrap(positions[i].y, ty);
    std::size_t found = SIZE_MAX;
    hash.near(x, y, 0.0, rx, ry, rz, [&](std::size_t r) { found = std::min(found, r); });
    if (found == SIZE_MAX) {
      found = c.representatives.size();
      c.representatives.push_back(i);
      rx.push_back(x), ry.push_back(y), rz.push_back(0.0);
      hash.insert(x, y, 0.0, found);
    }
    c.class_of[i] = found;
  }
  return c;
}

PositionClasses multislice_classes(const Structure& s, const Grid& g, const std::vector<Point2>& positions, const StemSettings& st,
                                   bool observed, std::size_t streamed_patterns) {
  PositionClasses identity;
  for (std::size_t i = 0; i < positions.size(); ++i) identity.representatives.push_back(i), identity.class_of.push_back(i);
  if (!st.symmetry_reuse || observed || positions.size() < 2) return identity;
  if (std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; })) return identity;
  // A grid that does not span the cell (a caller's own window) says nothing about the lattice.
  if (std::fabs(g.lx - s.cell.x) > 1e-9 * s.cell.x || std::fabs(g.ly - s.cell.y) > 1e-9 * s.cell.y) return identity;
  const SubPeriods p = structure_subperiods(s, g);
  if (!p.any()) return identity;
  PositionClasses c = position_classes(positions, g, p);
  const double kept = double(c.representatives.size()) * double(g.size()) * sizeof(float) * double(streamed_patterns);
  return kept > double(kSymmetryMaxKeptPatternBytes) ? identity : c;
}

StemResult expand_classes(StemResult r, const PositionClasses& c) {
  const std::size_t np = c.class_of.size(), nr = c.representatives.size();
  for (DetectorSignal& sig : r.signals) {
    if (sig.values.size() != nr * sig.bins)
      throw std::logic_error("expand_classes: signal '" + sig.name + "' does not hold one value per representative");
    std::vector<double> all(np * sig.bins);
    for (std::size_t p = 0; p < np; ++p)
      std::copy_n(sig.values.begin() + std::ptrdiff_t(c.class_of[p] * sig.bins), sig.bins, all.begin() + std::ptrdiff_t(p * sig.bins));
    sig.values = std::move(all);
  }
  r.positions_simulated = nr;
  return r;
}

StemResult scan_multislice_symmetric(const Structure& s, const std::vector<Transmission>& configs, const ProbeOptics& optics,
                                     const std::vector<Point2>& positions, const std::vector<Detector>& dets,
                                     const StemSettings& st, const Fft2& fft, PatternSink* sink, SliceObserver* observer) {
  if (configs.empty()) throw std::invalid_argument("scan_multislice_symmetric: no transmission functions");
  const std::size_t pixelated = std::size_t(
      std::count_if(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<PixelatedDetector>(d); }));
  const PositionClasses c = multislice_classes(s, configs.front().grid, positions, st, observer != nullptr, sink ? pixelated : 0);
  if (!c.reduces()) return scan_multislice(configs, optics, positions, dets, st, fft, sink, observer);
  std::vector<Point2> reps;
  reps.reserve(c.representatives.size());
  for (std::size_t i : c.representatives) reps.push_back(positions[i]);
  KeptPatterns kept;
  StemResult r = expand_classes(scan_multislice(configs, optics, reps, dets, st, fft, sink ? &kept : nullptr), c);
  if (sink) kept.replay(*sink, c, std::max<std::size_t>(1, st.pattern_block));
  return r;
}

}  // namespace stemtwin
