#include "stemtwin/scenario/memory_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

namespace stemtwin {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kComplex = sizeof(cfloat);  // one complex float: waves, transmission functions
// Per thread, build_potential spreads atoms on a 2×-oversampled double grid and keeps its
// spectrum, plus the coarse spectrum and image: 4N + 4N (complex, half) + N + N doubles ≈ 80 bytes
// per point of the simulation grid (src/physics/potential.cpp); planning its FFTs once more.
constexpr double kPotentialWorkspacePerPoint = 80;
// Detector pixels inside the band limit: a circle of radius (2/3)·Nyquist covers
// π/9 ≈ 0.35 of the grid (rounded up, plus a border of pixels).
constexpr double kBandFraction = 0.36;
// Copies of the specimen's atoms alive at once: the tiled source, the specimen, a displaced
// phonon configuration, the slicer's per-slice entries (an atom each, about two Atoms).
constexpr double kAtomCopies = 5;
// An image channel lives as: the signal's image, the source-size filtered copy, the clean and
// the acquired image, the acquisition chain's intermediates (2) and the float copies written.
constexpr double kImageCopies = 7;
// Allocator slack, FFTW's internal buffers and HDF5's chunk caches: a relative and a fixed margin.
constexpr double kMarginRelative = 0.15;
constexpr double kMarginFixed = 48 * kMiB;
// Region masks are rasterised from a region map of the cell at this step (scenario_run.cpp).
constexpr double kRegionMapStep_A = 0.2;

struct Parts {
  std::vector<std::pair<std::string, double>> list;
  double sum = 0;
  void add(const std::string& what, double bytes) {
    if (!(bytes > 0)) return;
    list.emplace_back(what, bytes);
    sum += bytes;
  }
};

std::string mib(double bytes) {
  std::ostringstream o;
  o.precision(bytes < 10 * kMiB ? 2 : 0);
  o << std::fixed << bytes / kMiB << " MiB";
  return o.str();
}

}  // namespace

std::string MemoryEstimate::describe(std::size_t sample_index) const {
  std::ostringstream o;
  o << "sample " << sample_index << " needs about " << mib(bytes) << " (grid " << grid_nx << "×" << grid_ny << ", "
    << slices << " slices, " << threads << " thread(s): ";
  std::vector<std::pair<std::string, double>> sorted = parts;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (std::size_t i = 0; i < sorted.size() && i < 4; ++i) o << (i ? "; " : "") << sorted[i].first << " " << mib(sorted[i].second);
  o << ")";
  return o.str();
}

MemoryEstimate estimate_memory(const SampledScenario& s, const LabelsSpec& labels, std::size_t threads, double budget) {
  MemoryEstimate e;
  e.threads = std::max<std::size_t>(1, threads);
  const double T = double(e.threads);

  // Specimen: the unit (repeat 1×1×1) is small; the tiled one is built only when its atoms fit.
  SampledScenario unit = s;
  unit.repeat = {1, 1, 1};
  const Specimen u = build_specimen(unit);
  const bool thermal = std::any_of(u.structure.atoms.begin(), u.structure.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  const double tiles = double(s.repeat[0]) * double(s.repeat[1]) * double(s.repeat[2]);
  double atoms = double(u.structure.atoms.size()) * tiles;
  Cell cell{u.structure.cell.x * s.repeat[0], u.structure.cell.y * s.repeat[1], u.structure.cell.z * s.repeat[2]};
  if (tiles > 1 && atoms * sizeof(Atom) * kAtomCopies <= budget) {
    const Specimen sp = build_specimen(s);
    atoms = double(sp.structure.atoms.size());
    cell = sp.structure.cell;
  }

  // Grid: chosen exactly when one complex wave on it fits; otherwise bounded (grid sizes are
  // rounded up by at most 10% to FFT-friendly ones, and to multiples of the PRISM factor).
  const bool prism = s.method == Method::Prism;
  const double f = prism ? double(std::max(1, s.interpolation)) : 1.0;
  e.grid_nx = std::ceil(cell.x / s.sampling) * 1.1 + f + 2;
  e.grid_ny = std::ceil(cell.y / s.sampling) * 1.1 + f + 2;
  if (e.grid_nx * e.grid_ny * kComplex <= budget) {
    const Grid g = simulation_grid(s, cell);
    e.grid_nx = double(g.nx);
    e.grid_ny = double(g.ny);
  }
  const double N = e.grid_nx * e.grid_ny;
  e.slices = std::max(1.0, std::ceil(cell.z / s.slice_thickness));
  const double ns = e.slices;
  const double configs = thermal ? double(std::max(1, s.configurations)) : 1.0;
  const double lambda = wavelength_A(s.energy);

  // Detectors are compiled on the grid the waves are recorded on: PRISM's window (L/f, N/f²).
  const double lx = cell.x / f, ly = cell.y / f, nxw = std::floor(e.grid_nx / f), nyw = std::floor(e.grid_ny / f);
  const double Nw = nxw * nyw;
  const double band = std::min(Nw, kBandFraction * Nw + 2 * (nxw + nyw));
  const double k_max = 2.0 / 3.0 * std::min(0.5 * nxw / lx, 0.5 * nyw / ly);
  const double P = double(s.scan.nx) * double(s.scan.ny);
  // Image channels as the read-out makes them (COM: x, y and iDPC).
  const double channels = double(readout_channels(physics_detectors(s)).size());
  double accumulators = 0, per_position = 0, radial_values = 0, detector_tables = band * 12;
  double pattern_pixels = 0, pattern_sources = 0;
  for (const SampledDetector& d : s.detectors) switch (d.type) {
      case DetectorType::Annular:
        accumulators += 1, per_position += 1, detector_tables += band * 8;
        break;
      case DetectorType::Radial: {
        const auto& r = std::get<RadialDetector>(d.detector);
        const double maxa = r.max_mrad > 0 ? r.max_mrad : k_max * lambda * 1e3;
        const double nb = std::ceil(maxa / r.step_mrad);
        accumulators += nb, per_position += nb, radial_values += nb;
        detector_tables += band * 8 + nb * 64;  // bin edges in the layout, its JSON text and the reader
        break;
      }
      case DetectorType::Segmented: {
        const auto& g = std::get<SegmentedDetector>(d.detector);
        const double nb = double(g.ring_edges_mrad.size() > 1 ? g.ring_edges_mrad.size() - 1 : 0) * double(g.segments);
        accumulators += nb, per_position += nb, detector_tables += band * 8;
        break;
      }
      case DetectorType::Com: accumulators += 3, per_position += 2; break;
      case DetectorType::Pixelated: {
        const auto& p = std::get<PixelatedDetector>(d.detector);
        const double kp = p.max_angle_mrad > 0 ? p.max_angle_mrad * 1e-3 / lambda : k_max;
        const double bin = double(std::max<std::size_t>(1, p.bin));
        const double mx = std::min(std::floor(kp * lx + 1e-9), std::floor((nxw - 1) / 2));
        const double my = std::min(std::floor(kp * ly + 1e-9), std::floor((nyw - 1) / 2));
        const double px = std::floor((2 * mx + 1) / bin) * std::floor((2 * my + 1) / bin);
        pattern_pixels += px;
        pattern_sources += px * bin * bin;
        break;
      }
    }

  Parts persistent, build, scan;
  persistent.add("specimen atoms", atoms * double(sizeof(Atom)) * kAtomCopies);
  // Build: one configuration's potential slices and the per-thread workspaces to make them.
  build.add("potential slices", ns * N * sizeof(float));
  build.add("potential workspaces", (T + 1) * kPotentialWorkspacePerPoint * N);
  build.add("scattering tables", 8.0 * N * sizeof(double));
  std::ostringstream what;
  if (!prism) {
    what << "transmission functions (" << configs << " configuration(s) × " << ns << " slices × " << N << " points)";
    persistent.add(what.str(), configs * ns * N * kComplex);
    const double focal = s.focal_spread > 0 ? 7 : 1;  // ProbeOptics::focal_spread_points
    scan.add("waves, probes and propagators", (T + focal + 2 + 2) * N * kComplex);  // + FFT plan buffers
  } else {
    // Plane waves inside the aperture on the coarsened reciprocal grid: its soft edge reaches
    // half a frequency step beyond the semi-angle (src/physics/probe.cpp, aperture()). Counted row
    // by row when the disc has a sensible number of rows, else bounded by its square.
    const double dkx = f / cell.x, dky = f / cell.y;
    const double R = s.convergence * 1e-3 / lambda + 0.5 * std::max(dkx, dky) + 1e-12;
    const double rows = std::floor(R / dky);
    double beams = (2 * std::floor(R / dkx) + 1) * (2 * rows + 1);
    if (rows < 1e6) {
      beams = 0;
      for (double j = -rows; j <= rows; ++j) beams += 2 * std::floor(std::sqrt(std::max(0.0, R * R - j * j * dky * dky)) / dkx) + 1;
    }
    beams = std::min(Nw, beams);
    what << "S-matrices (" << configs << " configuration(s) × " << beams << " plane waves × " << N << " points)";
    persistent.add(what.str(), configs * beams * N * kComplex);
    build.add("transmission functions of one configuration", ns * N * kComplex);
    build.add("plane waves in flight", (T + 2 + 2) * N * kComplex);
    // Scan: probes grouped by 0.5 Å cells (StemSettings::prism_block_A) are one matrix product
    // per group: per thread the window of every beam, coefficients and results.
    const double group = pattern_pixels > 0 ? 1.0
                                            : std::min(P, (std::ceil(0.5 / s.scan.step_x) + 1) * (std::ceil(0.5 / s.scan.step_y) + 1));
    const double per_thread = pattern_pixels > 0 ? Nw * kComplex
                                                 : (beams * Nw + group * beams + group * Nw + Nw) * kComplex +
                                                       group * (band * sizeof(float) + accumulators * sizeof(double));
    scan.add("PRISM windows", T * per_thread + 2 * Nw * kComplex);
  }
  scan.add("detector tables", detector_tables + pattern_sources * sizeof(std::uint32_t));
  scan.add("per-thread detector accumulators",
           T * (band * sizeof(float) + (accumulators + pattern_pixels) * sizeof(double)));
  scan.add("detector signals", P * per_position * sizeof(double));
  // 4D: a block of one scan row of patterns, its copy through the camera, and HDF5's chunk of
  // the same size before and after compression.
  scan.add("4D pattern rows", 4.0 * double(s.scan.nx) * pattern_pixels * sizeof(float));
  scan.add("images", channels * P * sizeof(double) * kImageCopies);
  scan.add("radial data", P * radial_values * sizeof(float) * 2);
  scan.add("scan positions", P * 64);
  // Masks: each a double image and its integer copy; columns and species are drawn together.
  scan.add("masks", double(labels.masks.size() + 1) * P * (sizeof(double) + sizeof(std::int16_t)));
  if (std::find(labels.masks.begin(), labels.masks.end(), "region") != labels.masks.end())
    scan.add("region map", (cell.x / kRegionMapStep_A + 1) * (cell.y / kRegionMapStep_A + 1) * sizeof(double) * 2);

  for (const Parts* p : {&persistent, &build, &scan}) e.parts.insert(e.parts.end(), p->list.begin(), p->list.end());
  // The phases are added, not maximised: memory freed after building the potential need not
  // go back to the system (malloc keeps it in per-thread arenas) nor be reused by the scan.
  e.bytes = (persistent.sum + build.sum + scan.sum) * (1 + kMarginRelative) + kMarginFixed;
  return e;
}

}  // namespace stemtwin
