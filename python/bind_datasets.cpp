// Datasets, scenarios and simulate_stem (the stemtwin Python module; helpers in bindings.hpp).
#include "bindings_datasets.hpp"
#include "bindings_simulate.hpp"

namespace stemtwin::py_bindings {

namespace {

// ---------------------------------------------------------------- datasets and scenarios
/// Dataset: opening it, its size, layout, provenance and per-sample instrument settings.
void bind_dataset_metadata(py::class_<Dataset>& cls) {
  cls.def(py::init([](const std::string& path) {
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
      .def("instrument", [](Dataset& d, std::size_t row) -> py::object {
             const auto in = with(d, [&](DatasetReader& r) { return r.instrument(check_row(r, row)); });
             if (!in) return py::none();
             py::dict out;
             out["energy_eV"] = in->energy_eV, out["convergence_mrad"] = in->convergence_mrad;
             out["current_pA"] = in->current_pA, out["dwell_us"] = in->dwell_us;
             out["step_A"] = py::make_tuple(in->step_x_A, in->step_y_A);
             py::list dets;
             for (const DetectorSettings& x : in->detectors) {
               py::dict e;
               e["name"] = x.name, e["type"] = x.type;
               for (const auto& [column, value] : detector_values(x)) e[py::str(column)] = value;
               dets.append(e);
             }
             out["detectors"] = dets;
             return out;
           }, py::arg("row"),
           "The microscope and detector settings of one sample (/instrument, docs/dataset.md) as a dict; None for a "
           "file written before stemtwin stored them.");
}

/// Dataset: the signals of each sample (images, radial bins, 4D-STEM patterns).
void bind_dataset_signals(py::class_<Dataset>& cls) {
  cls.def("sample_indices", [](Dataset& d) {
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
      .def("spectra", [](Dataset& d, const std::string& name, std::size_t row, bool clean) {
             std::size_t ny = 0, nx = 0;
             std::vector<float> v = with(d, [&](DatasetReader& r) {
               ny = r.layout().ny, nx = r.layout().nx;
               return r.spectra(name, check_row(r, row), clean);
             });
             const auto n = static_cast<py::ssize_t>(v.size() / std::max<std::size_t>(1, ny * nx));
             return own(std::move(v), {static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx), n});
           }, py::arg("name"), py::arg("row"), py::arg("clean") = false,
           "EDS/EELS spectrum image of one sample, (ny, nx, channels) float32: counts (/spectra/<name>), or with "
           "clean=True the expected counts (/clean/spectra/<name>, stored with output.clean; ValueError otherwise).")
      .def("maps", [](Dataset& d, const std::string& name, std::size_t row, bool clean) {
             py::dict out;
             std::vector<std::pair<std::string, Image>> maps;
             with(d, [&](DatasetReader& r) {
               check_row(r, row);
               const auto& all = r.layout().spectra;
               const auto it = std::find_if(all.begin(), all.end(), [&](const SpectraLayout& s) { return s.name == name; });
               if (it == all.end()) throw std::invalid_argument("no spectrometer '" + name + "' in the dataset");
               for (const std::string& m : it->maps) maps.emplace_back(m, r.map(name + "/" + m, row, clean));
             });
             for (auto& [m, im] : maps) out[py::str(m)] = own(std::move(im));
             return out;
           }, py::arg("name"), py::arg("row"), py::arg("clean") = false,
           "Element maps of spectrometer `name` for one sample, {'Sr_Ka': (ny, nx), ...} (/maps/<name>, or "
           "/clean/maps/<name> with clean=True).");
}

/// Dataset: sampled parameters, labels (class, masks, columns) and its repr.
void bind_dataset_labels(py::class_<Dataset>& cls) {
  cls.def("param_names", [](Dataset& d) { return with(d, [](DatasetReader& r) { return r.param_names(); }); })
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
}

/// run_scenario: `stemtwin run` from Python.
void bind_run_scenario(py::module_& mod) {
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
}

// ---------------------------------------------------------------- physics
/// simulate_stem and the small physics helpers.
void bind_physics(py::module_& mod) {
  mod.def("simulate_stem", &simulate, py::arg("specimen"), py::arg("positions"), py::arg("detectors"),
          py::arg("optics") = ProbeOptics{}, py::arg("sampling_A") = 0.05,
          "STEM simulation of a whole specimen (periodic cell) at probe positions (..., 2) Å. Returns "
          "{'signals': {name: array of shape positions.shape[:-1] (+ (bins,) for segmented/radial/com; leading "
          "depth axis when several depths_A; pixelated: (..., ky, kx) float32)}, 'depths_A', 'warnings', 'grid', "
          "'method' (what produced the numbers), 'interpolation' (PRISM's f), 'auto' (method auto's choice: "
          "method, interpolation, calibrated, mean_error, correlation, ...; None for other methods)}. "
          "Keywords: slice_thickness_A, parametrization, projection, thermal (default False: a static lattice; "
          "True: frozen phonons with the atoms' rms, else the elemental table), rms_A (Å or {element: Å}; turns "
          "thermal vibration on), phonon_configurations (default 8), seed, method "
          "('auto' (default) | 'multislice' | 'prism' | 'windowed'), interpolation, depths_A, error_budget "
          "({mean_rel: 0.01, min_correlation: 0.995, calibration_positions: 8}: method auto's promise).");
  mod.def("wavelength_A", &wavelength_A, py::arg("energy_eV"), "Relativistic electron wavelength, Å.");
  mod.def("scherzer_defocus_A", &scherzer_defocus_A, py::arg("Cs_A"), py::arg("energy_eV"));
}

}  // namespace

void bind_datasets(py::module_& mod) {
  py::class_<Dataset> cls(mod, "Dataset",
                          "Reads a dataset written by `stemtwin run` (HDF5; layout in docs/dataset.md). Only complete "
                          "samples are visible. Images come back as numpy arrays without a further copy.");
  bind_dataset_metadata(cls);
  bind_dataset_signals(cls);
  bind_dataset_labels(cls);
  bind_run_scenario(mod);
  bind_physics(mod);
}

}  // namespace stemtwin::py_bindings
