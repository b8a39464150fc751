// A nanoparticle on an amorphous support.
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

#include "builder_common.hpp"

namespace stemtwin {

using namespace builder_detail;

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

}  // namespace stemtwin
