#include "stemtwin/session/microscope_service.hpp"

#include <algorithm>
#include <cmath>

#include "service_common.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/acquisition/ranges.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

AcquisitionControl MicroscopeService::call_control() {
  AcquisitionControl c;
  c.cancelled = [] { return rpc::caller_gone(); };
  return c;
}

json MicroscopeService::stage_si() const {
  const StagePosition s = m_.stage();
  return json::array({s.x_A / kA_per_m, s.y_A / kA_per_m, s.z_A / kA_per_m, s.alpha_rad, s.beta_rad});
}

// ---- construction ---------------------------------------------------------------------

MicroscopeService::MicroscopeService(Microscope& microscope, ServiceLimits limits)
    : m_(microscope), limits_(limits), incoherent_above_A_(microscope.settings().incoherent_above_A) {
  for (const Detector& d : m_.detectors())
    if (const auto* a = std::get_if<AnnularDetector>(&d)) detector_table_[upper(a->name)] = *a;
  // The Microscope's own defaults, for names its current list lacks.
  const std::vector<AnnularDetector> fallback = {AnnularDetector{"HAADF", 70, 160, std::nullopt},
                                                 AnnularDetector{"ADF", 30, 70, std::nullopt},
                                                 AnnularDetector{"ABF", 10, 20, std::nullopt},
                                                 AnnularDetector{"BF", 0, 10, std::nullopt}};
  for (const auto& a : fallback) detector_table_.emplace(a.name, a);
  for (auto& [name, a] : detector_table_) a.name = name;

  const ScanSettings s = m_.scan_settings();
  json size = s.nx == s.ny ? json(s.nx) : json::array({s.nx, s.ny});
  settings_["scan"] = json{{"size", size},
                       {"exposure", s.dwell_us * 1e-6},
                       {"field_of_view", json::array({s.fov_x_A / kA_per_m, s.fov_y_A / kA_per_m})},
                       {"detectors", json::array({"HAADF"})},
                       {"rotation", s.rotation_deg * kPi / 180},
                       {"camera_length", 0.091},
                       {"collection_angles", json::object()}};
  // The cameras' defaults are the reference server's (DTMicroscope/server/twisted_server.py).
  settings_["ceta_camera"] = json{{"size", 512}, {"exposure", 0.1}, {"binning", 1}};
  settings_["flu_camera"] = json{{"size", 512}, {"exposure", 0.1}, {"binning", 1}, {"save_to_disc", false}};
  settings_["super_x"] = json{{"size", 2048}, {"exposure", 0.1}, {"binning", 2}, {"energy_window", json::array({0, 20000})}};
  // The twin's EELS spectrometer (no reference device): 2048 channels of 0.5 eV from −10 eV, β = 50 mrad.
  settings_["eels"] = json{{"size", 2048}, {"exposure", 0.1}, {"energy_offset", -10.0}, {"dispersion", 0.5}, {"collection_angle", 0.05}};
}

// ---- helpers (mutex held) --------------------------------------------------------------

namespace {
std::string canonical_detector(const std::string& name) {
  const std::string u = upper(name);
  if (u == "DF" || u == "MAADF") return "ADF";
  return u;
}
}  // namespace

AnnularDetector MicroscopeService::detector_for(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return detector_locked(name, settings_.at("scan"));
}

AnnularDetector MicroscopeService::detector_locked(const std::string& name, const json& scan_settings) const {
  const std::string c = canonical_detector(name);
  const auto it = detector_table_.find(c);
  if (it == detector_table_.end()) {
    std::vector<std::string> known;
    for (const auto& [k, v] : detector_table_) known.push_back(k);
    known.push_back("DF");
    known.push_back("MAADF");
    throw_invalid_params("unknown detector '" + name + "' (known, case-insensitive: " + join(known) + ")");
  }
  AnnularDetector d = it->second;
  const json& ca = scan_settings.at("collection_angles");
  if (ca.contains(c)) {
    d.inner_mrad = ca[c][0].get<double>() * 1e3;
    d.outer_mrad = ca[c][1].get<double>() * 1e3;
  }
  return d;
}

std::string MicroscopeService::device_name(const json& v, const std::string& method) const {
  if (!v.is_string()) throw_invalid_params(method + ": device must be a string");
  const std::string d = v.get<std::string>();
  if (!settings_.count(d)) throw_invalid_params(method + ": unknown device '" + d + "' (devices: " + join(devices()) + ")");
  return d;
}

json MicroscopeService::validated_settings(const std::string& device, const json& base, const json& changes) const {
  // Fields of view arrive in metres and the limit is set in Å: the message gives both.
  // The session's range (1 µm); atomic-resolution scans are bounded tighter in scan_config.
  auto field_of_view_m = [](const json& x, const std::string& what) {
    const double d = number(x, what), lim_A = ranges::kFieldOfView.hi;
    if (!(d > 0)) throw_invalid_params(what + " must be > 0 m");
    if (d * kA_per_m > lim_A)
      throw_invalid_params(what + " = " + format_quantity(d, "m") + " (" + format_quantity(d * kA_per_m, "Å") +
                           ") exceeds the limit of " + format_quantity(lim_A / kA_per_m, "m") + " (" +
                           format_quantity(lim_A, "Å") + ", the session's field-of-view range)");
    return d;
  };
  json out = base;
  if (!changes.is_object()) throw_invalid_params("settings must be given by name");
  std::vector<std::string> known;
  for (const auto& [k, v] : base.items()) known.push_back(k);
  for (const auto& [k, v] : changes.items()) {
    const std::string what = device + "." + k;
    if (!base.contains(k)) throw_invalid_params("unknown setting '" + k + "' for device '" + device + "' (settings: " + join(known) + ")");
    if (k == "size") {
      if (device == "scan") {
        const auto p = pair_of(v, what);
        const std::size_t nx = count(p[0], what, 1, 1u << 16), ny = count(p[1], what, 1, 1u << 16);
        if (nx * ny > limits_.max_scan_pixels)
          throw_invalid_params("scan of " + std::to_string(nx) + " x " + std::to_string(ny) + " = " + std::to_string(nx * ny) +
                               " pixels exceeds the limit of " + std::to_string(limits_.max_scan_pixels) +
                               " pixels per frame (serve --max-pixels)");
        out[k] = v.is_array() ? json::array({nx, ny}) : json(nx);
      } else {
        out[k] = count(v, what, 0, 4096);
      }
    } else if (k == "exposure") {
      out[k] = device == "scan" ? positive(v, what, limits_.max_dwell_s, "s", "the server's dwell-per-pixel limit")
                                : positive(v, what, limits_.max_exposure_s, "s", "the server's exposure limit");
    } else if (k == "field_of_view") {
      const auto p = pair_of(v, what);
      out[k] = json::array({field_of_view_m(p[0], what), field_of_view_m(p[1], what)});
    } else if (k == "detectors") {
      if (!v.is_array() || v.empty()) throw_invalid_params(what + " must be a non-empty list of detector names");
      if (v.size() > limits_.max_detectors)
        throw_invalid_params(what + ": at most " + std::to_string(limits_.max_detectors) + " detectors");
      json names = json::array();
      for (const json& n : v) {
        if (!n.is_string()) throw_invalid_params(what + " must be a list of names");
        const std::string c = canonical_detector(n.get<std::string>());
        detector_locked(c, base);  // throws for unknown names
        if (std::find(names.begin(), names.end(), c) != names.end()) throw_invalid_params(what + ": '" + c + "' given twice");
        names.push_back(c);
      }
      out[k] = names;
    } else if (k == "rotation") {
      out[k] = in_range(v, what, ranges::kScanRotation, 180 / kPi, "rad");
    } else if (k == "camera_length") {
      out[k] = positive(v, what, 10, "m", "10 m: recorded only");
    } else if (k == "collection_angles") {
      if (!v.is_object()) throw_invalid_params(what + " must be an object {\"HAADF\": [inner, outer]} (rad)");
      json angles = base.at(k);
      for (const auto& [name, io] : v.items()) {
        const std::string c = canonical_detector(name);
        detector_locked(c, base);
        if (!io.is_array() || io.size() != 2) throw_invalid_params(what + "." + name + " must be [inner, outer] in rad");
        const double in = number(io[0], what), outer = number(io[1], what);
        if (!(in >= 0 && in < outer && outer <= 0.5)) throw_invalid_params(what + "." + name + " needs 0 <= inner < outer <= 0.5 rad");
        angles[c] = json::array({in, outer});
      }
      out[k] = angles;
    } else if (k == "binning") {
      out[k] = count(v, what, 1, 16);
    } else if (k == "save_to_disc") {
      out[k] = boolean(v, what);
    } else if (k == "energy_window") {
      if (!v.is_array() || v.size() != 2) throw_invalid_params(what + " must be [low, high] in eV");
      const double lo = number(v[0], what), hi = number(v[1], what);
      // No X-ray carries more than the beam energy: the session's energy range bounds the window.
      if (!(lo >= 0 && lo < hi && hi <= ranges::kEnergy.hi))
        throw_invalid_params(what + " needs 0 <= low < high <= " + format_quantity(ranges::kEnergy.hi, "eV") + " (got [" +
                             format_quantity(lo, "") + ", " + format_quantity(hi, "eV") + "])");
      out[k] = json::array({lo, hi});
    } else if (k == "energy_offset") {
      const double e = number(v, what);
      if (!(e >= -1000 && e <= 1e5)) throw_invalid_params(what + " = " + format_quantity(e, "eV") + " must lie in [-1000, 1e5] eV");
      out[k] = e;
    } else if (k == "dispersion") {
      out[k] = positive(v, what, 100, "eV", "100 eV per channel");
    } else if (k == "collection_angle") {
      out[k] = positive(v, what, 0.5, "rad", "0.5 rad");
    } else {
      throw_invalid_params("setting '" + k + "' cannot be changed");
    }
  }
  return out;
}

MicroscopeService::ScanConfig MicroscopeService::scan_config(const json& s) const {
  ScanConfig c;
  const json& size = s.at("size");
  c.nx = size.is_array() ? size[0].get<std::size_t>() : size.get<std::size_t>();
  c.ny = size.is_array() ? size[1].get<std::size_t>() : size.get<std::size_t>();
  c.dwell_s = s.at("exposure").get<double>();
  c.fov_x_m = s.at("field_of_view")[0].get<double>();
  c.fov_y_m = s.at("field_of_view")[1].get<double>();
  c.rotation_rad = s.at("rotation").get<double>();
  for (const json& n : s.at("detectors")) c.detectors.push_back(detector_locked(n.get<std::string>(), s));
  // Atomic resolution (every pixel a multislice) has its own, tighter bounds.
  const double pixel_A = std::max(c.fov_x_m / double(c.nx), c.fov_y_m / double(c.ny)) * kA_per_m;
  if (pixel_A <= incoherent_above_A_) {
    if (c.nx * c.ny > limits_.max_physics_pixels)
      throw_invalid_params("scan of " + std::to_string(c.nx) + " x " + std::to_string(c.ny) + " pixels at " + format_quantity(pixel_A, "Å") +
                           " per pixel (full multislice) exceeds the limit of " + std::to_string(limits_.max_physics_pixels) +
                           " pixels at atomic resolution (ServiceLimits::max_physics_pixels); pixels coarser than " +
                           format_quantity(incoherent_above_A_, "Å") + " use the fast incoherent model up to " +
                           std::to_string(limits_.max_scan_pixels) + " pixels");
    const double fov_A = std::max(c.fov_x_m, c.fov_y_m) * kA_per_m;
    if (fov_A > limits_.max_field_of_view_A)
      throw_invalid_params("field of view " + format_quantity(fov_A, "Å") + " at " + format_quantity(pixel_A, "Å") +
                           " per pixel (full multislice) exceeds the limit of " + format_quantity(limits_.max_field_of_view_A, "Å") +
                           " per side at atomic resolution (the server's field-of-view limit); use fewer pixels per field "
                           "(pixels coarser than " + format_quantity(incoherent_above_A_, "Å") + " use the incoherent model)");
  }
  return c;
}

std::vector<std::vector<float>> MicroscopeService::scan_frame(const ScanConfig& c, ScanResult* keep) {
  ScanSettings s = m_.scan_settings();
  s.fov_x_A = c.fov_x_m * kA_per_m;
  s.fov_y_A = c.fov_y_m * kA_per_m;
  s.nx = c.nx;
  s.ny = c.ny;
  s.rotation_deg = c.rotation_rad * 180 / kPi;
  s.dwell_us = c.dwell_s * 1e6;
  s.eds = s.eels = false;  // images only (spectra: the spectrometer devices)
  // Only the requested detectors are computed (settings and detectors set in one step with the scan).
  ScanResult r = m_.scan(s, std::vector<Detector>(c.detectors.begin(), c.detectors.end()), call_control());
  std::vector<std::vector<float>> out;
  for (const auto& d : c.detectors) out.push_back(to_float(r.images.at(d.name)));
  if (keep) *keep = std::move(r);
  return out;
}

Point2 MicroscopeService::field_position(double fx, double fy) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return field_position_locked(fx, fy);
}

Point2 MicroscopeService::field_position_locked(double fx, double fy) const {
  const ScanConfig c = scan_config(settings_.at("scan"));
  const double u = (fx - 0.5) * c.fov_x_m * kA_per_m, v = (fy - 0.5) * c.fov_y_m * kA_per_m;
  const double cs = std::cos(c.rotation_rad), sn = std::sin(c.rotation_rad);
  const StagePosition st = m_.stage();
  return {st.x_A + cs * u - sn * v, st.y_A + sn * u + cs * v};
}

std::vector<float> MicroscopeService::camera_frame(const json& s, Point2 p, std::size_t& h, std::size_t& w) {
  const double dwell_us = s.at("exposure").get<double>() * 1e6;
  // Only annular detectors in the session: probe_at then records the whole pattern.
  const ProbeResult r = m_.probe_at(p.x, p.y, dwell_us, call_control());
  const std::size_t b = s.at("binning").get<std::size_t>();
  const std::size_t bh = std::max<std::size_t>(1, r.pattern_ny / b), bw = std::max<std::size_t>(1, r.pattern_nx / b);
  std::vector<float> binned(bh * bw, 0.f);
  for (std::size_t y = 0; y < std::min(r.pattern_ny, bh * b); ++y)
    for (std::size_t x = 0; x < std::min(r.pattern_nx, bw * b); ++x)
      binned[(y / b) * bw + x / b] += r.pattern[y * r.pattern_nx + x];
  const std::size_t size = s.at("size").get<std::size_t>();
  if (size == 0) {
    h = bh, w = bw;
    return binned;
  }
  // Centre crop / zero pad to size × size (the zero frequency stays at the centre pixel).
  std::vector<float> out(size * size, 0.f);
  const long oy = static_cast<long>(bh / 2) - static_cast<long>(size / 2);
  const long ox = static_cast<long>(bw / 2) - static_cast<long>(size / 2);
  for (std::size_t y = 0; y < size; ++y)
    for (std::size_t x = 0; x < size; ++x) {
      const long sy = static_cast<long>(y) + oy, sx = static_cast<long>(x) + ox;
      if (sy >= 0 && sx >= 0 && sy < static_cast<long>(bh) && sx < static_cast<long>(bw))
        out[y * size + x] = binned[static_cast<std::size_t>(sy) * bw + static_cast<std::size_t>(sx)];
    }
  h = w = size;
  return out;
}

// ---- methods ----------------------------------------------------------------------------

void MicroscopeService::register_methods(RpcDispatcher& d) {
  register_devices(d);
  register_stage_and_beam(d);
  register_acquisitions(d);
  register_status(d);
  register_corrector(d);
  register_data_server(d);
  register_spectra(d);
  register_spectrum_images(d);
  register_native(d);
  register_native_control(d);
}

}  // namespace stemtwin
