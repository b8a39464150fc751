// Aberrations (probe.hpp): the names, the alias table's resolution and χ. Apart from the
// probe's FFT code so the scenario parser (and its fuzz build) can resolve names alone.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/probe.hpp"

namespace stemtwin {
namespace {

int order_index(int n, int m) {
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i)
    if (Aberrations::kOrders[i][0] == n && Aberrations::kOrders[i][1] == m) return int(i);
  return -1;
}

/// Resolves a symbol to (index, is_angle, sign).
bool resolve(const std::string& name, int& idx, bool& angle, double& sign) {
  sign = 1;
  angle = false;
  for (const auto& a : kAberrationAliases)
    if (name == a.name) {
      idx = order_index(a.n, a.m);
      angle = a.angle;
      sign = a.sign;
      return true;
    }
  if (name.size() == 3 && name[0] == 'C' && std::isdigit(static_cast<unsigned char>(name[1])) &&
      std::isdigit(static_cast<unsigned char>(name[2]))) {
    idx = order_index(name[1] - '0', name[2] - '0');
    return idx >= 0;
  }
  if (name.size() == 5 && name.rfind("phi", 0) == 0 && std::isdigit(static_cast<unsigned char>(name[3])) &&
      std::isdigit(static_cast<unsigned char>(name[4]))) {
    idx = order_index(name[3] - '0', name[4] - '0');
    angle = true;
    return idx >= 0 && Aberrations::kOrders[std::size_t(idx)][1] != 0;
  }
  return false;
}

}  // namespace

std::optional<AberrationName> resolve_aberration(const std::string& name) {
  int idx;
  bool angle;
  double sign;
  if (!resolve(name, idx, angle, sign)) return std::nullopt;
  const auto& o = Aberrations::kOrders[std::size_t(idx)];
  AberrationName out{angle ? "phi" : "C", sign};
  out.krivanek += static_cast<char>('0' + o[0]);  // orders are single digits (1..6)
  out.krivanek += static_cast<char>('0' + o[1]);
  return out;
}

const std::vector<std::string>& Aberrations::names() {
  static const std::vector<std::string> n = [] {
    std::vector<std::string> v;
    for (const auto& o : kOrders) v.push_back("C" + std::to_string(o[0]) + std::to_string(o[1]));
    for (const auto& o : kOrders)
      if (o[1] != 0) v.push_back("phi" + std::to_string(o[0]) + std::to_string(o[1]));
    for (const auto& a : kAberrationAliases) v.push_back(a.name);
    return v;
  }();
  return n;
}

void Aberrations::set(const std::string& name, double value) {
  int idx;
  bool angle;
  double sign;
  if (!resolve(name, idx, angle, sign))
    throw std::invalid_argument("unknown aberration '" + name + "' (expected C10…C56, phi12…phi56, defocus, Cs, C5, "
                                "astigmatism, coma, trefoil and their _angle)");
  if (!std::isfinite(value)) throw std::invalid_argument("aberration '" + name + "' is not a finite number");
  (angle ? phi : C)[std::size_t(idx)] = sign * value;
}

double Aberrations::get(const std::string& name) const {
  int idx;
  bool angle;
  double sign;
  if (!resolve(name, idx, angle, sign)) throw std::invalid_argument("unknown aberration '" + name + "'");
  return sign * (angle ? phi : C)[std::size_t(idx)];
}

double Aberrations::chi(double alpha, double phi_k, double lambda) const {
  double chi = 0;
  for (std::size_t i = 0; i < kOrders.size(); ++i) {
    if (C[i] == 0) continue;
    const int n = kOrders[i][0], m = kOrders[i][1];
    chi += C[i] * std::pow(alpha, n + 1) / (n + 1) * std::cos(m * (phi_k - phi[i]));
  }
  return 2.0 * kPi / lambda * chi;
}

bool Aberrations::any() const {
  return std::any_of(C.begin(), C.end(), [](double c) { return c != 0; });
}

}  // namespace stemtwin
