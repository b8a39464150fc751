// Optics, stage, scan, the acquisition chain and the Microscope session (the stemtwin Python module; helpers in bindings.hpp).
#include "bindings.hpp"

namespace stemtwin::py_bindings {


namespace {

SpectrumKind spectrum_kind(const std::string& k) {
  if (k == "eds" || k == "EDS") return SpectrumKind::Eds;
  if (k == "eels" || k == "EELS") return SpectrumKind::Eels;
  throw std::invalid_argument("kind \"" + k + "\" is not 'eds' or 'eels'");
}

/// A SpectrumResult as a dict; `lead` is the shape before the channel axis ({} for one spectrum).
py::dict spectrum_dict(SpectrumResult&& r, std::vector<py::ssize_t> lead) {
  std::vector<py::ssize_t> shape = lead;
  shape.push_back(static_cast<py::ssize_t>(r.channels));
  std::vector<double> energy(r.channels);
  for (std::size_t c = 0; c < r.channels; ++c) energy[c] = r.channel_energy_eV(c);
  py::dict d;
  d["counts"] = own(std::move(r.counts), shape);
  d["expected"] = own(std::move(r.expected), shape);
  d["energy_eV"] = own(std::move(energy), {static_cast<py::ssize_t>(r.channels)});
  d["electrons_per_position"] = r.electrons_per_position;
  d["call"] = r.call;
  d["kind"] = r.kind == SpectrumKind::Eds ? "eds" : "eels";
  return d;
}

void apply_spectrometers(Spectrometers& sp, const py::kwargs& kw) {
  for (const auto& [key, value] : kw) {
    const std::string k = py::str(key);
    if (k == "eds_energy_start_eV") sp.eds.energy_start_eV = value.cast<double>();
    else if (k == "eds_channel_width_eV") sp.eds.channel_width_eV = value.cast<double>();
    else if (k == "eds_channels") sp.eds.channels = value.cast<std::size_t>();
    else if (k == "fwhm_mn_ka_eV") sp.eds.fwhm_mn_ka_eV = value.cast<double>();
    else if (k == "solid_angle_sr") sp.eds.solid_angle_sr = value.cast<double>();
    else if (k == "takeoff_deg") sp.eds.takeoff_deg = value.cast<double>();
    else if (k == "self_absorption") sp.eds.self_absorption = value.cast<bool>();
    else if (k == "eels_energy_start_eV") sp.eels.energy_start_eV = value.cast<double>();
    else if (k == "eels_dispersion_eV") sp.eels.channel_width_eV = value.cast<double>();
    else if (k == "eels_channels") sp.eels.channels = value.cast<std::size_t>();
    else if (k == "collection_semiangle_mrad") sp.eels.collection_semiangle_mrad = value.cast<double>();
    else if (k == "zlp_fwhm_eV") sp.eels.zlp_fwhm_eV = value.cast<double>();
    else if (k == "ionisation_width_A") sp.ionisation_width_A = value.cast<double>();
    else throw std::invalid_argument("set_spectrometers: unknown keyword '" + k + "'");
  }
}

py::dict spectrometers_dict(const Spectrometers& sp) {
  py::dict d;
  d["eds_energy_start_eV"] = sp.eds.energy_start_eV, d["eds_channel_width_eV"] = sp.eds.channel_width_eV;
  d["eds_channels"] = sp.eds.channels, d["fwhm_mn_ka_eV"] = sp.eds.fwhm_mn_ka_eV, d["solid_angle_sr"] = sp.eds.solid_angle_sr;
  d["takeoff_deg"] = sp.eds.takeoff_deg, d["self_absorption"] = sp.eds.self_absorption;
  d["eels_energy_start_eV"] = sp.eels.energy_start_eV, d["eels_dispersion_eV"] = sp.eels.channel_width_eV;
  d["eels_channels"] = sp.eels.channels, d["collection_semiangle_mrad"] = sp.eels.collection_semiangle_mrad;
  d["zlp_fwhm_eV"] = sp.eels.zlp_fwhm_eV, d["ionisation_width_A"] = sp.ionisation_width_A;
  return d;
}

/// Aberrations, probe optics, the stage and the scan settings.
void bind_optics_stage_scan(py::module_& mod) {
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
}

/// Beam damage and the settings fixed for a session.
void bind_microscope_settings(py::module_& mod) {
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
                                 "(Å, or {element: Å}; turns thermal vibration on), phonon_configurations, method (default "
                                 "'auto'), error_budget ({mean_rel, min_correlation, calibration_positions}), "
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
      .def_property("error_budget",
                    [](const MicroscopeSettings& s) {
                      py::dict d;
                      d["mean_rel"] = s.budget.mean_rel;
                      d["min_correlation"] = s.budget.min_correlation;
                      d["calibration_positions"] = s.budget.calibration_positions;
                      return d;
                    },
                    [](MicroscopeSettings& s, const py::dict& v) { s.budget = error_budget(v, "MicroscopeSettings"); })
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
}

/// Detector and camera response, scan distortions, the acquisition settings.
void bind_acquisition_chain(py::module_& mod) {
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
}

/// The constructors: on a Specimen or on a World.
void bind_session_constructors(py::class_<Session>& cls) {
  cls
      .def(py::init([](const Specimen& s, const std::optional<MicroscopeSettings>& settings, const py::kwargs& kw) {
             MicroscopeSettings st = settings ? *settings : MicroscopeSettings{};
             apply_settings(st, kw);
             return std::make_unique<Session>(s, st);
           }),
           py::arg("specimen"), py::arg("settings") = py::none(),
           "Microscope(specimen, settings=None, **kw): kw are MicroscopeSettings fields (sampling_A, seed, ...).")
      .def(py::init([](const World& w, const std::optional<MicroscopeSettings>& settings, const py::kwargs& kw) {
             MicroscopeSettings st = settings ? *settings : MicroscopeSettings{};
             apply_settings(st, kw);
             return std::make_unique<Session>(w, st);
           }),
           py::arg("world"), py::arg("settings") = py::none(),
           "Microscope(world, settings=None, **kw): a session on a World (atoms only where imaged at atomic resolution).");
}

/// The stage, the optics and single aberrations.
void bind_session_stage_and_optics(py::class_<Session>& cls) {
  cls
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
           py::arg("name"), py::arg("value"), "Krivanek name (C10…C56, phi12…) or alias (defocus, Cs, astigmatism, …).");
}

/// The aberration corrector: tableau, C1/A1, corrections (the server's acquireTableau, measureC1A1, correctAberration).
void bind_session_corrector(py::class_<Session>& cls) {
  cls  // aberration_measure.hpp
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
           "(CEOS Cartesian Å; value defaults to the last measurement, target to 0).");
}

/// Defocus, current, convergence, detectors, scan and read-out chain.
void bind_session_beam_detectors_scan(py::class_<Session>& cls) {
  cls
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
      .def_property_readonly("acquisition", [](Session& s) { return with(s, [](Microscope& m) { return m.acquisition(); }); });
}

/// Acquisitions: scans, spectra, probe positions.
void bind_session_acquisitions(py::class_<Session>& cls) {
  cls
      .def("scan",
           [](Session& s, bool eds, bool eels, py::object lines) {
             LinesCallback callback(std::move(lines));
             const AcquisitionControl control = callback.control();
             ScanResult r;
             try {
               r = with(s, [&](Microscope& m) {
                 // The flags belong to this call: a scan without them records no spectra.
                 ScanSettings sc = m.scan_settings();
                 if (!eds && !eels && !sc.eds && !sc.eels) return m.scan(control);
                 sc.eds = eds;
                 sc.eels = eels;
                 return m.scan(sc, m.detectors(), control);
               });
             } catch (const AcquisitionCancelled&) {
               callback.rethrow();  // stopped by the callback's exception: raise that
               throw;
             }
             callback.rethrow();  // raised by the last call (the finished frame)
             const py::ssize_t ny = static_cast<py::ssize_t>(r.scan.ny), nx = static_cast<py::ssize_t>(r.scan.nx);
             std::optional<SpectrumResult> e = std::move(r.eds), l = std::move(r.eels);
             py::dict d = scan_result(std::move(r));
             if (e) d["eds"] = spectrum_dict(std::move(*e), {ny, nx});
             if (l) d["eels"] = spectrum_dict(std::move(*l), {ny, nx});
             return d;
           },
           py::kw_only(), py::arg("eds") = false, py::arg("eels") = false, py::arg("lines") = py::none(),
           "Scans the field of view: {'images': {name: (ny, nx) read-out}, 'clean': {name: (ny, nx) fractions}, "
           "'positions': (ny, nx, 2) Å, 'electrons_per_position', 'dose_e_per_A2', 'call', ...}. No copies. "
           "eds=True / eels=True add spectrum images 'eds' / 'eels' ({'counts': (ny, nx, channels), 'expected', "
           "'energy_eV', ...}) from the same multislice pass (always full physics). lines=f calls f(dict) on this "
           "thread with each new block of finished rows (the dict scan_lines returns; first_row = the rows given "
           "before) and once more with state 'done'; f must not start another acquisition on this microscope; an "
           "exception from f stops the scan (dose of the positions simulated booked) and is raised by scan().")
      .def("spectrum_at",
           [](Session& s, double x, double y, double dwell, const std::string& kind) {
             const SpectrumKind k = spectrum_kind(kind);
             return spectrum_dict(with(s, [&](Microscope& m) { return m.spectrum_at(x, y, dwell, k); }), {});
           },
           py::arg("x"), py::arg("y"), py::arg("dwell_us") = 1e5, py::arg("kind") = "eds",
           "A point spectrum with the probe parked at specimen (x, y) Å for dwell_us (default 0.1 s, the reference "
           "client's exposure): {'counts': (channels,) Poisson, 'expected': (channels,) ideal, 'energy_eV': channel "
           "centres, 'electrons_per_position', 'call', 'kind'}. kind 'eds' or 'eels'.")
      .def("eels_at",
           [](Session& s, double x, double y, double dwell) {
             return spectrum_dict(with(s, [&](Microscope& m) { return m.spectrum_at(x, y, dwell, SpectrumKind::Eels); }), {});
           },
           py::arg("x"), py::arg("y"), py::arg("dwell_us") = 1e5, "spectrum_at(x, y, dwell_us, kind='eels').")
      .def("spectra_at",
           [](Session& s, const py::array_t<double, py::array::c_style | py::array::forcecast>& pts, double dwell,
              const std::string& kind) {
             const SpectrumKind k = spectrum_kind(kind);
             std::vector<Point2> p = to_points(pts);
             const py::ssize_t n = static_cast<py::ssize_t>(p.size());
             return spectrum_dict(with(s, [&](Microscope& m) { return m.spectra_at(p, dwell, k); }), {n});
           },
           py::arg("points"), py::arg("dwell_us") = 1e5, py::arg("kind") = "eds",
           "Spectra at each of (n, 2) points (Å) in one acquisition: 'counts' and 'expected' (n, channels).")
      .def("set_spectrometers",
           [](Session& s, const py::kwargs& kw) {
             Spectrometers sp = s.m.spectrometers();
             apply_spectrometers(sp, kw);
             with(s, [&](Microscope& m) { m.set_spectrometers(sp); });
           },
           "Changes the spectrometers by keyword: eds_energy_start_eV, eds_channel_width_eV, eds_channels, fwhm_mn_ka_eV, "
           "solid_angle_sr, takeoff_deg, self_absorption, eels_energy_start_eV, eels_dispersion_eV, eels_channels, "
           "collection_semiangle_mrad, zlp_fwhm_eV, ionisation_width_A. Refused values change nothing.")
      .def_property_readonly("spectrometers",
                             [](Session& s) { return spectrometers_dict(with(s, [](Microscope& m) { return m.spectrometers(); })); },
                             "The spectrometers' settings as a dict (keywords of set_spectrometers).")
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
           "Probe at each of (n, 2) points (Å): {'patterns': (n, ky, kx) float32, 'signals': {name: (n,)}, ...}.");
}

/// Cancel, status, dose map, the specimen now.
void bind_session_bookkeeping(py::class_<Session>& cls) {
  cls
      .def("cancel", [](Session& s) { s.m.cancel(); },
           "Cancels the acquisitions running or waiting now (from another thread): they raise RuntimeError.")
      .def("scan_lines",
           [](Session& s, std::size_t from_row) {
             return lines_dict(with(s, [&](Microscope& m) { return m.scan_lines(from_row); }));
           },
           py::arg("from_row") = 0,
           "The running or last scan's rows read out so far (progressive image; call it from another thread while "
           "scan() runs): {'state': 'running'|'done'|'cancelled'|'failed'|'idle', 'rows_done', 'first_row', 'ny', "
           "'images': {name: (rows_done - first_row, nx)} — exactly the finished frame's rows —, 'whole_frame': channels "
           "that arrive only with the whole frame (iDPC; all with a source size), 'whole': those once done}.")
      .def("status", [](Session& s) { return status_dict(with(s, [](Microscope& m) { return m.status(); })); },
           "The session's state as a plain dict (stage, optics, scan, detectors, total_electrons, calls, cache, damage).")
      .def("dose_map", [](Session& s, double pixel) { return own(with(s, [&](Microscope& m) { return m.dose_map(pixel); }).dose_e_per_A2); },
           py::arg("pixel_A") = 1.0, "Dose delivered so far (e⁻/Å²), (ny, nx) over the specimen cell in pixels of pixel_A.")
      .def_property_readonly("specimen", [](Session& s) { return with(s, [](Microscope& m) { return m.specimen(); }); },
                             "The specimen now (a copy; beam damage changes it).");
}

/// The Microscope session.
void bind_session(py::module_& mod) {
  py::class_<Session> cls(mod, "Microscope",
                          "A STEM session: state (specimen, stage, optics, detectors, scan, read-out chain, dose) and "
                          "the verbs of an operator. Every acquisition is counted and seeded.");
  bind_session_constructors(cls);
  bind_session_stage_and_optics(cls);
  bind_session_corrector(cls);
  bind_session_beam_detectors_scan(cls);
  bind_session_acquisitions(cls);
  bind_session_bookkeeping(cls);
}

}  // namespace

void bind_instrument(py::module_& mod) {
  // Order matters: types used as default arguments are registered before their users.
  bind_optics_stage_scan(mod);
  bind_microscope_settings(mod);
  bind_acquisition_chain(mod);
  bind_session(mod);
}

}  // namespace stemtwin::py_bindings
