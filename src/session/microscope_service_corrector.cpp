// MicroscopeService: the aberration corrector, as DTMicroscope's CEOS client calls it
// (acquireTableau {tabType, angle}, measureC1A1 {}, correctAberration {name, value, target,
// select}), plus snake_case aliases. Coefficients travel in CEOS notation (C1, A1, B2, A2,
// C3, S3, A3; aberration_measure.hpp) as Cartesian [x, y] in metres (x + iy = |C| e^{imφ};
// [x] for C1 and C3). The replies never reveal the column's true residuals: only what the
// tableau measured, with its standard errors. docs/server.md ("Aberration corrector").
#include <cmath>

#include "service_common.hpp"
#include "stemtwin/physics/aberration_measure.hpp"
#include "stemtwin/session/microscope_service.hpp"
#include "stemtwin/acquisition/ranges.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

namespace {
/// {"C1": {"value": [x], "error": [σ]}, "A1": {"value": [x, y], "error": [σx, σy],
/// "magnitude": |C|, "angle": φ}, …} in metres and radians (magnitude and angle in
/// Krivanek's convention: C12 and φ12 for A1).
json coefficients_json(const TableauResult& r, const std::vector<std::string>& only = {}) {
  json out = json::object();
  for (const auto& c : r.coefficients) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    const bool rot = ceos_coefficient(c.name).m != 0;
    json e = {{"value", rot ? json::array({c.xy_A[0] / kA_per_m, c.xy_A[1] / kA_per_m}) : json::array({c.xy_A[0] / kA_per_m})},
              {"error", rot ? json::array({c.sigma_xy_A[0] / kA_per_m, c.sigma_xy_A[1] / kA_per_m})
                            : json::array({c.sigma_xy_A[0] / kA_per_m})}};
    if (rot) {
      e["magnitude"] = c.magnitude_A / kA_per_m;
      e["magnitude_error"] = c.sigma_magnitude_A / kA_per_m;
      e["angle"] = c.angle_rad;
      e["angle_error"] = c.sigma_angle_rad;
    }
    out[c.name] = e;
  }
  return out;
}

/// [x] or [x, y] or x (metres) → Å pair; `what` names the parameter.
std::array<double, 2> cartesian_m(const json& v, const std::string& what, bool rotational) {
  std::array<double, 2> xy{0, 0};
  if (v.is_number()) {
    xy[0] = number(v, what);
  } else if (v.is_array() && (v.size() == 1 || v.size() == 2)) {
    xy[0] = number(v[0], what + "[0]");
    if (v.size() == 2) xy[1] = number(v[1], what + "[1]");
  } else {
    throw_invalid_params(what + " must be a number or a list [x] / [x, y] (metres)");
  }
  if (!rotational && xy[1] != 0) throw_invalid_params(what + ": a round aberration has no y component");
  for (double& c : xy) c = check_range(ranges::kAberration, c * kA_per_m, what);
  return xy;
}
}  // namespace

void MicroscopeService::register_corrector(RpcDispatcher& d) {
  auto tableau = [this](const json& p) {
    Params a(p, "acquireTableau", {"tabType", "angle", "electrons"});
    TableauSettings ts;
    std::string type = "Standard";
    if (a.has("tabType")) {
      if (!a.get("tabType").is_string()) throw_invalid_params("acquireTableau: tabType must be \"Fast\", \"Standard\" or \"Enhanced\"");
      type = a.get("tabType").get<std::string>();
    }
    if (type == "Fast") ts.rings = 1;
    else if (type == "Standard") ts.rings = 2;
    else if (type == "Enhanced") ts.rings = 3;
    else throw_invalid_params("acquireTableau: tabType \"" + type + "\" is not one of Fast, Standard, Enhanced");
    if (a.has("angle")) ts.tilt_mrad = in_range(a.get("angle"), "acquireTableau angle", ranges::kTableauTilt, 1.0, "mrad");
    if (a.has("electrons"))
      ts.electrons_per_tilt = in_range(a.get("electrons"), "acquireTableau electrons", ranges::kTableauElectrons, 1.0, "e⁻");
    const TableauResult r = m_.measure_tableau(ts);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& c : r.coefficients) measured_A_[c.name] = c.xy_A;
    }
    return json{{"tabType", type},
                {"angle", ts.tilt_mrad},
                {"tilts", r.tilts},
                {"electrons_per_tilt", ts.electrons_per_tilt},
                {"reduced_chi2", r.reduced_chi2},
                {"aberrations", coefficients_json(r)}};
  };
  const char* tableau_doc = "beam-tilt tableau: tabType Fast (1 ring, orders 1–2) | Standard (2 rings) | Enhanced (3), "
                            "angle = outer tilt (mrad, default 18), electrons per tilt (default 1e5); measured CEOS "
                            "coefficients [x, y] in m with standard errors";
  d.add("acquireTableau", {"tabType", "angle"}, tableau, tableau_doc);
  d.add("acquire_tableau", {"tabType", "angle"}, tableau, "alias of acquireTableau");

  auto c1a1 = [this](const json& p) {
    Params a(p, "measureC1A1", {"angle", "electrons"});
    TableauSettings ts;  // two rings: C3 is fitted too, so it does not leak into C1
    if (a.has("angle")) ts.tilt_mrad = in_range(a.get("angle"), "measureC1A1 angle", ranges::kTableauTilt, 1.0, "mrad");
    if (a.has("electrons"))
      ts.electrons_per_tilt = in_range(a.get("electrons"), "measureC1A1 electrons", ranges::kTableauElectrons, 1.0, "e⁻");
    const TableauResult r = m_.measure_tableau(ts);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      measured_A_["C1"] = r.get("C1").xy_A;
      measured_A_["A1"] = r.get("A1").xy_A;
    }
    json out = coefficients_json(r, {"C1", "A1"});
    out["reduced_chi2"] = r.reduced_chi2;
    return out;
  };
  d.add("measureC1A1", {}, c1a1, "C1 (defocus) and A1 (2-fold astigmatism) with standard errors, m and rad");
  d.add("measure_c1a1", {}, c1a1, "alias of measureC1A1");

  auto correct = [this](const json& p) {
    Params a(p, "correctAberration", {"name", "value", "target", "select"});
    if (!a.has("name") || !a.get("name").is_string()) throw_invalid_params("correctAberration: name (C1, A1, B2, A2, C3, S3, A3) is required");
    const std::string name = a.get("name").get<std::string>();
    const CeosCoefficient& c = [&]() -> const CeosCoefficient& {
      try {
        return ceos_coefficient(name);
      } catch (const std::invalid_argument& e) {
        throw_invalid_params(std::string("correctAberration: ") + e.what());
      }
    }();
    const bool rot = c.m != 0;
    std::array<double, 2> value{0, 0}, target{0, 0};
    if (a.has("value")) {
      value = cartesian_m(a.get("value"), "correctAberration value", rot);
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = measured_A_.find(name);
      if (it == measured_A_.end())
        throw_invalid_params("correctAberration: no value given and " + name + " not measured yet (call acquireTableau or measureC1A1)");
      value = it->second;
    }
    if (a.has("target")) target = cartesian_m(a.get("target"), "correctAberration target", rot);
    const double gain = a.has("select") ? in_range(a.get("select"), "correctAberration select", ranges::kCorrectionGain, 1.0, "") : 1.0;
    const std::array<double, 2> delta{gain * (target[0] - value[0]), gain * (target[1] - value[1])};
    m_.adjust_aberration(name, delta);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      measured_A_.erase(name);  // the measurement no longer describes the column
    }
    const auto now = ceos_get(m_.optics().probe.aberrations, c);
    return json{{"name", name},
                {"applied", rot ? json::array({delta[0] / kA_per_m, delta[1] / kA_per_m}) : json::array({delta[0] / kA_per_m})},
                {"corrector", rot ? json::array({now[0] / kA_per_m, now[1] / kA_per_m}) : json::array({now[0] / kA_per_m})}};
  };
  const char* correct_doc = "change the corrector's coefficient `name` by select·(target − value) (CEOS [x, y] in m; value "
                            "defaults to the last measurement, target to 0, select to 1)";
  d.add("correctAberration", {"name", "value", "target", "select"}, correct, correct_doc);
  d.add("correct_aberration", {"name", "value", "target", "select"}, correct, "alias of correctAberration");
}

}  // namespace stemtwin
