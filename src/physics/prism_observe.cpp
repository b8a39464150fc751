// Spectroscopy on PRISM (prism.hpp, docs/spectroscopy.md §7a): a slice observer reads |ψ|²
// at a few pixels of every wave inside the specimen (the atoms' footprints, spectroscopy.hpp).
// PRISM's probe wave is ψ_p(z, r) = Σ_b c_b(p) S_b(z, r) inside the probe's window (0 outside),
// so build_smatrix keeps every beam S_b at those pixels of every slice entrance and of the exit
// (SMatrixSamples), and observe_prism forms ψ there per position by the same beam sum, with the
// same coefficients and window, as scan_prism forms the exit waves the detectors read.
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <complex>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "prism_partitioned.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/parallel.hpp"

namespace stemtwin {

std::vector<std::vector<std::vector<std::uint32_t>>> prism_observed_pixels(SliceObserver& observer, const Grid& grid,
                                                                           const std::vector<double>& slice_thickness_A,
                                                                           std::size_t configurations) {
  observer.begin(grid, slice_thickness_A, configurations, 0);
  return observer.read_pixels();
}

void prism_detail::prepare_samples(const Transmission& t, const std::vector<std::vector<std::uint32_t>>& pixels,
                                   std::size_t beams, SMatrixSamples& samples) {
  const std::size_t reads = t.num_slices() + 1, N = t.grid.size();
  if (pixels.size() != reads)
    throw std::invalid_argument("PRISM samples: " + std::to_string(pixels.size()) + " lists of pixels for " +
                                std::to_string(reads) + " waves (the slices' entrances and the exit)");
  for (std::size_t r = 0; r < reads; ++r)
    for (std::size_t k = 0; k < pixels[r].size(); ++k)
      if (pixels[r][k] >= N || (k > 0 && pixels[r][k] <= pixels[r][k - 1]))
        throw std::invalid_argument("PRISM samples: the pixels of wave " + std::to_string(r) +
                                    " are not ascending grid indices below " + std::to_string(N));
  samples.slice_thickness_A = t.slice_thickness_A;
  samples.pixels = pixels;
  samples.values.assign(reads, {});
  for (std::size_t r = 0; r < reads; ++r) samples.values[r].assign(beams * pixels[r].size(), cfloat(0, 0));
}

void prism_detail::begin_observer(const std::vector<SMatrix>& configs, std::size_t positions, SliceObserver& observer) {
  for (const SMatrix& S : configs)
    if (S.samples.empty())
      throw std::invalid_argument("scan_prism: a slice observer needs S-matrices that keep its pixels (build_smatrix with "
                                  "sample_pixels from prism_observed_pixels)");
  const SMatrix& S0 = configs.front();
  observer.begin(S0.grid, S0.samples.slice_thickness_A, configs.size(), positions);
  const auto pixels = observer.read_pixels();
  for (std::size_t c = 0; c < configs.size(); ++c)
    if (c >= pixels.size() || pixels[c] != configs[c].samples.pixels)
      throw std::invalid_argument("scan_prism: the S-matrix of configuration " + std::to_string(c) +
                                  " keeps other pixels than the observer reads (built for another observer)");
}

namespace {
/// Runs [k0, k1) of an ascending pixel list (row starts `row_start`) inside the window of
/// nwx × nwy pixels from (x0, y0), wrapped on the nx × ny grid.
void window_runs(const std::vector<std::uint32_t>& px, const std::vector<std::uint32_t>& row_start, std::size_t nx,
                 std::size_t ny, std::size_t x0, std::size_t y0, std::size_t nwx, std::size_t nwy,
                 std::vector<std::pair<std::uint32_t, std::uint32_t>>& runs) {
  runs.clear();
  if (nwx == nx && nwy == ny) {
    if (!px.empty()) runs.emplace_back(0, std::uint32_t(px.size()));
    return;
  }
  auto first_at = [&](std::uint32_t lo, std::uint32_t hi, std::size_t q) {
    return std::uint32_t(std::lower_bound(px.begin() + lo, px.begin() + hi, std::uint32_t(q)) - px.begin());
  };
  auto add = [&](std::uint32_t a, std::uint32_t b) {
    if (a >= b) return;
    if (!runs.empty() && runs.back().second == a) runs.back().second = b;
    else runs.emplace_back(a, b);
  };
  for (std::size_t j = 0; j < nwy; ++j) {
    const std::size_t y = (y0 + j) % ny;
    const std::uint32_t lo = row_start[y], hi = row_start[y + 1];
    if (lo == hi) continue;
    const std::size_t base = y * nx;
    if (x0 + nwx <= nx) add(first_at(lo, hi, base + x0), first_at(lo, hi, base + x0 + nwx));
    else {  // the window wraps: the row's start, then its end
      add(lo, first_at(lo, hi, base + x0 + nwx - nx));
      add(first_at(lo, hi, base + x0), hi);
    }
  }
}
}  // namespace

void prism_detail::observe_prism(const std::vector<SMatrix>& configs, const std::vector<BeamCoefficients>& coef,
                                 const std::vector<double>& focal_weight, const std::vector<Point2>& positions, double block_A,
                                 SliceObserver& observer) {
  using Mat = Eigen::Matrix<std::complex<float>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const SMatrix& S0 = configs.front();
  const Grid& g = S0.grid;  // the samples' grid (the full grid, whatever the storage crop)
  const std::size_t nwx = g.nx / S0.fx, nwy = g.ny / S0.fy, nb = S0.beams.size(), reads = S0.samples.pixels.size();
  // Per configuration and wave read: where each grid row's pixels start in the list.
  std::vector<std::vector<std::vector<std::uint32_t>>> row_start(configs.size(), std::vector<std::vector<std::uint32_t>>(reads));
  std::size_t most = 0;
  for (std::size_t c = 0; c < configs.size(); ++c)
    for (std::size_t r = 0; r < reads; ++r) {
      const std::vector<std::uint32_t>& px = configs[c].samples.pixels[r];
      std::vector<std::uint32_t>& rs = row_start[c][r];
      rs.resize(g.ny + 1);
      for (std::size_t y = 0; y <= g.ny; ++y)
        rs[y] = std::uint32_t(std::lower_bound(px.begin(), px.end(), std::uint32_t(y * g.nx)) - px.begin());
      most = std::max(most, px.size());
    }
  // The exit waves' window (scan_prism, scan_grouped): centred on the position's pixel, or on
  // its group's cell. Positions with the same window form a group: their beam sums are one
  // matrix product C = A·T (A: positions × beams coefficients, T: beams × the window's pixels).
  std::map<std::pair<std::size_t, std::size_t>, std::vector<std::size_t>> by_window;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const Point2 r0 = positions[i];
    const Point2 centre = block_A > 0 ? Point2{(std::floor(r0.x / block_A) + 0.5) * block_A, (std::floor(r0.y / block_A) + 0.5) * block_A}
                                      : r0;
    const long cx = std::lround(centre.x / g.dx()) - long(nwx / 2), cy = std::lround(centre.y / g.dy()) - long(nwy / 2);
    by_window[{prism_detail::wrap_index(cx, g.nx), prism_detail::wrap_index(cy, g.ny)}].push_back(i);
  }
  const std::vector<std::pair<std::pair<std::size_t, std::size_t>, std::vector<std::size_t>>> groups(by_window.begin(), by_window.end());
  std::size_t max_group = 0;
  for (const auto& gr : groups) max_group = std::max(max_group, gr.second.size());
  const double wconf = 1.0 / double(configs.size());
  ParallelErrors errors;
#pragma omp parallel
  {
    struct Workspace {
      Mat phase, A, C;  // positions × beams, positions × beams, positions × pixels
      std::vector<float> intensity;
      std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;
    };
    std::optional<Workspace> workspace;
    errors.run([&] { workspace.emplace(Workspace{Mat(max_group, nb), Mat(max_group, nb), Mat(max_group, most), std::vector<float>(most), {}}); });
#pragma omp for schedule(dynamic)
    for (long gl = 0; gl < long(groups.size()); ++gl) errors.run([&] {
      Workspace& ws = *workspace;
      const auto& [origin, members] = groups[std::size_t(gl)];
      const long P = long(members.size());
      for (long k = 0; k < P; ++k) {
        const Point2 r0 = positions[members[std::size_t(k)]];
        for (std::size_t m = 0; m < nb; ++m) {
          const double a = -2 * kPi * (coef.front().kx[m] * r0.x + coef.front().ky[m] * r0.y);
          ws.phase(k, long(m)) = cfloat(float(std::cos(a)), float(std::sin(a)));
        }
      }
      for (std::size_t c = 0; c < configs.size(); ++c)
        for (std::size_t f = 0; f < coef.size(); ++f) {
          for (long k = 0; k < P; ++k)
            for (std::size_t m = 0; m < nb; ++m) ws.A(k, long(m)) = coef[f].c0[m] * ws.phase(k, long(m));
          for (std::size_t r = 0; r < reads; ++r) {
            const SMatrixSamples& T = configs[c].samples;
            const std::size_t np = T.pixels[r].size();
            if (np == 0) continue;
            window_runs(T.pixels[r], row_start[c][r], g.nx, g.ny, origin.first, origin.second, nwx, nwy, ws.runs);
            const Eigen::Map<const Mat> t(T.values[r].data(), long(nb), long(np));
            // Σ_b c_b S_b on each run of pixels inside the window, all the group's positions at once.
            for (const auto& [k0, k1] : ws.runs)
              ws.C.block(0, k0, P, k1 - k0).noalias() = ws.A.topRows(P) * t.middleCols(k0, k1 - k0);
            for (long k = 0; k < P; ++k) {
              std::fill(ws.intensity.begin(), ws.intensity.begin() + long(np), 0.0f);
              for (const auto& [k0, k1] : ws.runs)
                for (std::size_t q = k0; q < k1; ++q) ws.intensity[q] = std::norm(ws.C(k, long(q)));
              observer.observe_intensities(members[std::size_t(k)], c, r, wconf * focal_weight[f], ws.intensity.data());
            }
          }
        }
    });
  }
  errors.rethrow();
}

}  // namespace stemtwin
