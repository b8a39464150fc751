// Microscope::Impl: the cache of simulated windows (a region of the specimen with its
// transmission functions) and the atoms of a window.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "microscope_impl.hpp"
#include "stemtwin/specimen/orient.hpp"

namespace stemtwin {

Window& Microscope::Impl::window_for(const Snapshot& sn, const std::vector<Point2>& pos, bool& hit) {
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const Point2& p : pos) {
    xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
  }
  const double m = margin(sn), snap = std::max(1.0, settings.window_snap_A);
  Window w;
  w.x0 = std::floor((xmin - m) / snap) * snap;
  w.y0 = std::floor((ymin - m) / snap) * snap;
  w.wx = std::ceil((xmax + m - w.x0) / snap) * snap;
  w.wy = std::ceil((ymax + m - w.y0) / snap) * snap;
  // Grow small windows symmetrically (in whole snaps) to the minimum side.
  const double minw = std::ceil(settings.min_window_A / snap) * snap;
  if (w.wx < minw) w.x0 -= std::floor((minw - w.wx) / 2 / snap) * snap, w.wx = minw;
  if (w.wy < minw) w.y0 -= std::floor((minw - w.wy) / 2 / snap) * snap, w.wy = minw;
  w.alpha = sn.stage.alpha_rad;
  w.beta = sn.stage.beta_rad;
  w.energy_eV = sn.optics.probe.energy_eV;
  w.specimen_version = specimen_version;
  for (auto it = cache.begin(); it != cache.end(); ++it)
    if (it->same(w)) {
      cache.splice(cache.begin(), cache, it);  // most recently used first
      hit = true;
      ++hits;
      cached_windows.store(cache.size());
      return cache.front();
    }
  hit = false;
  ++misses;
  {
    // Refuse, before allocating, a window whose transmission functions (complex float per
    // point, per slice, per configuration) would not fit in the memory budget.
    const double points = std::ceil(w.wx / settings.sampling_A) * std::ceil(w.wy / settings.sampling_A);
    const double slices = std::ceil(specimen.structure.cell.z / std::max(settings.potential.slice_thickness_A, 1e-3));
    const double configs = settings.thermal.enabled ? double(std::max<std::size_t>(1, settings.thermal.configurations)) : 1.0;
    const double bytes = points * slices * configs * 8.0;
    const double budget = double(default_memory_budget());
    if (!(bytes <= budget))
      throw std::invalid_argument("the field of view needs a " + std::to_string(int(w.wx)) + " × " + std::to_string(int(w.wy)) +
                                  " Å window: " + std::to_string(int(bytes / (1 << 20))) + " MiB of transmission functions, more than the " +
                                  std::to_string(int(budget / (1 << 20))) + " MiB available; use a smaller field of view or a coarser sampling");
  }
  w.grid = make_grid(w.wx, w.wy, settings.sampling_A, settings.method, settings.prism_interpolation);
  {
    // How many phonon configurations the window's transmission functions hold; they are
    // built on first use (transmissions()).
    const Structure base = world ? thermal_atoms(world_structure(w)) : Structure{};
    const Structure& s = world ? base : specimen.structure;
    w.thermal = std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; });
    w.configurations = w.thermal ? std::max<std::size_t>(1, settings.thermal.configurations) : 1;
  }
  cache.push_front(std::move(w));
  trim_cache();
  return cache.front();
}

Structure Microscope::Impl::thermal_atoms(Structure base) {
  apply_thermal_vibration(base, settings.thermal);
  if (thermal_note.empty()) thermal_note = thermal_warning(base, settings.thermal.configurations);
  return base;
}

void Microscope::Impl::trim_cache() {
  auto cached_bytes = [&] {
    double b = 0;
    for (const Window& c : cache) b += c.bytes;
    return b;
  };
  while (cache.size() > std::max<std::size_t>(1, settings.cache_entries) ||
         (cache.size() > 1 && cached_bytes() > double(default_memory_budget()))) {
    const void* gone = &cache.back();
    clean_cache.remove_if([&](const CleanEntry& e) { return e.window == gone; });
    cache.pop_back();
  }
  cached_windows.store(cache.size());
}

void Microscope::Impl::transmissions(Window& w) {
  if (!w.configs.empty()) return;
  if (!w.fft) w.fft = std::make_unique<Fft2>(w.grid, FftPlanning::Wisdom);  // measured once per machine and size, reproducible
  // Thermal displacements belong to the specimen's atoms, not to the window: displace the
  // whole specimen per configuration (stream keyed by the atom's index in the specimen),
  // then cut the window, so every window and every periodic image agree on each atom.
  // A world's window: its atoms, made now (world.hpp); thermal displacements are keyed by
  // the atom's index in the window, so they are reproducible per window.
  const bool thermal = w.thermal;
  const Structure base = world ? thermal_atoms(world_structure(w)) : Structure{};
  for (std::size_t c = 0; c < w.configurations; ++c) {
    const Structure local = world ? (thermal ? displace_atoms(base, settings.seed, c) : base)
                                  : extract(w, thermal ? displace_atoms(specimen.structure, settings.seed, c) : specimen.structure);
    w.configs.push_back(transmission_functions(build_potential(local, w.grid, settings.potential), w.energy_eV, *w.fft));
  }
  w.bytes = double(w.grid.size()) * double(w.configs.front().slices.size()) * double(w.configs.size()) * 8.0;
  trim_cache();
}

Structure Microscope::Impl::extract(const Window& w, const Structure& s) {
  Structure out;
  out.cell = {w.wx, w.wy, s.cell.z};
  for (const Atom& a : s.atoms) {
    // Every periodic image of the atom that falls inside the window.
    const double fx0 = std::ceil((w.x0 - a.x) / s.cell.x), fy0 = std::ceil((w.y0 - a.y) / s.cell.y);
    for (double ix = fx0; a.x + ix * s.cell.x < w.x0 + w.wx; ++ix)
      for (double iy = fy0; a.y + iy * s.cell.y < w.y0 + w.wy; ++iy) {
        Atom b = a;
        b.x = a.x + ix * s.cell.x - w.x0;
        b.y = a.y + iy * s.cell.y - w.y0;
        out.atoms.push_back(b);
      }
  }
  if (w.alpha != 0 || w.beta != 0) tilt(out, w.beta * 1e3, w.alpha * 1e3);  // about x: alpha tilts y
  return out;
}

}  // namespace stemtwin
