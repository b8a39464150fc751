// MicroscopeService: acquisitions (DTMicroscope's acquire_image(_stack); spectra in microscope_service_spectra.cpp) and the verbs of
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
      if (dev == "super_x" || dev == "eels")
        throw_invalid_params("acquire_image: " + dev + " is a spectrometer: use acquire_spectrum");
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
      if (dev == "super_x" || dev == "eels")
        throw_invalid_params("acquire_image_stack: " + dev + " is a spectrometer: use acquire_spectrum");
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
}

}  // namespace stemtwin
