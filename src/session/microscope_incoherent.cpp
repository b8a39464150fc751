// Microscope::Impl: the incoherent model's images (maps cached per detector, probe and
// pixel) and its scale, learnt from full-physics frames.
#include <algorithm>
#include <cstdio>
#include <string>

#include "microscope_impl.hpp"

namespace stemtwin {

std::map<std::string, Image> Microscope::Impl::incoherent_images(const Snapshot& sn, const std::vector<Point2>& pos, double px, double py) {
  if (world) return world_incoherent_images(sn, pos, px, py);
  std::map<std::string, Image> out;
  const ProbeOptics probe = sn.effective_probe();
  for (const Detector& d : sn.detectors) {
    const auto& a = std::get<AnnularDetector>(d);
    char buf[64];
    std::snprintf(buf, sizeof buf, "|%a,%a,%a", px, py, probe.source_size_A);
    const std::string key = physics_key(probe, {d}) + buf;
    auto it = std::find_if(maps.begin(), maps.end(), [&](const MapEntry& e) { return e.key == key && e.specimen_version == specimen_version; });
    if (it == maps.end()) {
      maps.push_front({key, specimen_version, incoherent_map(specimen.structure, probe, a, px, py)});
      while (maps.size() > 16) maps.pop_back();
      it = maps.begin();
    }
    out[a.name] = it->map.sample(pos, sn.scan.nx, sn.scan.ny);
  }
  return out;
}

void Microscope::Impl::learn_incoherent_scale(const Snapshot& sn, const std::vector<Point2>& pos, const StemResult& res, double px, double py) {
  if (settings.incoherent_above_A <= 0) return;
  for (const Detector& d : sn.detectors) {
    const auto* a = std::get_if<AnnularDetector>(&d);
    if (!a || a->azimuth_deg) continue;
    Snapshot one = sn;
    one.detectors = {d};
    const Image model = incoherent_images(one, pos, px, py).at(a->name);
    const Image reference = res.image(a->name, sn.scan.nx, sn.scan.ny);
    if (!(model.mean() > 0) || !(reference.mean() > 0)) continue;
    incoherent_scale[detector_key(*a)] = {calibrate_incoherent(model, reference).scale, sn.call};
  }
}

}  // namespace stemtwin
