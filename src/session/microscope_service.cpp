#include "stemtwin/session/microscope_service.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include "stemtwin/acquisition/ranges.hpp"

namespace stemtwin {

using nlohmann::json;

namespace {

constexpr double kA_per_m = 1e10;
constexpr double kNominalVacuum_Pa = 1e-5;  // the twin has no vacuum model: a constant, documented
const std::vector<std::string> kDevices = {"flu_camera", "ceta_camera", "scan", "super_x"};

static_assert(std::endian::native == std::endian::little, "binary arrays are sent little-endian");

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// ---- parameter checking ---------------------------------------------------------------

/// Named parameters of one call: rejects keys not in `allowed` (unless `rest` collects them).
class Params {
 public:
  Params(const json& p, std::string method, std::vector<std::string> allowed, json* rest = nullptr)
      : p_(p), method_(std::move(method)) {
    for (const auto& [k, v] : p.items()) {
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      if (rest) {
        (*rest)[k] = v;
        continue;
      }
      throw_invalid_params(method_ + ": unknown parameter '" + k + "'" +
                           (allowed.empty() ? " (it takes none)" : " (expected: " + join(allowed) + ")"));
    }
  }
  bool has(const std::string& k) const { return p_.contains(k) && !p_[k].is_null(); }
  const json& get(const std::string& k) const {
    if (!has(k)) throw_invalid_params(method_ + ": missing parameter '" + k + "'");
    return p_[k];
  }
  const std::string& method() const { return method_; }

 private:
  const json& p_;
  std::string method_;
};

double number(const json& v, const std::string& what) {
  if (!v.is_number()) throw_invalid_params(what + " must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw_invalid_params(what + " must be finite");
  return d;
}

/// A number in (0, max], in `unit`; the message names the value, the limit and where the limit comes from.
double positive(const json& v, const std::string& what, double max, const char* unit, const std::string& limit_name) {
  const double d = number(v, what);
  if (!(d > 0)) throw_invalid_params(what + " must be > 0 " + unit);
  if (d > max)
    throw_invalid_params(what + " = " + format_quantity(d, unit) + " exceeds the limit of " + format_quantity(max, unit) +
                         " (" + limit_name + ")");
  return d;
}

/// A number inside a session range (ranges.hpp) given in the client's units: `scale` converts
/// the client's value to the range's unit, so the physical rule stays in one place.
double in_range(const json& v, const std::string& what, const Range& r, double scale, const char* unit) {
  const double d = number(v, what);
  if (!r.contains(d * scale))
    throw_invalid_params(what + " = " + format_quantity(d, unit) + " is outside " + format_quantity(r.lo / scale, "") + " … " +
                         format_quantity(r.hi / scale, unit) + " (" + r.why + ")");
  return d;
}

std::size_t count(const json& v, const std::string& what, std::size_t lo, std::size_t hi) {
  const double d = number(v, what);
  if (d != std::floor(d)) throw_invalid_params(what + " must be an integer");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw_invalid_params(what + " must be in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<std::size_t>(d);
}

bool boolean(const json& v, const std::string& what) {
  if (!v.is_boolean()) throw_invalid_params(what + " must be true or false");
  return v.get<bool>();
}

/// A number or a two-element list → (first, second).
std::array<json, 2> pair_of(const json& v, const std::string& what) {
  if (v.is_array()) {
    if (v.size() != 2) throw_invalid_params(what + " must be a number or a list of two numbers");
    return {v[0], v[1]};
  }
  return {v, v};
}

// ---- arrays -----------------------------------------------------------------------------

/// The double nearest to the shortest decimal that reads back as `f`, so that JSON carries
/// ~9 significant digits instead of 17 and numpy's float32 gets exactly `f` back.
double shortest(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

json nested(const float* data, const std::vector<std::size_t>& shape, std::size_t dim) {
  json a = json::array();
  if (dim + 1 == shape.size()) {
    auto& v = a.get_ref<json::array_t&>();
    v.reserve(shape[dim]);
    for (std::size_t i = 0; i < shape[dim]; ++i) v.emplace_back(shortest(data[i]));
    return a;
  }
  std::size_t stride = 1;
  for (std::size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
  for (std::size_t i = 0; i < shape[dim]; ++i) a.push_back(nested(data + i * stride, shape, dim + 1));
  return a;
}

std::string base64(const void* bytes, std::size_t n) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* b = static_cast<const unsigned char*>(bytes);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const unsigned v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == n) {
    const unsigned v = b[i] << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == n) {
    const unsigned v = (b[i] << 16) | (b[i + 1] << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

/// DTMicroscope's serialised numpy array: [nested list, shape, dtype].
json list_array(const std::vector<float>& data, const std::vector<std::size_t>& shape) {
  return json::array({nested(data.data(), shape, 0), shape, "float32"});
}

/// Binary form: {"__ndarray_b64__": base64 of little-endian float32, "shape", "dtype"}.
json binary_array(const std::vector<float>& data, const std::vector<std::size_t>& shape) {
  return json{{"__ndarray_b64__", base64(data.data(), data.size() * sizeof(float))}, {"shape", shape}, {"dtype", "float32"}};
}

std::vector<float> to_float(const Image& im) {
  std::vector<float> v(im.data.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(im.data[i]);
  return v;
}

std::string encoding_of(const json& v) {
  if (!v.is_string() || (v != "list" && v != "base64")) throw_invalid_params("encoding must be \"list\" or \"base64\"");
  return v.get<std::string>();
}

json aberrations_json(const Aberrations& a, double length_scale) {
  json out = json::object();
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const auto& o = Aberrations::kOrders[i];
    const std::string nm = std::to_string(o[0]) + std::to_string(o[1]);
    out["C" + nm] = a.C[i] * length_scale;
    if (o[1] != 0) out["phi" + nm] = a.phi[i];
  }
  return out;
}

}  // namespace

// ---- construction ---------------------------------------------------------------------

MicroscopeService::MicroscopeService(Microscope& microscope, ServiceLimits limits) : m_(microscope), limits_(limits) {
  for (const Detector& d : m_.detectors())
    if (const auto* a = std::get_if<AnnularDetector>(&d)) detector_table_[upper(a->name)] = *a;
  // The Microscope's own defaults, for names its current list lacks.
  const std::vector<AnnularDetector> fallback = {AnnularDetector{"HAADF", 70, 160, std::nullopt},
                                                 AnnularDetector{"ADF", 30, 70, std::nullopt},
                                                 AnnularDetector{"ABF", 10, 20, std::nullopt},
                                                 AnnularDetector{"BF", 0, 10, std::nullopt}};
  for (const auto& a : fallback) detector_table_.emplace(a.name, a);
  for (auto& [name, a] : detector_table_) a.name = name;

  const ScanSettings& s = m_.scan_settings();
  json size = s.nx == s.ny ? json(s.nx) : json::array({s.nx, s.ny});
  settings_["scan"] = json{{"size", size},
                       {"exposure", s.dwell_us * 1e-6},
                       {"field_of_view", json::array({s.fov_x_A / kA_per_m, s.fov_y_A / kA_per_m})},
                       {"detectors", json::array({"HAADF"})},
                       {"rotation", s.rotation_deg * kPi / 180},
                       {"camera_length", 0.091},
                       {"collection_angles", json::object()}};
  settings_["ceta_camera"] = json{{"size", 0}, {"exposure", 1e-3}, {"binning", 1}};
  settings_["flu_camera"] = json{{"size", 0}, {"exposure", 1e-3}, {"binning", 2}, {"save_to_disc", false}};
  settings_["super_x"] = json{{"size", 2048}, {"exposure", 0.1}, {"binning", 2}, {"energy_window", json::array({0, 20000})}};
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
  if (!settings_.count(d)) throw_invalid_params(method + ": unknown device '" + d + "' (devices: " + join(kDevices) + ")");
  return d;
}

json MicroscopeService::validated_settings(const std::string& device, const json& base, const json& changes) const {
  // Fields of view arrive in metres and the limit is set in Å: the message gives both.
  auto field_of_view_m = [this](const json& x, const std::string& what) {
    const double d = number(x, what), lim_A = limits_.max_field_of_view_A;
    if (!(d > 0)) throw_invalid_params(what + " must be > 0 m");
    if (d * kA_per_m > lim_A)
      throw_invalid_params(what + " = " + format_quantity(d, "m") + " (" + format_quantity(d * kA_per_m, "Å") +
                           ") exceeds the limit of " + format_quantity(lim_A / kA_per_m, "m") + " (" +
                           format_quantity(lim_A, "Å") + ", the server's field-of-view limit)");
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
  return c;
}

void MicroscopeService::apply_scan(const ScanConfig& c) {
  ScanSettings s = m_.scan_settings();
  s.fov_x_A = c.fov_x_m * kA_per_m;
  s.fov_y_A = c.fov_y_m * kA_per_m;
  s.nx = c.nx;
  s.ny = c.ny;
  s.rotation_deg = c.rotation_rad * 180 / kPi;
  s.dwell_us = c.dwell_s * 1e6;
  m_.set_scan(s);
  // Only the requested detectors are computed; keep the session's list when it matches.
  bool same = m_.detectors().size() == c.detectors.size();
  for (std::size_t i = 0; same && i < c.detectors.size(); ++i) {
    const auto* a = std::get_if<AnnularDetector>(&m_.detectors()[i]);
    same = a && a->name == c.detectors[i].name && a->inner_mrad == c.detectors[i].inner_mrad &&
           a->outer_mrad == c.detectors[i].outer_mrad && !a->azimuth_deg;
  }
  if (!same) m_.set_detectors(std::vector<Detector>(c.detectors.begin(), c.detectors.end()));
}

std::vector<std::vector<float>> MicroscopeService::scan_frame(const ScanConfig& c, ScanResult* keep) {
  apply_scan(c);
  ScanResult r = m_.scan();
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
  const StagePosition& st = m_.stage();
  return {st.x_A + cs * u - sn * v, st.y_A + sn * u + cs * v};
}

std::vector<float> MicroscopeService::camera_frame(const json& s, std::size_t& h, std::size_t& w) {
  const Point2 p = field_position_locked(beam_[0], beam_[1]);
  const double dwell_us = s.at("exposure").get<double>() * 1e6;
  // Only annular detectors in the session: probe_at then records the whole pattern.
  const ProbeResult r = m_.probe_at(p.x, p.y, dwell_us);
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
  auto locked = [this](auto fn) {
    return [this, fn](const json& p) -> json {
      std::lock_guard<std::mutex> lock(mutex_);
      return fn(p);
    };
  };
  auto stage_si = [this] {
    const StagePosition& s = m_.stage();
    return json::array({s.x_A / kA_per_m, s.y_A / kA_per_m, s.z_A / kA_per_m, s.alpha_rad, s.beta_rad});
  };
  auto no_spectroscopy = [](const std::string& device, const std::string& method) {
    if (device != "super_x") throw_invalid_params(method + ": device '" + device + "' records no spectra (spectra: super_x)");
    throw RpcError(rpc::kServerError, method + ": spectroscopy (EDS, super_x) is not simulated by stemtwin yet");
  };

  // --- DTMicroscope-compatible ---------------------------------------------------------
  d.add("get_detectors", {}, locked([](const json& p) {
          Params(p, "get_detectors", {});
          return json(kDevices);
        }),
        "devices: flu_camera, ceta_camera, scan, super_x");

  d.add("activate_device", {"device"}, locked([this](const json& p) {
          Params a(p, "activate_device", {"device"});
          device_name(a.get("device"), a.method());
          return json(1);
        }),
        "check a device name (1)");

  d.add("device_settings", {"device"}, locked([this](const json& p) {
          json rest = json::object();
          Params a(p, "device_settings", {"device"}, &rest);
          const std::string dev = device_name(a.get("device"), a.method());
          settings_[dev] = validated_settings(dev, settings_[dev], rest);
          return json(1);
        }),
        "change a device's settings (keyword arguments; 1)");

  auto get_settings = locked([this](const json& p) {
    Params a(p, "get_device_settings", {"device"});
    return settings_.at(device_name(a.get("device"), a.method()));
  });
  d.add("get_device_settings", {"device"}, get_settings, "a device's settings");
  d.add("get_detector_settings", {"device"}, get_settings, "alias of get_device_settings");

  d.add("get_stage", {}, locked([stage_si](const json& p) {
          Params(p, "get_stage", {});
          return stage_si();
        }),
        "[x, y, z (m), a, b (rad)]");

  d.add("set_stage", {"stage_positions", "relative"}, locked([this, stage_si](const json& p) {
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
          // The session checks the resulting position against the stage's travel (ranges.hpp).
          StagePosition s = m_.stage();
          double* fields[5] = {&s.x_A, &s.y_A, &s.z_A, &s.alpha_rad, &s.beta_rad};
          for (std::size_t i = 0; i < 5; ++i) {
            if (!v[i]) continue;
            const double value = i < 3 ? *v[i] * kA_per_m : *v[i];
            *fields[i] = relative ? *fields[i] + value : value;
          }
          m_.move_stage(s);
          return json{{"new_stage", stage_si()}};
        }),
        "move the stage (m, rad; relative by default)");

  d.add("acquire_image", {"device"}, locked([this](const json& p) {
          json rest = json::object();
          Params a(p, "acquire_image", {"device", "encoding"}, &rest);
          const std::string dev = device_name(a.get("device"), a.method());
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "list";
          const json s = validated_settings(dev, settings_[dev], rest);
          std::vector<float> data;
          std::vector<std::size_t> shape;
          if (dev == "scan") {
            const ScanConfig c = scan_config(s);
            auto frames = scan_frame(c);
            shape = {c.ny, c.nx};
            if (frames.size() > 1) shape.insert(shape.begin(), frames.size());
            for (auto& f : frames) data.insert(data.end(), f.begin(), f.end());
          } else if (dev == "super_x") {
            throw RpcError(rpc::kServerError, "acquire_image: super_x is a spectrometer; spectroscopy is not simulated by stemtwin yet");
          } else {
            std::size_t h = 0, w = 0;
            data = camera_frame(s, h, w);
            shape = {h, w};
          }
          return enc == "base64" ? binary_array(data, shape) : list_array(data, shape);
        }),
        "[data, shape, \"float32\"] from scan (per detector) or a camera");

  d.add("acquire_image_stack", {"device", "frames"}, locked([this](const json& p) {
          json rest = json::object();
          Params a(p, "acquire_image_stack", {"device", "frames", "encoding"}, &rest);
          const std::string dev = device_name(a.get("device"), a.method());
          const std::size_t n = a.has("frames") ? count(a.get("frames"), "frames", 1, limits_.max_frames) : 1;
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "list";
          const json s = validated_settings(dev, settings_[dev], rest);
          std::vector<float> data;
          std::vector<std::size_t> shape;
          if (dev == "super_x")
            throw RpcError(rpc::kServerError, "acquire_image_stack: spectroscopy (super_x) is not simulated by stemtwin yet");
          for (std::size_t f = 0; f < n; ++f) {
            if (dev == "scan") {
              const ScanConfig c = scan_config(s);
              auto frames = scan_frame(c);
              shape = {n, c.ny, c.nx};
              if (frames.size() > 1) shape.insert(shape.begin() + 1, frames.size());
              for (auto& fr : frames) data.insert(data.end(), fr.begin(), fr.end());
            } else {
              std::size_t h = 0, w = 0;
              auto fr = camera_frame(s, h, w);
              shape = {n, h, w};
              data.insert(data.end(), fr.begin(), fr.end());
            }
          }
          return enc == "base64" ? binary_array(data, shape) : list_array(data, shape);
        }),
        "frames consecutive acquisitions, [data, shape, dtype] with shape [frames, ...]");

  d.add("acquire_spectrum", {"device"}, locked([this, no_spectroscopy](const json& p) -> json {
          json rest = json::object();
          Params a(p, "acquire_spectrum", {"device"}, &rest);
          const std::string dev = device_name(a.get("device"), a.method());
          if (dev == "super_x") validated_settings(dev, settings_[dev], rest);  // bad settings are named first
          no_spectroscopy(dev, a.method());
          return nullptr;
        }),
        "super_x: -32000 until spectroscopy exists");

  d.add("acquire_spectrum_points", {"device", "points"}, locked([this, no_spectroscopy](const json& p) -> json {
          json rest = json::object();
          Params a(p, "acquire_spectrum_points", {"device", "points"}, &rest);
          const std::string dev = device_name(a.get("device"), a.method());
          const json& pts = a.get("points");
          if (!pts.is_array() || pts.empty() || pts.size() > limits_.max_points)
            throw_invalid_params("acquire_spectrum_points: points must be a list of 1 to " + std::to_string(limits_.max_points) +
                                 " beam positions [x, y] (fractions of the field, 0..1)");
          for (const json& q : pts) {
            if (!q.is_array() || q.size() != 2) throw_invalid_params("acquire_spectrum_points: points must be a list of [x, y]");
            for (const json& f : q)
              if (const double v = number(f, "points x/y"); v < 0 || v > 1)
                throw_invalid_params("acquire_spectrum_points: points x/y = " + format_quantity(v, "") +
                                     " is not a fraction of the field (0..1)");
          }
          if (dev == "super_x") validated_settings(dev, settings_[dev], rest);
          no_spectroscopy(dev, a.method());
          return nullptr;
        }),
        "super_x: -32000 until spectroscopy exists");

  d.add("set_beam_position", {"x", "y"}, locked([this](const json& p) {
          Params a(p, "set_beam_position", {"x", "y"});
          auto fraction = [&a](const char* k) {
            const double v = number(a.get(k), k);
            if (v < 0 || v > 1)
              throw_invalid_params(std::string("set_beam_position: ") + k + " = " + format_quantity(v, "") +
                                   " is not a fraction of the field of view (0..1)");
            return v;
          };
          const double x = fraction("x"), y = fraction("y");
          beam_ = {x, y};
          return json(1);
        }),
        "park the beam at (x, y), fractions of the scan field (0..1)");

  d.add("get_beam_position", {}, locked([this](const json& p) {
          Params(p, "get_beam_position", {});
          return json::array({beam_[0], beam_[1]});
        }),
        "[x, y], fractions of the scan field");

  d.add("get_vacuum", {}, locked([](const json& p) {
          Params(p, "get_vacuum", {});
          return json(kNominalVacuum_Pa);
        }),
        "nominal column vacuum, Pa (constant: not modelled)");

  d.add("get_microscope_status", {"parameters"}, locked([this, stage_si](const json& p) {
          Params a(p, "get_microscope_status", {"parameters"});
          const MicroscopeStatus st = m_.status();
          const DoseMap dm = m_.dose_map(1.0);
          double max_dose = 0;
          for (double v : dm.dose_e_per_A2.data) max_dose = std::max(max_dose, v);
          const double area = st.specimen_cell.x * st.specimen_cell.y;
          json all = {{"status", "Idle"},
                      {"vacuum", kNominalVacuum_Pa},
                      {"column_valve", "Open"},
                      {"stage_position", stage_si()},
                      {"beam_position", json::array({beam_[0], beam_[1]})},
                      {"beam_current", st.optics.current_pA * 1e-12},
                      {"high_tension", st.optics.probe.energy_eV},
                      {"convergence_angle", st.optics.probe.semiangle_mrad * 1e-3},
                      {"defocus", st.optics.probe.aberrations.get("defocus") / kA_per_m},
                      {"acquisitions", st.calls},
                      {"total_electrons", st.total_electrons},
                      {"mean_dose", area > 0 ? st.total_electrons / area : 0.0},
                      {"max_dose", max_dose},
                      {"atoms_removed", st.atoms_removed},
                      {"atoms_displaced", st.atoms_displaced}};
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
        }),
        "state and dose (SI units; dose in e/Å²)");

  d.add("aberration_correction", {"order"}, locked([this](const json& p) {
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
            std::string name = "C";
            name += std::to_string(n[0]);
            name += std::to_string(n[1]);
            corrected.push_back(name);
          }
          m_.set_optics(o);
          return json{{"order", order}, {"corrected", corrected}, {"aberrations", aberrations_json(o.probe.aberrations, 1 / kA_per_m)}};
        }),
        "zero the aberrations up to an order (C in m, phi in rad)");

  d.add("close", {}, [](const json& p) {
    Params(p, "close", {});
    return json(1);
  },
        "no-op (1): the server keeps running");

  // --- native ----------------------------------------------------------------------------
  d.add("stemtwin.methods", {}, [&d](const json& p) {
    Params(p, "stemtwin.methods", {});
    json out = json::array();
    for (const auto& [name, summary] : d.methods()) out.push_back({name, summary});
    return out;
  },
        "[[method, summary], ...]");

  d.add("stemtwin.status", {}, locked([this](const json& p) {
          Params(p, "stemtwin.status", {});
          const MicroscopeStatus st = m_.status();
          const ProbeOptics& po = st.optics.probe;
          json dets = json::array();
          for (const Detector& det : m_.detectors()) {
            json j = {{"name", detector_name(det)}};
            if (const auto* an = std::get_if<AnnularDetector>(&det)) j["inner_mrad"] = an->inner_mrad, j["outer_mrad"] = an->outer_mrad;
            dets.push_back(j);
          }
          const Point2 beam = field_position_locked(beam_[0], beam_[1]);
          return json{{"stage", {{"x_A", st.stage.x_A}, {"y_A", st.stage.y_A}, {"z_A", st.stage.z_A},
                                 {"alpha_rad", st.stage.alpha_rad}, {"beta_rad", st.stage.beta_rad}}},
                      {"optics", {{"energy_eV", po.energy_eV}, {"convergence_mrad", po.semiangle_mrad},
                                  {"current_pA", st.optics.current_pA}, {"defocus_A", po.aberrations.get("defocus")},
                                  {"focal_spread_A", po.focal_spread_A}, {"source_size_A", po.source_size_A},
                                  {"aberrations_A_rad", aberrations_json(po.aberrations, 1.0)}}},
                      {"scan", {{"fov_x_A", st.scan.fov_x_A}, {"fov_y_A", st.scan.fov_y_A}, {"nx", st.scan.nx},
                                {"ny", st.scan.ny}, {"rotation_deg", st.scan.rotation_deg}, {"dwell_us", st.scan.dwell_us}}},
                      {"detectors", dets},
                      {"beam_position", {{"fraction", json::array({beam_[0], beam_[1]})}, {"x_A", beam.x}, {"y_A", beam.y}}},
                      {"total_electrons", st.total_electrons},
                      {"calls", st.calls},
                      {"atoms", st.atoms},
                      {"cell_A", json::array({st.specimen_cell.x, st.specimen_cell.y, st.specimen_cell.z})},
                      {"cache", {{"windows", st.cached_windows}, {"hits", st.cache_hits}, {"misses", st.cache_misses}}},
                      {"atoms_removed", st.atoms_removed},
                      {"atoms_displaced", st.atoms_displaced}};
        }),
        "session state in native units (Å, mrad, pA, µs)");

  d.add("stemtwin.scan", {}, locked([this](const json& p) {
          Params a(p, "stemtwin.scan", {"fov_x_A", "fov_y_A", "nx", "ny", "rotation_deg", "dwell_us", "detectors", "clean", "encoding"});
          json change = json::object();
          const json& cur = settings_.at("scan");
          const json& size = cur.at("size");
          // nx, ny are named in their own errors; the pixel limit is checked with the size below.
          const json nx = a.has("nx") ? json(count(a.get("nx"), "nx", 1, 1u << 16)) : (size.is_array() ? size[0] : size);
          const json ny = a.has("ny") ? json(count(a.get("ny"), "ny", 1, 1u << 16)) : (size.is_array() ? size[1] : size);
          if (a.has("nx") || a.has("ny")) change["size"] = json::array({nx, ny});
          if (a.has("fov_x_A") || a.has("fov_y_A")) {
            json fov = cur.at("field_of_view");
            const double lim = limits_.max_field_of_view_A;
            const char* why = "the server's field-of-view limit";
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
        }),
        "one frame, images as base64 float32 (native units; settings of device scan unless given)");

  d.add("stemtwin.probe", {"x_A", "y_A", "dwell_us"}, locked([this](const json& p) {
          Params a(p, "stemtwin.probe", {"x_A", "y_A", "dwell_us", "encoding"});
          Point2 pos = field_position_locked(beam_[0], beam_[1]);
          if (a.has("x_A")) pos.x = number(a.get("x_A"), "x_A");
          if (a.has("y_A")) pos.y = number(a.get("y_A"), "y_A");
          const double dwell_us = a.has("dwell_us") ? positive(a.get("dwell_us"), "dwell_us", limits_.max_exposure_s * 1e6, "µs", "the server's exposure limit")
                                                    : settings_.at("ceta_camera").at("exposure").get<double>() * 1e6;
          const std::string enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "base64";
          const ProbeResult r = m_.probe_at(pos.x, pos.y, dwell_us);
          const std::vector<std::size_t> shape = {r.pattern_ny, r.pattern_nx};
          return json{{"pattern", enc == "base64" ? binary_array(r.pattern, shape) : list_array(r.pattern, shape)},
                      {"pattern_pixel_mrad", json::array({r.pattern_pixel_mrad_x, r.pattern_pixel_mrad_y})},
                      {"signals", r.signals},
                      {"electrons", r.electrons},
                      {"position_A", json::array({r.position_A.x, r.position_A.y})},
                      {"call", r.call}};
        }),
        "park the probe (Å, default the beam position): pattern (base64 float32) and detector signals");

  d.add("stemtwin.probe_points", {"points_A", "dwell_us"}, locked([this](const json& p) {
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
          const std::vector<ProbeResult> r = m_.scan_points(points, dwell_us);
          std::map<std::string, std::vector<float>> sig;
          for (const ProbeResult& q : r)
            for (const auto& [k, v] : q.signals) sig[k].push_back(static_cast<float>(v));
          json signals = json::object();
          for (const auto& [k, v] : sig) signals[k] = binary_array(v, {v.size()});
          return json{{"signals", signals}, {"electrons_per_point", r.front().electrons}, {"call", r.front().call}};
        }),
        "detector signals at a list of positions (Å), base64 float32 per detector");

  d.add("stemtwin.dose_map", {"pixel_A"}, locked([this](const json& p) {
          Params a(p, "stemtwin.dose_map", {"pixel_A"});
          const double px = a.has("pixel_A") ? positive(a.get("pixel_A"), "pixel_A", 1e4, "Å", "1 µm") : 1.0;
          const Cell& c = m_.specimen().structure.cell;
          if ((c.x / px) * (c.y / px) > 4.2e6) throw_invalid_params("stemtwin.dose_map: more than 2048 x 2048 pixels; use a larger pixel_A");
          const DoseMap dm = m_.dose_map(px);
          return json{{"dose_e_per_A2", binary_array(to_float(dm.dose_e_per_A2), {dm.dose_e_per_A2.ny, dm.dose_e_per_A2.nx})},
                      {"pixel_A", dm.pixel_A},
                      {"total_electrons", dm.total_electrons}};
        }),
        "dose delivered over the specimen cell, e/Å² (base64 float32 [ny, nx])");

  d.add("stemtwin.set_optics", {}, locked([this](const json& p) {
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
        }),
        "change optics (native units); returns the optics");

  d.add("stemtwin.move_stage", {}, locked([this](const json& p) {
          Params a(p, "stemtwin.move_stage", {"x_A", "y_A", "z_A", "alpha_rad", "beta_rad", "relative"});
          const bool rel = a.has("relative") ? boolean(a.get("relative"), "relative") : false;
          StagePosition s = m_.stage();
          auto upd = [&](const char* k, double& field) {
            if (a.has(k)) field = (rel ? field : 0.0) + number(a.get(k), k);
          };
          upd("x_A", s.x_A), upd("y_A", s.y_A), upd("z_A", s.z_A), upd("alpha_rad", s.alpha_rad), upd("beta_rad", s.beta_rad);
          m_.move_stage(s);
          const StagePosition& n = m_.stage();
          return json{{"x_A", n.x_A}, {"y_A", n.y_A}, {"z_A", n.z_A}, {"alpha_rad", n.alpha_rad}, {"beta_rad", n.beta_rad}};
        }),
        "move the stage in Å / rad (absolute unless relative)");
}

}  // namespace stemtwin
