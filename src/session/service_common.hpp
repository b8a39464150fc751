#pragma once
// Helpers shared by the files of MicroscopeService (microscope_service*.cpp): parameter
// checking with named errors, and array encodings (DTMicroscope's [list, shape, dtype] and
// the binary {"__ndarray_b64__", shape, dtype}). Internal to src/.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stemtwin/core/image.hpp"
#include "stemtwin/session/json_rpc.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/acquisition/ranges.hpp"

namespace stemtwin::service {

using nlohmann::json;

constexpr double kA_per_m = 1e10;
constexpr double kNominalVacuum_Pa = 1e-5;  // the twin has no vacuum model: a constant, documented
/// DTMicroscope's device names, in its order.
const std::vector<std::string>& devices();

std::string upper(std::string s);
std::string join(const std::vector<std::string>& v);

/// Named parameters of one call: rejects keys not in `allowed` (unless `rest` collects them).
class Params {
 public:
  Params(const json& p, std::string method, std::vector<std::string> allowed, json* rest = nullptr);
  bool has(const std::string& k) const { return p_.contains(k) && !p_[k].is_null(); }
  const json& get(const std::string& k) const;
  const std::string& method() const { return method_; }

 private:
  const json& p_;
  std::string method_;
};

/// A finite number, else -32602 naming `what`.
double number(const json& v, const std::string& what);
/// A number in (0, max], in `unit`; the message names the value, the limit and where the limit comes from.
double positive(const json& v, const std::string& what, double max, const char* unit, const std::string& limit_name);
/// A number inside a session range (ranges.hpp) given in the client's units: `scale` converts
/// the client's value to the range's unit, so the physical rule stays in one place.
double in_range(const json& v, const std::string& what, const Range& r, double scale, const char* unit);
std::size_t count(const json& v, const std::string& what, std::size_t lo, std::size_t hi);
bool boolean(const json& v, const std::string& what);
/// A number or a two-element list → (first, second).
std::array<json, 2> pair_of(const json& v, const std::string& what);

/// DTMicroscope's serialised numpy array: [nested list, shape, dtype].
json list_array(const std::vector<float>& data, const std::vector<std::size_t>& shape);
/// Binary form: {"__ndarray_b64__": base64 of little-endian float32, "shape", "dtype"}.
json binary_array(const std::vector<float>& data, const std::vector<std::size_t>& shape);
/// list_array or binary_array by `encoding` ("list" or "base64").
json encode_array(const std::vector<float>& data, const std::vector<std::size_t>& shape, const std::string& encoding);
std::vector<float> to_float(const Image& im);
/// "list" or "base64", else -32602.
std::string encoding_of(const json& v);
/// {"C10": …, "phi12": …}: C scaled by length_scale (1/kA_per_m for metres), phi in rad.
json aberrations_json(const Aberrations& a, double length_scale);

}  // namespace stemtwin::service
