#pragma once
// Reading and writing atomic structures. Every reader returns atoms in an orthogonal
// periodic cell (Å); a file whose lattice is not orthogonal is rejected with a message
// that points to read_crystal + orient_along, which handle any lattice.
//
// Formats:
//  - CIF (.cif): through gemmi, symmetry expanded (see crystal_from_cif).
//  - extended XYZ (.xyz, .extxyz): count line; comment line with Lattice="ax ay az bx by bz
//    cx cy cz" and Properties=species:S:1:pos:R:3[...] (extra columns are skipped by
//    their declared width; columns named occupancy:R:1 and rms:R:1 are used); plain XYZ
//    (no Lattice) needs an explicit cell argument.
//  - Prismatic XYZ (.xyz with a cell line): comment line, "a b c" line, then rows
//    "Z x y z occupancy rms", terminated by a line "-1".
//  - VASP POSCAR/CONTCAR (v5, element-symbol line; Direct or Cartesian; scale factor
//    (a negative scale is the target volume, Å³); "Selective dynamics" accepted).
//
// Errors throw StructureError with the message "path:line: what is wrong".
#include <optional>
#include <stdexcept>
#include <string>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/specimen/crystal.hpp"
#include "stemtwin/specimen/structure_error.hpp"

namespace stemtwin {

enum class StructureFormat { Cif, ExtendedXyz, PrismaticXyz, Poscar };

/// Guesses the format from the extension (.cif, .xyz/.extxyz, POSCAR/CONTCAR/.vasp/.poscar)
/// and, for .xyz, from the content (a three-number second line and a "-1" terminator mean
/// Prismatic). Throws StructureError for unknown files.
StructureFormat detect_format(const std::string& path);

/// Reads any supported format into an orthogonal cell.
Structure read_structure(const std::string& path);
/// Reads CIF or POSCAR as a general crystal (any lattice), for orient_along.
Crystal read_crystal(const std::string& path);

Structure read_cif(const std::string& path);
Structure read_xyz(const std::string& path, std::optional<Cell> cell = std::nullopt);
Structure read_prismatic_xyz(const std::string& path);
Structure read_poscar(const std::string& path);
Crystal crystal_from_poscar(const std::string& path);

/// Extended XYZ with Lattice, Properties=species:S:1:pos:R:3:occupancy:R:1:rms:R:1.
void write_xyz(const Structure& s, const std::string& path, const std::string& comment = "");
/// Prismatic XYZ (the format Prismatic and abTEM read).
void write_prismatic_xyz(const Structure& s, const std::string& path, const std::string& comment = "");

}  // namespace stemtwin
