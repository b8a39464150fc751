#pragma once
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
#include <atomic>
#include <exception>
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
#include "stemtwin/scenario/key_reader.hpp"
#include "stemtwin/scenario/key_tables.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/specimen/structure_io.hpp"
#include "stemtwin/physics/aberration_measure.hpp"
#include "stemtwin/acquisition/ranges.hpp"

namespace py = pybind11;

// Helpers shared by the binding files (one module, split by subsystem: bind_*.cpp).
namespace stemtwin::py_bindings {
using namespace stemtwin;


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

inline py::array_t<double> own(Image&& im) {
  const auto ny = static_cast<py::ssize_t>(im.ny), nx = static_cast<py::ssize_t>(im.nx);
  return own(std::move(im.data), {ny, nx});
}

/// Positions (row-major Point2) as a (..., 2) float64 array, no copy.
inline py::array_t<double> own(std::vector<Point2>&& p, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<Point2>(std::move(p));
  py::capsule owner(heap, [](void* q) { delete static_cast<std::vector<Point2>*>(q); });
  shape.push_back(2);
  return py::array_t<double>(shape, reinterpret_cast<const double*>(heap->data()), owner);
}

/// (n, 2) or (..., 2) array of positions (Å) → Point2 list, and the leading shape.
inline std::vector<Point2> to_points(const py::array_t<double, py::array::c_style | py::array::forcecast>& a,
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

inline int to_Z(const py::handle& h) {
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
inline constexpr const auto& kMethods = kMethodNames;
inline constexpr const auto& kParam = kParametrizationNames;
inline constexpr const auto& kProjection = kProjectionNames;
inline constexpr const auto& kArrangement = kSiteArrangementNames;
inline constexpr const auto& kFront = kFrontShapeNames;
inline constexpr const auto& kAmorphousMode = kAmorphousModeNames;
inline constexpr const auto& kParticle = kParticleShapeNames;
inline constexpr const auto& kCameraMode = kCameraModeNames;

/// A species list: "Sr", 38, or [("La", 0.7), ("Sr", 0.3)].
inline std::vector<SpeciesFraction> to_species(const py::handle& h) {
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

inline std::array<int, 3> to_int3(const py::handle& h, const char* what) {
  const auto s = h.cast<std::vector<int>>();
  if (s.size() != 3) throw std::invalid_argument(std::string(what) + " needs three integers");
  return {s[0], s[1], s[2]};
}

/// A keyword argument into the field of a typed key-table row (key_reader.hpp): numbers,
/// flags, species (to_species) and words (errors name the key).
template <class T>
void set_from_python(const KeyRow<T>& row, T& target, const py::handle& value) {
  std::visit(
      [&](auto f) {
        using F = decltype(f);
        if constexpr (std::is_same_v<F, double& (*)(T&)>) f(target) = value.cast<double>();
        else if constexpr (std::is_same_v<F, int& (*)(T&)>) f(target) = value.cast<int>();
        else if constexpr (std::is_same_v<F, bool& (*)(T&)>) f(target) = value.cast<bool>();
        else if constexpr (std::is_same_v<F, std::vector<SpeciesFraction>& (*)(T&)>) f(target) = to_species(value);
        else if constexpr (std::is_same_v<F, WordField<T>>) {
          try {
            f.set(target, value.cast<std::string>());
          } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string(row.key.path) + ": " + e.what());
          }
        } else {
          throw std::logic_error(std::string("keyword '") + row.key.path + "': no Python conversion for its type");
        }
      },
      row.field);
}

/// Perovskite parameters from keyword arguments: the scenario builder's perovskite keys, each
/// set through its typed row (key_reader.hpp: perovskite_rows(); a new key is one row there),
/// plus Python's O and repeats.
inline PerovskiteParams perovskite_params(const py::dict& kw, bool allow_seed) {
  PerovskiteParams p;
  const auto rows = perovskite_rows();
  for (const auto& [k, v] : kw) {
    const std::string key = k.cast<std::string>();
    if (key == "O") p.O = to_Z(v);
    else if (key == "repeats") p.repeats = to_int3(v, "repeats");
    else if (allow_seed && (key == "seed" || key == "sample")) continue;
    else {
      const auto row = std::find_if(rows.begin(), rows.end(), [&](const KeyRow<PerovskiteParams>& r) { return key == r.key.path; });
      if (row == rows.end())
        throw std::invalid_argument("unknown perovskite parameter '" + key + "' (known: " + key_list(perovskite_keys()) +
                                    ", O, repeats)");
      set_from_python(*row, p, v);
    }
  }
  return p;
}

// ------------------------------------------------------------------------ specimens

inline Specimen specimen_from_arrays(const py::object& Z, const py::array_t<double, py::array::c_style | py::array::forcecast>& pos,
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

inline py::array_t<double> atom_positions(const std::vector<Atom>& atoms) {
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

inline Specimen specimen_from_structure(Structure s, std::map<std::string, double> info = {}) {
  Specimen sp = make_specimen(std::move(s));
  sp.info = std::move(info);
  return sp;
}

/// The demo specimen of the examples: a SrTiO3 slab (cubic perovskite) with an amorphous
/// strip along the left edge (planar front along x) and Sr vacancies in the crystal.
inline Specimen demo_specimen(int cells_x, int cells_y, int cells_z, double amorphous_fraction, double sr_vacancies,
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
  Session(World w, const MicroscopeSettings& st) : m(std::move(w), st) {}
};

/// A tableau's coefficients: {"C1": {"value": (x,), "error": (σ,), ...}, "A1": {"value": (x, y),
/// "error": (σx, σy), "magnitude_A", "angle_rad", ...}, ...} (CEOS Cartesian, Å).
inline py::dict tableau_dict(const TableauResult& r, const std::vector<std::string>& only = {}) {
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

inline std::array<double, 2> xy_of(const py::object& v, const char* what) {
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

/// A scan's rows as Python sees them (Microscope.scan_lines, and the lines callback of scan()):
/// {'call', 'state', 'nx', 'ny', 'rows_done', 'first_row', 'channels', 'whole_frame',
/// 'images': {name: (rows_done − first_row, nx)}, 'whole': {name: (ny, nx)}}.
inline py::dict lines_dict(ScanLines l) {
  py::dict rows, whole, d;
  for (auto& [name, im] : l.rows) rows[py::str(name)] = own(std::move(im));
  for (auto& [name, im] : l.whole) whole[py::str(name)] = own(std::move(im));
  d["call"] = l.call, d["state"] = l.state, d["nx"] = l.nx, d["ny"] = l.ny, d["rows_done"] = l.rows_done;
  d["first_row"] = l.first_row, d["channels"] = l.channels, d["whole_frame"] = l.whole_frame;
  d["images"] = rows, d["whole"] = whole;
  return d;
}

/// Python's lines callback of one scan (Microscope.scan(lines=f)). The scan runs with the GIL
/// released; the hook takes the GIL only to build the dict and call f, on the scanning thread
/// between blocks. An exception raised by f stops the scan at the next block as a cancel does
/// (the positions simulated keep their dose) and is kept for scan() to raise: it never
/// travels through the simulation.
class LinesCallback {
 public:
  explicit LinesCallback(py::object f) : f_(std::move(f)) {
    if (!f_.is_none() && !PyCallable_Check(f_.ptr())) throw py::type_error("scan: lines must be a callable or None");
  }
  /// The acquisition's hooks (none when f is None). GIL not held when they run.
  AcquisitionControl control() {
    AcquisitionControl c;
    if (f_.is_none()) return c;
    c.lines = [this](const ScanLines& l) {
      if (stop_.load()) return;
      py::gil_scoped_acquire gil;
      try {
        f_(lines_dict(l));
      } catch (...) {
        raised_ = std::current_exception();
        stop_.store(true);
      }
    };
    c.cancelled = [this] { return stop_.load(); };
    return c;
  }
  /// Raises the callback's exception, if it raised one (GIL held).
  void rethrow() const {
    if (raised_) std::rethrow_exception(raised_);
  }

 private:
  py::object f_;
  std::exception_ptr raised_;
  std::atomic<bool> stop_{false};
};

inline py::dict stage_dict(const StagePosition& p) {
  py::dict d;
  d["x_A"] = p.x_A, d["y_A"] = p.y_A, d["z_A"] = p.z_A, d["alpha_rad"] = p.alpha_rad, d["beta_rad"] = p.beta_rad;
  return d;
}
inline py::dict aberration_dict(const Aberrations& ab) {
  py::dict d;
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const auto [n, m] = Aberrations::kOrders[i];
    if (ab.C[i] != 0) d[py::str("C" + std::to_string(n) + std::to_string(m))] = ab.C[i];
    if (ab.phi[i] != 0) d[py::str("phi" + std::to_string(n) + std::to_string(m))] = ab.phi[i];
  }
  return d;
}
inline py::dict optics_dict(const Optics& o) {
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
inline py::dict scan_dict(const ScanSettings& s) {
  py::dict d;
  d["fov_x_A"] = s.fov_x_A, d["fov_y_A"] = s.fov_y_A, d["nx"] = s.nx, d["ny"] = s.ny;
  d["rotation_deg"] = s.rotation_deg, d["dwell_us"] = s.dwell_us, d["flyback_us"] = s.flyback_us;
  return d;
}

inline py::dict scan_result(ScanResult&& r) {
  py::dict images, clean;  // in the read-out's channel order (acquisition/readout.hpp)
  for (const std::string& name : r.channels) images[py::str(name)] = own(std::move(r.images.at(name)));
  for (const std::string& name : r.channels) clean[py::str(name)] = own(std::move(r.clean.at(name)));
  py::dict d;
  d["images"] = images;
  d["clean"] = clean;
  d["channels"] = r.channels;
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

inline py::dict probe_result(ProbeResult&& p) {
  py::dict d;
  d["pattern"] = own(std::move(p.pattern), {static_cast<py::ssize_t>(p.pattern_ny), static_cast<py::ssize_t>(p.pattern_nx)});
  d["signals"] = p.signals;
  d["position"] = py::make_tuple(p.position_A.x, p.position_A.y);
  d["pixel_mrad"] = py::make_tuple(p.pattern_pixel_mrad_x, p.pattern_pixel_mrad_y);
  d["electrons"] = p.electrons;
  d["call"] = p.call;
  return d;
}

inline py::dict status_dict(const MicroscopeStatus& s) {
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
  d["scan_state"] = s.scan_state;
  d["rows_done"] = s.rows_done;
  d["total_rows"] = s.total_rows;
  py::dict m;  // what produced the last frame (method auto's choice; None before the first)
  m["name"] = s.last_frame.method.empty() ? py::object(py::none()) : py::object(py::str(s.last_frame.method));
  m["interpolation"] = s.last_frame.interpolation;
  m["calibrated"] = s.last_frame.calibrated;
  m["mean_error"] = s.last_frame.mean_error;
  m["correlation"] = s.last_frame.correlation;
  d["method"] = m;
  return d;
}

/// Thermal-vibration keywords shared by MicroscopeSettings and simulate_stem: `thermal`
/// (bool), `rms_A` (Å for all elements, or {element: Å}; turns thermal vibration on) and
/// `phonon_configurations`. Returns false when `key` is none of them.
inline bool apply_thermal_keyword(ThermalVibration& t, const std::string& key, const py::handle& v) {
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

/// Method auto's error budget from a dict {mean_rel, min_correlation, calibration_positions}
/// (each optional; the rest keep ErrorBudget's defaults).
inline ErrorBudget error_budget(const py::handle& v, const std::string& where) {
  if (!py::isinstance<py::dict>(v))
    throw std::invalid_argument(where + ": error_budget must be a dict {mean_rel, min_correlation, calibration_positions}");
  ErrorBudget b;
  for (const auto& [k, x] : v.cast<py::dict>()) {
    const std::string key = k.cast<std::string>();
    if (key == "mean_rel") b.mean_rel = x.cast<double>();
    else if (key == "min_correlation") b.min_correlation = x.cast<double>();
    else if (key == "calibration_positions") b.calibration_positions = x.cast<std::size_t>();
    else throw std::invalid_argument(where + ": unknown error_budget key '" + key + "' (mean_rel, min_correlation, calibration_positions)");
  }
  if (!(b.mean_rel > 0 && b.mean_rel < 1)) throw std::invalid_argument(where + ": error_budget mean_rel must be in (0, 1)");
  if (!(b.min_correlation > 0 && b.min_correlation <= 1))
    throw std::invalid_argument(where + ": error_budget min_correlation must be in (0, 1]");
  if (b.calibration_positions < 2) throw std::invalid_argument(where + ": error_budget calibration_positions must be ≥ 2");
  return b;
}

/// What method auto chose and measured, as a dict (docs/python.md).
inline py::dict auto_choice_dict(const AutoChoice& c) {
  py::dict d;
  d["method"] = enum_name(c.method, kMethods);
  d["interpolation"] = c.interpolation;
  d["calibrated"] = c.calibrated;
  d["mean_error"] = c.measured_mean_error;
  d["correlation"] = c.measured_correlation;
  d["calibration_positions"] = c.calibration_positions;
  d["predicted_interpolation"] = c.predicted_interpolation;
  d["window_needed_A"] = c.window_needed_A;
  d["cost_multislice"] = c.cost_multislice;
  d["cost_auto_least"] = c.cost_auto_least;
  d["from_cache"] = c.from_cache;
  d["symmetry_positions"] = c.symmetry_positions;
  d["total_positions"] = c.total_positions;
  py::list trials;
  for (const auto& t : c.trials) trials.append(py::make_tuple(t.interpolation, t.mean_error, t.correlation));
  d["trials"] = trials;
  return d;
}

/// Applies MicroscopeSettings keyword arguments (field names; slicing and method too).
inline void apply_settings(MicroscopeSettings& st, const py::dict& kw) {
  for (const auto& [k, v] : kw) {
    const std::string key = k.cast<std::string>();
    if (key == "sampling_A") st.sampling_A = v.cast<double>();
    else if (key == "slice_thickness_A") st.potential.slice_thickness_A = v.cast<double>();
    else if (key == "parametrization") st.potential.parametrization = parse_enum("parametrization", v.cast<std::string>(), kParam);
    else if (key == "projection") st.potential.projection = parse_enum("projection", v.cast<std::string>(), kProjection);
    else if (key == "finite_range_A") st.potential.finite_range_A = v.cast<double>();
    else if (apply_thermal_keyword(st.thermal, key, v)) continue;
    else if (key == "method") st.method = parse_enum("method", v.cast<std::string>(), kMethods);
    else if (key == "error_budget") st.budget = error_budget(v, "microscope settings");
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
                                  "finite_range_A, thermal, rms_A, phonon_configurations, method, error_budget, "
                                  "prism_interpolation, window_margin_A, window_snap_A, min_window_A, max_positions_per_call, "
                                  "cache_entries, seed, damage, incoherent_above_A, residual_aberrations, c1_drift_A_per_sqrt_min, a1_drift_A_per_sqrt_min)");
  }
}

// The module's parts (module.cpp calls them in this order).
void bind_specimens(py::module_& mod);   // specimens, builders, detectors
void bind_instrument(py::module_& mod);  // optics, stage, scan, acquisition chain, the Microscope session
void bind_datasets(py::module_& mod);    // datasets, scenarios, simulate_stem

}  // namespace stemtwin::py_bindings
