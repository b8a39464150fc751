// `import stemtwin`: the session (Microscope), specimens, and the STEM simulation from Python.
//
// Arrays: every image, pattern, position list and dose map that a C++ call produces is handed
// to numpy without a copy — the C++ buffer (a std::vector) is moved into a heap object that a
// py::capsule owns, and the numpy array views it (arr.base is that capsule, arr.flags.owndata
// is False). Specimen atom tables are copied (they are small and read rarely).
//
// Threads: scan(), probe_at(), scan_points() and simulate_stem() release the GIL while the
// physics runs. The Microscope guards itself (microscope.hpp, "Threads"): acquisitions run one
// after the other, while status, stage and optics calls from another Python thread answer at
// once during a scan; cancel() stops a running acquisition (it raises RuntimeError
// "acquisition cancelled …").
//
// Errors: std::invalid_argument → ValueError, std::runtime_error (StructureError included) →
// RuntimeError, each with the C++ message (pybind11's standard translation).
#include <algorithm>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/physics/names.hpp"
#include "stemtwin/specimen/names.hpp"
#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/specimen/crystal.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/session/microscope.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/specimen/structure_io.hpp"
#include "stemtwin/physics/aberration_measure.hpp"
#include "stemtwin/acquisition/ranges.hpp"
#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/specimen/crystal.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/session/microscope.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace py = pybind11;
using namespace stemtwin;

namespace {

static_assert(sizeof(Point2) == 2 * sizeof(double), "Point2 must be two packed doubles to be viewed as (n, 2)");

// ------------------------------------------------------------------------ numpy without copies

/// A numpy array that owns `v` (moved, never copied): the capsule deletes it with the array.
template <class T>
py::array_t<T> own(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  py::ssize_t n = 1;
  for (py::ssize_t s : shape) n *= s;
  if (static_cast<std::size_t>(n) != v.size()) throw std::logic_error("stemtwin: array shape does not match its buffer");
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, heap->data(), owner);
}

py::array_t<double> own(Image&& im) {
  const auto ny = static_cast<py::ssize_t>(im.ny), nx = static_cast<py::ssize_t>(im.nx);
  return own(std::move(im.data), {ny, nx});
}

/// Positions (row-major Point2) as a (..., 2) float64 array, no copy.
py::array_t<double> own(std::vector<Point2>&& p, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<Point2>(std::move(p));
  py::capsule owner(heap, [](void* q) { delete static_cast<std::vector<Point2>*>(q); });
  shape.push_back(2);
  return py::array_t<double>(shape, reinterpret_cast<const double*>(heap->data()), owner);
}

/// (n, 2) or (..., 2) array of positions (Å) → Point2 list, and the leading shape.
std::vector<Point2> to_points(const py::array_t<double, py::array::c_style | py::array::forcecast>& a,
                              std::vector<py::ssize_t>* lead = nullptr) {
  if (a.ndim() < 1 || a.shape(a.ndim() - 1) != 2)
    throw std::invalid_argument("positions must be an array of shape (..., 2) holding (x, y) in Å");
  const std::size_t n = static_cast<std::size_t>(a.size() / 2);
  std::vector<Point2> pts(n);
  const double* d = a.data();
  for (std::size_t i = 0; i < n; ++i) pts[i] = {d[2 * i], d[2 * i + 1]};
  if (lead) {
    lead->clear();
    for (py::ssize_t k = 0; k + 1 < a.ndim(); ++k) lead->push_back(a.shape(k));
  }
  return pts;
}

// ------------------------------------------------------------------------ small conversions

int to_Z(const py::handle& h) {
  if (py::isinstance<py::str>(h)) return atomic_number(h.cast<std::string>());
  if (PyIndex_Check(h.ptr())) {  // int, numpy integers
    const int Z = h.attr("__index__")().cast<int>();
    element_symbol(Z);  // throws std::invalid_argument for Z outside 1..103
    return Z;
  }
  throw std::invalid_argument("an element is an atomic number (int) or a symbol (str), got " +
                              py::str(h).cast<std::string>());
}

// Enum words: the one table of each enum (physics/names.hpp, specimen/names.hpp, camera.hpp).
template <class E, std::size_t N>
E parse_enum(const std::string& what, const std::string& value, const NamedValue<E> (&table)[N]) {
  return parse_name(what, value, table);
}
template <class E, std::size_t N>
std::string enum_name(E e, const NamedValue<E> (&table)[N]) {
  return name_of(e, table);
}
constexpr const auto& kMethods = kMethodNames;
constexpr const auto& kParam = kParametrizationNames;
constexpr const auto& kProjection = kProjectionNames;
constexpr const auto& kArrangement = kSiteArrangementNames;
constexpr const auto& kFront = kFrontShapeNames;
constexpr const auto& kAmorphousMode = kAmorphousModeNames;
constexpr const auto& kParticle = kParticleShapeNames;
constexpr const auto& kCameraMode = kCameraModeNames;

/// A species list: "Sr", 38, or [("La", 0.7), ("Sr", 0.3)].
std::vector<SpeciesFraction> to_species(const py::handle& h) {
  if (py::isinstance<py::str>(h) || py::isinstance<py::int_>(h)) return {{to_Z(h), 1.0}};
  std::vector<SpeciesFraction> out;
  for (const py::handle& item : h) {
    const auto t = item.cast<py::sequence>();
    if (t.size() != 2) throw std::invalid_argument("a species entry is (element, fraction)");
    out.push_back({to_Z(t[0]), t[1].cast<double>()});
  }
  if (out.empty()) throw std::invalid_argument("a species list needs at least one element");
  return out;
}

std::array<int, 3> to_int3(const py::handle& h, const char* what) {
  const auto s = h.cast<std::vector<int>>();
  if (s.size() != 3) throw std::invalid_argument(std::string(what) + " needs three integers");
  return {s[0], s[1], s[2]};
}

/// Perovskite parameters from keyword arguments (the names of PerovskiteParams' fields).
PerovskiteParams perovskite_params(const py::dict& kw, bool allow_seed) {
  PerovskiteParams p;
  for (const auto& [k, v] : kw) {
    const std::string key = k.cast<std::string>();
    if (key == "a") p.a = v.cast<double>();
    else if (key == "A") p.A = to_species(v);
    else if (key == "B") p.B = to_species(v);
    else if (key == "O") p.O = to_Z(v);
    else if (key == "repeats") p.repeats = to_int3(v, "repeats");
    else if (key == "arrangement") p.arrangement = parse_enum("arrangement", v.cast<std::string>(), kArrangement);
    else if (key == "layer_axis") p.layer_axis = v.cast<int>();
    else if (key == "correlation_length") p.correlation_length = v.cast<double>();
    else if (key == "vacancy_order") p.vacancy_order = v.cast<bool>();
    else if (key == "vacancy_axis") p.vacancy_axis = v.cast<int>();
    else if (allow_seed && (key == "seed" || key == "sample")) continue;
    else
      throw std::invalid_argument("unknown perovskite parameter '" + key +
                                  "' (known: a, A, B, O, repeats, arrangement, layer_axis, correlation_length, "
                                  "vacancy_order, vacancy_axis)");
  }
  return p;
}

// ------------------------------------------------------------------------ specimens

Specimen specimen_from_arrays(const py::object& Z, const py::array_t<double, py::array::c_style | py::array::forcecast>& pos,
                              const std::vector<double>& cell, const std::optional<std::vector<double>>& occupancy,
                              const std::optional<std::vector<double>>& rms, const std::optional<std::vector<int>>& cls) {
  if (pos.ndim() != 2 || pos.shape(1) != 3) throw std::invalid_argument("positions must have shape (n, 3), Å");
  if (cell.size() != 3) throw std::invalid_argument("cell must be (x, y, z) in Å");
  const std::size_t n = static_cast<std::size_t>(pos.shape(0));
  std::vector<int> z;
  for (const py::handle& h : Z) z.push_back(to_Z(h));
  if (z.size() != n) throw std::invalid_argument("Z and positions differ in length");
  if (occupancy && occupancy->size() != n) throw std::invalid_argument("occupancy and positions differ in length");
  if (rms && rms->size() != n) throw std::invalid_argument("rms and positions differ in length");
  Structure s;
  s.cell = {cell[0], cell[1], cell[2]};
  const double* d = pos.data();
  for (std::size_t i = 0; i < n; ++i) {
    Atom a;
    a.Z = z[i];
    a.x = d[3 * i], a.y = d[3 * i + 1], a.z = d[3 * i + 2];
    a.occupancy = occupancy ? (*occupancy)[i] : 1.0;
    a.rms = rms ? (*rms)[i] : 0.0;  // used only when thermal vibration is turned on
    s.atoms.push_back(a);
  }
  Specimen sp = make_specimen(std::move(s));
  if (cls) {
    sp.atom_class = *cls;
    check_specimen(sp);
  }
  return sp;
}

py::array_t<double> atom_positions(const std::vector<Atom>& atoms) {
  std::vector<double> v(atoms.size() * 3);
  for (std::size_t i = 0; i < atoms.size(); ++i) {
    v[3 * i] = atoms[i].x, v[3 * i + 1] = atoms[i].y, v[3 * i + 2] = atoms[i].z;
  }
  return own(std::move(v), {static_cast<py::ssize_t>(atoms.size()), 3});
}
template <class F>
auto atom_column(const std::vector<Atom>& atoms, F f) {
  using T = decltype(f(atoms.front()));
  std::vector<T> v(atoms.size());
  for (std::size_t i = 0; i < atoms.size(); ++i) v[i] = f(atoms[i]);
  return own(std::move(v), {static_cast<py::ssize_t>(atoms.size())});
}

Specimen specimen_from_structure(Structure s, std::map<std::string, double> info = {}) {
  Specimen sp = make_specimen(std::move(s));
  sp.info = std::move(info);
  return sp;
}

/// The demo specimen of the examples: a SrTiO3 slab (cubic perovskite) with an amorphous
/// strip along the left edge (planar front along x) and Sr vacancies in the crystal.
Specimen demo_specimen(int cells_x, int cells_y, int cells_z, double amorphous_fraction, double sr_vacancies,
                       std::uint64_t seed) {
  PerovskiteParams p;
  p.repeats = {cells_x, cells_y, cells_z};
  Specimen s = build_perovskite(p, seed);
  if (amorphous_fraction > 0) {
    AmorphousParams a;
    a.axis = 0;
    a.fraction = amorphous_fraction;
    amorphize(s, a, seed);
  }
  if (sr_vacancies > 0) add_vacancies(s, 38, sr_vacancies, seed);
  return s;
}

// ------------------------------------------------------------------------ session

/// The session (thread-safe on its own: microscope.hpp, "Threads").
struct Session {
  Microscope m;
  std::map<std::string, std::array<double, 2>> measured;  // last measured CEOS coefficients (Å; GIL held)
  Session(Specimen s, const MicroscopeSettings& st) : m(std::move(s), st) {}
};

/// A tableau's coefficients: {"C1": {"value": (x,), "error": (σ,), ...}, "A1": {"value": (x, y),
/// "error": (σx, σy), "magnitude_A", "angle_rad", ...}, ...} (CEOS Cartesian, Å).
py::dict tableau_dict(const TableauResult& r, const std::vector<std::string>& only = {}) {
  py::dict out;
  for (const auto& c : r.coefficients) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    py::dict e;
    if (ceos_coefficient(c.name).m == 0) {
      e["value"] = py::make_tuple(c.xy_A[0]);
      e["error"] = py::make_tuple(c.sigma_xy_A[0]);
    } else {
      e["value"] = py::make_tuple(c.xy_A[0], c.xy_A[1]);
      e["error"] = py::make_tuple(c.sigma_xy_A[0], c.sigma_xy_A[1]);
      e["magnitude_A"] = c.magnitude_A, e["magnitude_error_A"] = c.sigma_magnitude_A;
      e["angle_rad"] = c.angle_rad, e["angle_error_rad"] = c.sigma_angle_rad;
    }
    out[py::str(c.name)] = e;
  }
  out["reduced_chi2"] = r.reduced_chi2;
  out["tilts"] = r.tilts;
  return out;
}

std::array<double, 2> xy_of(const py::object& v, const char* what) {
  if (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v)) return {v.cast<double>(), 0.0};
  const auto seq = v.cast<std::vector<double>>();
  if (seq.empty() || seq.size() > 2) throw std::invalid_argument(std::string(what) + " must be x or (x,) or (x, y) in Å");
  return {seq[0], seq.size() == 2 ? seq[1] : 0.0};
}

/// Runs f(microscope) with the GIL released.
template <class F>
auto with(Session& s, F&& f) {
  py::gil_scoped_release release;
  return f(s.m);
}

py::dict stage_dict(const StagePosition& p) {
  py::dict d;
  d["x_A"] = p.x_A, d["y_A"] = p.y_A, d["z_A"] = p.z_A, d["alpha_rad"] = p.alpha_rad, d["beta_rad"] = p.beta_rad;
  return d;
}
py::dict aberration_dict(const Aberrations& ab) {
  py::dict d;
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const auto [n, m] = Aberrations::kOrders[i];
    if (ab.C[i] != 0) d[py::str("C" + std::to_string(n) + std::to_string(m))] = ab.C[i];
    if (ab.phi[i] != 0) d[py::str("phi" + std::to_string(n) + std::to_string(m))] = ab.phi[i];
  }
  return d;
}
py::dict optics_dict(const Optics& o) {
  py::dict d;
  d["energy_eV"] = o.probe.energy_eV;
  d["semiangle_mrad"] = o.probe.semiangle_mrad;
  d["defocus_A"] = o.probe.aberrations.get("defocus") + 0.0;  // no -0.0
  d["aberrations"] = aberration_dict(o.probe.aberrations);
  d["focal_spread_A"] = o.probe.focal_spread_A;
  d["source_size_A"] = o.probe.source_size_A;
  d["current_pA"] = o.current_pA;
  return d;
}
py::dict scan_dict(const ScanSettings& s) {
  py::dict d;
  d["fov_x_A"] = s.fov_x_A, d["fov_y_A"] = s.fov_y_A, d["nx"] = s.nx, d["ny"] = s.ny;
  d["rotation_deg"] = s.rotation_deg, d["dwell_us"] = s.dwell_us, d["flyback_us"] = s.flyback_us;
  return d;
}

py::dict scan_result(ScanResult&& r) {
  py::dict images, clean;
  for (auto& [name, im] : r.images) images[py::str(name)] = own(std::move(im));
  for (auto& [name, im] : r.clean) clean[py::str(name)] = own(std::move(im));
  py::dict d;
  d["images"] = images;
  d["clean"] = clean;
  d["positions"] = own(std::move(r.positions_A), {static_cast<py::ssize_t>(r.scan.ny), static_cast<py::ssize_t>(r.scan.nx)});
  d["pixel_A"] = py::make_tuple(r.scan.fov_x_A / double(r.scan.nx), r.scan.fov_y_A / double(r.scan.ny));
  d["electrons_per_position"] = r.electrons_per_position;
  d["dose_e_per_A2"] = r.dose_e_per_A2;
  d["call"] = r.call;
  d["warnings"] = r.warnings;
  d["seconds"] = r.seconds;
  d["window_cache_hit"] = r.window_cache_hit;
  d["signal_cache_hit"] = r.signal_cache_hit;
  d["incoherent"] = r.incoherent;
  d["stage"] = stage_dict(r.stage);
  d["optics"] = optics_dict(r.optics);
  d["scan"] = scan_dict(r.scan);
  return d;
}

py::dict probe_result(ProbeResult&& p) {
  py::dict d;
  d["pattern"] = own(std::move(p.pattern), {static_cast<py::ssize_t>(p.pattern_ny), static_cast<py::ssize_t>(p.pattern_nx)});
  d["signals"] = p.signals;
  d["position"] = py::make_tuple(p.position_A.x, p.position_A.y);
  d["pixel_mrad"] = py::make_tuple(p.pattern_pixel_mrad_x, p.pattern_pixel_mrad_y);
  d["electrons"] = p.electrons;
  d["call"] = p.call;
  return d;
}

py::dict status_dict(const MicroscopeStatus& s) {
  py::dict d;
  d["stage"] = stage_dict(s.stage);
  d["optics"] = optics_dict(s.optics);
  d["scan"] = scan_dict(s.scan);
  d["detectors"] = s.detectors;
  d["total_electrons"] = s.total_electrons;
  d["calls"] = s.calls;
  d["atoms"] = s.atoms;
  d["cell_A"] = py::make_tuple(s.specimen_cell.x, s.specimen_cell.y, s.specimen_cell.z);
  d["cached_windows"] = s.cached_windows;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["atoms_removed"] = s.atoms_removed;
  d["atoms_displaced"] = s.atoms_displaced;
  d["acquiring"] = s.acquiring;
  d["positions_done"] = s.positions_done;
  d["positions_total"] = s.positions_total;
  return d;
}

/// Thermal-vibration keywords shared by MicroscopeSettings and simulate_stem: `thermal`
/// (bool), `rms_A` (Å for all elements, or {element: Å}; turns thermal vibration on) and
/// `phonon_configurations`. Returns false when `key` is none of them.
bool apply_thermal_keyword(ThermalVibration& t, const std::string& key, const py::handle& v) {
  if (key == "thermal") {
    t.enabled = v.cast<bool>();
  } else if (key == "rms_A") {
    t.enabled = true;
    if (py::isinstance<py::dict>(v)) {
      for (const auto& [el, r] : v.cast<py::dict>()) t.rms_by_Z_A[to_Z(el)] = r.cast<double>();
    } else {
      t.rms_A = v.cast<double>();
    }
  } else if (key == "phonon_configurations") {
    const auto n = v.cast<long long>();
    if (n < 1 || n > 10000) throw std::invalid_argument("phonon_configurations must be in 1..10000");
    t.configurations = std::size_t(n);
  } else {
    return false;
  }
  return true;
}

/// Applies MicroscopeSettings keyword arguments (field names; slicing and method too).
void apply_settings(MicroscopeSettings& st, const py::dict& kw) {
  for (const auto& [k, v] : kw) {
    const std::string key = k.cast<std::string>();
    if (key == "sampling_A") st.sampling_A = v.cast<double>();
    else if (key == "slice_thickness_A") st.potential.slice_thickness_A = v.cast<double>();
    else if (key == "parametrization") st.potential.parametrization = parse_enum("parametrization", v.cast<std::string>(), kParam);
    else if (key == "projection") st.potential.projection = parse_enum("projection", v.cast<std::string>(), kProjection);
    else if (key == "finite_range_A") st.potential.finite_range_A = v.cast<double>();
    else if (apply_thermal_keyword(st.thermal, key, v)) continue;
    else if (key == "method") st.method = parse_enum("method", v.cast<std::string>(), kMethods);
    else if (key == "prism_interpolation") st.prism_interpolation = v.cast<std::size_t>();
    else if (key == "window_margin_A") st.window_margin_A = v.cast<double>();
    else if (key == "window_snap_A") st.window_snap_A = v.cast<double>();
    else if (key == "min_window_A") st.min_window_A = v.cast<double>();
    else if (key == "max_positions_per_call") st.max_positions_per_call = v.cast<std::size_t>();
    else if (key == "cache_entries") st.cache_entries = v.cast<std::size_t>();
    else if (key == "seed") st.seed = v.cast<std::uint64_t>();
    else if (key == "incoherent_above_A") st.incoherent_above_A = v.cast<double>();
    else if (key == "residual_aberrations") st.residual_aberrations = v.cast<bool>();
    else if (key == "c1_drift_A_per_sqrt_min") st.c1_drift_A_per_sqrt_min = v.cast<double>();
    else if (key == "a1_drift_A_per_sqrt_min") st.a1_drift_A_per_sqrt_min = v.cast<double>();
    else if (key == "damage") st.damage = v.cast<DamageSettings>();
    else
      throw std::invalid_argument("unknown microscope setting '" + key +
                                  "' (known: sampling_A, slice_thickness_A, parametrization, projection, "
                                  "finite_range_A, thermal, rms_A, phonon_configurations, method, "
                                  "prism_interpolation, window_margin_A, window_snap_A, min_window_A, max_positions_per_call, "
                                  "cache_entries, seed, damage, incoherent_above_A, residual_aberrations, c1_drift_A_per_sqrt_min, a1_drift_A_per_sqrt_min)");
  }
}

// ------------------------------------------------------------------------ simulate_stem

/// Collects pixelated patterns into one buffer per detector, [position][ky][kx].
struct CollectSink : PatternSink {
  std::size_t positions = 0;
  std::map<std::string, std::vector<float>> data;
  std::map<std::string, std::pair<std::size_t, std::size_t>> shape;
  void write(const std::string& name, std::size_t first, std::size_t count, std::size_t ny, std::size_t nx,
             const float* p) override {
    auto& v = data[name];
    if (v.empty()) v.resize(positions * ny * nx), shape[name] = {ny, nx};
    std::memcpy(v.data() + first * ny * nx, p, count * ny * nx * sizeof(float));
  }
};

py::dict simulate(const Specimen& sp, const py::array_t<double, py::array::c_style | py::array::forcecast>& positions,
                  const std::vector<Detector>& detectors, const ProbeOptics& optics, double sampling_A,
                  const py::kwargs& kw) {
  std::vector<py::ssize_t> lead;
  const std::vector<Point2> pts = to_points(positions, &lead);
  if (pts.empty()) throw std::invalid_argument("simulate_stem: no probe positions");
  if (detectors.empty()) throw std::invalid_argument("simulate_stem: at least one detector is needed");
  if (!(sampling_A > 0)) throw std::invalid_argument("simulate_stem: sampling_A must be > 0");
  StemSettings st;
  ThermalVibration thermal;
  for (const auto& [k, v] : kw) {
    const std::string key = k.cast<std::string>();
    if (apply_thermal_keyword(thermal, key, v)) continue;
    if (key == "slice_thickness_A") st.potential.slice_thickness_A = v.cast<double>();
    else if (key == "parametrization") st.potential.parametrization = parse_enum("parametrization", v.cast<std::string>(), kParam);
    else if (key == "projection") st.potential.projection = parse_enum("projection", v.cast<std::string>(), kProjection);
    else if (key == "seed") st.seed = v.cast<std::uint64_t>();
    else if (key == "method") st.method = parse_enum("method", v.cast<std::string>(), kMethods);
    else if (key == "interpolation") st.interpolation_x = st.interpolation_y = v.cast<std::size_t>();
    else if (key == "depths_A") st.depths_A = v.cast<std::vector<double>>();
    else
      throw std::invalid_argument("unknown simulate_stem argument '" + key +
                                  "' (known: slice_thickness_A, parametrization, projection, thermal, rms_A, "
                                  "phonon_configurations, seed, method, interpolation, depths_A)");
  }
  const Cell& c = sp.structure.cell;
  if (!(c.x > 0 && c.y > 0 && c.z > 0)) throw std::invalid_argument("simulate_stem: the specimen cell must be positive");
  const Grid grid = make_grid(c.x, c.y, sampling_A, st.method, st.interpolation_x);
  CollectSink sink;
  sink.positions = pts.size();
  Structure structure = sp.structure;
  apply_thermal_vibration(structure, thermal);
  st.phonon_configurations = thermal.configurations;
  StemResult res;
  {
    py::gil_scoped_release release;
    res = simulate_stem(structure, grid, optics, pts, detectors, st, &sink);
  }
  const std::size_t ndepth = res.depths_A.size();
  py::dict signals;
  for (const Detector& det : detectors) {
    const std::string& name = detector_name(det);
    if (std::holds_alternative<PixelatedDetector>(det)) continue;
    std::vector<py::ssize_t> shape;
    if (ndepth > 1) shape.push_back(static_cast<py::ssize_t>(ndepth));
    shape.insert(shape.end(), lead.begin(), lead.end());
    std::size_t bins = 1;
    std::vector<double> all;
    for (std::size_t di = 0; di < std::max<std::size_t>(ndepth, 1); ++di) {
      // signal() takes the exit surface for SIZE_MAX; with one depth that is index 0.
      DetectorSignal& s = const_cast<DetectorSignal&>(res.signal(name, ndepth > 1 ? di : SIZE_MAX));
      bins = s.bins;
      if (ndepth <= 1) all = std::move(s.values);
      else all.insert(all.end(), s.values.begin(), s.values.end());
    }
    if (bins > 1) shape.push_back(static_cast<py::ssize_t>(bins));
    signals[py::str(name)] = own(std::move(all), shape);
  }
  for (auto& [name, v] : sink.data) {
    std::vector<py::ssize_t> shape = lead;
    shape.push_back(static_cast<py::ssize_t>(sink.shape[name].first));
    shape.push_back(static_cast<py::ssize_t>(sink.shape[name].second));
    signals[py::str(name)] = own(std::move(v), shape);
  }
  py::dict out;
  out["signals"] = signals;
  out["depths_A"] = res.depths_A;
  out["warnings"] = res.warnings;
  out["grid"] = py::make_tuple(grid.nx, grid.ny);
  return out;
}

// ------------------------------------------------------------------------ datasets, scenarios

/// Debian's libhdf5 is built without thread safety: every HDF5 call of this module (dataset
/// reading, scenario runs) holds this one lock, taken with the GIL released.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

struct Dataset {
  DatasetReader r;
  explicit Dataset(const std::string& path) : r(path) {}
  ~Dataset() {  // closing the file is an HDF5 call too (no HDF5 holder of the lock needs the GIL)
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    DatasetReader gone = std::move(r);
  }
};
template <class F>
auto with(Dataset& d, F&& f) {
  py::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return f(d.r);
}

std::size_t check_row(const DatasetReader& r, std::size_t row) {
  if (row >= r.size())
    throw py::index_error("row " + std::to_string(row) + " out of range: the dataset holds " + std::to_string(r.size()) +
                          " complete sample(s)");
  return row;
}

py::dict columns_dict(std::vector<ColumnLabel>&& c) {
  const auto n = static_cast<py::ssize_t>(c.size());
  std::vector<double> x(c.size()), y(c.size()), px(c.size()), py_(c.size());
  std::vector<int> species(c.size()), count(c.size()), cls(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    x[i] = c[i].x, y[i] = c[i].y, px[i] = c[i].px, py_[i] = c[i].py;
    species[i] = c[i].species, count[i] = c[i].count, cls[i] = c[i].class_id;
  }
  py::dict d;
  d["x_A"] = own(std::move(x), {n});
  d["y_A"] = own(std::move(y), {n});
  d["x_px"] = own(std::move(px), {n});
  d["y_px"] = own(std::move(py_), {n});
  d["species"] = own(std::move(species), {n});
  d["count"] = own(std::move(count), {n});
  d["class"] = own(std::move(cls), {n});
  return d;
}

const DiffractionLayout& diffraction_layout(const DatasetLayout& L, const std::string& name) {
  for (const DiffractionLayout& d : L.diffraction)
    if (d.name == name) return d;
  throw std::invalid_argument("no diffraction detector '" + name + "' in the dataset");
}
const RadialLayout& radial_layout(const DatasetLayout& L, const std::string& name) {
  for (const RadialLayout& d : L.radial)
    if (d.name == name) return d;
  throw std::invalid_argument("no radial detector '" + name + "' in the dataset");
}

}  // namespace

PYBIND11_MODULE(stemtwin, mod) {
  mod.doc() =
      "stemtwin: a digital twin of a scanning transmission electron microscope.\n\n"
      "Microscope(specimen, **settings) is a session: move_stage, set_defocus, set_detectors,\n"
      "set_scan, scan() -> dict of numpy images, probe_at(x, y) -> diffraction pattern,\n"
      "dose_map(), status(). Specimens come from files (load_specimen) or builders\n"
      "(perovskite, film_on_substrate, Specimen.amorphize/add_vacancies/add_dopants, demo_specimen).\n"
      "run_scenario(yaml, output) writes a labelled HDF5 dataset; Dataset(path) reads one.\n"
      "Units: Å, mrad, eV, pA, µs. Arrays are [y][x] (x fast).";

#ifdef STEMTWIN_VERSION
  mod.attr("__version__") = STEMTWIN_VERSION;
#endif

  // ---------------------------------------------------------------- specimens
  py::class_<Crystal>(mod, "Crystal", "A general crystal (any lattice) read from CIF or POSCAR; see orient_along.")
      .def_readonly("name", &Crystal::name)
      .def_readonly("a", &Crystal::a)
      .def_readonly("b", &Crystal::b)
      .def_readonly("c", &Crystal::c)
      .def_readonly("alpha", &Crystal::alpha)
      .def_readonly("beta", &Crystal::beta)
      .def_readonly("gamma", &Crystal::gamma)
      .def("__len__", [](const Crystal& c) { return c.sites.size(); })
      .def("__repr__", [](const Crystal& c) {
        return "Crystal('" + c.name + "', a=" + std::to_string(c.a) + ", b=" + std::to_string(c.b) +
               ", c=" + std::to_string(c.c) + ", sites=" + std::to_string(c.sites.size()) + ")";
      });

  py::class_<Specimen>(mod, "Specimen",
                       "Atoms in an orthogonal periodic cell (Å, beam along +z) with ground-truth classes.")
      .def(py::init(&specimen_from_arrays), py::arg("Z"), py::arg("positions"), py::arg("cell"),
           py::arg("occupancy") = py::none(), py::arg("rms") = py::none(), py::arg("atom_class") = py::none(),
           "Z: atomic numbers or symbols; positions: (n, 3) Å; cell: (x, y, z) Å; rms defaults to the "
           "room-temperature table; atom_class: class ids (default crystal).")
      .def("__len__", [](const Specimen& s) { return s.structure.atoms.size(); })
      .def_property_readonly("Z", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.Z; }); })
      .def_property_readonly("positions", [](const Specimen& s) { return atom_positions(s.structure.atoms); }, "(n, 3) Å (copy)")
      .def_property_readonly("occupancy", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.occupancy; }); })
      .def_property_readonly("rms", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.rms; }); })
      .def_property_readonly("atom_class", [](const Specimen& s) { return own(std::vector<int>(s.atom_class), {static_cast<py::ssize_t>(s.atom_class.size())}); })
      .def_property_readonly("cell", [](const Specimen& s) { return py::make_tuple(s.structure.cell.x, s.structure.cell.y, s.structure.cell.z); }, "(x, y, z) Å")
      .def_readonly("class_names", &Specimen::class_names)
      .def_readwrite("info", &Specimen::info,
                     "scalars the builders report (e.g. interface_y, amorphous_fraction); reading gives a copy, "
                     "assign a whole dict to change it")
      .def_property_readonly("vacancy_positions", [](const Specimen& s) { return atom_positions(s.vacancies); }, "(m, 3) Å of removed sites")
      .def_property_readonly("vacancy_Z", [](const Specimen& s) { return atom_column(s.vacancies, [](const Atom& a) { return a.Z; }); })
      .def("copy", [](const Specimen& s) { return s; })
      .def("tile", [](const Specimen& s, int nx, int ny, int nz) { return tile(s, nx, ny, nz); }, py::arg("nx"), py::arg("ny"), py::arg("nz"),
           "A new specimen repeated nx × ny × nz times (classes and vacancies too).")
      .def("amorphize",
           [](Specimen& s, int axis, double fraction, const std::string& shape, double amplitude, double wavelength,
              const std::string& mode, double min_distance, double displacement_rms, std::uint64_t seed, std::uint64_t sample) {
             AmorphousParams p;
             p.axis = axis, p.fraction = fraction, p.shape = parse_enum("front shape", shape, kFront);
             p.amplitude = amplitude, p.wavelength = wavelength, p.mode = parse_enum("amorphous mode", mode, kAmorphousMode);
             p.min_distance = min_distance, p.displacement_rms = displacement_rms;
             amorphize(s, p, seed, sample);
             return s.info.count("amorphous_fraction") ? s.info.at("amorphous_fraction") : 0.0;
           },
           py::arg("axis") = 0, py::arg("fraction") = 0.3, py::arg("shape") = "planar", py::arg("amplitude") = 0.0,
           py::arg("wavelength") = 20.0, py::arg("mode") = "random_packing", py::arg("min_distance") = 0.0,
           py::arg("displacement_rms") = 0.6, py::arg("seed") = 0, py::arg("sample") = 0,
           "Turns the region in front of a front along `axis` amorphous (in place); returns the amorphous atom fraction.")
      .def("add_vacancies",
           [](Specimen& s, const py::object& el, double fraction, std::uint64_t seed, std::uint64_t sample) {
             return add_vacancies(s, to_Z(el), fraction, seed, sample);
           },
           py::arg("element"), py::arg("fraction"), py::arg("seed") = 0, py::arg("sample") = 0,
           "Removes a fraction of the crystalline atoms of an element (in place); returns how many.")
      .def("add_dopants",
           [](Specimen& s, const py::object& host, const py::object& dopant, double fraction, std::uint64_t seed, std::uint64_t sample) {
             return add_dopants(s, to_Z(host), to_Z(dopant), fraction, seed, sample);
           },
           py::arg("host"), py::arg("dopant"), py::arg("fraction"), py::arg("seed") = 0, py::arg("sample") = 0,
           "Replaces a fraction of the host atoms by the dopant (in place); returns how many.")
      .def("add_interstitials",
           [](Specimen& s, const py::object& el, std::size_t count, double min_distance, std::uint64_t seed, std::uint64_t sample) {
             return add_interstitials(s, to_Z(el), count, min_distance, seed, sample);
           },
           py::arg("element"), py::arg("count"), py::arg("min_distance") = 1.5, py::arg("seed") = 0, py::arg("sample") = 0)
      .def("add_antiphase_boundary",
           [](Specimen& s, double a, double position) { return add_planar_fault(s, perovskite_antiphase_boundary(a, position)); },
           py::arg("a"), py::arg("position"), "Perovskite (100) antiphase boundary at x = position (in place).")
      .def("write_xyz", [](const Specimen& s, const std::string& path) { write_xyz(s.structure, path); }, py::arg("path"))
      .def("__repr__", [](const Specimen& s) {
        const Cell& c = s.structure.cell;
        return "Specimen(" + std::to_string(s.structure.atoms.size()) + " atoms, cell " + std::to_string(c.x) + " × " +
               std::to_string(c.y) + " × " + std::to_string(c.z) + " Å, " + std::to_string(s.vacancies.size()) + " vacancies)";
      });

  mod.def("read_structure", [](const std::string& path) { return specimen_from_structure(read_structure(path)); }, py::arg("path"),
          "Reads CIF, (extended) XYZ, Prismatic XYZ or POSCAR with an orthogonal cell into a Specimen.");
  mod.def("read_crystal", &read_crystal, py::arg("path"), "Reads CIF or POSCAR as a general crystal (any lattice).");
  mod.def("orient_along",
          [](const Crystal& c, const py::object& uvw, const std::optional<py::object>& x_axis, double max_strain,
             double max_lateral, double max_period) {
            OrientOptions o;
            o.max_strain = max_strain, o.max_lateral = max_lateral, o.max_period = max_period;
            if (x_axis) o.x_axis = to_int3(*x_axis, "x_axis");
            OrientedCell oc = orient_along(c, to_int3(uvw, "zone axis"), o);
            return specimen_from_structure(std::move(oc.structure), {{"max_strain", oc.max_strain}});
          },
          py::arg("crystal"), py::arg("zone_axis"), py::arg("x_axis") = py::none(), py::arg("max_strain") = 1e-3,
          py::arg("max_lateral") = 30.0, py::arg("max_period") = 60.0,
          "Orthogonal periodic cell with the zone axis [uvw] along the beam (+z).");
  mod.def("tile", [](const Specimen& s, int nx, int ny, int nz) { return tile(s, nx, ny, nz); }, py::arg("specimen"),
          py::arg("nx"), py::arg("ny"), py::arg("nz"));
  mod.def("load_specimen",
          [](const std::string& path, const std::optional<py::object>& zone_axis, const std::optional<py::object>& repeats,
             const std::optional<std::vector<double>>& size_A) {
            Specimen s;
            if (zone_axis) {
              OrientedCell oc = orient_along(read_crystal(path), to_int3(*zone_axis, "zone axis"));
              s = specimen_from_structure(std::move(oc.structure), {{"max_strain", oc.max_strain}});
            } else {
              s = specimen_from_structure(read_structure(path));
            }
            if (repeats && size_A) throw std::invalid_argument("give repeats or size_A, not both");
            std::array<int, 3> r{1, 1, 1};
            if (repeats) r = to_int3(*repeats, "repeats");
            if (size_A) {
              if (size_A->size() != 3) throw std::invalid_argument("size_A is (x, y, thickness) in Å");
              r = repeats_for_size(s.structure.cell, (*size_A)[0], (*size_A)[1], (*size_A)[2]);
            }
            return tile(s, r[0], r[1], r[2]);
          },
          py::arg("path"), py::arg("zone_axis") = py::none(), py::arg("repeats") = py::none(), py::arg("size_A") = py::none(),
          "A structure file as a specimen: with zone_axis the crystal is oriented along it (read_crystal + "
          "orient_along); then tiled by repeats (nx, ny, nz) or to the nearest size_A (x, y, thickness).");

  mod.def("perovskite",
          [](std::uint64_t seed, std::uint64_t sample, const py::kwargs& kw) { return build_perovskite(perovskite_params(kw, false), seed, sample); },
          py::arg("seed") = 0, py::arg("sample") = 0,
          "Cubic perovskite ABO3 supercell. Keywords: a (Å), A, B (element, or [(element, fraction), ...]), O, "
          "repeats=(nx, ny, nz), arrangement ('random', 'layered', 'clustered'), layer_axis, correlation_length, "
          "vacancy_order, vacancy_axis.");
  mod.def("film_on_substrate",
          [](const py::dict& substrate, const py::dict& film, int substrate_cells, int film_cells, double poisson,
             double vacuum, std::uint64_t seed, std::uint64_t sample) {
            FilmParams p;
            p.substrate = perovskite_params(substrate, false);
            p.film = perovskite_params(film, false);
            p.substrate_cells = substrate_cells, p.film_cells = film_cells, p.poisson = poisson, p.vacuum = vacuum;
            return build_film_on_substrate(p, seed, sample);
          },
          py::arg("substrate") = py::dict(), py::arg("film") = py::dict(), py::arg("substrate_cells") = 6,
          py::arg("film_cells") = 6, py::arg("poisson") = 0.3, py::arg("vacuum") = 0.0, py::arg("seed") = 0,
          py::arg("sample") = 0,
          "Coherent perovskite film on a perovskite substrate stacked along +y; substrate and film are dicts of "
          "perovskite() keywords (the substrate's repeats set x and z).");
  mod.def("fcc_stacking_fault",
          [](double a, const py::object& el, int planes, int fault_after, int repeats_x, int repeats_z) {
            StackingFaultParams p;
            p.a = a, p.Z = to_Z(el), p.planes = planes, p.fault_after = fault_after, p.repeats_x = repeats_x, p.repeats_z = repeats_z;
            return build_fcc_stacking_fault(p);
          },
          py::arg("a") = 4.078, py::arg("element") = "Au", py::arg("planes") = 14, py::arg("fault_after") = 6,
          py::arg("repeats_x") = 2, py::arg("repeats_z") = 4);
  mod.def("nanoparticle_on_support",
          [](double a, const py::object& el, const py::object& zone_axis, const std::string& shape, double radius,
             double cell_x, double cell_y, double support_thickness, const py::object& support_el, double gap,
             std::uint64_t seed, std::uint64_t sample) {
            NanoparticleParams p;
            p.a = a, p.Z = to_Z(el), p.zone_axis = to_int3(zone_axis, "zone_axis");
            p.shape = parse_enum("particle shape", shape, kParticle);
            p.radius = radius, p.cell_x = cell_x, p.cell_y = cell_y, p.support_thickness = support_thickness;
            p.support_Z = to_Z(support_el), p.gap = gap;
            return build_nanoparticle_on_support(p, seed, sample);
          },
          py::arg("a") = 4.078, py::arg("element") = "Au", py::arg("zone_axis") = py::make_tuple(1, 1, 0),
          py::arg("shape") = "cuboctahedron", py::arg("radius") = 10.0, py::arg("cell_x") = 40.0, py::arg("cell_y") = 40.0,
          py::arg("support_thickness") = 30.0, py::arg("support_element") = "C", py::arg("gap") = 2.0,
          py::arg("seed") = 0, py::arg("sample") = 0);
  mod.def("demo_specimen", &demo_specimen, py::arg("cells_x") = 8, py::arg("cells_y") = 8, py::arg("cells_z") = 2,
          py::arg("amorphous_fraction") = 0.25, py::arg("sr_vacancies") = 0.05, py::arg("seed") = 0,
          "SrTiO3 (a = 3.905 Å) cells_x × cells_y × cells_z cells viewed along [001], the left "
          "amorphous_fraction of it (along x) amorphous, and a fraction sr_vacancies of the crystalline Sr "
          "atoms removed (their sites are in vacancy_positions).");
  mod.def("element_symbol", &element_symbol, py::arg("Z"));
  mod.def("atomic_number", &atomic_number, py::arg("symbol"));
  mod.def("class_names", &default_class_names, "Specimen class names indexed by id.");

  // ---------------------------------------------------------------- detectors
  py::class_<AnnularDetector>(mod, "AnnularDetector")
      .def(py::init([](std::string name, double inner, double outer, std::optional<std::pair<double, double>> az) {
             return AnnularDetector{std::move(name), inner, outer, az};
           }),
           py::arg("name") = "haadf", py::arg("inner_mrad") = 70.0, py::arg("outer_mrad") = 200.0, py::arg("azimuth_deg") = py::none())
      .def_readwrite("name", &AnnularDetector::name)
      .def_readwrite("inner_mrad", &AnnularDetector::inner_mrad)
      .def_readwrite("outer_mrad", &AnnularDetector::outer_mrad)
      .def_readwrite("azimuth_deg", &AnnularDetector::azimuth_deg)
      .def("__repr__", [](const AnnularDetector& d) {
        return "annular('" + d.name + "', " + std::to_string(d.inner_mrad) + ", " + std::to_string(d.outer_mrad) + ")";
      });
  py::class_<RadialDetector>(mod, "RadialDetector")
      .def(py::init([](std::string name, double step, double max) { return RadialDetector{std::move(name), step, max}; }),
           py::arg("name") = "radial", py::arg("step_mrad") = 1.0, py::arg("max_mrad") = 0.0)
      .def_readwrite("name", &RadialDetector::name)
      .def_readwrite("step_mrad", &RadialDetector::step_mrad)
      .def_readwrite("max_mrad", &RadialDetector::max_mrad);
  py::class_<SegmentedDetector>(mod, "SegmentedDetector")
      .def(py::init([](std::string name, std::vector<double> edges, std::size_t segments, double rotation) {
             return SegmentedDetector{std::move(name), std::move(edges), segments, rotation};
           }),
           py::arg("name") = "dpc", py::arg("ring_edges_mrad") = std::vector<double>{10, 20}, py::arg("segments") = 4,
           py::arg("rotation_deg") = 0.0)
      .def_readwrite("name", &SegmentedDetector::name)
      .def_readwrite("ring_edges_mrad", &SegmentedDetector::ring_edges_mrad)
      .def_readwrite("segments", &SegmentedDetector::segments)
      .def_readwrite("rotation_deg", &SegmentedDetector::rotation_deg);
  py::class_<ComDetector>(mod, "ComDetector")
      .def(py::init([](std::string name) { return ComDetector{std::move(name)}; }), py::arg("name") = "com")
      .def_readwrite("name", &ComDetector::name);
  py::class_<PixelatedDetector>(mod, "PixelatedDetector")
      .def(py::init([](std::string name, double max_angle, std::size_t bin) { return PixelatedDetector{std::move(name), max_angle, bin}; }),
           py::arg("name") = "pattern", py::arg("max_angle_mrad") = 0.0, py::arg("bin") = 1)
      .def_readwrite("name", &PixelatedDetector::name)
      .def_readwrite("max_angle_mrad", &PixelatedDetector::max_angle_mrad)
      .def_readwrite("bin", &PixelatedDetector::bin);
  mod.def("annular", [](std::string name, double inner, double outer, std::optional<std::pair<double, double>> az) {
            return AnnularDetector{std::move(name), inner, outer, az};
          },
          py::arg("name"), py::arg("inner_mrad"), py::arg("outer_mrad"), py::arg("azimuth_deg") = py::none(),
          "Annular detector inner ≤ θ < outer (mrad): HAADF, ADF, ABF, BF.");
  mod.def("radial", [](std::string name, double step, double max) { return RadialDetector{std::move(name), step, max}; },
          py::arg("name") = "radial", py::arg("step_mrad") = 1.0, py::arg("max_mrad") = 0.0);
  mod.def("segmented", [](std::string name, std::vector<double> edges, std::size_t segments, double rotation) {
            return SegmentedDetector{std::move(name), std::move(edges), segments, rotation};
          },
          py::arg("name") = "dpc", py::arg("ring_edges_mrad") = std::vector<double>{10, 20}, py::arg("segments") = 4,
          py::arg("rotation_deg") = 0.0, "Segmented (DPC) detector: rings × segments, images name_<bin>.");
  mod.def("com", [](std::string name) { return ComDetector{std::move(name)}; }, py::arg("name") = "com",
          "Centre of mass (mrad): images name_x, name_y and the integrated name_idpc.");
  mod.def("pixelated", [](std::string name, double max_angle, std::size_t bin) { return PixelatedDetector{std::move(name), max_angle, bin}; },
          py::arg("name") = "pattern", py::arg("max_angle_mrad") = 0.0, py::arg("bin") = 1,
          "4D-STEM camera (probe_at / scan_points / simulate_stem patterns).");

  // ---------------------------------------------------------------- optics, stage, scan
  py::class_<Aberrations>(mod, "Aberrations", "Aberration coefficients by Krivanek name (Å, rad) or alias (defocus, Cs, ...).")
      .def(py::init<>())
      .def("__getitem__", &Aberrations::get)
      .def("__setitem__", &Aberrations::set)
      .def("as_dict", &aberration_dict, "non-zero coefficients, C_nm in Å and phi_nm in rad")
      .def_static("names", &Aberrations::names)
      .def("__repr__", [](const Aberrations& a) { return "Aberrations(" + py::repr(aberration_dict(a)).cast<std::string>() + ")"; });

  py::class_<ProbeOptics>(mod, "ProbeOptics")
      .def(py::init([](double energy, double semiangle, double defocus, std::optional<std::map<std::string, double>> ab,
                       double focal_spread, std::size_t points, double source) {
             ProbeOptics o;
             o.energy_eV = energy, o.semiangle_mrad = semiangle;
             if (ab)
               for (const auto& [k, v] : *ab) o.aberrations.set(k, v);
             if (defocus != 0) o.aberrations.set("defocus", defocus);
             o.focal_spread_A = focal_spread, o.focal_spread_points = points, o.source_size_A = source;
             return o;
           }),
           py::arg("energy_eV") = 200e3, py::arg("semiangle_mrad") = 20.0, py::arg("defocus_A") = 0.0,
           py::arg("aberrations") = py::none(), py::arg("focal_spread_A") = 0.0, py::arg("focal_spread_points") = 7,
           py::arg("source_size_A") = 0.0)
      .def_readwrite("energy_eV", &ProbeOptics::energy_eV)
      .def_readwrite("semiangle_mrad", &ProbeOptics::semiangle_mrad)
      .def_readwrite("aberrations", &ProbeOptics::aberrations)
      .def_property("defocus_A", [](const ProbeOptics& o) { return o.aberrations.get("defocus"); },
                    [](ProbeOptics& o, double v) { o.aberrations.set("defocus", v); })
      .def_readwrite("focal_spread_A", &ProbeOptics::focal_spread_A)
      .def_readwrite("focal_spread_points", &ProbeOptics::focal_spread_points)
      .def_readwrite("source_size_A", &ProbeOptics::source_size_A);

  py::class_<Optics>(mod, "Optics", "Probe optics plus the beam current.")
      .def(py::init([](const ProbeOptics& p, double current) { return Optics{p, current}; }),
           py::arg("probe") = ProbeOptics{}, py::arg("current_pA") = 20.0)
      .def_readwrite("probe", &Optics::probe)
      .def_readwrite("current_pA", &Optics::current_pA)
      .def("as_dict", &optics_dict);

  py::class_<StagePosition>(mod, "StagePosition")
      .def(py::init([](double x, double y, double z, double a, double b) { return StagePosition{x, y, z, a, b}; }),
           py::arg("x_A") = 0.0, py::arg("y_A") = 0.0, py::arg("z_A") = 0.0, py::arg("alpha_rad") = 0.0, py::arg("beta_rad") = 0.0)
      .def_readwrite("x_A", &StagePosition::x_A)
      .def_readwrite("y_A", &StagePosition::y_A)
      .def_readwrite("z_A", &StagePosition::z_A)
      .def_readwrite("alpha_rad", &StagePosition::alpha_rad)
      .def_readwrite("beta_rad", &StagePosition::beta_rad)
      .def("as_dict", &stage_dict)
      .def("__repr__", [](const StagePosition& p) { return "StagePosition(" + py::repr(stage_dict(p)).cast<std::string>() + ")"; });

  py::class_<ScanSettings>(mod, "ScanSettings", "Field of view around the stage position, pixels, rotation, dwell.")
      .def(py::init([](double fx, double fy, std::size_t nx, std::size_t ny, double rot, double dwell, double flyback) {
             return ScanSettings{fx, fy, nx, ny, rot, dwell, flyback};
           }),
           py::arg("fov_x_A") = 25.6, py::arg("fov_y_A") = 25.6, py::arg("nx") = 128, py::arg("ny") = 128,
           py::arg("rotation_deg") = 0.0, py::arg("dwell_us") = 2.0, py::arg("flyback_us") = 0.0)
      .def_readwrite("fov_x_A", &ScanSettings::fov_x_A)
      .def_readwrite("fov_y_A", &ScanSettings::fov_y_A)
      .def_readwrite("nx", &ScanSettings::nx)
      .def_readwrite("ny", &ScanSettings::ny)
      .def_readwrite("rotation_deg", &ScanSettings::rotation_deg)
      .def_readwrite("dwell_us", &ScanSettings::dwell_us)
      .def_readwrite("flyback_us", &ScanSettings::flyback_us)
      .def("as_dict", &scan_dict)
      .def("__repr__", [](const ScanSettings& s) { return "ScanSettings(" + py::repr(scan_dict(s)).cast<std::string>() + ")"; });

  py::class_<DamageSettings>(mod, "DamageSettings", "Knock-on beam damage (off unless enabled).")
      .def(py::init([](bool enabled, double cs, int zref, double ex, double rf, double disp, double radius) {
             return DamageSettings{enabled, cs, zref, ex, rf, disp, radius};
           }),
           py::arg("enabled") = true, py::arg("cross_section_A2") = 1e-6, py::arg("Z_ref") = 8, py::arg("exponent") = 1.0,
           py::arg("removal_fraction") = 0.5, py::arg("displacement_A") = 0.5, py::arg("radius_A") = 1.0)
      .def_readwrite("enabled", &DamageSettings::enabled)
      .def_readwrite("cross_section_A2", &DamageSettings::cross_section_A2)
      .def_readwrite("Z_ref", &DamageSettings::Z_ref)
      .def_readwrite("exponent", &DamageSettings::exponent)
      .def_readwrite("removal_fraction", &DamageSettings::removal_fraction)
      .def_readwrite("displacement_A", &DamageSettings::displacement_A)
      .def_readwrite("radius_A", &DamageSettings::radius_A);

  py::class_<MicroscopeSettings>(mod, "MicroscopeSettings",
                                 "What does not change during a session. Keywords: sampling_A, slice_thickness_A, "
                                 "parametrization, projection, finite_range_A, thermal (False: a static lattice), rms_A "
                                 "(Å, or {element: Å}; turns thermal vibration on), phonon_configurations, method, "
                                 "prism_interpolation, window_margin_A, window_snap_A, min_window_A, "
                                 "max_positions_per_call, cache_entries, seed, damage.")
      .def(py::init([](const py::kwargs& kw) {
        MicroscopeSettings s;
        apply_settings(s, kw);
        return s;
      }))
      .def_readwrite("sampling_A", &MicroscopeSettings::sampling_A)
      .def_property("slice_thickness_A", [](const MicroscopeSettings& s) { return s.potential.slice_thickness_A; },
                    [](MicroscopeSettings& s, double v) { s.potential.slice_thickness_A = v; })
      .def_property("method", [](const MicroscopeSettings& s) { return enum_name(s.method, kMethods); },
                    [](MicroscopeSettings& s, const std::string& v) { s.method = parse_enum("method", v, kMethods); })
      .def_property("thermal", [](const MicroscopeSettings& s) { return s.thermal.enabled; },
                    [](MicroscopeSettings& s, bool v) { s.thermal.enabled = v; })
      .def_property("phonon_configurations", [](const MicroscopeSettings& s) { return s.thermal.configurations; },
                    [](MicroscopeSettings& s, std::size_t v) { s.thermal.configurations = v; })
      .def_readwrite("prism_interpolation", &MicroscopeSettings::prism_interpolation)
      .def_readwrite("window_margin_A", &MicroscopeSettings::window_margin_A)
      .def_readwrite("window_snap_A", &MicroscopeSettings::window_snap_A)
      .def_readwrite("min_window_A", &MicroscopeSettings::min_window_A)
      .def_readwrite("max_positions_per_call", &MicroscopeSettings::max_positions_per_call)
      .def_readwrite("cache_entries", &MicroscopeSettings::cache_entries)
      .def_readwrite("seed", &MicroscopeSettings::seed)
      .def_readwrite("incoherent_above_A", &MicroscopeSettings::incoherent_above_A,
                     "scan pixels coarser than this (Å) use the incoherent model when all detectors are annular; 0 = never")
      .def_readwrite("damage", &MicroscopeSettings::damage)
      .def_readwrite("residual_aberrations", &MicroscopeSettings::residual_aberrations,
                     "the column has seeded residual aberrations of a tuned corrector (hidden; see measure_c1a1)")
      .def_readwrite("c1_drift_A_per_sqrt_min", &MicroscopeSettings::c1_drift_A_per_sqrt_min,
                     "random-walk drift of the residual C1 (Å rms per √minute of beam-on time)")
      .def_readwrite("a1_drift_A_per_sqrt_min", &MicroscopeSettings::a1_drift_A_per_sqrt_min,
                     "random-walk drift of the residual A1 (Å rms per √minute of beam-on time, each component)");

  // ---------------------------------------------------------------- acquisition chain
  py::class_<AnnularResponse>(mod, "AnnularResponse", "Annular/segmented detector read-out (ADU).")
      .def(py::init<>())
      .def_readwrite("detection_efficiency", &AnnularResponse::detection_efficiency)
      .def_readwrite("shot_noise", &AnnularResponse::shot_noise)
      .def_readwrite("gain_ADU_per_electron", &AnnularResponse::gain_ADU_per_electron)
      .def_readwrite("gain_shape", &AnnularResponse::gain_shape)
      .def_readwrite("dark_offset_ADU", &AnnularResponse::dark_offset_ADU)
      .def_readwrite("read_noise_ADU", &AnnularResponse::read_noise_ADU)
      .def_readwrite("adc_bits", &AnnularResponse::adc_bits);
  py::class_<CameraResponse>(mod, "CameraResponse", "Pixelated camera read-out (counts or ADU).")
      .def(py::init<>())
      .def_property("mode", [](const CameraResponse& c) { return enum_name(c.mode, kCameraMode); },
                    [](CameraResponse& c, const std::string& v) { c.mode = parse_enum("camera mode", v, kCameraMode); })
      .def_readwrite("detection_efficiency", &CameraResponse::detection_efficiency)
      .def_readwrite("shot_noise", &CameraResponse::shot_noise)
      .def_property("dead_time_s", [](const CameraResponse& c) { return c.counting.dead_time_s; },
                    [](CameraResponse& c, double v) { c.counting.dead_time_s = v; })
      .def_property("counter_max", [](const CameraResponse& c) { return c.counting.counter_max; },
                    [](CameraResponse& c, std::uint64_t v) { c.counting.counter_max = v; })
      .def_property("gain_ADU_per_electron", [](const CameraResponse& c) { return c.integrating.gain_ADU_per_electron; },
                    [](CameraResponse& c, double v) { c.integrating.gain_ADU_per_electron = v; })
      .def_property("psf_sigma_px", [](const CameraResponse& c) { return c.integrating.psf_sigma_px; },
                    [](CameraResponse& c, double v) { c.integrating.psf_sigma_px = v; })
      .def_property("read_noise_ADU", [](const CameraResponse& c) { return c.integrating.read_noise_ADU; },
                    [](CameraResponse& c, double v) { c.integrating.read_noise_ADU = v; });
  py::class_<Distortion>(mod, "Distortion", "Scan instabilities (all off by default).")
      .def(py::init<>())
      .def_property("drift_velocity_A_per_s",
                    [](const Distortion& d) { return py::make_tuple(d.drift.velocity_x_A_per_s, d.drift.velocity_y_A_per_s); },
                    [](Distortion& d, std::pair<double, double> v) { d.drift.velocity_x_A_per_s = v.first, d.drift.velocity_y_A_per_s = v.second; })
      .def_property("drift_diffusion_A_per_sqrt_s", [](const Distortion& d) { return d.drift.diffusion_A_per_sqrt_s; },
                    [](Distortion& d, double v) { d.drift.diffusion_A_per_sqrt_s = v; })
      .def_property("jitter_rms_A", [](const Distortion& d) { return d.jitter.rms_A; }, [](Distortion& d, double v) { d.jitter.rms_A = v; })
      .def_property("flyback_amplitude_A", [](const Distortion& d) { return d.flyback.amplitude_A; },
                    [](Distortion& d, double v) { d.flyback.amplitude_A = v; })
      .def_property("flyback_decay_us", [](const Distortion& d) { return d.flyback.decay_us; },
                    [](Distortion& d, double v) { d.flyback.decay_us = v; })
      .def_property("current_relative_rms", [](const Distortion& d) { return d.current.relative_rms; },
                    [](Distortion& d, double v) { d.current.relative_rms = v; })
      .def_property("current_correlation_time_us", [](const Distortion& d) { return d.current.correlation_time_us; },
                    [](Distortion& d, double v) { d.current.correlation_time_us = v; });
  py::class_<AcquisitionSettings>(mod, "AcquisitionSettings",
                                  "Noise, detector response and scan distortions of a session (the scan geometry and "
                                  "current come from set_scan / set_current).")
      .def(py::init([](bool shot_noise, double gain, double read_noise, double dark_offset, double efficiency, int adc_bits,
                       std::pair<double, double> drift, double diffusion, double jitter, double current_rms) {
             AcquisitionSettings a;
             a.annular.shot_noise = shot_noise;
             a.camera.shot_noise = shot_noise;
             a.annular.gain_ADU_per_electron = gain;
             a.annular.read_noise_ADU = read_noise;
             a.annular.dark_offset_ADU = dark_offset;
             a.annular.detection_efficiency = efficiency;
             a.annular.adc_bits = adc_bits;
             a.distortion.drift.velocity_x_A_per_s = drift.first;
             a.distortion.drift.velocity_y_A_per_s = drift.second;
             a.distortion.drift.diffusion_A_per_sqrt_s = diffusion;
             a.distortion.jitter.rms_A = jitter;
             a.distortion.current.relative_rms = current_rms;
             a.validate();
             return a;
           }),
           py::arg("shot_noise") = true, py::arg("gain_ADU_per_electron") = 1.0, py::arg("read_noise_ADU") = 0.0,
           py::arg("dark_offset_ADU") = 0.0, py::arg("detection_efficiency") = 1.0, py::arg("adc_bits") = 0,
           py::arg("drift_velocity_A_per_s") = std::pair<double, double>{0.0, 0.0},
           py::arg("drift_diffusion_A_per_sqrt_s") = 0.0, py::arg("jitter_rms_A") = 0.0,
           py::arg("current_relative_rms") = 0.0,
           "shot_noise applies to the annular detectors and the camera; the others to annular/segmented read-out "
           "and the scan. Nested objects (annular, camera, distortion) hold the rest.")
      .def_readwrite("annular", &AcquisitionSettings::annular)
      .def_readwrite("camera", &AcquisitionSettings::camera)
      .def_readwrite("distortion", &AcquisitionSettings::distortion)
      .def("validate", &AcquisitionSettings::validate);

  // ---------------------------------------------------------------- the session
  py::class_<Session>(mod, "Microscope",
                      "A STEM session: state (specimen, stage, optics, detectors, scan, read-out chain, dose) and "
                      "the verbs of an operator. Every acquisition is counted and seeded.")
      .def(py::init([](const Specimen& s, const std::optional<MicroscopeSettings>& settings, const py::kwargs& kw) {
             MicroscopeSettings st = settings ? *settings : MicroscopeSettings{};
             apply_settings(st, kw);
             return std::make_unique<Session>(s, st);
           }),
           py::arg("specimen"), py::arg("settings") = py::none(),
           "Microscope(specimen, settings=None, **kw): kw are MicroscopeSettings fields (sampling_A, seed, ...).")
      // stage
      .def("move_stage",
           [](Session& s, std::optional<double> x, std::optional<double> y, std::optional<double> z,
              std::optional<double> a, std::optional<double> b) {
             with(s, [&](Microscope& m) {
               StagePosition p = m.stage();
               if (x) p.x_A = *x;
               if (y) p.y_A = *y;
               if (z) p.z_A = *z;
               if (a) p.alpha_rad = *a;
               if (b) p.beta_rad = *b;
               m.move_stage(p);
             });
           },
           py::arg("x") = py::none(), py::arg("y") = py::none(), py::arg("z") = py::none(), py::arg("alpha") = py::none(),
           py::arg("beta") = py::none(),
           "Moves the stage to absolute x, y (Å, specimen point at the centre of the field of view), z (Å, height: "
           "acts as extra defocus), alpha/beta (rad); coordinates not given stay.")
      .def("move_stage_relative",
           [](Session& s, double dx, double dy, double dz, double da, double db) {
             with(s, [&](Microscope& m) { m.move_stage_relative(dx, dy, dz, da, db); });
           },
           py::arg("dx") = 0.0, py::arg("dy") = 0.0, py::arg("dz") = 0.0, py::arg("dalpha") = 0.0, py::arg("dbeta") = 0.0)
      .def_property_readonly("stage", [](Session& s) { return with(s, [](Microscope& m) { return m.stage(); }); })
      // optics
      .def("set_optics", [](Session& s, const Optics& o) { with(s, [&](Microscope& m) { m.set_optics(o); }); }, py::arg("optics"))
      .def_property_readonly("optics", [](Session& s) { return with(s, [](Microscope& m) { return m.optics(); }); })
      .def("set_aberration", [](Session& s, const std::string& n, double v) { with(s, [&](Microscope& m) { m.set_aberration(n, v); }); },
           py::arg("name"), py::arg("value"), "Krivanek name (C10…C56, phi12…) or alias (defocus, Cs, astigmatism, …).")
      // aberration corrector (aberration_measure.hpp; the server's acquireTableau, measureC1A1, correctAberration)
      .def("acquire_tableau",
           [](Session& s, const std::string& tab_type, double angle, double electrons) {
             TableauSettings ts;
             if (tab_type == "Fast") ts.rings = 1;
             else if (tab_type == "Standard") ts.rings = 2;
             else if (tab_type == "Enhanced") ts.rings = 3;
             else throw std::invalid_argument("tab_type \"" + tab_type + "\" is not one of Fast, Standard, Enhanced");
             check_range(ranges::kTableauTilt, angle, "angle");
             check_range(ranges::kTableauElectrons, electrons, "electrons");
             ts.tilt_mrad = angle;
             ts.electrons_per_tilt = electrons;
             const TableauResult r = with(s, [&](Microscope& m) { return m.measure_tableau(ts); });
             for (const auto& c : r.coefficients) s.measured[c.name] = c.xy_A;
             return tableau_dict(r);
           },
           py::arg("tab_type") = "Standard", py::arg("angle") = 18.0, py::arg("electrons") = 1e5,
           "Beam-tilt tableau (outer tilt `angle` mrad): the measured CEOS coefficients C1…A3 (Å) with standard errors.")
      .def("measure_c1a1",
           [](Session& s, double angle, double electrons) {
             check_range(ranges::kTableauTilt, angle, "angle");
             check_range(ranges::kTableauElectrons, electrons, "electrons");
             TableauSettings ts;
             ts.tilt_mrad = angle;
             ts.electrons_per_tilt = electrons;
             const TableauResult r = with(s, [&](Microscope& m) { return m.measure_tableau(ts); });
             s.measured["C1"] = r.get("C1").xy_A;
             s.measured["A1"] = r.get("A1").xy_A;
             return tableau_dict(r, {"C1", "A1"});
           },
           py::arg("angle") = 18.0, py::arg("electrons") = 1e5, "C1 and A1 (CEOS Cartesian, Å) with standard errors.")
      .def("correct_aberration",
           [](Session& s, const std::string& name, py::object value, py::object target, double select) {
             const CeosCoefficient& c = ceos_coefficient(name);
             std::array<double, 2> v{0, 0}, t{0, 0};
             if (value.is_none()) {
               auto it = s.measured.find(name);
               if (it == s.measured.end())
                 throw std::invalid_argument("correct_aberration: no value given and " + name + " not measured yet");
               v = it->second;
             } else {
               v = xy_of(value, "value");
             }
             if (!target.is_none()) t = xy_of(target, "target");
             if (c.m == 0 && (v[1] != 0 || t[1] != 0)) throw std::invalid_argument(name + " is round: it has no y component");
             check_range(ranges::kCorrectionGain, select, "select");
             with(s, [&](Microscope& m) { m.adjust_aberration(name, {select * (t[0] - v[0]), select * (t[1] - v[1])}); });
             s.measured.erase(name);
           },
           py::arg("name"), py::arg("value") = py::none(), py::arg("target") = py::none(), py::arg("select") = 1.0,
           "Changes the corrector's coefficient `name` (C1, A1, B2, A2, C3, S3, A3) by select·(target − value) "
           "(CEOS Cartesian Å; value defaults to the last measurement, target to 0).")
      .def("set_defocus", [](Session& s, double v) { with(s, [&](Microscope& m) { m.set_defocus(v); }); }, py::arg("defocus_A"),
           "Defocus (Å, = −C10): positive puts the crossover below the entrance surface.")
      .def("set_current", [](Session& s, double v) { with(s, [&](Microscope& m) { m.set_current(v); }); }, py::arg("current_pA"))
      .def("set_convergence", [](Session& s, double v) { with(s, [&](Microscope& m) { m.set_convergence(v); }); }, py::arg("semiangle_mrad"))
      // detectors, scan, acquisition
      .def("set_detectors", [](Session& s, std::vector<Detector> d) { with(s, [&](Microscope& m) { m.set_detectors(std::move(d)); }); },
           py::arg("detectors"), "A list of detectors: annular(), segmented(), com(), pixelated(), radial().")
      .def_property_readonly("detectors", [](Session& s) { return with(s, [](Microscope& m) { return m.detectors(); }); })
      .def("set_scan",
           [](Session& s, std::optional<ScanSettings> sc, std::optional<double> fov, std::optional<double> fov_x,
              std::optional<double> fov_y, std::optional<std::size_t> n, std::optional<std::size_t> nx,
              std::optional<std::size_t> ny, std::optional<double> rot, std::optional<double> dwell,
              std::optional<double> flyback) {
             with(s, [&](Microscope& m) {
               ScanSettings v = sc ? *sc : m.scan_settings();
               if (fov) v.fov_x_A = v.fov_y_A = *fov;
               if (fov_x) v.fov_x_A = *fov_x;
               if (fov_y) v.fov_y_A = *fov_y;
               if (n) v.nx = v.ny = *n;
               if (nx) v.nx = *nx;
               if (ny) v.ny = *ny;
               if (rot) v.rotation_deg = *rot;
               if (dwell) v.dwell_us = *dwell;
               if (flyback) v.flyback_us = *flyback;
               m.set_scan(v);
             });
           },
           py::arg("settings") = py::none(), py::kw_only(), py::arg("fov") = py::none(), py::arg("fov_x") = py::none(),
           py::arg("fov_y") = py::none(), py::arg("n") = py::none(), py::arg("nx") = py::none(), py::arg("ny") = py::none(),
           py::arg("rotation") = py::none(), py::arg("dwell_us") = py::none(), py::arg("flyback_us") = py::none(),
           "set_scan(ScanSettings) or set_scan(fov=Å, n=pixels, dwell_us=…): keywords change the current settings.")
      .def_property_readonly("scan_settings", [](Session& s) { return with(s, [](Microscope& m) { return m.scan_settings(); }); })
      .def("set_acquisition", [](Session& s, const AcquisitionSettings& a) { with(s, [&](Microscope& m) { m.set_acquisition(a); }); },
           py::arg("acquisition"))
      .def_property_readonly("acquisition", [](Session& s) { return with(s, [](Microscope& m) { return m.acquisition(); }); })
      // acquisitions
      .def("scan", [](Session& s) { return scan_result(with(s, [](Microscope& m) { return m.scan(); })); },
           "Scans the field of view: {'images': {name: (ny, nx) read-out}, 'clean': {name: (ny, nx) fractions}, "
           "'positions': (ny, nx, 2) Å, 'electrons_per_position', 'dose_e_per_A2', 'call', ...}. No copies.")
      .def("probe_at",
           [](Session& s, double x, double y, double dwell) {
             return probe_result(with(s, [&](Microscope& m) { return m.probe_at(x, y, dwell); }));
           },
           py::arg("x"), py::arg("y"), py::arg("dwell_us") = 1000.0,
           "Parks the probe at specimen (x, y) Å: {'pattern': (ky, kx) float32, 'signals': {...}, 'pixel_mrad', "
           "'electrons', ...}.")
      .def("scan_points",
           [](Session& s, const py::array_t<double, py::array::c_style | py::array::forcecast>& pts, double dwell) {
             std::vector<Point2> p = to_points(pts);
             std::vector<ProbeResult> r = with(s, [&](Microscope& m) { return m.scan_points(p, dwell); });
             const std::size_t n = r.size(), ky = r.front().pattern_ny, kx = r.front().pattern_nx;
             std::vector<float> patterns(n * ky * kx);
             py::dict signals;
             std::map<std::string, std::vector<double>> sig;
             for (std::size_t i = 0; i < n; ++i) {
               std::copy(r[i].pattern.begin(), r[i].pattern.end(), patterns.begin() + long(i * ky * kx));
               for (const auto& [k, v] : r[i].signals) sig[k].push_back(v);
             }
             for (auto& [k, v] : sig) signals[py::str(k)] = own(std::move(v), {static_cast<py::ssize_t>(n)});
             py::dict d;
             d["patterns"] = own(std::move(patterns), {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(ky), static_cast<py::ssize_t>(kx)});
             d["signals"] = signals;
             d["pixel_mrad"] = py::make_tuple(r.front().pattern_pixel_mrad_x, r.front().pattern_pixel_mrad_y);
             d["electrons_per_position"] = r.front().electrons;
             d["call"] = r.front().call;
             return d;
           },
           py::arg("points"), py::arg("dwell_us") = 2.0,
           "Probe at each of (n, 2) points (Å): {'patterns': (n, ky, kx) float32, 'signals': {name: (n,)}, ...}.")
      // bookkeeping
      .def("cancel", [](Session& s) { s.m.cancel(); },
           "Cancels the acquisitions running or waiting now (from another thread): they raise RuntimeError.")
      .def("status", [](Session& s) { return status_dict(with(s, [](Microscope& m) { return m.status(); })); },
           "The session's state as a plain dict (stage, optics, scan, detectors, total_electrons, calls, cache, damage).")
      .def("dose_map", [](Session& s, double pixel) { return own(with(s, [&](Microscope& m) { return m.dose_map(pixel); }).dose_e_per_A2); },
           py::arg("pixel_A") = 1.0, "Dose delivered so far (e⁻/Å²), (ny, nx) over the specimen cell in pixels of pixel_A.")
      .def_property_readonly("specimen", [](Session& s) { return with(s, [](Microscope& m) { return m.specimen(); }); },
                             "The specimen now (a copy; beam damage changes it).");

  // ---------------------------------------------------------------- datasets and scenarios
  py::class_<Dataset>(mod, "Dataset",
                      "Reads a dataset written by `stemtwin run` (HDF5; layout in docs/dataset.md). Only complete "
                      "samples are visible. Images come back as numpy arrays without a further copy.")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(hdf5_mutex());
             return std::make_unique<Dataset>(path);
           }),
           py::arg("path"))
      .def("__len__", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.size(); }); })
      .def_property_readonly("layout", [](Dataset& d) {
        const std::string json = with(d, [](DatasetReader& r) { return r.layout().to_json(); });
        return py::module_::import("json").attr("loads")(json);
      }, "The file's layout (shapes, channels, labels) as a dict.")
      .def_property_readonly("detectors", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.detectors(); }); },
                             "Image channels (/images and /clean).")
      .def_property_readonly("shape", [](Dataset& d) {
        return with(d, [](DatasetReader& r) { return std::make_pair(r.layout().ny, r.layout().nx); });
      }, "(ny, nx) of every image.")
      .def_property_readonly("scenario_text", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.scenario_text(); }); })
      .def_property_readonly("version", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.version(); }); })
      .def_property_readonly("created", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.created(); }); })
      .def_property_readonly("class_names", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.layout().class_names; }); })
      .def("sample_indices", [](Dataset& d) {
        std::vector<std::int64_t> v = with(d, [](DatasetReader& r) { return r.sample_indices(); });
        const auto n = static_cast<py::ssize_t>(v.size());
        return own(std::move(v), {n});
      })
      .def("image", [](Dataset& d, const std::string& ch, std::size_t row) {
             return own(with(d, [&](DatasetReader& r) { return r.image(ch, check_row(r, row)); }));
           }, py::arg("channel"), py::arg("row"), "Acquired (noisy) image (ny, nx) of one sample.")
      .def("clean", [](Dataset& d, const std::string& ch, std::size_t row) {
             return own(with(d, [&](DatasetReader& r) { return r.clean(ch, check_row(r, row)); }));
           }, py::arg("channel"), py::arg("row"), "Noise-free image (ny, nx) of one sample.")
      .def("images", [](Dataset& d, const std::string& ch, bool clean) {
             std::vector<double> all;
             std::size_t n = 0, ny = 0, nx = 0;
             with(d, [&](DatasetReader& r) {
               n = r.size(), ny = r.layout().ny, nx = r.layout().nx;
               all.reserve(n * ny * nx);
               for (std::size_t i = 0; i < n; ++i) {
                 const Image im = clean ? r.clean(ch, i) : r.image(ch, i);
                 all.insert(all.end(), im.data.begin(), im.data.end());
               }
             });
             return own(std::move(all), {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx)});
           }, py::arg("channel"), py::arg("clean") = false, "All samples of a channel, (n, ny, nx) float64.")
      .def("radial", [](Dataset& d, const std::string& name, std::size_t row) {
             std::size_t ny = 0, nx = 0, nb = 0;
             std::vector<float> v = with(d, [&](DatasetReader& r) {
               ny = r.layout().ny, nx = r.layout().nx, nb = radial_layout(r.layout(), name).bins();
               return r.radial(name, check_row(r, row));
             });
             return own(std::move(v), {static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx), static_cast<py::ssize_t>(nb)});
           }, py::arg("name"), py::arg("row"), "Radial-bin signals (ny, nx, nbins) float32.")
      .def("diffraction", [](Dataset& d, const std::string& name, std::size_t row) {
             std::size_t ny = 0, nx = 0, ky = 0, kx = 0;
             std::vector<float> all;
             with(d, [&](DatasetReader& r) {
               check_row(r, row);
               const DiffractionLayout& L = diffraction_layout(r.layout(), name);
               ny = r.layout().ny, nx = r.layout().nx, ky = L.ky, kx = L.kx;
               all.reserve(ny * nx * ky * kx);
               for (std::size_t y = 0; y < ny; ++y) {
                 const std::vector<float> line = r.diffraction_row(name, row, y);
                 all.insert(all.end(), line.begin(), line.end());
               }
             });
             return own(std::move(all), {static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx), static_cast<py::ssize_t>(ky),
                                         static_cast<py::ssize_t>(kx)});
           }, py::arg("name"), py::arg("row"), "4D-STEM data of one sample, (ny, nx, ky, kx) float32.")
      .def("param_names", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.param_names(); }); })
      .def("param", [](Dataset& d, const std::string& name) {
             std::vector<double> v = with(d, [&](DatasetReader& r) { return r.param(name); });
             const auto n = static_cast<py::ssize_t>(v.size());
             return own(std::move(v), {n});
           }, py::arg("name"), "A sampled parameter over all complete samples.")
      .def("class_id", [](Dataset& d, std::size_t row) { return with(d, [&](DatasetReader& r) { return r.class_id(check_row(r, row)); }); },
           py::arg("row"))
      .def("mask", [](Dataset& d, const std::string& name, std::size_t row) {
             return own(with(d, [&](DatasetReader& r) { return r.mask(name, check_row(r, row)); }));
           }, py::arg("name"), py::arg("row"), "A label mask (ny, nx) of one sample.")
      .def("columns", [](Dataset& d, std::size_t row) {
             return columns_dict(with(d, [&](DatasetReader& r) { return r.columns(check_row(r, row)); }));
           }, py::arg("row"), "Labelled atomic columns of one sample: x_A, y_A, x_px, y_px, species, count, class.")
      .def("__repr__", [](Dataset& d) {
        return with(d, [](DatasetReader& r) {
          return "Dataset(" + std::to_string(r.size()) + " samples of " + std::to_string(r.layout().ny) + " × " +
                 std::to_string(r.layout().nx) + ", scenario '" + r.layout().scenario_name + "')";
        });
      });

  mod.def("run_scenario",
          [](const std::string& scenario, const std::string& output, bool force, bool resume, std::optional<std::size_t> samples,
             std::optional<std::uint64_t> seed, std::optional<std::string> shard, int threads, const std::string& preview,
             std::optional<std::size_t> max_samples, bool progress, bool dry_run) {
            RunCommand c;
            c.scenario = scenario;
            c.options.output = output;
            c.options.force = force;
            c.options.resume = resume;
            if (shard) c.options.shard = parse_shard(*shard);
            c.options.preview = preview;
            if (max_samples) c.options.max_samples = *max_samples;
            c.options.progress = progress;
            c.options.handle_sigint = true;  // Ctrl-C stops after the sample in flight (resume later)
            c.samples = samples;
            c.seed = seed;
            c.threads = threads;
            c.dry_run = dry_run;
            std::ostringstream out, err;
            int code = 0;
            {
              py::gil_scoped_release release;
              std::lock_guard<std::mutex> lock(hdf5_mutex());
              code = cmd_run(c, out, err);
            }
            if (code == 1) {
              std::string msg = err.str();
              while (!msg.empty() && msg.back() == '\n') msg.pop_back();
              throw std::runtime_error(msg);
            }
            py::dict d;
            d["log"] = out.str();
            d["interrupted"] = code == 130;
            return d;
          },
          py::arg("scenario") = "", py::arg("output") = "", py::kw_only(), py::arg("force") = false, py::arg("resume") = false,
          py::arg("samples") = py::none(), py::arg("seed") = py::none(), py::arg("shard") = py::none(), py::arg("threads") = 0,
          py::arg("preview") = "", py::arg("max_samples") = py::none(), py::arg("progress") = false, py::arg("dry_run") = false,
          "`stemtwin run` from Python: runs (or resumes) a scenario YAML (\"\" = the built-in quick start) into an "
          "HDF5 dataset (output \"\" = the scenario's output.file). Returns {'log', 'interrupted'}; errors raise "
          "RuntimeError with the message naming the file, line and key. threads > 0 sets OpenMP's thread count for "
          "the process. Read the result with Dataset(path). HDF5 calls of this module run one at a time "
          "(Debian's libhdf5 is not thread-safe): Dataset reads in other threads wait for the run.");

  // ---------------------------------------------------------------- physics
  mod.def("simulate_stem", &simulate, py::arg("specimen"), py::arg("positions"), py::arg("detectors"),
          py::arg("optics") = ProbeOptics{}, py::arg("sampling_A") = 0.05,
          "STEM simulation of a whole specimen (periodic cell) at probe positions (..., 2) Å. Returns "
          "{'signals': {name: array of shape positions.shape[:-1] (+ (bins,) for segmented/radial/com; leading "
          "depth axis when several depths_A; pixelated: (..., ky, kx) float32)}, 'depths_A', 'warnings', 'grid'}. "
          "Keywords: slice_thickness_A, parametrization, projection, thermal (default False: a static lattice; "
          "True: frozen phonons with the atoms' rms, else the elemental table), rms_A (Å or {element: Å}; turns "
          "thermal vibration on), phonon_configurations (default 8), seed, method "
          "('multislice' | 'prism'), interpolation, depths_A.");
  mod.def("wavelength_A", &wavelength_A, py::arg("energy_eV"), "Relativistic electron wavelength, Å.");
  mod.def("scherzer_defocus_A", &scherzer_defocus_A, py::arg("Cs_A"), py::arg("energy_eV"));
}
