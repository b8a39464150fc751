#include "stemtwin/physics/detectors.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace stemtwin {

const std::string& detector_name(const Detector& d) {
  return std::visit([](const auto& x) -> const std::string& { return x.name; }, d);
}

namespace {
double band_limit_mrad(const Grid& g, double lambda) { return g.k_max() * lambda * 1e3; }
}  // namespace

std::vector<std::string> check_detectors(const std::vector<Detector>& dets, const Grid& g, double lambda) {
  std::vector<std::string> w;
  const double bl = band_limit_mrad(g, lambda);
  for (const Detector& d : dets) {
    std::ostringstream s;
    if (const auto* a = std::get_if<AnnularDetector>(&d)) {
      if (a->outer_mrad > bl)
        s << "detector '" << a->name << "': outer angle " << a->outer_mrad << " mrad exceeds the band limit of the grid ("
          << bl << " mrad); it collects only up to " << bl << " mrad — use a finer sampling to see higher angles";
      if (a->inner_mrad >= bl) s << "detector '" << a->name << "' lies wholly beyond the band limit (" << bl << " mrad): it records nothing";
    } else if (const auto* r = std::get_if<RadialDetector>(&d)) {
      if (r->max_mrad > bl)
        s << "detector '" << r->name << "': max angle " << r->max_mrad << " mrad exceeds the band limit (" << bl << " mrad)";
    } else if (const auto* sg = std::get_if<SegmentedDetector>(&d)) {
      if (!sg->ring_edges_mrad.empty() && sg->ring_edges_mrad.back() > bl)
        s << "detector '" << sg->name << "': outer ring edge " << sg->ring_edges_mrad.back()
          << " mrad exceeds the band limit (" << bl << " mrad)";
    } else if (const auto* p = std::get_if<PixelatedDetector>(&d)) {
      if (p->max_angle_mrad > bl)
        s << "detector '" << p->name << "': max angle " << p->max_angle_mrad << " mrad exceeds the band limit (" << bl
          << " mrad); the pattern is zero beyond it";
    }
    if (!s.str().empty()) w.push_back(s.str());
  }
  return w;
}

std::pair<std::size_t, std::size_t> pattern_shape(const PixelatedDetector& d, const Grid& g, double lambda) {
  const double kmax = d.max_angle_mrad > 0 ? d.max_angle_mrad * 1e-3 / lambda : g.k_max();
  if (d.bin == 0) throw std::invalid_argument("pixelated detector '" + d.name + "': bin must be ≥ 1");
  // Frequencies −m..m along each axis with m·dk ≤ kmax (and within the grid).
  const auto mx = std::min<std::size_t>(static_cast<std::size_t>(std::floor(kmax * g.lx + 1e-9)), (g.nx - 1) / 2);
  const auto my = std::min<std::size_t>(static_cast<std::size_t>(std::floor(kmax * g.ly + 1e-9)), (g.ny - 1) / 2);
  return {(2 * my + 1) / d.bin, (2 * mx + 1) / d.bin};
}

std::vector<double> radial_bin_edges(const RadialDetector& d, const Grid& g, double lambda) {
  if (!(d.step_mrad > 0)) throw std::invalid_argument("radial detector '" + d.name + "': step must be > 0 mrad");
  const double maxa = d.max_mrad > 0 ? d.max_mrad : band_limit_mrad(g, lambda);
  const auto n = static_cast<std::size_t>(std::ceil(maxa / d.step_mrad - 1e-9));
  std::vector<double> e(n + 1);
  for (std::size_t i = 0; i <= n; ++i) e[i] = double(i) * d.step_mrad;
  return e;
}

std::size_t detector_bins(const Detector& d, const Grid& g, double lambda) {
  struct V {
    const Grid& g;
    double lambda;
    std::size_t operator()(const AnnularDetector&) const { return 1; }
    std::size_t operator()(const RadialDetector& r) const { return radial_bin_edges(r, g, lambda).size() - 1; }
    std::size_t operator()(const SegmentedDetector& s) const {
      if (s.ring_edges_mrad.size() < 2 || s.segments == 0)
        throw std::invalid_argument("segmented detector '" + s.name + "' needs ≥ 2 ring edges and ≥ 1 segment");
      return (s.ring_edges_mrad.size() - 1) * s.segments;
    }
    std::size_t operator()(const ComDetector&) const { return 2; }
    std::size_t operator()(const PixelatedDetector& p) const {
      const auto [ny, nx] = pattern_shape(p, g, lambda);
      return ny * nx;
    }
  };
  return std::visit(V{g, lambda}, d);
}

double integrate_radial(const std::vector<double>& bins, const std::vector<double>& edges, double inner, double outer) {
  double s = 0;
  for (std::size_t i = 0; i < bins.size() && i + 1 < edges.size(); ++i)
    if (edges[i] >= inner - 1e-9 && edges[i + 1] <= outer + 1e-9) s += bins[i];
  return s;
}

}  // namespace stemtwin
