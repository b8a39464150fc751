#pragma once
// Internal: how acquisition noise streams are keyed (part of the determinism contract).
// Rng(seed, RngPurpose::Noise, sample, key), key = channel·2^40 + stage·2^32 + index.
#include <cstdint>
#include <stdexcept>

#include "stemtwin/core/rng.hpp"

namespace stemtwin::detail {

enum NoiseStage : std::uint64_t {
  kStageCount = 1,       // Poisson counting of electrons
  kStageGain = 2,        // pulse-height (gain) spread
  kStageReadout = 3,     // read noise
  kStageCamera = 4,      // pixelated camera, one stream per probe position
};

inline Rng noise_rng(std::uint64_t seed, std::uint64_t sample, std::uint64_t channel, std::uint64_t stage,
                     std::uint64_t index) {
  if (channel >= (1ull << 24) || index >= (1ull << 32))
    throw std::out_of_range("noise stream: channel must be < 2^24 and index < 2^32");
  return Rng(seed, RngPurpose::Noise, sample, (channel << 40) | (stage << 32) | index);
}

}  // namespace stemtwin::detail
