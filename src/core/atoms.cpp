#include "stemtwin/core/atoms.hpp"

#include <cctype>
#include <stdexcept>

namespace stemtwin {
namespace {
#include "../physics/scattering_tables.inc"
}

std::string element_symbol(int Z) {
  if (Z < 1 || Z > 103) throw std::invalid_argument("atomic number " + std::to_string(Z) + " outside 1..103");
  return kElementSymbols[Z - 1];
}

int atomic_number(const std::string& symbol) {
  std::string s;
  for (char c : symbol)
    if (std::isalpha(static_cast<unsigned char>(c))) s += c;
  if (!s.empty()) {
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    for (std::size_t i = 1; i < s.size(); ++i) s[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  for (int i = 0; i < 103; ++i)
    if (s == kElementSymbols[i]) return i + 1;
  throw std::invalid_argument("unknown element symbol '" + symbol + "'");
}

}  // namespace stemtwin
