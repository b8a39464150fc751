#include "stemtwin/dataset/shard.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace stemtwin {

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  auto bad = [&]() { return std::invalid_argument("--shard expects i/n with 0 ≤ i < n, got '" + text + "'"); };
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) throw bad();
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  if (!std::all_of(a.begin(), a.end(), ::isdigit) || !std::all_of(b.begin(), b.end(), ::isdigit)) throw bad();
  Shard s{std::stoul(a), std::stoul(b)};
  if (s.count == 0 || s.index >= s.count) throw bad();
  return s;
}

std::vector<std::size_t> shard_samples(std::size_t total, Shard shard) {
  std::vector<std::size_t> out;
  for (std::size_t i = shard.index; i < total; i += shard.count) out.push_back(i);
  return out;
}

}  // namespace stemtwin
