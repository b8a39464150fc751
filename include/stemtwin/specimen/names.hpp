#pragma once
// The words of the builders' choices (builders.hpp), one table each (core/names.hpp): the
// scenario's builder keys and the Python builders read these.
#include "stemtwin/core/names.hpp"
#include "stemtwin/specimen/builders.hpp"

namespace stemtwin {

inline constexpr NamedValue<SiteArrangement> kSiteArrangementNames[] = {
    {"random", SiteArrangement::Random}, {"layered", SiteArrangement::Layered}, {"clustered", SiteArrangement::Clustered}};
inline constexpr NamedValue<FrontShape> kFrontShapeNames[] = {
    {"planar", FrontShape::Planar}, {"sinusoidal", FrontShape::Sinusoidal}, {"rough", FrontShape::Rough}};
inline constexpr NamedValue<AmorphousMode> kAmorphousModeNames[] = {{"random_packing", AmorphousMode::RandomPacking},
                                                                    {"displacement", AmorphousMode::Displacement}};
inline constexpr NamedValue<ParticleShape> kParticleShapeNames[] = {{"sphere", ParticleShape::Sphere},
                                                                    {"cuboctahedron", ParticleShape::Cuboctahedron}};

}  // namespace stemtwin
