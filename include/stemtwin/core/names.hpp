#pragma once
// Enum ↔ word tables: one table per enum, read both ways by the same two functions, so a
// word accepted in YAML, Python keywords and JSON-RPC is spelled (and refused) the same way
// everywhere. A table is a plain array of {word, value}; words are lower case and matched
// case-insensitively.
#include <cctype>
#include <cstddef>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace stemtwin {

template <class E>
struct NamedValue {
  const char* word;
  E value;
};

/// The value of `word` (case-insensitive) in `table`; throws std::invalid_argument
/// "unknown <what> '<word>' (expected a, b or c)".
template <class E, std::size_t N>
E parse_name(std::string_view what, std::string_view word, const NamedValue<E> (&table)[N]) {
  std::string w;
  for (char c : word) w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& entry : table)
    if (w == entry.word) return entry.value;
  // (an ostringstream: GCC 12 with LTO warns falsely on chains of std::string operator+)
  std::ostringstream msg;
  msg << "unknown " << what << " '" << word << "' (expected ";
  for (std::size_t i = 0; i < N; ++i) msg << (i == 0 ? "" : i + 1 == N ? " or " : ", ") << table[i].word;
  msg << ')';
  throw std::invalid_argument(msg.str());
}

/// The word of `value` in `table` ("?" when absent, which a complete table never is).
template <class E, std::size_t N>
const char* name_of(E value, const NamedValue<E> (&table)[N]) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.word;
  return "?";
}

/// Every word of `table` (for validators that take a set of allowed words).
template <class E, std::size_t N>
std::set<std::string> names_of(const NamedValue<E> (&table)[N]) {
  std::set<std::string> out;
  for (const auto& entry : table) out.insert(entry.word);
  return out;
}

}  // namespace stemtwin
