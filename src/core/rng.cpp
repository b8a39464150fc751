#include "stemtwin/core/rng.hpp"

#include <cmath>
#include <limits>

namespace stemtwin {
namespace {

constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void philox10(std::uint32_t ctr[4], std::uint32_t key[2], std::uint32_t out[4]) {
  std::uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  std::uint32_t k[2] = {key[0], key[1]};
  for (int r = 0; r < 10; ++r) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c[0] = hi1 ^ c[1] ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k[1];
    c[3] = lo0;
    k[0] += kW0;
    k[1] += kW1;
  }
  for (int i = 0; i < 4; ++i) out[i] = c[i];
}

}  // namespace

Rng::Rng(std::uint64_t seed, std::initializer_list<std::uint64_t> stream) {
  // The key is the seed; the stream words fill the upper counter words (hashed so that
  // small integers spread), the lowest word counts blocks.
  std::uint64_t h = splitmix(seed);
  key_[0] = static_cast<std::uint32_t>(h);
  key_[1] = static_cast<std::uint32_t>(h >> 32);
  std::uint64_t s = 0x5EED5EED5EED5EEDull;
  for (std::uint64_t w : stream) s = splitmix(s ^ splitmix(w + 0x1234567ull));
  counter_[0] = 0;
  counter_[1] = static_cast<std::uint32_t>(s);
  counter_[2] = static_cast<std::uint32_t>(s >> 32);
  counter_[3] = static_cast<std::uint32_t>(splitmix(s) >> 32);
}

void Rng::refill() {
  philox10(counter_, key_, block_);
  if (++counter_[0] == 0) ++counter_[3];
  used_ = 0;
}

std::uint32_t Rng::next_u32() {
  if (used_ == 4) refill();
  return block_[used_++];
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (have_normal_) {
    have_normal_ = false;
    return spare_normal_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * M_PI * u2;
  spare_normal_ = r * std::sin(a);
  have_normal_ = true;
  return r * std::cos(a);
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) return 0;
  // Rejection to avoid modulo bias.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t v;
  do v = next_u64();
  while (v >= limit);
  return v % n;
}

std::uint64_t Rng::poisson(double mean) {
  if (!(mean > 0.0)) return 0;
  if (mean < 10.0) {
    const double L = std::exp(-mean);
    std::uint64_t k = 0;
    double p = uniform();
    while (p > L) {
      ++k;
      p *= uniform();
    }
    return k;
  }
  // PTRS: transformed rejection with squeeze (Hörmann, Insurance Math. Econ. 12 (1993) 39).
  const double slam = std::sqrt(mean), loglam = std::log(mean);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double U = uniform() - 0.5;
    const double V = uniform();
    const double us = 0.5 - std::fabs(U);
    const double k = std::floor((2.0 * a / us + b) * U + mean + 0.43);
    if (us >= 0.07 && V <= vr) return static_cast<std::uint64_t>(k);
    if (k < 0.0 || (us < 0.013 && V > us)) continue;
    if (std::log(V) + std::log(invalpha) - std::log(a / (us * us) + b) <=
        -mean + k * loglam - std::lgamma(k + 1.0))
      return static_cast<std::uint64_t>(k);
  }
}

double Rng::gamma(double shape, double scale) {
  if (!(shape > 0.0) || !(scale > 0.0)) return 0.0;
  if (shape < 1.0) {
    // Boost: Gamma(k) = Gamma(k+1) · U^(1/k).
    double u = uniform();
    while (u <= 0.0) u = uniform();
    return gamma(shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
    if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

}  // namespace stemtwin
