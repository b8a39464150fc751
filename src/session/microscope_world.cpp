// Microscope on a World (world.hpp): the session's windows from the world's atoms, the
// overview model from its projected composition, and the dose map over it.
#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <optional>
#include <cstdio>
#include <stdexcept>

#include "microscope_impl.hpp"

namespace stemtwin {

Microscope::Microscope(World world, MicroscopeSettings settings)
    : impl_(std::make_unique<Impl>(Specimen{}, settings, std::make_shared<const World>(std::move(world)))) {}

const World* Microscope::world() const { return impl_->world.get(); }

Structure Microscope::Impl::world_structure(const Window& w) const {
  const Specimen s = world->atoms_in({w.x0, w.y0, w.wx, w.wy});
  Structure out = s.structure;  // cell: the window × the world's thickness
  for (Atom& a : out.atoms) a.x -= w.x0, a.y -= w.y0;
  if (w.alpha != 0 || w.beta != 0) tilt(out, w.beta * 1e3, w.alpha * 1e3);  // about x: alpha tilts y (as extract)
  return out;
}

Structure Microscope::Impl::spectra_check_specimen(Point2 near) const {
  if (!world) return specimen.structure;
  for (const Point2 p : {near, Point2{0.5 * world->extent().x, 0.5 * world->extent().y}}) {
    Structure s = world->atoms_in({p.x - 10, p.y - 10, 20, 20}).structure;
    if (!s.atoms.empty()) return s;
  }
  return specimen.structure;
}

namespace {
constexpr double kWorldWindowSnap_A = 10;  // atom-map windows snap to this, so nearby frames share a map
}  // namespace

std::map<std::string, Image> Microscope::Impl::world_incoherent_images(const Snapshot& sn, const std::vector<Point2>& pos, double px,
                                                                      double py) {
  std::map<std::string, Image> out;
  const ProbeOptics probe = sn.effective_probe();
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const Point2& p : pos) {
    xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
  }
  const bool atoms = std::max(xmax - xmin + px, ymax - ymin + py) <= settings.world_atoms_fov_A;
  if (atoms) {
    // The atoms of a window around the positions, its map treated as periodic: a margin of
    // 10 Å (several probe widths, plus the pixel footprint) keeps the wrap-around away.
    const double m = 10 + std::max(px, py), snap = kWorldWindowSnap_A;
    Window w;
    w.x0 = std::floor((xmin - m) / snap) * snap;
    w.y0 = std::floor((ymin - m) / snap) * snap;
    w.wx = std::ceil((xmax + m - w.x0) / snap) * snap;
    w.wy = std::ceil((ymax + m - w.y0) / snap) * snap;
    char wk[128];
    std::snprintf(wk, sizeof wk, "|world %a,%a,%a,%a|%a,%a,%a", w.x0, w.y0, w.wx, w.wy, px, py, probe.source_size_A);
    std::vector<Point2> local(pos.size());
    for (std::size_t i = 0; i < pos.size(); ++i) local[i] = {pos[i].x - w.x0, pos[i].y - w.y0};
    std::optional<Structure> st;
    for (const Detector& d : sn.detectors) {
      const auto& a = std::get<AnnularDetector>(d);
      const std::string key = physics_key(probe, {d}) + wk;
      auto it = std::find_if(maps.begin(), maps.end(), [&](const MapEntry& e) { return e.key == key; });
      if (it == maps.end()) {
        if (!st) {
          st = world_structure(w);
          st->cell = {w.wx, w.wy, st->cell.z};
        }
        maps.push_front({key, specimen_version, incoherent_map(*st, probe, a, px, py)});
        while (maps.size() > 16) maps.pop_back();
        it = maps.begin();
      }
      out[a.name] = it->map.sample(local, sn.scan.nx, sn.scan.ny);
    }
    return out;
  }
  // Pixels far wider than the probe: the signal is D + Σ_Z weight_Z · (atoms of Z per Å²),
  // averaged over k × k points of each pixel's footprint (k = 2 above 4 Å: region edges
  // inside a pixel blend; within a region the density is smooth and one point would do).
  const int k = std::max(px, py) > 4.0 ? 2 : 1;
  std::vector<ArealDensity> density(pos.size() * std::size_t(k * k));
  const long long n = (long long)pos.size();
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < n; ++i)
    for (int sy = 0; sy < k; ++sy)
      for (int sx = 0; sx < k; ++sx)
        density[std::size_t(i) * std::size_t(k * k) + std::size_t(sy * k + sx)] =
            world->areal_density(pos[std::size_t(i)].x + px * ((sx + 0.5) / k - 0.5), pos[std::size_t(i)].y + py * ((sy + 0.5) / k - 0.5));
  for (const Detector& d : sn.detectors) {
    const auto& a = std::get<AnnularDetector>(d);
    const double D = bright_field_share(probe, a);
    std::array<double, 119> weight;
    weight.fill(std::nan(""));
    for (const ArealDensity& ad : density)
      for (std::size_t j = 0; j < ad.n; ++j)
        if (std::isnan(weight[std::size_t(ad.Z[j])])) weight[std::size_t(ad.Z[j])] = incoherent_weight_A2(ad.Z[j], probe, a);
    Image im(sn.scan.nx, sn.scan.ny);
    for (std::size_t i = 0; i < pos.size(); ++i) {
      double v = 0;
      for (int s = 0; s < k * k; ++s) {
        const ArealDensity& ad = density[i * std::size_t(k * k) + std::size_t(s)];
        double u = D;
        for (std::size_t j = 0; j < ad.n; ++j) u += weight[std::size_t(ad.Z[j])] * ad.per_A2[j];
        v += std::max(0.0, u);
      }
      im.data[i] = v / double(k * k);
    }
    out[a.name] = std::move(im);
  }
  return out;
}

DoseMap Microscope::Impl::world_dose_map(double pixel_A) const {
  const Cell c = world->extent();
  const double gx = c.x / double(world_dose.nx), gy = c.y / double(world_dose.ny);
  pixel_A = std::max({pixel_A, gx, gy});  // no finer than the stored grid
  DoseMap d;
  d.pixel_A = pixel_A;
  d.total_electrons = total_electrons;
  d.dose_e_per_A2 = Image(std::max<std::size_t>(1, std::size_t(std::ceil(c.x / pixel_A))), std::max<std::size_t>(1, std::size_t(std::ceil(c.y / pixel_A))));
  Image& im = d.dose_e_per_A2;
  for (std::size_t iy = 0; iy < world_dose.ny; ++iy)
    for (std::size_t ix = 0; ix < world_dose.nx; ++ix) {
      const double e = world_dose(iy, ix);
      if (e == 0) continue;
      const auto X = std::min(im.nx - 1, std::size_t((double(ix) + 0.5) * gx / pixel_A));
      const auto Y = std::min(im.ny - 1, std::size_t((double(iy) + 0.5) * gy / pixel_A));
      im(Y, X) += e / (pixel_A * pixel_A);
    }
  return d;
}

}  // namespace stemtwin
