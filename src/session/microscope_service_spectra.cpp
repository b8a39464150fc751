// MicroscopeService: spectra. DTMicroscope's `acquire_spectrum` / `acquire_spectrum_points`
// on the EDS device `super_x` (and the twin's EELS device `eels`), answered as the reference
// TEMServer answers them (a float32 array of the channels, sent as a plain JSON list; a list
// of those for points), and the STEM data server's spectrum-image verbs (`get_spectrum_image`,
// `get_spectrum_image_e_axis`, `get_point_data`) in its [list, shape, dtype] form. The
// physics is the session's (Microscope::spectra_at, ScanSettings::eds/eels). docs/server.md.
#include <algorithm>
#include <cmath>

#include "service_common.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/session/microscope_service.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

namespace {

bool is_spectrometer(const std::string& dev) { return dev == "super_x" || dev == "eels"; }

/// Which spectrometer a data-server channel key names: Channel_001 (the reference's default
/// spectrum image) and super_x/EDS are EDS; Channel_002 and eels/EELS are EELS.
std::string spectrometer_of_key(const json& v, const std::string& method) {
  if (v.is_null()) return "super_x";
  if (!v.is_string()) throw_invalid_params(method + ": spectrum_image_index must be a string (Channel_001 = EDS, Channel_002 = EELS)");
  const std::string k = upper(v.get<std::string>());
  if (k == "CHANNEL_001" || k == "SUPER_X" || k == "EDS") return "super_x";
  if (k == "CHANNEL_002" || k == "EELS") return "eels";
  throw_invalid_params(method + ": unknown spectrum_image_index '" + v.get<std::string>() +
                       "' (Channel_001 or super_x or EDS; Channel_002 or eels or EELS)");
}

json plain_list(const std::vector<double>& v, std::size_t first, std::size_t n) {
  json out = json::array();
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<float>(v[first + i]));  // float32, as the reference
  return out;
}

}  // namespace

Spectrometers MicroscopeService::spectrometers_for(const std::string& dev, const json& s) const {
  Spectrometers sp = m_.spectrometers();
  const std::size_t channels = s.at("size").get<std::size_t>();
  if (channels < 16) throw_invalid_params(dev + ".size = " + std::to_string(channels) + ": a spectrum needs at least 16 channels");
  if (dev == "super_x") {
    const double lo = s.at("energy_window")[0].get<double>(), hi = s.at("energy_window")[1].get<double>();
    sp.eds.energy_start_eV = lo;
    sp.eds.channel_width_eV = (hi - lo) / double(channels);
    sp.eds.channels = channels;
  } else {
    sp.eels.energy_start_eV = s.at("energy_offset").get<double>();
    sp.eels.channel_width_eV = s.at("dispersion").get<double>();
    sp.eels.channels = channels;
    sp.eels.collection_semiangle_mrad = s.at("collection_angle").get<double>() * 1e3;
  }
  return sp;
}

void MicroscopeService::register_spectra(RpcDispatcher& d) {
  // Settings for one call (validated), the spectrometers they describe, and where the beam is.
  struct Request {
    std::string dev;
    json settings;
    Spectrometers sp;
    bool clean = false;
  };
  auto request = [this](const Params& a, const json& rest) {
    Request r;
    r.dev = device_name(a.get("device"), a.method());
    if (!is_spectrometer(r.dev))
      throw_invalid_params(a.method() + ": device '" + r.dev + "' records no spectra (spectrometers: super_x (EDS), eels)");
    r.clean = a.has("clean") && boolean(a.get("clean"), "clean");
    r.settings = validated_settings(r.dev, settings_[r.dev], rest);
    r.sp = spectrometers_for(r.dev, r.settings);
    return r;
  };
  auto kind_of = [](const std::string& dev) { return dev == "eels" ? SpectrumKind::Eels : SpectrumKind::Eds; };
  auto run = [this, kind_of](const Request& r, const std::vector<Point2>& at) {
    const double dwell_us = r.settings.at("exposure").get<double>() * 1e6;
    try {
      return m_.spectra_at(at, dwell_us, kind_of(r.dev), r.sp, call_control());
    } catch (const std::invalid_argument& e) {
      throw_invalid_params(r.dev + ": " + e.what());
    }
  };

  d.add("acquire_spectrum", {"device"}, [this, request, run](const json& p) {
    json rest = json::object();
    Params a(p, "acquire_spectrum", {"device", "clean"}, &rest);
    Request r;
    Point2 at;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      r = request(a, rest);
      at = field_position_locked(beam_[0], beam_[1]);
    }
    const SpectrumResult s = run(r, {at});
    return plain_list(r.clean ? s.expected : s.counts, 0, s.channels);
  },
        "a spectrum at the beam position: list of `size` float32 counts (super_x EDS, eels EELS); clean=true: the ideal spectrum");

  d.add("acquire_spectrum_points", {"device", "points"}, [this, request, run](const json& p) {
    json rest = json::object();
    Params a(p, "acquire_spectrum_points", {"device", "points", "clean"}, &rest);
    Request r;
    std::vector<Point2> at;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const json& pts = a.get("points");
      if (!pts.is_array() || pts.empty() || pts.size() > limits_.max_points)
        throw_invalid_params("acquire_spectrum_points: points must be a list of 1 to " + std::to_string(limits_.max_points) +
                             " beam positions [x, y] (fractions of the field, 0..1)");
      for (const json& q : pts) {
        if (!q.is_array() || q.size() != 2) throw_invalid_params("acquire_spectrum_points: points must be a list of [x, y]");
        double f[2];
        for (int i = 0; i < 2; ++i)
          if (f[i] = number(q[std::size_t(i)], "points x/y"); f[i] < 0 || f[i] > 1)
            throw_invalid_params("acquire_spectrum_points: points x/y = " + format_quantity(f[i], "") +
                                 " is not a fraction of the field (0..1)");
        at.push_back(field_position_locked(f[0], f[1]));
      }
      r = request(a, rest);
    }
    const SpectrumResult s = run(r, at);
    json out = json::array();
    for (std::size_t i = 0; i < s.positions; ++i) out.push_back(plain_list(r.clean ? s.expected : s.counts, i * s.channels, s.channels));
    return out;
  },
        "spectra at beam positions (fractions of the field): a list of spectra, as acquire_spectrum");
}

void MicroscopeService::register_spectrum_images(RpcDispatcher& d) {
  // DTMicroscope's data server replays a recorded spectrum image; the twin records one on
  // demand over the scan field (size × size pixels) and keeps it for get_point_data.
  d.add("get_spectrum_image", {"spectrum_image_index"}, [this](const json& p) {
    Params a(p, "get_spectrum_image", {"spectrum_image_index", "size", "field_of_view", "exposure", "clean"});
    std::string dev;
    ScanSettings s = m_.scan_settings();
    Spectrometers sp;
    bool clean = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      dev = spectrometer_of_key(a.has("spectrum_image_index") ? a.get("spectrum_image_index") : json(), a.method());
      const json& scan = settings_.at("scan");
      const std::size_t n = a.has("size") ? count(a.get("size"), "get_spectrum_image.size", 1, 1u << 16) : 8;
      if (n * n > limits_.max_spectrum_pixels)
        throw_invalid_params("get_spectrum_image: " + std::to_string(n) + " x " + std::to_string(n) + " pixels exceed the limit of " +
                             std::to_string(limits_.max_spectrum_pixels) + " spectra per image (ServiceLimits::max_spectrum_pixels)");
      const double fov_m = a.has("field_of_view") ? number(a.get("field_of_view"), "get_spectrum_image.field_of_view")
                                                  : scan.at("field_of_view")[0].get<double>();
      if (!(fov_m > 0) || fov_m * kA_per_m > limits_.max_field_of_view_A)
        throw_invalid_params("get_spectrum_image: field_of_view = " + format_quantity(fov_m, "m") + " must be > 0 and at most " +
                             format_quantity(limits_.max_field_of_view_A / kA_per_m, "m") + " (" +
                             format_quantity(limits_.max_field_of_view_A, "Å") +
                             ", the server's field of view at atomic resolution: every spectrum is a multislice); "
                             "pass field_of_view or set the scan device's");
      const double dwell_s = a.has("exposure") ? positive(a.get("exposure"), "get_spectrum_image.exposure", limits_.max_dwell_s, "s",
                                                          "the server's dwell-per-pixel limit")
                                               : settings_.at(dev).at("exposure").get<double>();
      clean = a.has("clean") && boolean(a.get("clean"), "clean");
      sp = spectrometers_for(dev, settings_.at(dev));
      s.nx = s.ny = n;
      s.fov_x_A = s.fov_y_A = fov_m * kA_per_m;
      s.dwell_us = dwell_s * 1e6;
      s.rotation_deg = scan.at("rotation").get<double>() * 180 / kPi;
      s.eds = dev == "super_x";
      s.eels = dev == "eels";
    }
    std::vector<Detector> dets = {detector_for("HAADF")};
    ScanResult r;
    try {
      // The device's channels for this image only: the session's spectrometers are put back after.
      r = m_.scan(s, std::move(dets), sp, call_control());
    } catch (const std::invalid_argument& e) {
      throw_invalid_params(std::string("get_spectrum_image: ") + e.what());
    }
    const SpectrumResult& si = dev == "eels" ? *r.eels : *r.eds;
    // The reference's data server indexes a spectrum image [x][y][channel].
    const std::size_t n = s.nx, ch = si.channels;
    std::vector<float> xy(n * n * ch);
    const std::vector<double>& v = clean ? si.expected : si.counts;
    for (std::size_t iy = 0; iy < n; ++iy)
      for (std::size_t ix = 0; ix < n; ++ix)
        for (std::size_t c = 0; c < ch; ++c) xy[(ix * n + iy) * ch + c] = static_cast<float>(v[(iy * n + ix) * ch + c]);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      spectrum_images_[dev] = {xy, {n, n, ch}};
    }
    return list_array(xy, {n, n, ch});
  },
        "record a spectrum image over the scan field (size 8 by default): [nested list, [x, y, channels], \"float32\"]");

  d.add("get_spectrum_image_e_axis", {"spectrum_image_index"}, [this](const json& p) {
    Params a(p, "get_spectrum_image_e_axis", {"spectrum_image_index"});
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string dev = spectrometer_of_key(a.has("spectrum_image_index") ? a.get("spectrum_image_index") : json(), a.method());
    const Spectrometers sp = spectrometers_for(dev, settings_.at(dev));
    const bool eels = dev == "eels";
    const std::size_t ch = eels ? sp.eels.channels : sp.eds.channels;
    const double start = eels ? sp.eels.energy_start_eV : sp.eds.energy_start_eV, width = eels ? sp.eels.channel_width_eV : sp.eds.channel_width_eV;
    json axis = json::array();
    for (std::size_t c = 0; c < ch; ++c) axis.push_back(start + (double(c) + 0.5) * width);
    return json::array({axis, json::array({ch}), "float64"});
  },
        "energy of each channel's centre (eV) of the spectrometer's current settings: [list, [channels], \"float64\"]");

  d.add("get_point_data", {"spectrum_image_index", "x", "y"}, [this](const json& p) {
    Params a(p, "get_point_data", {"spectrum_image_index", "x", "y"});
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string dev = spectrometer_of_key(a.has("spectrum_image_index") ? a.get("spectrum_image_index") : json(), a.method());
    const auto it = spectrum_images_.find(dev);
    if (it == spectrum_images_.end())
      throw RpcError(rpc::kServerError, "get_point_data: no " + dev + " spectrum image recorded yet: call get_spectrum_image first");
    const auto& [data, shape] = it->second;
    const std::size_t x = count(a.get("x"), "get_point_data.x", 0, shape[0] - 1), y = count(a.get("y"), "get_point_data.y", 0, shape[1] - 1);
    const std::size_t ch = shape[2];
    return list_array(std::vector<float>(data.begin() + long((x * shape[1] + y) * ch), data.begin() + long((x * shape[1] + y + 1) * ch)), {ch});
  },
        "the spectrum at pixel [x][y] of the last get_spectrum_image: [list, [channels], \"float32\"]");
}

}  // namespace stemtwin
