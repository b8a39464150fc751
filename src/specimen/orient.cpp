#include "stemtwin/specimen/orient.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace stemtwin {
namespace {

struct LatticeVector {
  Vec3 frac;  // conventional fractional coordinates
  Vec3 cart;  // crystal Cartesian, Å
  double length;
};

// All lattice vectors (conventional translations plus centring vectors) with 0 < |v| ≤ rmax.
std::vector<LatticeVector> lattice_vectors(const Mat3& L, const std::vector<Vec3>& centring, double rmax) {
  Mat3 Li = inverse(L);
  std::array<int, 3> n{};
  for (int i = 0; i < 3; ++i) n[i] = static_cast<int>(std::ceil(rmax * norm(Li[i]))) + 1;
  std::vector<Vec3> shifts{{0, 0, 0}};
  shifts.insert(shifts.end(), centring.begin(), centring.end());
  std::vector<LatticeVector> out;
  for (int i = -n[0]; i <= n[0]; ++i)
    for (int j = -n[1]; j <= n[1]; ++j)
      for (int k = -n[2]; k <= n[2]; ++k)
        for (const Vec3& s : shifts) {
          Vec3 f{i + s[0], j + s[1], k + s[2]};
          Vec3 c = mat_vec(L, f);
          double len = norm(c);
          if (len > 1e-6 && len <= rmax) out.push_back({f, c, len});
        }
  // lengths compared on a 1e-6 Å grid (a strict weak order), then a fixed order among equals
  std::sort(out.begin(), out.end(), [](const LatticeVector& a, const LatticeVector& b) {
    const long long la = std::llround(a.length * 1e6), lb = std::llround(b.length * 1e6);
    if (la != lb) return la < lb;
    return a.frac > b.frac;
  });
  return out;
}

Mat3 identity() { return {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}}; }

Vec3 normalized(const Vec3& v) {
  double n = norm(v);
  return {v[0] / n, v[1] / n, v[2] / n};
}

std::string uvw_string(const std::array<int, 3>& u) {
  return "[" + std::to_string(u[0]) + " " + std::to_string(u[1]) + " " + std::to_string(u[2]) + "]";
}

}  // namespace

OrientedCell orient_along(const Crystal& crystal, std::array<int, 3> uvw, const OrientOptions& opt) {
  if (uvw[0] == 0 && uvw[1] == 0 && uvw[2] == 0) throw std::invalid_argument("zone axis [0 0 0] has no direction");
  if (crystal.sites.empty()) throw std::invalid_argument("crystal '" + crystal.name + "' has no atoms");
  int g = std::gcd(std::gcd(std::abs(uvw[0]), std::abs(uvw[1])), std::abs(uvw[2]));
  for (int& v : uvw) v /= g;
  const Mat3 L = lattice_matrix(crystal);
  const std::vector<Vec3> centring = centring_translations(crystal);
  const Vec3 d = normalized(mat_vec(L, {double(uvw[0]), double(uvw[1]), double(uvw[2])}));

  const double rmax = std::max(opt.max_lateral, opt.max_period);
  const std::vector<LatticeVector> vecs = lattice_vectors(L, centring, rmax);

  // period along the axis: the shortest lattice vector parallel to d
  const LatticeVector* t = nullptr;
  for (const LatticeVector& v : vecs)
    if (v.length <= opt.max_period && dot(v.cart, d) > 0 && norm(cross(v.cart, d)) < 1e-6 * v.length) {
      t = &v;
      break;
    }
  if (!t)
    throw std::invalid_argument("zone axis " + uvw_string(uvw) + " of '" + crystal.name + "': no period ≤ " +
                                std::to_string(opt.max_period) + " Å (raise OrientOptions::max_period)");

  // in-plane candidates: (nearly) perpendicular to d
  std::vector<const LatticeVector*> perp;
  for (const LatticeVector& v : vecs)
    if (v.length <= opt.max_lateral && std::abs(dot(v.cart, d)) / v.length <= opt.max_strain) perp.push_back(&v);

  Vec3 xdir{};
  if (opt.x_axis) {
    const auto& h = *opt.x_axis;
    if (h[0] == 0 && h[1] == 0 && h[2] == 0) throw std::invalid_argument("x_axis [0 0 0] has no direction");
    xdir = normalized(mat_vec(L, {double(h[0]), double(h[1]), double(h[2])}));
    if (std::abs(dot(xdir, d)) > opt.max_strain)
      throw std::invalid_argument("x_axis " + uvw_string(h) + " is not perpendicular to the zone axis " + uvw_string(uvw));
  }
  struct Choice {
    const LatticeVector* p = nullptr;
    const LatticeVector* q = nullptr;
    double area = 0, shear = 0;
  } best;
  for (const LatticeVector* p : perp)
    for (const LatticeVector* q : perp) {
      if (opt.x_axis && (dot(p->cart, xdir) <= 0 || norm(cross(p->cart, xdir)) > 1e-6 * p->length)) continue;
      double area = dot(cross(p->cart, q->cart), d);
      if (area < 1e-6) continue;  // right-handed (p, q, d) only
      double shear = std::abs(dot(p->cart, q->cart)) / (p->length * q->length);
      if (shear > 2 * opt.max_strain) continue;  // E_xy ≈ cos(angle)/2 ≤ max_strain
      bool better = false;
      if (!best.p) better = true;
      else if (area < best.area - 1e-6) better = true;
      else if (area < best.area + 1e-6) {
        if (shear < best.shear - 1e-9) better = true;
        else if (shear < best.shear + 1e-9) {
          // prefer the squarer cell, then the listing order (deterministic)
          double r = std::abs(p->length - q->length), rb = std::abs(best.p->length - best.q->length);
          if (r < rb - 1e-9) better = true;
        }
      }
      if (better) best = {p, q, area, shear};
    }
  if (!best.p)
    throw std::invalid_argument("zone axis " + uvw_string(uvw) + " of '" + crystal.name +
                                "': no orthogonal periodic cell with in-plane vectors ≤ " +
                                std::to_string(opt.max_lateral) + " Å and strain ≤ " + std::to_string(opt.max_strain) +
                                " (raise OrientOptions::max_lateral or max_strain)");

  OrientedCell oc;
  oc.zone_axis = uvw;
  // lab frame: z along d, x along p's component ⊥ d
  Vec3 pz = best.p->cart;
  double pd = dot(pz, d);
  Vec3 xh = normalized({pz[0] - pd * d[0], pz[1] - pd * d[1], pz[2] - pd * d[2]});
  Vec3 yh = cross(d, xh);
  oc.rotation = {xh, yh, d};
  Mat3 S{};  // cell vectors as columns, crystal Cartesian
  Mat3 Sf{};
  for (int i = 0; i < 3; ++i) {
    S[i] = {best.p->cart[i], best.q->cart[i], t->cart[i]};
    Sf[i] = {best.p->frac[i], best.q->frac[i], t->frac[i]};
  }
  oc.supercell = Sf;
  Mat3 M = mat_mul(oc.rotation, S);  // lab-frame cell vectors (columns)
  const double Lx = M[0][0], Ly = M[1][1], Lz = M[2][2];
  Mat3 B{Vec3{Lx, 0, 0}, Vec3{0, Ly, 0}, Vec3{0, 0, Lz}};
  oc.deformation = mat_mul(B, inverse(M));
  Mat3 FtF = mat_mul(transpose(oc.deformation), oc.deformation);
  Mat3 I = identity();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      oc.strain[i][j] = 0.5 * (FtF[i][j] - I[i][j]);
      oc.max_strain = std::max(oc.max_strain, std::abs(oc.strain[i][j]));
    }
  if (oc.max_strain > opt.max_strain * (1 + 1e-9) + 1e-12)
    throw std::invalid_argument("zone axis " + uvw_string(uvw) + ": best cell needs strain " +
                                std::to_string(oc.max_strain) + " > max_strain " + std::to_string(opt.max_strain));

  // fill: every conventional translation n and site f with S⁻¹·L·(n+f) in [0,1)³
  Mat3 Sfi = inverse(Sf);
  Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    Vec3 corner = mat_vec(Sf, {double(c & 1), double((c >> 1) & 1), double((c >> 2) & 1)});
    for (int i = 0; i < 3; ++i) {
      lo[i] = std::min(lo[i], corner[i]);
      hi[i] = std::max(hi[i], corner[i]);
    }
  }
  const double eps = 1e-7;
  Structure& s = oc.structure;
  s.cell = {Lx, Ly, Lz};
  for (int i = static_cast<int>(std::floor(lo[0])) - 1; i <= static_cast<int>(std::ceil(hi[0])); ++i)
    for (int j = static_cast<int>(std::floor(lo[1])) - 1; j <= static_cast<int>(std::ceil(hi[1])); ++j)
      for (int k = static_cast<int>(std::floor(lo[2])) - 1; k <= static_cast<int>(std::ceil(hi[2])); ++k)
        for (const Site& site : crystal.sites) {
          Vec3 gsc = mat_vec(Sfi, {i + site.fx, j + site.fy, k + site.fz});
          bool inside = true;
          for (double& v : gsc) {
            if (v < -eps || v >= 1 - eps) inside = false;
            if (v < 0) v = 0;
          }
          if (!inside) continue;
          s.atoms.push_back({site.Z, gsc[0] * Lx, gsc[1] * Ly, gsc[2] * Lz, site.occupancy, site.rms});
        }
  const double expected = static_cast<double>(crystal.sites.size()) * std::abs(det(Sf));
  if (std::abs(static_cast<double>(s.atoms.size()) - expected) > 1e-3)
    throw std::logic_error("orient_along: found " + std::to_string(s.atoms.size()) + " atoms, expected " +
                           std::to_string(expected) + " (sites on the cell boundary not resolved)");
  return oc;
}

Vec3 lab_direction(const OrientedCell& oc, const Crystal& crystal, const Vec3& uvw) {
  Vec3 v = mat_vec(oc.deformation, mat_vec(oc.rotation, mat_vec(lattice_matrix(crystal), uvw)));
  return normalized(v);
}

Vec3 lab_plane_normal(const OrientedCell& oc, const Crystal& crystal, const Vec3& hkl) {
  // plane normal ∝ (L⁻¹)ᵀ·h in the crystal frame; normals transform with F⁻ᵀ
  Vec3 n = mat_vec(transpose(inverse(lattice_matrix(crystal))), hkl);
  n = mat_vec(oc.rotation, n);
  n = mat_vec(transpose(inverse(oc.deformation)), n);
  return normalized(n);
}

Structure tile(const Structure& s, int nx, int ny, int nz) {
  if (nx < 1 || ny < 1 || nz < 1) throw std::invalid_argument("tile repeats must be ≥ 1");
  Structure t;
  t.cell = {s.cell.x * nx, s.cell.y * ny, s.cell.z * nz};
  t.atoms.reserve(s.atoms.size() * static_cast<std::size_t>(nx) * ny * nz);
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i)
        for (Atom a : s.atoms) {
          a.x += i * s.cell.x;
          a.y += j * s.cell.y;
          a.z += k * s.cell.z;
          t.atoms.push_back(a);
        }
  return t;
}

Specimen tile(const Specimen& s, int nx, int ny, int nz) {
  check_specimen(s);
  Specimen t;
  t.structure = tile(s.structure, nx, ny, nz);
  t.class_names = s.class_names;
  t.info = s.info;
  Structure v{s.structure.cell, s.vacancies};
  t.vacancies = tile(v, nx, ny, nz).atoms;
  for (int r = 0; r < nx * ny * nz; ++r) t.atom_class.insert(t.atom_class.end(), s.atom_class.begin(), s.atom_class.end());
  return t;
}

std::array<int, 3> repeats_for_size(const Cell& cell, double lx, double ly, double thickness) {
  if (!(cell.x > 0 && cell.y > 0 && cell.z > 0)) throw std::invalid_argument("repeats_for_size: empty cell");
  auto r = [](double want, double have) { return std::max(1, static_cast<int>(std::lround(want / have))); };
  return {r(lx, cell.x), r(ly, cell.y), r(thickness, cell.z)};
}

void tilt(Structure& s, double tilt_x_mrad, double tilt_y_mrad) {
  const double ax = tilt_x_mrad * 1e-3, ay = tilt_y_mrad * 1e-3;
  const Mat3 Rx{Vec3{1, 0, 0}, Vec3{0, std::cos(ax), -std::sin(ax)}, Vec3{0, std::sin(ax), std::cos(ax)}};
  const Mat3 Ry{Vec3{std::cos(ay), 0, std::sin(ay)}, Vec3{0, 1, 0}, Vec3{-std::sin(ay), 0, std::cos(ay)}};
  const Mat3 R = mat_mul(Ry, Rx);
  const Vec3 c{s.cell.x / 2, s.cell.y / 2, s.cell.z / 2};
  double zmax0 = 0;
  for (const Atom& a : s.atoms) zmax0 = std::max(zmax0, a.z);
  double zmin = 1e300, zmax = -1e300;
  for (Atom& a : s.atoms) {
    Vec3 r = mat_vec(R, {a.x - c[0], a.y - c[1], a.z - c[2]});
    a.x = r[0] + c[0];
    a.y = r[1] + c[1];
    a.z = r[2] + c[2];
    a.x -= s.cell.x * std::floor(a.x / s.cell.x);
    a.y -= s.cell.y * std::floor(a.y / s.cell.y);
    if (a.x >= s.cell.x) a.x = 0;
    if (a.y >= s.cell.y) a.y = 0;
    zmin = std::min(zmin, a.z);
    zmax = std::max(zmax, a.z);
  }
  if (s.atoms.empty()) return;
  const double shift = std::max(0.0, -zmin);
  for (Atom& a : s.atoms) a.z += shift;
  s.cell.z += shift + std::max(0.0, zmax - zmax0);
}

}  // namespace stemtwin
