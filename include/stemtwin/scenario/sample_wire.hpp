#pragma once
// A computed sample as bytes: what an MPI worker sends to the rank that writes the file
// (mpi_run.hpp). Values travel bit for bit (no text, no rounding), so a sample computed on
// any rank is written with the same bytes as one computed where it is written. Both ends
// are the same program on the same architecture, so numbers travel in native byte order.
#include <cstddef>
#include <span>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/runner.hpp"

namespace stemtwin {

struct ComputedSample {
  SampleRecord record;
  DiffractionData patterns;  ///< collected 4D rows (empty without pixelated detectors)
};

std::vector<std::byte> encode_sample(const ComputedSample& sample);
/// Throws std::runtime_error on truncated or malformed bytes.
ComputedSample decode_sample(std::span<const std::byte> bytes);

}  // namespace stemtwin
