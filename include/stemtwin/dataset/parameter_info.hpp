#pragma once
// A /params column of a dataset (dataset.hpp): its key path and, for text options, the words
// behind the stored indices (empty for numbers). The scenario lists them (parameter_info in
// scenario.hpp); storage writes and reads them.
#include <string>
#include <vector>

namespace stemtwin {

struct ParameterInfo {
  std::string name;
  std::vector<std::string> categories;
};

}  // namespace stemtwin
