// HAADF + EDS from one multislice scan of SrTiO3 [001]: the HAADF image, the EDS spectrum
// summed over the scan (printed as its strongest lines) and Sr Kα / Ti Kα / O Kα maps,
// clean and at a realistic dose.
//
//   example_eds_map [--quick]
//
// The EDS signal rides on the HAADF scan: an InelasticRecorder observes the probe's wave
// entering every slice (docs/spectroscopy.md); the spectrum model turns it into counts.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;

int main(int argc, char** argv) {
  const bool quick = argc > 1 && !std::strcmp(argv[1], "--quick");
  const double a = 3.905;
  const int cells = quick ? 3 : 10, scan = quick ? 6 : 12;

  // A 2 × 2 × cells SrTiO3 supercell.
  Structure s;
  s.cell = {2 * a, 2 * a, cells * a};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < cells; ++k) {
        const double x = a * i, y = a * j, z = a * k;
        for (const Atom& at : {Atom{38, x, y, z}, Atom{22, x + a / 2, y + a / 2, z + a / 2}, Atom{8, x + a / 2, y + a / 2, z},
                               Atom{8, x + a / 2, y, z + a / 2}, Atom{8, x, y + a / 2, z + a / 2}})
          s.atoms.push_back(at);
      }

  const Grid grid(2 * a, 2 * a, 160, 160);
  ProbeOptics optics;
  optics.energy_eV = 300e3;
  optics.semiangle_mrad = 21.4;
  StemSettings settings;
  settings.potential.slice_thickness_A = a / 2;
  std::vector<Point2> positions;
  for (int j = 0; j < scan; ++j)
    for (int i = 0; i < scan; ++i) positions.push_back({a * i / scan, a * j / scan});

  // One scan: HAADF through the detectors, the inelastic signal through the recorder.
  InelasticRecorder recorder(s, settings.seed, {0.3, {}});  // 0.3 Å ionisation footprint
  const StemResult haadf = simulate_stem(s, grid, optics, positions, {AnnularDetector{"haadf", 60, 130}}, settings,
                                         nullptr, &recorder);

  EdsDetector detector;  // 0–20.48 keV, 130 eV at Mn Kα, 0.7 sr
  const EdsModel model = eds_model(s, optics.energy_eV, detector);
  // Atomic-resolution EDS sums many fast frames: 100 pA × 16 ms in all ≈ 1e7 electrons per position.
  const double dose = 100e-12 * 16e-3 / 1.602176634e-19;
  const SpectrumImage clean = eds_expected(recorder.result(), model, dose);
  const SpectrumImage noisy = poisson_spectra(clean, /*seed=*/1, /*sample=*/0);

  const auto& h = haadf.signal("haadf").values;
  std::printf("thickness %.1f Å, %zu positions, dose %.3g e-/position\n", s.cell.z, positions.size(), dose);
  std::printf("HAADF: min %.4f max %.4f (fraction of the beam)\n", *std::min_element(h.begin(), h.end()),
              *std::max_element(h.begin(), h.end()));

  // Summed spectrum: its five strongest channels.
  std::vector<double> sum(clean.channels, 0.0);
  for (std::size_t p = 0; p < noisy.positions; ++p)
    for (std::size_t c = 0; c < noisy.channels; ++c) sum[c] += noisy.values[p * noisy.channels + c];
  std::vector<std::size_t> order(sum.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](auto x, auto y) { return sum[x] > sum[y]; });
  std::printf("summed spectrum, total %.0f counts; strongest channels:", std::accumulate(sum.begin(), sum.end(), 0.0));
  for (int k = 0; k < 5; ++k) std::printf(" %.2f keV (%.0f)", model.channel_energy_eV(order[std::size_t(k)]) / 1e3, sum[order[std::size_t(k)]]);
  std::printf("\n");

  const std::vector<std::pair<int, std::string>> lines = {{38, "Ka"}, {22, "Ka"}, {8, "Ka"}};
  const auto maps_clean = element_maps(clean, model, lines);
  const auto maps_noisy = element_maps(noisy, model, lines);
  for (std::size_t m = 0; m < lines.size(); ++m) {
    const auto& c = maps_clean[m].counts;
    const auto& n = maps_noisy[m].counts;
    std::printf("%s %s map (%.2f keV): clean min %.3f max %.3f, noisy mean %.3f counts/position\n",
                element_symbol(maps_clean[m].Z).c_str(), maps_clean[m].family.c_str(), maps_clean[m].energy_eV / 1e3,
                *std::min_element(c.begin(), c.end()), *std::max_element(c.begin(), c.end()),
                std::accumulate(n.begin(), n.end(), 0.0) / double(n.size()));
  }
  return 0;
}
