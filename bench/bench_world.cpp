// The world's overview path, in process (no socket, no JSON): what a 512 × 512 frame over
// 1 µm costs in the projected-composition model, the read-out and the dose bookkeeping.
// Prints BENCH lines (seconds):
//   world_density_s      World::areal_density at 512 × 512 × 9 points (the footprint samples), one thread
//   world_overview_s     Microscope::scan of the frame, cold and repeated (ScanResult::seconds)
//   world_atoms_window_s World::atoms_in of a 60 × 60 Å window of substrate (the atoms of one field)
#include <chrono>
#include <cstdio>

#include "stemtwin/session/microscope.hpp"
#include "stemtwin/specimen/world.hpp"

using namespace stemtwin;
using Clock = std::chrono::steady_clock;

int main() {
  const World world({}, 0);
  auto t0 = Clock::now();
  double sum = 0;
  for (int iy = 0; iy < 512 * 3; ++iy)
    for (int ix = 0; ix < 512 * 3; ++ix) {
      const ArealDensity d = world.areal_density(5000 + ix * 10000.0 / 1536, 5000 + iy * 10000.0 / 1536);
      for (std::size_t j = 0; j < d.n; ++j) sum += d.per_A2[j];
    }
  std::printf("BENCH name=world_density_s value=%.4g points=%d checksum=%.6g\n",
              std::chrono::duration<double>(Clock::now() - t0).count(), 1536 * 1536, sum);
  Microscope m(World({}, 0));
  ScanSettings s = m.scan_settings();
  s.nx = s.ny = 512;
  s.fov_x_A = s.fov_y_A = 1e4;
  const std::vector<Detector> haadf{AnnularDetector{"HAADF", 70, 160}};
  for (const char* label : {"cold", "repeat"}) {
    const ScanResult r = m.scan(s, haadf);
    std::printf("BENCH name=world_overview_s value=%.4g frame=512x512 fov_A=10000 call=%s\n", r.seconds, label);
  }
  t0 = Clock::now();
  const Specimen w = world.atoms_in({8000, 8000, 60, 60});
  std::printf("BENCH name=world_atoms_window_s value=%.4g atoms=%zu window_A=60x60x100\n",
              std::chrono::duration<double>(Clock::now() - t0).count(), w.structure.atoms.size());
  return 0;
}
