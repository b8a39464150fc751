#pragma once
// simulate_stem's helpers (bind_datasets.cpp): a sink collecting pixelated patterns, and
// simulate(), the keyword-driven STEM simulation of a whole specimen. The helpers every
// binding file shares: bindings.hpp.
#include "bindings.hpp"

namespace stemtwin::py_bindings {

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

inline py::dict simulate(const Specimen& sp, const py::array_t<double, py::array::c_style | py::array::forcecast>& positions,
                  const std::vector<Detector>& detectors, const ProbeOptics& optics, double sampling_A,
                  const py::kwargs& kw) {
  std::vector<py::ssize_t> lead;
  const std::vector<Point2> pts = to_points(positions, &lead);
  if (pts.empty()) throw std::invalid_argument("simulate_stem: no probe positions");
  if (detectors.empty()) throw std::invalid_argument("simulate_stem: at least one detector is needed");
  if (!(sampling_A > 0)) throw std::invalid_argument("simulate_stem: sampling_A must be > 0");
  StemSettings st;
  st.method = Method::Auto;  // the default: PRISM or windowed where they hold error_budget, else multislice
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
    else if (key == "error_budget") st.budget = error_budget(v, "simulate_stem");
    else if (key == "symmetry") st.symmetry_reuse = v.cast<bool>();
    else
      throw std::invalid_argument("unknown simulate_stem argument '" + key +
                                  "' (known: slice_thickness_A, parametrization, projection, thermal, rms_A, "
                                  "phonon_configurations, seed, method, interpolation, depths_A, error_budget, symmetry)");
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
  out["method"] = res.method;
  out["interpolation"] = res.interpolation;
  out["positions_simulated"] = res.positions_simulated ? res.positions_simulated : pts.size();
  out["auto"] = res.auto_choice ? auto_choice_dict(*res.auto_choice) : py::object(py::none());
  return out;
}

}  // namespace stemtwin::py_bindings
