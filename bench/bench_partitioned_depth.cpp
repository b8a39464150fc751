// Partitioned PRISM's error against multislice as the specimen thickens (issue 14): is the
// high-angle deficit a bug or the approximation? Partitioned PRISM takes the exit wave of a
// fine beam k = k_m + q as its parent's, tilted by q; the true wave walks λ·z·q further
// through every slice at depth z, which shifts the phase of its scattering to angle G by
// ≈ 2π·λ·z·q·G. If the deficit is that, it vanishes at one slice and grows with thickness
// (and with f, since |q| < f/L); a bug would not.
//   bench_partitioned_depth [--quick] [--threads N]
// Prints per thickness and f:  BENCH case=srtio3_4x4xN ... plain_adf_error partitioned_adf_error ...
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/specimen/builders.hpp"

using namespace stemtwin;

namespace {
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_partitioned_depth [--quick] [--threads N]\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  const std::vector<Detector> dets = {AnnularDetector{"adf", 40, 100}, AnnularDetector{"bf", 0, 10}};
  std::vector<Point2> pos;  // 6×6 over one unit cell
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 6; ++i) pos.push_back({3.905 * (2 + i / 6.0), 3.905 * (2 + j / 6.0)});
  const std::vector<int> thick = quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 5, 10};
  for (int n : thick) {
    PerovskiteParams p;
    p.repeats = {4, 4, n};
    const Structure s = build_perovskite(p, 0).structure;
    const Grid g(s.cell.x, s.cell.y, 200, 200);  // 0.078 Å: band limit 107 mrad
    ProbeOptics o;
    StemSettings st;
    st.potential.slice_thickness_A = 3.905 / 2;
    const StemResult ms = simulate_stem(s, g, o, pos, dets, st);
    for (std::size_t f : {2, 4}) {
      st.method = Method::Prism;
      st.interpolation_x = st.interpolation_y = f;
      st.prism_partitioned = false;
      const StemResult plain = simulate_stem(s, g, o, pos, dets, st);
      st.prism_partitioned = true;
      const StemResult part = simulate_stem(s, g, o, pos, dets, st);
      auto err = [&](const StemResult& r, const char* d) { return mean(r.signal(d).values) / mean(ms.signal(d).values) - 1; };
      std::printf("BENCH case=srtio3_4x4x%d thickness_A=%.2f f=%zu tilt_walk_A=%.3f plain_adf_error=%.4f "
                  "partitioned_adf_error=%.4f plain_bf_error=%.4f partitioned_bf_error=%.4f\n",
                  n, s.cell.z, f, wavelength_A(o.energy_eV) * s.cell.z * double(f) / g.lx, err(plain, "adf"), err(part, "adf"),
                  err(plain, "bf"), err(part, "bf"));
      std::fflush(stdout);
    }
  }
  return 0;
}
