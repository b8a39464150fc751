#pragma once
// The error of every structure reader (structure_io.hpp, crystal.hpp): the message is
// "path:line: what is wrong". Its own header so the CIF reader (crystal.cpp) and the other
// formats (structure_io.cpp) share it without including each other.
#include <stdexcept>

namespace stemtwin {

struct StructureError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace stemtwin
