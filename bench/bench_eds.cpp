// Cost of EDS riding on a HAADF scan (issue #15: ≤ 30 % over the HAADF scan), and the EDS
// Sr-K / Ti-K map contrast of SrTiO3 [001] versus thickness. Every measurement prints one line:
//   BENCH case=eds_overhead method=… f=… width_A=… cells=4x4xN positions=64 haadf_s=… haadf_eds_s=… ratio=… overhead_pct=… cpu_ratio=…
//   BENCH case=eds_prism_samples f=2 width_A=… cells=… atoms=… beams=… pixels=… samples_MiB=…
//   BENCH case=eds_contrast thickness_A=… line=Sr_Ka max=… min=… contrast=… on_column_ratio=…
//
//   bench_eds [--quick] [--threads N]
//     --quick    overhead on 4 × 4 × 4 cells, contrast at 2 thicknesses (seconds; smoke test)
//     default    overhead on 4 × 4 × 10 cells, contrast at 2, 5, 10, 20 cells
//     --help     this text
//
// Specimen: SrTiO3 (a = 3.905 Å) [001], 4 × 4 cells laterally, no thermal vibration (one
// configuration: the cost ratio does not depend on it, both runs scale alike); 300 kV,
// 21.4 mrad probe, HAADF 60–130 mrad; grid 320 × 320 (0.049 Å, band limit 134 mrad); slices
// a/2; 8 × 8 positions over one unit cell near the middle of the supercell. The overhead run
// is HAADF alone, then the same scan with an InelasticRecorder (δ local approximation, then a
// 0.3 Å Gaussian footprint: ~1800 pixels per atom on this grid) plus
// the EDS model, expected spectra (2048 channels), Poisson spectra and the Sr Kα, Ti Kα and
// O Kα maps; each is timed 5 times alternately, best wall and best CPU time (all threads,
// std::clock) kept: on a shared machine the CPU time is the steadier measure of the work.
// The same with PRISM at f = 2 (δ and 0.1 Å footprints; 0.3 Å would keep ~2 GiB of samples):
// PRISM alone, then PRISM with the recorder (docs/spectroscopy.md §7a); and the memory PRISM's
// samples take per footprint width.
// Contrast: the clean Sr Kα and Ti Kα maps, width 0.3 Å (docs/spectroscopy.md), from one scan
// of the thickest specimen recorded at every depth of the series (InelasticSettings::depths_A);
// contrast = (max − min)/(max + min) over the 8 × 8 map; on_column_ratio = the map with the
// probe on that element's column over the map with the probe on the other cation column
// (Sr at the cell corner, Ti at the centre).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/prism.hpp"

using namespace stemtwin;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kA = 3.905;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Structure srtio3(int r, int nz) {
  Structure s;
  s.cell = {kA * r, kA * r, kA * nz};
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j)
      for (int k = 0; k < nz; ++k) {
        const double x = kA * i, y = kA * j, z = kA * k;
        s.atoms.push_back({38, x, y, z, 1.0, 0.0});
        s.atoms.push_back({22, x + kA / 2, y + kA / 2, z + kA / 2, 1.0, 0.0});
        s.atoms.push_back({8, x + kA / 2, y + kA / 2, z, 1.0, 0.0});
        s.atoms.push_back({8, x + kA / 2, y, z + kA / 2, 1.0, 0.0});
        s.atoms.push_back({8, x, y + kA / 2, z + kA / 2, 1.0, 0.0});
      }
  return s;
}

/// 8 × 8 positions over the unit cell whose Sr corner is at (2a, 2a); position (0,0) on Sr,
/// (4,4) on the Ti–O column.
std::vector<Point2> positions() {
  std::vector<Point2> p;
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 8; ++i) p.push_back({2 * kA + kA * i / 8.0, 2 * kA + kA * j / 8.0});
  return p;
}

void usage() {
  std::puts("bench_eds [--quick] [--threads N]: EDS cost over HAADF and SrTiO3 Sr-K/Ti-K contrast vs thickness");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      omp_set_num_threads(std::atoi(argv[++i]));
    } else {
      usage();
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  const Grid grid(4 * kA, 4 * kA, 320, 320);
  ProbeOptics optics;
  optics.energy_eV = 300e3;
  optics.semiangle_mrad = 21.4;
  StemSettings st;
  st.potential.slice_thickness_A = kA / 2;
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 60, 130}};
  const std::vector<Point2> pos = positions();
  EdsDetector det;

  // ---- overhead, for the δ local approximation and a 0.3 Å footprint; and on PRISM ----
  struct Case {
    Method method;
    std::size_t f;
    double width;
  };
  for (const Case& c : {Case{Method::Multislice, 1, 0.0}, Case{Method::Multislice, 1, 0.3}, Case{Method::Prism, 2, 0.0},
                        Case{Method::Prism, 2, 0.1}}) {
    const double width = c.width;
    st.method = c.method;
    st.interpolation_x = st.interpolation_y = c.f;
    const int nz = quick ? 4 : 10;
    const Structure s = srtio3(4, nz);
    double best_haadf = 1e300, best_eds = 1e300, cpu_haadf = 1e300, cpu_eds = 1e300;
    for (int rep = 0; rep < 5; ++rep) {
      auto t0 = Clock::now();
      std::clock_t c0 = std::clock();
      const StemResult h = simulate_stem(s, grid, optics, pos, dets, st);
      best_haadf = std::min(best_haadf, seconds_since(t0));
      cpu_haadf = std::min(cpu_haadf, double(std::clock() - c0) / CLOCKS_PER_SEC);
      t0 = Clock::now();
      c0 = std::clock();
      InelasticRecorder rec(s, st.seed, {width, {}});
      const StemResult he = simulate_stem(s, grid, optics, pos, dets, st, nullptr, &rec);
      const EdsModel model = eds_model(s, optics.energy_eV, det);
      const SpectrumImage clean = eds_expected(rec.result(), model, 1e5);
      const SpectrumImage noisy = poisson_spectra(clean, 1, 0);
      const auto maps = element_maps(noisy, model, {{38, "Ka"}, {22, "Ka"}, {8, "Ka"}});
      best_eds = std::min(best_eds, seconds_since(t0));
      cpu_eds = std::min(cpu_eds, double(std::clock() - c0) / CLOCKS_PER_SEC);
      if (h.signal("haadf").values != he.signal("haadf").values) {
        std::fprintf(stderr, "bench_eds: the recorder changed the HAADF signal\n");
        return 1;
      }
      if (maps.size() != 3) return 1;
    }
    std::printf("BENCH case=eds_overhead method=%s f=%zu width_A=%.1f cells=4x4x%d positions=%zu threads=%d haadf_s=%.3f "
                "haadf_eds_s=%.3f ratio=%.3f overhead_pct=%.1f haadf_cpu_s=%.3f haadf_eds_cpu_s=%.3f cpu_ratio=%.3f\n",
                c.method == Method::Prism ? "prism" : "multislice", c.f, width, nz, pos.size(), omp_get_max_threads(), best_haadf,
                best_eds, best_eds / best_haadf, 100 * (best_eds / best_haadf - 1), cpu_haadf, cpu_eds, cpu_eds / cpu_haadf);
  }
  // PRISM's samples (beams × the footprints' pixels, SMatrixSamples) for each footprint width,
  // counted from the recorder's pixel lists without building an S-matrix.
  for (double width : {0.0, 0.1, 0.3}) {
    const int nz = quick ? 4 : 10;
    const Structure s = srtio3(4, nz);
    InelasticRecorder rec(s, st.seed, {width, {}});
    const std::vector<double> dz(std::size_t(2 * nz), kA / 2);
    std::size_t pixels = 0;
    const auto lists = prism_observed_pixels(rec, grid, dz, 1);
    for (const auto& read : lists.front()) pixels += read.size();
    const std::size_t beams = prism_beams(grid, optics.energy_eV, optics.semiangle_mrad, 2, 2).size();
    std::printf("BENCH case=eds_prism_samples f=2 width_A=%.1f cells=4x4x%d atoms=%zu beams=%zu pixels=%zu samples_MiB=%.1f\n", width,
                nz, s.atoms.size(), beams, pixels, double(beams * pixels * sizeof(cfloat)) / (1 << 20));
  }
  st.method = Method::Multislice;

  // ---- contrast versus thickness: one scan of the thickest specimen, recorded at depths ----
  const std::vector<int> thick = quick ? std::vector<int>{2, 5} : std::vector<int>{2, 5, 10, 20};
  const Structure s = srtio3(4, thick.back());
  InelasticSettings series{0.3, {}, {}, {}};
  for (int nz : thick) series.depths_A.push_back(kA * nz);
  InelasticRecorder rec(s, st.seed, series);
  simulate_stem(s, grid, optics, pos, dets, st, nullptr, &rec);
  const EdsModel model = eds_model(s, optics.energy_eV, det);  // self-absorption off: the model is depth-independent
  for (std::size_t d = 0; d < thick.size(); ++d) {
    const SpectrumImage clean = eds_expected(rec.result(), model, 1.0, d);
    const auto maps = element_maps(clean, model, {{38, "Ka"}, {22, "Ka"}});
    for (const auto& m : maps) {
      const double mx = *std::max_element(m.counts.begin(), m.counts.end());
      const double mn = *std::min_element(m.counts.begin(), m.counts.end());
      const double on_sr = m.counts[0], on_ti = m.counts[4 * 8 + 4];
      const double ratio = m.Z == 38 ? on_sr / on_ti : on_ti / on_sr;
      std::printf("BENCH case=eds_contrast thickness_A=%.2f line=%s_%s max=%.4g min=%.4g contrast=%.3f on_column_ratio=%.3f "
                  "per_electron_on_column=%.3g\n",
                  rec.result().depths_A[d], m.Z == 38 ? "Sr" : "Ti", m.family.c_str(), mx, mn, (mx - mn) / (mx + mn), ratio,
                  m.Z == 38 ? on_sr : on_ti);
    }
  }
  return 0;
}
