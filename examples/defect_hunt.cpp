// defect_hunt: an agent hunts defects through the public C++ session API (microscope.hpp):
// a low-dose overview of the whole specimen, then high-dose zooms only on what looks
// anomalous, and a report of the dose spent. The C++ twin of examples/defect_hunt.py.
//
// The specimen is SrTiO3 along [001] (2 cells thick) with an amorphous strip along its left
// edge and missing Sr atoms. The agent knows the nominal lattice (cubic, a = 3.905 Å, Sr
// columns at multiples of a in stage coordinates, as after a lattice calibration). It
//  1. scans an overview at 50 pA, 4 µs (≈ 1250 electrons per pixel) with pixels of a/4, so
//     one pixel sits on every Sr site and one on every TiO site;
//  2. calls a cell crystalline where the TiO columns around its Sr site stand out (at least
//     twice the cell's mean), and a candidate where its Sr site gives < 75 % of the median
//     crystalline Sr site (a column of two Sr atoms that lost one gives about half);
//  3. zooms (1.2 Å field, 200 pA, 10 µs) on each candidate and on a median cell as the
//     reference, and calls a vacancy below 60 % of the reference (intact columns vary by some
//     15 % with the frozen-phonon displacements);
//  4. reports hits and false alarms against the ground truth, and the dose.
//
//   example_defect_hunt [--quick] [--seed n]
// exits 1 when vacancies exist but none was found.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/session/microscope.hpp"

using namespace stemtwin;

namespace {

constexpr double kA = 3.905;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Mean detected fraction within 0.5 Å of the Sr site (i·a, j·a), from a small high-dose scan.
double zoom_signal(Microscope& m, int i, int j) {
  m.set_current(200);
  ScanSettings sc;
  sc.fov_x_A = sc.fov_y_A = 1.2;
  sc.nx = sc.ny = 6;
  sc.dwell_us = 10;
  m.set_scan(sc);
  m.move_stage({i * kA, j * kA, 0, 0, 0});
  const ScanResult r = m.scan();
  const Image& im = r.images.at("ADF");
  double sum = 0;
  int n = 0;
  for (std::size_t k = 0; k < im.size(); ++k) {
    const Point2 p = r.positions_A[k];
    if (std::hypot(p.x - i * kA, p.y - j * kA) < 0.5) sum += im.data[k], ++n;
  }
  return n ? sum / n / r.electrons_per_position : 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::uint64_t seed = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: example_defect_hunt [--quick] [--seed n]\n");
      return 2;
    }
  }
  try {
    const int cells = quick ? 5 : 8;
    PerovskiteParams pp;
    pp.repeats = {cells, cells, 2};
    Specimen specimen = build_perovskite(pp, seed);
    AmorphousParams ap;
    ap.axis = 0;
    ap.fraction = 0.25;
    amorphize(specimen, ap, seed);
    add_vacancies(specimen, 38, 0.1, seed);

    MicroscopeSettings st;
    st.sampling_A = 0.1;
    st.potential.slice_thickness_A = kA / 2;
    st.min_window_A = 20;
    st.seed = seed;
    Microscope m(specimen, st);
    m.set_detectors({AnnularDetector{"ADF", 40, 80, std::nullopt}});

    // 1. Overview: pixel (4i, 4j) on the Sr site (i·a, j·a), (4i+2, 4j+2) on the TiO site.
    const std::size_t n = std::size_t(4 * cells);
    const double step = kA / 4;
    m.set_current(50);
    ScanSettings sc;
    sc.fov_x_A = sc.fov_y_A = cells * kA;
    sc.nx = sc.ny = n;
    sc.dwell_us = 4;
    m.set_scan(sc);
    m.move_stage({(double(n) - 1) / 2 * step, (double(n) - 1) / 2 * step, 0, 0, 0});
    const ScanResult ov = m.scan();
    const Image& img = ov.images.at("ADF");
    const double N = ov.electrons_per_position;
    std::vector<double> site(cells * cells), contrast(cells * cells);
    for (int j = 0; j < cells; ++j)
      for (int i = 0; i < cells; ++i) {
        double mean = 0;
        for (int y = 0; y < 4; ++y)
          for (int x = 0; x < 4; ++x) mean += img(4 * j + y, 4 * i + x);
        mean /= 16;
        site[j * cells + i] = img(4 * j, 4 * i) / N;
        contrast[j * cells + i] = mean > 0 ? img(4 * j + 2, 4 * i + 2) / mean : 0;
      }
    // 2. Crystalline where the four TiO columns around the Sr site stand out.
    auto lattice = [&](int i, int j) { return contrast[((j + cells) % cells) * cells + (i + cells) % cells] > 2.0; };
    std::vector<char> crystalline(cells * cells);
    std::vector<double> crystal_sites;
    int amorphous = 0;
    for (int j = 0; j < cells; ++j)
      for (int i = 0; i < cells; ++i) {
        crystalline[j * cells + i] = lattice(i, j) && lattice(i - 1, j) && lattice(i, j - 1) && lattice(i - 1, j - 1);
        if (crystalline[j * cells + i]) crystal_sites.push_back(site[j * cells + i]);
        amorphous += !lattice(i, j);
      }
    const double ref_level = median(crystal_sites);
    std::vector<std::pair<int, int>> candidates;
    int ref_i = 0, ref_j = 0;
    double ref_dist = 1e300;
    for (int j = 0; j < cells; ++j)
      for (int i = 0; i < cells; ++i) {
        if (!crystalline[j * cells + i]) continue;
        const double v = site[j * cells + i];
        if (v < 0.75 * ref_level) candidates.emplace_back(i, j);
        if (std::fabs(v - ref_level) < ref_dist) ref_dist = std::fabs(v - ref_level), ref_i = i, ref_j = j;
      }
    std::printf("overview: %d cells, %.0f e/Å², %d look amorphous, %zu crystalline cells with a dim Sr site\n",
                cells * cells, ov.dose_e_per_A2, amorphous, candidates.size());

    // 3. Zooms.
    const double reference = zoom_signal(m, ref_i, ref_j);
    std::set<std::pair<int, int>> found;
    for (const auto& [i, j] : candidates) {
      const double ratio = zoom_signal(m, i, j) / reference;
      const bool vacancy = ratio < 0.6;
      std::printf("  zoom on Sr site (%5.2f, %5.2f) Å: %.2f of the reference -> %s\n", i * kA, j * kA, ratio,
                  vacancy ? "vacancy" : "intact");
      if (vacancy) found.emplace(i, j);
    }

    // 4. Ground truth (never looked at by the agent) and dose.
    std::set<std::pair<int, int>> truth;
    for (const Atom& v : specimen.vacancies)
      truth.emplace(int(std::lround(v.x / kA)) % cells, int(std::lround(v.y / kA)) % cells);
    std::size_t hits = 0;
    for (const auto& t : truth) hits += found.count(t);
    const MicroscopeStatus status = m.status();
    const DoseMap dose = m.dose_map(1.0);
    double dmax = 0, dmean = 0;
    for (double v : dose.dose_e_per_A2.data) dmax = std::max(dmax, v), dmean += v;
    dmean /= double(dose.dose_e_per_A2.size());
    std::printf("vacancies: found %zu, %zu of %zu true ones, %zu false alarms\n", found.size(), hits, truth.size(),
                found.size() - hits);
    int amorphous_columns = 0;  // columns of cells (along y) whose median contrast shows no lattice
    for (int i = 0; i < cells; ++i) {
      std::vector<double> c;
      for (int j = 0; j < cells; ++j) c.push_back(contrast[j * cells + i]);
      amorphous_columns += median(c) <= 2.0;
    }
    std::printf("amorphous strip: %d of %d columns of cells look amorphous (built: the left 25 %%)\n", amorphous_columns,
                cells);
    std::printf("dose: %.3g electrons in %llu acquisitions; mean %.0f e/Å², max %.0f e/Å² (zoomed sites)\n",
                status.total_electrons, static_cast<unsigned long long>(status.calls), dmean, dmax);
    if (!truth.empty() && hits == 0) {
      std::printf("defect hunt FAILED: no true vacancy found\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example_defect_hunt: %s\n", e.what());
    return 1;
  }
}
