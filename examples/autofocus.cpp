// autofocus: an agent focuses the twin through the public C++ session API (microscope.hpp).
// The C++ twin of examples/autofocus.py.
//
// The specimen (SrTiO3 along [001], 2 cells thick, an amorphous strip and Sr vacancies) sits
// at a stage height z the agent does not know. Stage height acts as extra defocus (the
// crossover lies z deeper), so the sharpest frame is near defocus -z + t/2 (crossover in the
// middle of the specimen of thickness t). The agent sweeps the defocus, scores each noisy ADF
// frame by its normalised variance with the shot-noise variance removed, (var - mean)/mean²
// (gain 1: Poisson counts have var = mean), fits a parabola to log(score) around the best
// point, then refines with a finer sweep around it.
//
//   example_autofocus [--quick] [--height Å] [--tolerance Å] [--seed n]
// prints "AUTOFOCUS found <Å> true <Å> error <Å>" and exits 1 when |error| > tolerance.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/session/microscope.hpp"

using namespace stemtwin;

namespace {

constexpr double kA = 3.905;  // Å, SrTiO3

Specimen demo_specimen(int cells, std::uint64_t seed) {
  PerovskiteParams p;
  p.repeats = {cells, cells, 2};
  Specimen s = build_perovskite(p, seed);
  AmorphousParams a;
  a.axis = 0;
  a.fraction = 0.25;
  amorphize(s, a, seed);
  add_vacancies(s, 38, 0.05, seed);
  return s;
}

double sharpness(const Image& im) {
  const double mean = im.mean();
  if (mean <= 0) return 0;
  double var = 0;
  for (double v : im.data) var += (v - mean) * (v - mean);
  var /= double(im.size());
  return (var - mean) / (mean * mean);
}

/// Least-squares parabola y = a x² + b x + c; returns the vertex -b/2a, or x_best when a ≥ 0.
double parabola_peak(const std::vector<double>& x, const std::vector<double>& y, double x_best) {
  double s[5] = {0, 0, 0, 0, 0}, t[3] = {0, 0, 0};
  const double x0 = x_best;  // centre for conditioning
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double u = x[i] - x0;
    double p = 1;
    for (int k = 0; k < 5; ++k) s[k] += p, p *= u;
    t[0] += y[i], t[1] += y[i] * u, t[2] += y[i] * u * u;
  }
  // Normal equations [s4 s3 s2; s3 s2 s1; s2 s1 s0] [a b c] = [t2 t1 t0], by Cramer's rule.
  const double M[3][3] = {{s[4], s[3], s[2]}, {s[3], s[2], s[1]}, {s[2], s[1], s[0]}};
  auto det3 = [](const double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  const double D = det3(M);
  if (std::fabs(D) < 1e-300) return x_best;
  double Ma[3][3], Mb[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) Ma[r][c] = Mb[r][c] = M[r][c];
  const double rhs[3] = {t[2], t[1], t[0]};
  for (int r = 0; r < 3; ++r) Ma[r][0] = rhs[r], Mb[r][1] = rhs[r];
  const double a = det3(Ma) / D, b = det3(Mb) / D;
  if (a >= 0) return x_best;
  return x0 - b / (2 * a);
}

/// Peak of a sampled focus curve: parabola through log(score) over the run of points around
/// the best one that score above half of it (at least the best point and its neighbours),
/// clipped to that run.
double peak_of(const std::vector<double>& d, const std::vector<double>& s) {
  const std::size_t i = std::size_t(std::max_element(s.begin(), s.end()) - s.begin());
  std::size_t lo = i, hi = i + 1;
  while (lo > 0 && s[lo - 1] > 0.5 * s[i]) --lo;
  while (hi < s.size() && s[hi] > 0.5 * s[i]) ++hi;
  lo = std::min(lo, i > 0 ? i - 1 : 0);
  hi = std::max(hi, std::min(s.size(), i + 2));
  if (hi - lo < 3) return d[i];
  std::vector<double> x, y;
  for (std::size_t k = lo; k < hi; ++k) {
    if (s[k] <= 0) return d[i];
    x.push_back(d[k]), y.push_back(std::log(s[k]));
  }
  return std::clamp(parabola_peak(x, y, d[i]), d[lo], d[hi - 1]);
}

double autofocus(Microscope& m, double start, double stop, double step, double fine_step) {
  auto measure = [&](double defocus) {
    m.set_defocus(defocus);
    return sharpness(m.scan().images.at("ADF"));
  };
  std::vector<double> d, s;
  for (double x = start; x <= stop + step / 2; x += step) d.push_back(x), s.push_back(measure(x));
  const double guess = peak_of(d, s);
  std::printf("coarse sweep %.0f..%.0f Å in %.0f Å steps: peak near %.1f Å\n", start, stop, step, guess);
  d.clear(), s.clear();
  for (double x = guess - step; x <= guess + step + fine_step / 2; x += fine_step) d.push_back(x), s.push_back(measure(x));
  const double best = peak_of(d, s);
  std::printf("fine sweep %.1f..%.1f Å in %.0f Å steps: focus %.1f Å\n", d.front(), d.back(), fine_step, best);
  m.set_defocus(best);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  double height = 57, tolerance = 10;
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--height" && i + 1 < argc) height = std::atof(argv[++i]);
    else if (a == "--tolerance" && i + 1 < argc) tolerance = std::atof(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: example_autofocus [--quick] [--height Å] [--tolerance Å] [--seed n]\n");
      return 2;
    }
  }
  try {
    const Specimen specimen = demo_specimen(8, seed);
    const double thickness = specimen.structure.cell.z;
    MicroscopeSettings st;
    st.sampling_A = 0.1;  // band limit 84 mrad at 200 kV: the 40–80 mrad ADF fits
    st.potential.slice_thickness_A = thickness / 4;
    st.min_window_A = 20;
    st.seed = seed;
    Microscope m(specimen, st);
    m.set_detectors({AnnularDetector{"ADF", 40, 80, std::nullopt}});
    m.set_current(200);  // ≈ 2500 electrons per position at 2 µs
    m.move_stage({4.5 * kA, 4.5 * kA, height, 0, 0});  // crystalline region; the height is hidden from the agent
    ScanSettings sc;
    sc.fov_x_A = sc.fov_y_A = quick ? kA : 2 * kA;
    sc.nx = sc.ny = quick ? 8 : 12;
    sc.dwell_us = 2;
    m.set_scan(sc);

    const double found = autofocus(m, -200, 200, quick ? 40 : 25, quick ? 10 : 5);
    const double truth = -height + thickness / 2;
    const MicroscopeStatus status = m.status();
    std::printf("autofocus: found defocus %.1f Å, true focus %.1f Å (-z + t/2), error %+.1f Å, %llu frames, %.3g electrons\n",
                found, truth, found - truth, static_cast<unsigned long long>(status.calls), status.total_electrons);
    std::printf("AUTOFOCUS found %.3f true %.3f error %.3f\n", found, truth, found - truth);
    if (!(std::fabs(found - truth) <= tolerance)) {
      std::printf("autofocus FAILED: error beyond %.1f Å\n", tolerance);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example_autofocus: %s\n", e.what());
    return 1;
  }
}
