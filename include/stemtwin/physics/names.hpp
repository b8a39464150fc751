#pragma once
// The words of the engine's choices — method, scattering-factor parametrisation, potential
// projection — in one table each (core/names.hpp). The scenario parser, the dataset runner,
// the Python module and `stemtwin serve` all read these; nothing else spells them.
#include <string>
#include <string_view>

#include "stemtwin/core/names.hpp"
#include "stemtwin/physics/stem_settings.hpp"
#include "stemtwin/physics/potential.hpp"
#include "stemtwin/physics/scattering.hpp"

namespace stemtwin {

inline constexpr NamedValue<Method> kMethodNames[] = {
    {"multislice", Method::Multislice}, {"prism", Method::Prism}, {"auto", Method::Auto}, {"windowed", Method::Windowed}};
inline constexpr NamedValue<Parametrization> kParametrizationNames[] = {{"lobato", Parametrization::Lobato},
                                                                        {"kirkland", Parametrization::Kirkland}};
inline constexpr NamedValue<Projection> kProjectionNames[] = {{"infinite", Projection::Infinite},
                                                              {"finite", Projection::Finite}};

/// "multislice" / "prism" / "auto" / "windowed" (case-insensitive); throws std::invalid_argument otherwise.
inline Method parse_method(std::string_view word) { return parse_name("method", word, kMethodNames); }
/// "infinite" / "finite" (case-insensitive); throws std::invalid_argument otherwise.
inline Projection parse_projection(std::string_view word) { return parse_name("projection", word, kProjectionNames); }
inline std::string to_string(Method m) { return name_of(m, kMethodNames); }
inline std::string to_string(Projection p) { return name_of(p, kProjectionNames); }

}  // namespace stemtwin
