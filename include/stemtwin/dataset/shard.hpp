#pragma once
// Shards: which of a run's samples one process (one file) computes — every n-th from i, so
// shards of any count interleave and merge back in order (docs/cluster.md).
#include <cstddef>
#include <string>
#include <vector>

namespace stemtwin {

/// The sample indices a shard computes: shard, shard + count, … below total.
struct Shard {
  std::size_t index = 0, count = 1;
};
/// Parses "i/n" (0 ≤ i < n); throws std::invalid_argument.
Shard parse_shard(const std::string& text);
std::vector<std::size_t> shard_samples(std::size_t total, Shard shard);

}  // namespace stemtwin
