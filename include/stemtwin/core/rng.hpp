#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11) with the project's
// own distributions, so the same (seed, stream) gives the same numbers on every platform,
// standard library and thread count. A stream is keyed by (seed, purpose, index...):
// e.g. Rng(seed, {sample, kPhonon, configuration}). Nothing is shared between streams,
// so work can be split over threads in any order.
#include <cstdint>
#include <initializer_list>

namespace stemtwin {

/// Purposes name independent streams; add new ones at the end (values are part of the
/// determinism contract: changing one changes every dataset).
enum class RngPurpose : std::uint64_t {
  Phonon = 1,
  Parameters = 2,
  Structure = 3,
  Noise = 4,
  Scan = 5,
  Session = 6,
  Damage = 7,
  Spectra = 8,    ///< Poisson counts of EDS/EELS spectrum images (eds.hpp)
  Corrector = 9,  ///< residual aberrations, their drift and tableau counts (aberration_measure.hpp)
  World = 10,     ///< the lazily generated world: layout, grains, particles, sites, amorphous tiles (world.hpp)
};

class Rng {
 public:
  /// Stream from a seed and up to three further words (sample index, purpose, item…).
  Rng(std::uint64_t seed, std::initializer_list<std::uint64_t> stream = {});
  Rng(std::uint64_t seed, RngPurpose purpose, std::uint64_t a = 0, std::uint64_t b = 0)
      : Rng(seed, {static_cast<std::uint64_t>(purpose), a, b}) {}

  std::uint32_t next_u32();
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform in [a, b).
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  /// Standard normal (Box–Muller; both values of a pair are used).
  double normal();
  double normal(double mean, double sd) { return mean + sd * normal(); }
  /// Poisson with the given mean (exact: multiplication method below 10, PTRS above).
  std::uint64_t poisson(double mean);
  /// Gamma(shape k, scale θ), mean kθ (Marsaglia–Tsang).
  double gamma(double shape, double scale);
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);

 private:
  void refill();
  std::uint32_t key_[2];
  std::uint32_t counter_[4];
  std::uint32_t block_[4];
  int used_ = 4;
  bool have_normal_ = false;
  double spare_normal_ = 0;
};

}  // namespace stemtwin
