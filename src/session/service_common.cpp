#include "service_common.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace stemtwin::service {


const std::vector<std::string>& devices() {
  static const std::vector<std::string> d = {"flu_camera", "ceta_camera", "scan", "super_x", "eels"};
  return d;
}

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

Params::Params(const json& p, std::string method, std::vector<std::string> allowed, json* rest) : p_(p), method_(std::move(method)) {
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

const json& Params::get(const std::string& k) const {
  if (!has(k)) throw_invalid_params(method_ + ": missing parameter '" + k + "'");
  return p_[k];
}

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

namespace {
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

}  // namespace

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

json encode_array(const std::vector<float>& data, const std::vector<std::size_t>& shape, const std::string& encoding) {
  return encoding == "base64" ? binary_array(data, shape) : list_array(data, shape);
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

}  // namespace stemtwin::service
