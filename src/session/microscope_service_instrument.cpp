// MicroscopeService: devices and their settings, stage and beam, status and optics — the
// DTMicroscope-compatible methods that never run physics (they answer at once, also while
// another connection's acquisition runs). docs/server.md lists them.
#include <algorithm>
#include <cmath>
#include <optional>

#include "service_common.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/session/microscope_service.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

void MicroscopeService::register_devices(RpcDispatcher& d) {
  d.add("get_detectors", {}, [](const json& p) {
    Params(p, "get_detectors", {});
    return json(devices());
  },
        "devices: flu_camera, ceta_camera, scan, super_x");

  d.add("activate_device", {"device"}, [this](const json& p) {
    std::lock_guard<std::mutex> lock(mutex_);
    Params a(p, "activate_device", {"device"});
    device_name(a.get("device"), a.method());
    return json(1);
  },
        "check a device name (1)");

  d.add("device_settings", {"device"}, [this](const json& p) {
    std::lock_guard<std::mutex> lock(mutex_);
    json rest = json::object();
    Params a(p, "device_settings", {"device"}, &rest);
    const std::string dev = device_name(a.get("device"), a.method());
    settings_[dev] = validated_settings(dev, settings_[dev], rest);
    return json(1);
  },
        "change a device's settings (keyword arguments; 1)");

  auto get_settings = [this](const json& p) {
    std::lock_guard<std::mutex> lock(mutex_);
    Params a(p, "get_device_settings", {"device"});
    return settings_.at(device_name(a.get("device"), a.method()));
  };
  d.add("get_device_settings", {"device"}, get_settings, "a device's settings");
  d.add("get_detector_settings", {"device"}, get_settings, "alias of get_device_settings");

  d.add("get_vacuum", {}, [](const json& p) {
    Params(p, "get_vacuum", {});
    return json(kNominalVacuum_Pa);
  },
        "nominal column vacuum, Pa (constant: not modelled)");

  d.add("close", {}, [](const json& p) {
    Params(p, "close", {});
    return json(1);
  },
        "no-op (1): the server keeps running");
}

void MicroscopeService::register_stage_and_beam(RpcDispatcher& d) {
  d.add("get_stage", {}, [this](const json& p) {
    Params(p, "get_stage", {});
    return stage_si();
  },
        "[x, y, z (m), a, b (rad)]");

  d.add("set_stage", {"stage_positions", "relative"}, [this](const json& p) {
    Params a(p, "set_stage", {"stage_positions", "relative"});
    const bool relative = a.has("relative") ? boolean(a.get("relative"), "relative") : true;
    const json& sp = a.get("stage_positions");
    static const char* axes[5] = {"x", "y", "z", "a", "b"};
    std::array<std::optional<double>, 5> v;
    if (sp.is_object()) {
      for (const auto& [k, val] : sp.items()) {
        const auto* it = std::find_if(std::begin(axes), std::end(axes), [&](const char* s) { return k == s; });
        if (it == std::end(axes)) throw_invalid_params("set_stage: unknown axis '" + k + "' (axes: x, y, z, a, b)");
        if (!val.is_null()) v[static_cast<std::size_t>(it - std::begin(axes))] = number(val, std::string("stage ") + k);
      }
    } else if (sp.is_array()) {
      if (sp.size() > 5) throw_invalid_params("set_stage: stage_positions has at most 5 values [x, y, z, a, b]");
      for (std::size_t i = 0; i < sp.size(); ++i)
        if (!sp[i].is_null()) v[i] = number(sp[i], std::string("stage ") + axes[i]);
    } else {
      throw_invalid_params("set_stage: stage_positions must be {\"x\": m, ...} or [x, y, z, a, b]");
    }
    // The session checks the resulting position against the stage's travel (ranges.hpp);
    // a relative move is one locked step there, so two clients' moves add up.
    std::array<double, 5> value{};
    for (std::size_t i = 0; i < 5; ++i)
      if (v[i]) value[i] = i < 3 ? *v[i] * kA_per_m : *v[i];
    if (relative) {
      m_.move_stage_relative(value[0], value[1], value[2], value[3], value[4]);
    } else {
      StagePosition s = m_.stage();
      double* fields[5] = {&s.x_A, &s.y_A, &s.z_A, &s.alpha_rad, &s.beta_rad};
      for (std::size_t i = 0; i < 5; ++i)
        if (v[i]) *fields[i] = value[i];
      m_.move_stage(s);
    }
    return json{{"new_stage", stage_si()}};
  },
        "move the stage (m, rad; relative by default)");

  d.add("set_beam_position", {"x", "y", "units"}, [this](const json& p) {
    Params a(p, "set_beam_position", {"x", "y", "units"});
    std::string units = "fraction";
    if (a.has("units")) {
      if (!a.get("units").is_string() || (a.get("units") != "fraction" && a.get("units") != "nm"))
        throw_invalid_params("set_beam_position: units must be \"fraction\" (default) or \"nm\"");
      units = a.get("units").get<std::string>();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const json& fov = settings_.at("scan").at("field_of_view");
    // nm: from the field's corner (0, 0) along the scan axes, as the reference's docstring
    // ("in nm") reads; converted to fractions of the current field.
    const double scale_x = units == "nm" ? 1e-9 / fov[0].get<double>() : 1.0;
    const double scale_y = units == "nm" ? 1e-9 / fov[1].get<double>() : 1.0;
    auto fraction = [&](const char* k, double scale) {
      const double v = number(a.get(k), k) * scale;
      if (v < 0 || v > 1)
        throw_invalid_params(std::string("set_beam_position: ") + k + " = " + format_quantity(v, "") +
                             " of the field is outside the field of view (0..1 as a fraction" +
                             (units == "nm" ? ", 0.." + format_quantity(1.0 / scale * 1e0, "nm") + " in nm)" : ")"));
      return v;
    };
    const double x = fraction("x", scale_x), y = fraction("y", scale_y);
    beam_ = {x, y};
    return json(1);
  },
        "park the beam at (x, y): fractions of the scan field (0..1), or nm from its corner with units=\"nm\"");

  d.add("get_beam_position", {}, [this](const json& p) {
    Params(p, "get_beam_position", {});
    std::lock_guard<std::mutex> lock(mutex_);
    return json::array({beam_[0], beam_[1]});
  },
        "[x, y], fractions of the scan field");
}

void MicroscopeService::register_status(RpcDispatcher& d) {
  d.add("get_microscope_status", {"parameters"}, [this](const json& p) {
    Params a(p, "get_microscope_status", {"parameters"});
    std::array<double, 2> beam;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      beam = beam_;
    }
    const MicroscopeStatus st = m_.status();
    const DoseMap dm = m_.dose_map(1.0);
    double max_dose = 0;
    for (double v : dm.dose_e_per_A2.data) max_dose = std::max(max_dose, v);
    const double area = st.specimen_cell.x * st.specimen_cell.y;
    const double lens_defocus_A = st.optics.probe.aberrations.get("defocus");
    json all = {{"status", st.acquiring ? "Acquiring" : "Idle"},
                {"acquisition_progress", st.positions_total ? double(st.positions_done) / double(st.positions_total) : 0.0},
                {"scan_state", st.scan_state},
                {"rows_done", st.rows_done},
                {"total_rows", st.total_rows},
                {"vacuum", kNominalVacuum_Pa},
                {"column_valve", "Open"},
                {"stage_position", stage_si()},
                {"beam_position", json::array({beam[0], beam[1]})},
                {"beam_current", st.optics.current_pA * 1e-12},
                {"high_tension", st.optics.probe.energy_eV},
                {"convergence_angle", st.optics.probe.semiangle_mrad * 1e-3},
                // The probe's focus relative to the specimen: the lens defocus plus stage z
                // (raising the specimen by z puts the fixed crossover z deeper; microscope.hpp).
                {"defocus", (lens_defocus_A + st.stage.z_A) / kA_per_m},
                {"lens_defocus", lens_defocus_A / kA_per_m},
                {"acquisitions", st.calls},
                {"total_electrons", st.total_electrons},
                {"mean_dose", area > 0 ? st.total_electrons / area : 0.0},
                {"max_dose", max_dose},
                {"atoms_removed", st.atoms_removed},
                {"atoms_displaced", st.atoms_displaced},
                // What produced the last frame: method auto's choice, PRISM's factor and the
                // error auto measured against multislice on its calibration positions (null:
                // no frame yet, or nothing calibrated).
                {"method", st.last_frame.method.empty() ? json(nullptr) : json(st.last_frame.method)},
                {"interpolation", st.last_frame.interpolation},
                {"method_mean_error", std::isfinite(st.last_frame.mean_error) ? json(st.last_frame.mean_error) : json(nullptr)},
                {"method_correlation", std::isfinite(st.last_frame.correlation) ? json(st.last_frame.correlation) : json(nullptr)}};
    if (!a.has("parameters")) return all;
    json want = a.get("parameters");
    if (want.is_string()) want = json::array({want});
    if (!want.is_array()) throw_invalid_params("get_microscope_status: parameters must be a list of names");
    json out = json::object();
    for (const json& k : want) {
      if (!k.is_string() || !all.contains(k.get<std::string>())) {
        std::vector<std::string> names;
        for (const auto& [n, v] : all.items()) names.push_back(n);
        throw_invalid_params("get_microscope_status: unknown parameter " + k.dump() + " (known: " + join(names) + ")");
      }
      out[k.get<std::string>()] = all[k.get<std::string>()];
    }
    return out;
  },
        "state and dose (SI units; dose in e/Å²)");

  d.add("aberration_correction", {"order"}, [this](const json& p) {
    Params a(p, "aberration_correction", {"order", "keep_defocus"});
    const std::size_t order = count(a.get("order"), "order", 1, 5);
    const bool keep = a.has("keep_defocus") ? boolean(a.get("keep_defocus"), "keep_defocus") : true;
    Optics o = m_.optics();
    json corrected = json::array();
    for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
      const auto& n = Aberrations::kOrders[i];
      if (static_cast<std::size_t>(n[0]) > order || (keep && n[0] == 1 && n[1] == 0)) continue;
      o.probe.aberrations.C[i] = 0;
      o.probe.aberrations.phi[i] = 0;
      corrected.push_back("C" + std::to_string(n[0]) + std::to_string(n[1]));
    }
    m_.set_optics(o);
    return json{{"order", order}, {"corrected", corrected}, {"aberrations", aberrations_json(o.probe.aberrations, 1 / kA_per_m)}};
  },
        "zero the aberrations up to an order (C in m, phi in rad)");
}

}  // namespace stemtwin
