// MicroscopeService: the native stemtwin.* methods (the twin's own units, binary arrays):
// the method list and state (register_native_state), frames (register_native_scan), the parked
// probe (register_native_probe); dose, optics, stage and cancel (register_native_control).
#include <algorithm>
#include <cmath>

#include "service_common.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/session/microscope_service.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

namespace {
// What produced the last frame (method auto's choice and its measured error; null before
// the first frame / when nothing was calibrated).
json frame_method_json(const FrameMethod& f) {
  const auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  return json{{"name", f.method.empty() ? json(nullptr) : json(f.method)},
              {"interpolation", f.interpolation},
              {"calibrated", f.calibrated},
              {"mean_error", num(f.mean_error)},
              {"correlation", num(f.correlation)}};
}
}  // namespace

void MicroscopeService::register_native(RpcDispatcher& d) {
  register_native_state(d);
  register_native_scan(d);
  register_native_probe(d);
}

void MicroscopeService::register_native_state(RpcDispatcher& d) {
  d.add("stemtwin.methods", {}, [&d](const json& p) {
    Params(p, "stemtwin.methods", {});
    json out = json::array();
    for (const auto& [name, summary] : d.methods()) out.push_back({name, summary});
    return out;
  },
        "[[method, summary], ...]");

  d.add("stemtwin.status", {}, [this](const json& p) {
          Params(p, "stemtwin.status", {});
          std::array<double, 2> beam_f;
          Point2 beam;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            beam_f = beam_;
            beam = field_position_locked(beam_[0], beam_[1]);
          }
          const MicroscopeStatus st = m_.status();
          const ProbeOptics& po = st.optics.probe;
          json dets = json::array();
          for (const Detector& det : m_.detectors()) {
            json j = {{"name", detector_name(det)}};
            if (const auto* an = std::get_if<AnnularDetector>(&det)) j["inner_mrad"] = an->inner_mrad, j["outer_mrad"] = an->outer_mrad;
            dets.push_back(j);
          }
          return json{{"stage", {{"x_A", st.stage.x_A}, {"y_A", st.stage.y_A}, {"z_A", st.stage.z_A},
                                 {"alpha_rad", st.stage.alpha_rad}, {"beta_rad", st.stage.beta_rad}}},
                      {"optics", {{"energy_eV", po.energy_eV}, {"convergence_mrad", po.semiangle_mrad},
                                  {"current_pA", st.optics.current_pA}, {"defocus_A", po.aberrations.get("defocus")},
                                  {"focal_spread_A", po.focal_spread_A}, {"source_size_A", po.source_size_A},
                                  {"aberrations_A_rad", aberrations_json(po.aberrations, 1.0)}}},
                      {"scan", {{"fov_x_A", st.scan.fov_x_A}, {"fov_y_A", st.scan.fov_y_A}, {"nx", st.scan.nx},
                                {"ny", st.scan.ny}, {"rotation_deg", st.scan.rotation_deg}, {"dwell_us", st.scan.dwell_us}}},
                      {"detectors", dets},
                      {"beam_position", {{"fraction", json::array({beam_f[0], beam_f[1]})}, {"x_A", beam.x}, {"y_A", beam.y}}},
                      {"total_electrons", st.total_electrons},
                      {"calls", st.calls},
                      {"atoms", st.atoms},
                      {"cell_A", json::array({st.specimen_cell.x, st.specimen_cell.y, st.specimen_cell.z})},
                      {"cache", {{"windows", st.cached_windows}, {"hits", st.cache_hits}, {"misses", st.cache_misses}}},
                      {"atoms_removed", st.atoms_removed},
                      {"atoms_displaced", st.atoms_displaced},
                      {"acquiring", st.acquiring},
                      {"positions_done", st.positions_done},
                      {"positions_total", st.positions_total},
                      {"scan_state", st.scan_state},
                      {"rows_done", st.rows_done},
                      {"total_rows", st.total_rows},
                      {"method", frame_method_json(st.last_frame)}};
        },
        "session state in native units (Å, mrad, pA, µs)");
}

void MicroscopeService::register_native_scan(RpcDispatcher& d) {
  d.add("stemtwin.scan", {}, [this](const json& p) {
          Params a(p, "stemtwin.scan", {"fov_x_A", "fov_y_A", "nx", "ny", "rotation_deg", "dwell_us", "detectors", "clean", "encoding"});
          std::unique_lock<std::mutex> lock(mutex_);
          json change = json::object();
          const json& cur = settings_.at("scan");
          const json& size = cur.at("size");
          // nx, ny are named in their own errors; the pixel limit is checked with the size below.
          const json nx = a.has("nx") ? json(count(a.get("nx"), "nx", 1, 1u << 16)) : (size.is_array() ? size[0] : size);
          const json ny = a.has("ny") ? json(count(a.get("ny"), "ny", 1, 1u << 16)) : (size.is_array() ? size[1] : size);
          if (a.has("nx") || a.has("ny")) change["size"] = json::array({nx, ny});
          if (a.has("fov_x_A") || a.has("fov_y_A")) {
            json fov = cur.at("field_of_view");
            // The session's range; atomic-resolution fields are bounded tighter in scan_config.
            const double lim = ranges::kFieldOfView.hi;
            const char* why = "the session's field-of-view range";
            if (a.has("fov_x_A")) fov[0] = positive(a.get("fov_x_A"), "fov_x_A", lim, "Å", why) / kA_per_m;
            if (a.has("fov_y_A")) fov[1] = positive(a.get("fov_y_A"), "fov_y_A", lim, "Å", why) / kA_per_m;
            change["field_of_view"] = fov;
          }
          if (a.has("rotation_deg"))
            change["rotation"] = in_range(a.get("rotation_deg"), "rotation_deg", ranges::kScanRotation, 1, "deg") * kPi / 180;
          if (a.has("dwell_us"))
            change["exposure"] = positive(a.get("dwell_us"), "dwell_us", limits_.max_dwell_s * 1e6, "µs",
                                          "the server's dwell-per-pixel limit") * 1e-6;
          if (a.has("detectors")) change["detectors"] = a.get("detectors");
          const bool clean = a.has("clean") ? boolean(a.get("clean"), "clean") : false;
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "base64";
          const ScanConfig c = scan_config(validated_settings("scan", cur, change));
          lock.unlock();  // physics follows
          ScanResult r;
          scan_frame(c, &r);
          auto arr = [&](const Image& im) {
            return enc == "base64" ? binary_array(to_float(im), {im.ny, im.nx}) : list_array(to_float(im), {im.ny, im.nx});
          };
          json images = json::object(), cleans = json::object();
          for (const auto& det : c.detectors) {
            images[det.name] = arr(r.images.at(det.name));
            if (clean) cleans[det.name] = arr(r.clean.at(det.name));
          }
          json out = {{"images", images},
                      {"dose_e_per_A2", r.dose_e_per_A2},
                      {"electrons_per_position", r.electrons_per_position},
                      {"call", r.call},
                      {"seconds", r.seconds},
                      {"window_cache_hit", r.window_cache_hit},
                      {"warnings", r.warnings},
                      {"stage_A", json::array({r.stage.x_A, r.stage.y_A})},
                      {"scan", {{"fov_x_A", r.scan.fov_x_A}, {"fov_y_A", r.scan.fov_y_A}, {"nx", r.scan.nx},
                                {"ny", r.scan.ny}, {"rotation_deg", r.scan.rotation_deg}, {"dwell_us", r.scan.dwell_us}}}};
          if (clean) out["clean"] = cleans;
          return out;
        },
        "one frame, images as base64 float32 (native units; settings of device scan unless given)");

  // The progressive image: takes only the session's rows lock (Microscope::scan_lines), so it
  // answers while the scan that fills the rows runs on another connection.
  d.add("stemtwin.scan_lines", {"from_row"}, [this](const json& p) {
          Params a(p, "stemtwin.scan_lines", {"from_row", "encoding"});
          const std::size_t from = a.has("from_row") ? count(a.get("from_row"), "from_row", 0, 1u << 16) : 0;
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "base64";
          const ScanLines l = m_.scan_lines(from);
          auto arrays = [&](const std::map<std::string, Image>& images) {
            json out = json::object();
            for (const auto& [name, im] : images)
              out[name] = enc == "base64" ? binary_array(to_float(im), {im.ny, im.nx}) : list_array(to_float(im), {im.ny, im.nx});
            return out;
          };
          return json{{"call", l.call},          {"state", l.state},       {"nx", l.nx},
                      {"ny", l.ny},              {"total_rows", l.ny},     {"rows_done", l.rows_done},
                      {"first_row", l.first_row}, {"channels", l.channels}, {"whole_frame", l.whole_frame},
                      {"images", arrays(l.rows)}, {"whole", arrays(l.whole)}};
        },
        "rows of the running or last scan read out so far, from from_row on (progressive image; base64 float32 "
        "[rows, nx] per channel, the final frame's bytes)");
}

void MicroscopeService::register_native_probe(RpcDispatcher& d) {
  d.add("stemtwin.probe", {"x_A", "y_A", "dwell_us"}, [this](const json& p) {
          Params a(p, "stemtwin.probe", {"x_A", "y_A", "dwell_us", "encoding"});
          std::unique_lock<std::mutex> lock(mutex_);
          Point2 pos = field_position_locked(beam_[0], beam_[1]);
          if (a.has("x_A")) pos.x = number(a.get("x_A"), "x_A");
          if (a.has("y_A")) pos.y = number(a.get("y_A"), "y_A");
          const double dwell_us = a.has("dwell_us") ? positive(a.get("dwell_us"), "dwell_us", limits_.max_exposure_s * 1e6, "µs", "the server's exposure limit")
                                                    : settings_.at("ceta_camera").at("exposure").get<double>() * 1e6;
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "base64";
          lock.unlock();  // physics follows
          const ProbeResult r = m_.probe_at(pos.x, pos.y, dwell_us, call_control());
          const std::vector<std::size_t> shape = {r.pattern_ny, r.pattern_nx};
          return json{{"pattern", enc == "base64" ? binary_array(r.pattern, shape) : list_array(r.pattern, shape)},
                      {"pattern_pixel_mrad", json::array({r.pattern_pixel_mrad_x, r.pattern_pixel_mrad_y})},
                      {"signals", r.signals},
                      {"electrons", r.electrons},
                      {"position_A", json::array({r.position_A.x, r.position_A.y})},
                      {"call", r.call}};
        },
        "park the probe (Å, default the beam position): pattern (base64 float32) and detector signals");

  d.add("stemtwin.probe_points", {"points_A", "dwell_us"}, [this](const json& p) {
          Params a(p, "stemtwin.probe_points", {"points_A", "dwell_us"});
          const json& pts = a.get("points_A");
          if (!pts.is_array() || pts.empty()) throw_invalid_params("points_A must be a non-empty list of [x, y] (Å)");
          if (pts.size() > limits_.max_points)
            throw_invalid_params("points_A: " + std::to_string(pts.size()) + " points exceed the limit of " +
                                 std::to_string(limits_.max_points));
          std::vector<Point2> points;
          for (const json& q : pts) {
            if (!q.is_array() || q.size() != 2) throw_invalid_params("points_A must be a list of [x, y] (Å)");
            points.push_back({number(q[0], "points_A x"), number(q[1], "points_A y")});
          }
          // One window covers every point: their spread is bounded like a scan's field of view.
          double x0 = points[0].x, x1 = x0, y0 = points[0].y, y1 = y0;
          for (const Point2& q : points) x0 = std::min(x0, q.x), x1 = std::max(x1, q.x), y0 = std::min(y0, q.y), y1 = std::max(y1, q.y);
          if (x1 - x0 > limits_.max_field_of_view_A || y1 - y0 > limits_.max_field_of_view_A)
            throw_invalid_params("points_A spread over " + format_quantity(x1 - x0, "") + " × " + format_quantity(y1 - y0, "Å") +
                                 ", beyond the limit of " + format_quantity(limits_.max_field_of_view_A, "Å") +
                                 " per side (the server's field-of-view limit)");
          const double dwell_us = a.has("dwell_us") ? positive(a.get("dwell_us"), "dwell_us", limits_.max_dwell_s * 1e6, "µs", "the server's dwell limit") : 2.0;
          const std::vector<ProbeResult> r = m_.scan_points(points, dwell_us, call_control());
          std::map<std::string, std::vector<float>> sig;
          for (const ProbeResult& q : r)
            for (const auto& [k, v] : q.signals) sig[k].push_back(static_cast<float>(v));
          json signals = json::object();
          for (const auto& [k, v] : sig) signals[k] = binary_array(v, {v.size()});
          return json{{"signals", signals}, {"electrons_per_point", r.front().electrons}, {"call", r.front().call}};
        },
        "detector signals at a list of positions (Å), base64 float32 per detector");
}

void MicroscopeService::register_native_control(RpcDispatcher& d) {
  d.add("stemtwin.dose_map", {"pixel_A"}, [this](const json& p) {
          Params a(p, "stemtwin.dose_map", {"pixel_A"});
          const double px = a.has("pixel_A") ? positive(a.get("pixel_A"), "pixel_A", 1e4, "Å", "1 µm") : 1.0;
          const Cell c = m_.status().specimen_cell;
          if ((c.x / px) * (c.y / px) > 4.2e6) throw_invalid_params("stemtwin.dose_map: more than 2048 x 2048 pixels; use a larger pixel_A");
          const DoseMap dm = m_.dose_map(px);
          return json{{"dose_e_per_A2", binary_array(to_float(dm.dose_e_per_A2), {dm.dose_e_per_A2.ny, dm.dose_e_per_A2.nx})},
                      {"pixel_A", dm.pixel_A},
                      {"total_electrons", dm.total_electrons}};
        },
        "dose delivered over the specimen cell, e/Å² (base64 float32 [ny, nx])");

  d.add("stemtwin.set_optics", {}, [this](const json& p) {
          Params a(p, "stemtwin.set_optics", {"energy_eV", "convergence_mrad", "current_pA", "defocus_A", "focal_spread_A",
                                              "source_size_A", "aberrations"});
          Optics o = m_.optics();
          if (a.has("energy_eV")) o.probe.energy_eV = number(a.get("energy_eV"), "energy_eV");
          if (a.has("convergence_mrad")) o.probe.semiangle_mrad = number(a.get("convergence_mrad"), "convergence_mrad");
          if (a.has("current_pA")) o.current_pA = number(a.get("current_pA"), "current_pA");
          if (a.has("focal_spread_A")) o.probe.focal_spread_A = number(a.get("focal_spread_A"), "focal_spread_A");
          if (a.has("source_size_A")) o.probe.source_size_A = number(a.get("source_size_A"), "source_size_A");
          if (a.has("aberrations")) {
            const json& ab = a.get("aberrations");
            if (!ab.is_object()) throw_invalid_params("aberrations must be {name: value} (C in Å, phi in rad)");
            for (const auto& [k, v] : ab.items()) o.probe.aberrations.set(k, number(v, k));
          }
          if (a.has("defocus_A")) o.probe.aberrations.set("defocus", number(a.get("defocus_A"), "defocus_A"));
          m_.set_optics(o);
          return json{{"energy_eV", o.probe.energy_eV}, {"convergence_mrad", o.probe.semiangle_mrad},
                      {"current_pA", o.current_pA}, {"defocus_A", o.probe.aberrations.get("defocus")},
                      {"focal_spread_A", o.probe.focal_spread_A}, {"source_size_A", o.probe.source_size_A},
                      {"aberrations_A_rad", aberrations_json(o.probe.aberrations, 1.0)}};
        },
        "change optics (native units); returns the optics");

  d.add("stemtwin.move_stage", {}, [this](const json& p) {
          Params a(p, "stemtwin.move_stage", {"x_A", "y_A", "z_A", "alpha_rad", "beta_rad", "relative"});
          const bool rel = a.has("relative") ? boolean(a.get("relative"), "relative") : false;
          StagePosition s = m_.stage();
          auto upd = [&](const char* k, double& field) {
            if (a.has(k)) field = (rel ? field : 0.0) + number(a.get(k), k);
          };
          upd("x_A", s.x_A), upd("y_A", s.y_A), upd("z_A", s.z_A), upd("alpha_rad", s.alpha_rad), upd("beta_rad", s.beta_rad);
          m_.move_stage(s);
          const StagePosition n = m_.stage();
          return json{{"x_A", n.x_A}, {"y_A", n.y_A}, {"z_A", n.z_A}, {"alpha_rad", n.alpha_rad}, {"beta_rad", n.beta_rad}};
        },
        "move the stage in Å / rad (absolute unless relative)");

  d.add("stemtwin.cancel", {}, [this](const json& p) {
    Params(p, "stemtwin.cancel", {});
    const bool running = m_.status().acquiring;
    m_.cancel();
    return json{{"cancelled", running}};
  },
        "cancel the acquisitions running or waiting now (they answer -32000 \"cancelled\"); {cancelled: whether one was running}");
}

}  // namespace stemtwin
