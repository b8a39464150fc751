// Reads a crystal (CIF or POSCAR), orients it along a zone axis, tiles it to a lateral size
// and thickness, writes an extended XYZ file and prints the projected column table.
//
//   example_oriented_supercell [structure.cif [u v w [size_A [thickness_A [out.xyz]]]]]
//   defaults: scenarios/structures/SrTiO3.cif, [1 1 0], 20 Å, 50 Å, oriented.xyz
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "stemtwin/specimen/columns.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/structure_io.hpp"

int main(int argc, char** argv) {
  using namespace stemtwin;
  std::string path = argc > 1 ? argv[1] : std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/structures/SrTiO3.cif";
  std::array<int, 3> uvw{1, 1, 0};
  if (argc > 4) uvw = {std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4])};
  const double size = argc > 5 ? std::atof(argv[5]) : 20.0;
  const double thickness = argc > 6 ? std::atof(argv[6]) : 50.0;
  const std::string out = argc > 7 ? argv[7] : "oriented.xyz";
  try {
    Crystal crystal = read_crystal(path);
    OrientedCell oc = orient_along(crystal, uvw);
    const Cell& c = oc.structure.cell;
    std::printf("%s along [%d %d %d]: cell %.4f x %.4f x %.4f A, %zu atoms, max strain %.2e\n", crystal.name.c_str(),
                oc.zone_axis[0], oc.zone_axis[1], oc.zone_axis[2], c.x, c.y, c.z, oc.structure.atoms.size(),
                oc.max_strain);
    std::printf("cell vectors in the conventional lattice: x = [%g %g %g], y = [%g %g %g], z = [%g %g %g]\n",
                oc.supercell[0][0], oc.supercell[1][0], oc.supercell[2][0], oc.supercell[0][1], oc.supercell[1][1],
                oc.supercell[2][1], oc.supercell[0][2], oc.supercell[1][2], oc.supercell[2][2]);
    auto r = repeats_for_size(c, size, size, thickness);
    Structure s = tile(oc.structure, r[0], r[1], r[2]);
    write_xyz(s, out, crystal.name + " [" + std::to_string(uvw[0]) + " " + std::to_string(uvw[1]) + " " +
                          std::to_string(uvw[2]) + "] along +z");
    std::printf("tiled %d x %d x %d: %.3f x %.3f x %.3f A, %zu atoms, %.5f atoms/A^3 -> %s\n", r[0], r[1], r[2],
                s.cell.x, s.cell.y, s.cell.z, s.atoms.size(), number_density(s), out.c_str());
    // the column table of one oriented cell (the tiled one repeats it)
    Structure one = tile(oc.structure, 1, 1, r[2]);
    auto cols = find_columns(one);
    std::printf("%8s %8s %6s %8s  composition\n", "x (A)", "y (A)", "major", "count");
    for (const Column& col : cols) {
      std::printf("%8.4f %8.4f %6s %8.2f ", col.x, col.y, element_symbol(col.dominant_Z).c_str(), col.count);
      for (auto& [Z, n] : col.composition) std::printf(" %s:%g", element_symbol(Z).c_str(), n);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
