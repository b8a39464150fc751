#pragma once
// Internal to src/specimen/world*.cpp: stream words and packing shared by the world's files.
#include <cstdint>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin::world_detail {

// First word of every world stream (after RngPurpose::World): what is drawn, in the top
// byte, and which item (tile, grain) below it. Values are part of the determinism contract.
enum Stream : std::uint64_t {
  kEdge = 1,
  kGrain = 2,
  kParticle = 3,
  kSubstrateSite = 4,
  kFilmSite = 5,
  kAmorphous = 6,  // + kind (0: amorphised SrTiO3, 1: carbon)
};

/// Two signed indices (|i| < 2^27) in 56 bits.
inline std::uint64_t pack2(long long i, long long j) {
  constexpr std::uint64_t m = (1ull << 28) - 1;
  return ((std::uint64_t(i + (1ll << 27)) & m) << 28) | (std::uint64_t(j + (1ll << 27)) & m);
}
/// A lattice site: cell (i, j) (|i|, |j| < 2^21), layer k (< 4096) and site s (< 256).
inline std::uint64_t pack_site(long long i, long long j, long long k, int s) {
  constexpr std::uint64_t m = (1ull << 22) - 1;
  return ((std::uint64_t(i + (1ll << 21)) & m) << 42) | ((std::uint64_t(j + (1ll << 21)) & m) << 20) |
         ((std::uint64_t(k) & 0xFFF) << 8) | std::uint64_t(s & 0xFF);
}
inline std::uint64_t item(Stream s, std::uint64_t id) { return (std::uint64_t(s) << 56) | (id & ((1ull << 56) - 1)); }

constexpr double kAmorphousTile_A = 4.0;  // tiles of the amorphous process (≥ the hard-core distance)

}  // namespace stemtwin::world_detail
