// MicroscopeService: acquisitions (DTMicroscope's acquire_* verbs) and the verbs of
// DTMicroscope's STEM data server (server_stem.py). Every handler reads the service's
// settings under its mutex, lets it go, and only then runs physics; the Microscope
// serialises acquisitions and stops one whose client has gone (docs/server.md).
#include <algorithm>

#include "service_common.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/session/microscope_service.hpp"

namespace stemtwin {

using nlohmann::json;
using namespace service;

namespace {

[[noreturn]] void no_spectroscopy(const std::string& device, const std::string& method) {
  if (device != "super_x") throw_invalid_params(method + ": device '" + device + "' records no spectra (spectra: super_x)");
  throw RpcError(rpc::kServerError, method + ": not available yet — spectroscopy (EDS, super_x) is not simulated by stemtwin yet");
}

/// Frames of one device acquisition, concatenated, with their shape.
struct Frames {
  std::vector<float> data;
  std::vector<std::size_t> shape;
};

}  // namespace

void MicroscopeService::register_acquisitions(RpcDispatcher& d) {
  // One acquisition of `dev` with settings `s` (validated), `n` frames; frames = 0 means a
  // single frame without the leading axis. Runs physics: no service lock held.
  auto acquire = [this](const std::string& dev, const json& s, std::size_t n, const ScanConfig* scan, Point2 beam_at) {
    Frames out;
    const bool stack = n > 0;
    for (std::size_t f = 0; f < std::max<std::size_t>(1, n); ++f) {
      if (scan) {
        auto frames = scan_frame(*scan);
        out.shape = {scan->ny, scan->nx};
        if (frames.size() > 1) out.shape.insert(out.shape.begin(), frames.size());
        for (auto& fr : frames) out.data.insert(out.data.end(), fr.begin(), fr.end());
      } else {
        std::size_t h = 0, w = 0;
        auto fr = camera_frame(s, beam_at, h, w);
        out.shape = {h, w};
        out.data.insert(out.data.end(), fr.begin(), fr.end());
      }
    }
    if (stack) out.shape.insert(out.shape.begin(), n);
    return out;
  };

  d.add("acquire_image", {"device"}, [this, acquire](const json& p) {
    json rest = json::object();
    Params a(p, "acquire_image", {"device", "encoding"}, &rest);
    json s;
    std::optional<ScanConfig> scan;
    Point2 beam_at;
    std::string dev, enc;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      dev = device_name(a.get("device"), a.method());
      enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "list";
      s = validated_settings(dev, settings_[dev], rest);
      if (dev == "super_x")
        throw RpcError(rpc::kServerError, "acquire_image: super_x is a spectrometer; spectroscopy is not simulated by stemtwin yet");
      if (dev == "scan") scan = scan_config(s);
      beam_at = field_position_locked(beam_[0], beam_[1]);
    }
    const Frames f = acquire(dev, s, 0, scan ? &*scan : nullptr, beam_at);
    return encode_array(f.data, f.shape, enc);
  },
        "[data, shape, \"float32\"] from scan (per detector) or a camera");

  d.add("acquire_image_stack", {"device", "frames"}, [this, acquire](const json& p) {
    json rest = json::object();
    Params a(p, "acquire_image_stack", {"device", "frames", "encoding"}, &rest);
    json s;
    std::optional<ScanConfig> scan;
    Point2 beam_at;
    std::string dev, enc;
    std::size_t n = 1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      dev = device_name(a.get("device"), a.method());
      n = a.has("frames") ? count(a.get("frames"), "frames", 1, limits_.max_frames) : 1;
      enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "list";
      s = validated_settings(dev, settings_[dev], rest);
      if (dev == "super_x")
        throw RpcError(rpc::kServerError, "acquire_image_stack: spectroscopy (super_x) is not simulated by stemtwin yet");
      if (dev == "scan") scan = scan_config(s);
      beam_at = field_position_locked(beam_[0], beam_[1]);
    }
    const Frames f = acquire(dev, s, n, scan ? &*scan : nullptr, beam_at);
    // The reference server answers with the device's dictionary: its settings and "data".
    json out = s;
    if (enc == "base64") {
      out["data"] = binary_array(f.data, f.shape);
    } else {
      const json l = list_array(f.data, f.shape);
      out["data"] = l[0];
    }
    out["shape"] = f.shape;
    out["dtype"] = "float32";
    out["frames"] = n;
    return out;
  },
        "the device's settings with \"data\" (frames × image, nested list), \"shape\", \"dtype\" — as the reference");

  d.add("acquire_spectrum", {"device"}, [this](const json& p) -> json {
    json rest = json::object();
    Params a(p, "acquire_spectrum", {"device"}, &rest);
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string dev = device_name(a.get("device"), a.method());
    if (dev == "super_x") validated_settings(dev, settings_[dev], rest);  // bad settings are named first
    no_spectroscopy(dev, a.method());
  },
        "super_x: -32000 until spectroscopy exists");

  d.add("acquire_spectrum_points", {"device", "points"}, [this](const json& p) -> json {
    json rest = json::object();
    Params a(p, "acquire_spectrum_points", {"device", "points"}, &rest);
    std::lock_guard<std::mutex> lock(mutex_);
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
  },
        "super_x: -32000 until spectroscopy exists");
}

void MicroscopeService::register_data_server(RpcDispatcher& d) {
  // DTMicroscope's STEM data server (server_stem.py) serves a recorded dataset; the twin
  // records its overview on demand: an image at the current stage through the scan device's
  // read-out, over the reference defaults (512 pixels, 1 µm) unless given.
  d.add("get_overview_image", {"channel_key"}, [this](const json& p) {
    Params a(p, "get_overview_image", {"channel_key", "size", "field_of_view", "encoding"});
    ScanConfig c;
    std::string enc;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      json change = {{"size", 512}, {"field_of_view", 1e-6}};
      if (a.has("size")) change["size"] = a.get("size");
      if (a.has("field_of_view")) change["field_of_view"] = a.get("field_of_view");
      // Channel_000 (the data server's first channel) is HAADF; a detector name picks that detector.
      std::string channel = "HAADF";
      if (a.has("channel_key")) {
        if (!a.get("channel_key").is_string()) throw_invalid_params("get_overview_image: channel_key must be a string");
        channel = a.get("channel_key").get<std::string>();
        if (channel == "Channel_000") channel = "HAADF";
      }
      change["detectors"] = json::array({channel});
      enc = a.has("encoding") ? encoding_of(a.get("encoding")) : "list";
      c = scan_config(validated_settings("scan", settings_.at("scan"), change));
    }
    const auto frames = scan_frame(c);
    return encode_array(frames.front(), {c.ny, c.nx}, enc);
  },
        "overview image at the stage (512 px over 1 µm unless given), [data, shape, dtype]");

  auto no_spectrum_image = [](const std::string& method) {
    return [method](const json& p) -> json {
      Params(p, method, {"spectrum_image_index", "x", "y"});
      throw RpcError(rpc::kServerError, method + ": not available yet — spectrum images need EDS/EELS, which stemtwin does not "
                                                 "simulate yet (docs/server.md)");
    };
  };
  d.add("get_point_data", {"spectrum_image_index", "x", "y"}, no_spectrum_image("get_point_data"),
        "spectrum at a point: -32000 until spectroscopy exists");
  d.add("get_spectrum_image", {"spectrum_image_index"}, no_spectrum_image("get_spectrum_image"),
        "spectrum image: -32000 until spectroscopy exists");
  d.add("get_spectrum_image_e_axis", {"spectrum_image_index"}, no_spectrum_image("get_spectrum_image_e_axis"),
        "energy axis of a spectrum image: -32000 until spectroscopy exists");
}

}  // namespace stemtwin
