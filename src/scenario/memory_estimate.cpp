#include "stemtwin/scenario/memory_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <variant>
#include <sstream>

#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/spectrometers.hpp"

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
// Region masks are rasterised from a region map of the cell at this step (sample_labels.cpp: region_at_positions).
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

std::size_t auto_worst_prism_factor(const SampledScenario& s, const Grid& grid, double thickness_A) {
  if (s.method != Method::Auto) return 1;
  const std::vector<Detector> dets = physics_detectors(s);
  bool annular = false, pixelated = false;
  for (const Detector& d : dets) {
    annular |= std::holds_alternative<AnnularDetector>(d);
    pixelated |= std::holds_alternative<PixelatedDetector>(d);
  }
  if (!annular) return 1;  // plan_auto: nothing the budget can measure
  const ProbeOptics optics = probe_optics(s);
  const StemSettings st = stem_settings(s);
  // plan_auto's PRISM factors (auto_method.cpp): the predicted f downwards, dividing the grid
  // and fitting the memory budget; calibration may go down to the last of them.
  const bool crop = st.prism_band_limit_crop && !pixelated;
  const std::size_t budget = st.max_memory_bytes ? st.max_memory_bytes : default_memory_budget();
  const std::size_t configurations = std::max<std::size_t>(1, st.phonon_configurations);
  std::size_t worst = 1;
  for (std::size_t f = predict_interpolation(grid, optics, thickness_A); f > 1; --f)
    if (grid.nx % f == 0 && grid.ny % f == 0 &&
        configurations * smatrix_bytes(grid, optics.energy_eV, optics.semiangle_mrad, f, f, 1, crop) <= budget)
      worst = f;
  return worst;
}

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

namespace {

// The specimen as the run builds it: its atom count, cell and whether it vibrates.
struct SpecimenSize {
  double atoms = 0;
  Cell cell;
  bool thermal = false;
};

// The unit (repeat 1×1×1) is small; the tiled specimen is built only when its atoms fit.
SpecimenSize specimen_size(const SampledScenario& s, double budget) {
  SampledScenario unit = s;
  unit.repeat = {1, 1, 1};
  const Specimen u = build_specimen(unit);
  SpecimenSize z;
  z.thermal = std::any_of(u.structure.atoms.begin(), u.structure.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  const double tiles = double(s.repeat[0]) * double(s.repeat[1]) * double(s.repeat[2]);
  z.atoms = double(u.structure.atoms.size()) * tiles;
  z.cell = Cell{u.structure.cell.x * s.repeat[0], u.structure.cell.y * s.repeat[1], u.structure.cell.z * s.repeat[2]};
  if (tiles > 1 && z.atoms * sizeof(Atom) * kAtomCopies <= budget) {
    const Specimen sp = build_specimen(s);
    z.atoms = double(sp.structure.atoms.size());
    z.cell = sp.structure.cell;
  }
  return z;
}

// Grid: chosen exactly when one complex wave on it fits; otherwise bounded (grid sizes are
// rounded up by at most 10% to FFT-friendly ones, and to multiples of the PRISM factor).
// Sets e.grid_nx, e.grid_ny; returns the grid when chosen exactly.
std::optional<Grid> estimate_grid(const SampledScenario& s, const Cell& cell, double f, double budget, MemoryEstimate& e) {
  e.grid_nx = std::ceil(cell.x / s.sampling) * 1.1 + f + 2;
  e.grid_ny = std::ceil(cell.y / s.sampling) * 1.1 + f + 2;
  std::optional<Grid> grid;
  if (e.grid_nx * e.grid_ny * kComplex <= budget) {
    grid = simulation_grid(s, cell);
    e.grid_nx = double(grid->nx);
    e.grid_ny = double(grid->ny);
  }
  return grid;
}

// What the detectors hold, counted on the grid the waves are recorded on.
struct DetectorLoad {
  double band = 0;  // detector pixels inside the band limit
  double accumulators = 0, per_position = 0, radial_values = 0, detector_tables = 0;
  double pattern_pixels = 0, pattern_sources = 0;
};

// Detectors are compiled on the grid the waves are recorded on: PRISM's window (L/f, N/f²).
DetectorLoad detector_load(const SampledScenario& s, const MemoryEstimate& e, const Cell& cell, double f, double lambda) {
  const double lx = cell.x / f, ly = cell.y / f, nxw = std::floor(e.grid_nx / f), nyw = std::floor(e.grid_ny / f);
  const double Nw = nxw * nyw;
  DetectorLoad l;
  l.band = std::min(Nw, kBandFraction * Nw + 2 * (nxw + nyw));
  const double band = l.band;
  const double k_max = 2.0 / 3.0 * std::min(0.5 * nxw / lx, 0.5 * nyw / ly);
  l.detector_tables = band * 12;
  for (const SampledDetector& d : s.detectors) switch (d.type) {
      case DetectorType::Annular:
        l.accumulators += 1, l.per_position += 1, l.detector_tables += band * 8;
        break;
      case DetectorType::Radial: {
        const auto& r = std::get<RadialDetector>(d.detector);
        const double maxa = r.max_mrad > 0 ? r.max_mrad : k_max * lambda * 1e3;
        const double nb = std::ceil(maxa / r.step_mrad);
        l.accumulators += nb, l.per_position += nb, l.radial_values += nb;
        l.detector_tables += band * 8 + nb * 64;  // bin edges in the layout, its JSON text and the reader
        break;
      }
      case DetectorType::Segmented: {
        const auto& g = std::get<SegmentedDetector>(d.detector);
        const double nb = double(g.ring_edges_mrad.size() > 1 ? g.ring_edges_mrad.size() - 1 : 0) * double(g.segments);
        l.accumulators += nb, l.per_position += nb, l.detector_tables += band * 8;
        break;
      }
      case DetectorType::Com: l.accumulators += 3, l.per_position += 2; break;
      case DetectorType::Pixelated: {
        const auto& p = std::get<PixelatedDetector>(d.detector);
        const double kp = p.max_angle_mrad > 0 ? p.max_angle_mrad * 1e-3 / lambda : k_max;
        const double bin = double(std::max<std::size_t>(1, p.bin));
        const double mx = std::min(std::floor(kp * lx + 1e-9), std::floor((nxw - 1) / 2));
        const double my = std::min(std::floor(kp * ly + 1e-9), std::floor((nyw - 1) / 2));
        const double px = std::floor((2 * mx + 1) / bin) * std::floor((2 * my + 1) / bin);
        l.pattern_pixels += px;
        l.pattern_sources += px * bin * bin;
        break;
      }
    }
  return l;
}

// Everything the parts below need about one sample.
struct Sizes {
  const SampledScenario& s;
  const MemoryEstimate& e;
  const Cell& cell;
  double T, N, ns, configs, lambda, P, atoms;
  bool prism;
  const DetectorLoad& det;
};

// Build: one configuration's potential slices and the per-thread workspaces to make them;
// multislice's transmission functions and waves.
void add_potential_and_multislice(const Sizes& z, Parts& persistent, Parts& build, Parts& scan) {
  const double T = z.T, N = z.N, ns = z.ns, configs = z.configs;
  build.add("potential slices", ns * N * sizeof(float));
  build.add("potential workspaces", (T + 1) * kPotentialWorkspacePerPoint * N);
  build.add("scattering tables", 8.0 * N * sizeof(double));
  if (!z.prism) {
    std::ostringstream what;
    what << "transmission functions (" << configs << " configuration(s) × " << ns << " slices × " << N << " points)";
    persistent.add(what.str(), configs * ns * N * kComplex);
    const double focal = z.s.focal_spread > 0 ? 7 : 1;  // ProbeOptics::focal_spread_points
    scan.add("waves, probes and propagators", (T + focal + 2 + 2) * N * kComplex);  // + FFT plan buffers
  }
}

// PRISM at factor fp: its S-matrices (one per configuration), building them, and the scan's
// windows. Method auto holds these next to its multislice transmission functions while it
// calibrates (auto_method.cpp: the trial S-matrices of each factor, one at a time).
/// Returns the number of plane waves (beams) counted.
double add_prism(const Sizes& z, double fp, Parts& persistent, Parts& build, Parts& scan) {
  const SampledScenario& s = z.s;
  const double T = z.T, N = z.N, P = z.P, configs = z.configs, lambda = z.lambda;
  // Plane waves inside the aperture on the coarsened reciprocal grid: its soft edge reaches
  // half a frequency step beyond the semi-angle (src/physics/probe.cpp, aperture()). Counted row
  // by row when the disc has a sensible number of rows, else bounded by its square.
  const double nxp = std::floor(z.e.grid_nx / fp), nyp = std::floor(z.e.grid_ny / fp), Np = nxp * nyp;
  const double bandp = std::min(Np, kBandFraction * Np + 2 * (nxp + nyp));
  const double dkx = fp / z.cell.x, dky = fp / z.cell.y;
  const double R = s.convergence * 1e-3 / lambda + 0.5 * std::max(dkx, dky) + 1e-12;
  const double rows = std::floor(R / dky);
  double beams = (2 * std::floor(R / dkx) + 1) * (2 * rows + 1);
  if (rows < 1e6) {
    beams = 0;
    for (double j = -rows; j <= rows; ++j) beams += 2 * std::floor(std::sqrt(std::max(0.0, R * R - j * j * dky * dky)) / dkx) + 1;
  }
  beams = std::min(Np, beams);
  std::ostringstream what;
  what << "S-matrices (" << configs << " configuration(s) × " << beams << " plane waves × " << N << " points";
  if (!z.prism) what << ", method auto's PRISM at f = " << fp;
  what << ")";
  persistent.add(what.str(), configs * beams * N * kComplex);
  if (z.prism) build.add("transmission functions of one configuration", z.ns * N * kComplex);
  build.add("plane waves in flight", (T + 2 + 2) * N * kComplex);
  // Scan: probes grouped by 0.5 Å cells (StemSettings::prism_block_A) are one matrix product
  // per group: per thread the window of every beam, coefficients and results.
  const double pattern_pixels = z.det.pattern_pixels;
  const double group = pattern_pixels > 0 ? 1.0
                                          : std::min(P, (std::ceil(0.5 / s.scan.step_x) + 1) * (std::ceil(0.5 / s.scan.step_y) + 1));
  const double per_thread = pattern_pixels > 0 ? Np * kComplex
                                               : (beams * Np + group * beams + group * Np + Np) * kComplex +
                                                     group * (bandp * sizeof(float) + z.det.accumulators * sizeof(double));
  scan.add("PRISM windows", T * per_thread + 2 * Np * kComplex);
  return beams;
}

// The scan's detectors, 4D rows, images, label masks and their intermediates.
void add_readout(const Sizes& z, const LabelsSpec& labels, Parts& scan) {
  const SampledScenario& s = z.s;
  const DetectorLoad& d = z.det;
  const double T = z.T, P = z.P;
  // Image channels as the read-out makes them (COM: x, y and iDPC).
  const double channels = double(readout_channels(physics_detectors(s)).size());
  scan.add("detector tables", d.detector_tables + d.pattern_sources * sizeof(std::uint32_t));
  scan.add("per-thread detector accumulators",
           T * (d.band * sizeof(float) + (d.accumulators + d.pattern_pixels) * sizeof(double)));
  scan.add("detector signals", P * d.per_position * sizeof(double));
  // 4D: a block of one scan row of patterns, its copy through the camera, and HDF5's chunk of
  // the same size before and after compression.
  scan.add("4D pattern rows", 4.0 * double(s.scan.nx) * d.pattern_pixels * sizeof(float));
  scan.add("images", channels * P * sizeof(double) * kImageCopies);
  scan.add("radial data", P * d.radial_values * sizeof(float) * 2);
  scan.add("scan positions", P * 64);
  // Masks: each a double image and its integer copy; columns and species are drawn together.
  scan.add("masks", double(labels.masks.size() + 1) * P * (sizeof(double) + sizeof(std::int16_t)));
  if (std::find(labels.masks.begin(), labels.masks.end(), "region") != labels.masks.end())
    scan.add("region map", (z.cell.x / kRegionMapStep_A + 1) * (z.cell.y / kRegionMapStep_A + 1) * sizeof(double) * 2);
}

// Spectrometers (scenario_spectra.cpp, physics/inelastic.cpp, acquisition/spectrometer.cpp).
// Recorder: per configuration a Footprint (kFootprintBytes) and its separable weights
// (floats, one per pixel of each axis' span) per atom, twice when windowed multislice keeps
// a window's copy, and its own copy of the atoms. Spectra: the read-out of one spectrometer
// at a time holds expected and Poisson counts in double (and its maps, images); every
// spectrometer's float rows, noisy and clean, stay in the sample's record until written,
// plus HDF5's chunk of a scan row.
// On PRISM (`prism_beams` > 0: method prism, or auto's worst PRISM factor) the S-matrices also
// keep every beam at the footprints' pixels of every slice entrance and the exit
// (SMatrixSamples, prism.hpp): per configuration beams × (atoms × 2 reads × footprint pixels,
// at most the whole grid at every wave read) complex values, and the recorder a slot per
// footprint pixel (uint32). An upper bound: overlapping footprints share pixels.
void add_spectrometers(const Sizes& z, const std::vector<ScenarioSpectrometer>& spectrometers, double prism_beams, Parts& persistent,
                       Parts& scan) {
  const SampledScenario& s = z.s;
  const double P = z.P, configs = z.configs, atoms = z.atoms;
  double readout_peak = 0;
  for (const ScenarioSpectrometer& sp : spectrometers) {
    constexpr double kFootprintBytes = 32, kMapsPerSpectrometer = 8;
    const SpectrometerSpec& c = sp.spec;
    const double span = c.width_A > 0 ? 2 * std::ceil(3 * c.width_A / s.sampling) + 1 : 2;
    const double windows = s.method == Method::Multislice ? 1 : 2;  // windowed / auto may keep a window's copy
    persistent.add("EDS/EELS recorder of " + c.name,
                   configs * atoms * (kFootprintBytes + 2 * span * sizeof(float)) * windows + atoms * double(sizeof(Atom)));
    if (prism_beams > 0) {
      const double pixels = std::min(atoms * 2 * span * span, (z.ns + 1) * z.N);
      persistent.add("PRISM samples at the footprints of " + c.name + " (beams × pixels, and the recorder's slots)",
                     configs * (prism_beams * pixels * kComplex + atoms * 2 * span * span * sizeof(std::uint32_t)));
    }
    const double channels = double(c.kind == SpectrometerKind::Eds ? c.eds.channels : c.eels.channels);
    scan.add("spectrum images of " + c.name + " (float, noisy and clean)",
             P * channels * 2 * sizeof(float) + double(s.scan.nx) * channels * sizeof(float));
    readout_peak = std::max(readout_peak, P * channels * 2 * sizeof(double) + kMapsPerSpectrometer * P * sizeof(double) * kImageCopies);
  }
  scan.add("spectrum read-out (expected and Poisson counts)", readout_peak);
}

}  // namespace

MemoryEstimate estimate_memory(const SampledScenario& s, const LabelsSpec& labels, std::size_t threads, double budget,
                               const std::vector<ScenarioSpectrometer>& spectrometers) {
  MemoryEstimate e;
  e.threads = std::max<std::size_t>(1, threads);
  const SpecimenSize specimen = specimen_size(s, budget);
  const Cell& cell = specimen.cell;
  const bool prism = s.method == Method::Prism;
  const double f = prism ? double(std::max(1, s.interpolation)) : 1.0;
  const std::optional<Grid> grid = estimate_grid(s, cell, f, budget, e);
  e.slices = std::max(1.0, std::ceil(cell.z / s.slice_thickness));
  const double lambda = wavelength_A(s.energy);
  const DetectorLoad det = detector_load(s, e, cell, f, lambda);
  const Sizes z{s,
                e,
                cell,
                double(e.threads),
                e.grid_nx * e.grid_ny,
                e.slices,
                specimen.thermal ? double(std::max(1, s.configurations)) : 1.0,
                lambda,
                double(s.scan.nx) * double(s.scan.ny),
                specimen.atoms,
                prism,
                det};

  Parts persistent, build, scan;
  persistent.add("specimen atoms", specimen.atoms * double(sizeof(Atom)) * kAtomCopies);
  add_potential_and_multislice(z, persistent, build, scan);
  double prism_beams = 0;
  if (prism) prism_beams = add_prism(z, f, persistent, build, scan);
  else if (s.method == Method::Auto) {
    const double fa = grid ? double(auto_worst_prism_factor(s, *grid, cell.z)) : 1.0;
    if (fa > 1) prism_beams = add_prism(z, fa, persistent, build, scan);
  }
  add_readout(z, labels, scan);
  add_spectrometers(z, spectrometers, prism_beams, persistent, scan);

  for (const Parts* p : {&persistent, &build, &scan}) e.parts.insert(e.parts.end(), p->list.begin(), p->list.end());
  // The phases are added, not maximised: memory freed after building the potential need not
  // go back to the system (malloc keeps it in per-thread arenas) nor be reused by the scan.
  e.bytes = (persistent.sum + build.sum + scan.sum) * (1 + kMarginRelative) + kMarginFixed;
  return e;
}

}  // namespace stemtwin
