// Specimens, builders and detectors (the stemtwin Python module; helpers in bindings.hpp).
#include "bindings.hpp"

namespace stemtwin::py_bindings {

namespace {

/// Crystal and Specimen (its defects and edits in place).
void bind_specimen_classes(py::module_& mod) {
  py::class_<Crystal>(mod, "Crystal", "A general crystal (any lattice) read from CIF or POSCAR; see orient_along.")
      .def_readonly("name", &Crystal::name)
      .def_readonly("a", &Crystal::a)
      .def_readonly("b", &Crystal::b)
      .def_readonly("c", &Crystal::c)
      .def_readonly("alpha", &Crystal::alpha)
      .def_readonly("beta", &Crystal::beta)
      .def_readonly("gamma", &Crystal::gamma)
      .def("__len__", [](const Crystal& c) { return c.sites.size(); })
      .def("__repr__", [](const Crystal& c) {
        return "Crystal('" + c.name + "', a=" + std::to_string(c.a) + ", b=" + std::to_string(c.b) +
               ", c=" + std::to_string(c.c) + ", sites=" + std::to_string(c.sites.size()) + ")";
      });

  py::class_<Specimen>(mod, "Specimen",
                       "Atoms in an orthogonal periodic cell (Å, beam along +z) with ground-truth classes.")
      .def(py::init(&specimen_from_arrays), py::arg("Z"), py::arg("positions"), py::arg("cell"),
           py::arg("occupancy") = py::none(), py::arg("rms") = py::none(), py::arg("atom_class") = py::none(),
           "Z: atomic numbers or symbols; positions: (n, 3) Å; cell: (x, y, z) Å; rms defaults to the "
           "room-temperature table; atom_class: class ids (default crystal).")
      .def("__len__", [](const Specimen& s) { return s.structure.atoms.size(); })
      .def_property_readonly("Z", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.Z; }); })
      .def_property_readonly("positions", [](const Specimen& s) { return atom_positions(s.structure.atoms); }, "(n, 3) Å (copy)")
      .def_property_readonly("occupancy", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.occupancy; }); })
      .def_property_readonly("rms", [](const Specimen& s) { return atom_column(s.structure.atoms, [](const Atom& a) { return a.rms; }); })
      .def_property_readonly("atom_class", [](const Specimen& s) { return own(std::vector<int>(s.atom_class), {static_cast<py::ssize_t>(s.atom_class.size())}); })
      .def_property_readonly("cell", [](const Specimen& s) { return py::make_tuple(s.structure.cell.x, s.structure.cell.y, s.structure.cell.z); }, "(x, y, z) Å")
      .def_readonly("class_names", &Specimen::class_names)
      .def_readwrite("info", &Specimen::info,
                     "scalars the builders report (e.g. interface_y, amorphous_fraction); reading gives a copy, "
                     "assign a whole dict to change it")
      .def_property_readonly("vacancy_positions", [](const Specimen& s) { return atom_positions(s.vacancies); }, "(m, 3) Å of removed sites")
      .def_property_readonly("vacancy_Z", [](const Specimen& s) { return atom_column(s.vacancies, [](const Atom& a) { return a.Z; }); })
      .def("copy", [](const Specimen& s) { return s; })
      .def("tile", [](const Specimen& s, int nx, int ny, int nz) { return tile(s, nx, ny, nz); }, py::arg("nx"), py::arg("ny"), py::arg("nz"),
           "A new specimen repeated nx × ny × nz times (classes and vacancies too).")
      .def("amorphize",
           [](Specimen& s, int axis, double fraction, const std::string& shape, double amplitude, double wavelength,
              const std::string& mode, double min_distance, double displacement_rms, std::uint64_t seed, std::uint64_t sample) {
             AmorphousParams p;
             p.axis = axis, p.fraction = fraction, p.shape = parse_enum("front shape", shape, kFront);
             p.amplitude = amplitude, p.wavelength = wavelength, p.mode = parse_enum("amorphous mode", mode, kAmorphousMode);
             p.min_distance = min_distance, p.displacement_rms = displacement_rms;
             amorphize(s, p, seed, sample);
             return s.info.count("amorphous_fraction") ? s.info.at("amorphous_fraction") : 0.0;
           },
           py::arg("axis") = 0, py::arg("fraction") = 0.3, py::arg("shape") = "planar", py::arg("amplitude") = 0.0,
           py::arg("wavelength") = 20.0, py::arg("mode") = "random_packing", py::arg("min_distance") = 0.0,
           py::arg("displacement_rms") = 0.6, py::arg("seed") = 0, py::arg("sample") = 0,
           "Turns the region in front of a front along `axis` amorphous (in place); returns the amorphous atom fraction.")
      .def("add_vacancies",
           [](Specimen& s, const py::object& el, double fraction, std::uint64_t seed, std::uint64_t sample) {
             return add_vacancies(s, to_Z(el), fraction, seed, sample);
           },
           py::arg("element"), py::arg("fraction"), py::arg("seed") = 0, py::arg("sample") = 0,
           "Removes a fraction of the crystalline atoms of an element (in place); returns how many.")
      .def("add_dopants",
           [](Specimen& s, const py::object& host, const py::object& dopant, double fraction, std::uint64_t seed, std::uint64_t sample) {
             return add_dopants(s, to_Z(host), to_Z(dopant), fraction, seed, sample);
           },
           py::arg("host"), py::arg("dopant"), py::arg("fraction"), py::arg("seed") = 0, py::arg("sample") = 0,
           "Replaces a fraction of the host atoms by the dopant (in place); returns how many.")
      .def("add_interstitials",
           [](Specimen& s, const py::object& el, std::size_t count, double min_distance, std::uint64_t seed, std::uint64_t sample) {
             return add_interstitials(s, to_Z(el), count, min_distance, seed, sample);
           },
           py::arg("element"), py::arg("count"), py::arg("min_distance") = 1.5, py::arg("seed") = 0, py::arg("sample") = 0)
      .def("add_antiphase_boundary",
           [](Specimen& s, double a, double position) { return add_planar_fault(s, perovskite_antiphase_boundary(a, position)); },
           py::arg("a"), py::arg("position"), "Perovskite (100) antiphase boundary at x = position (in place).")
      .def("write_xyz", [](const Specimen& s, const std::string& path) { write_xyz(s.structure, path); }, py::arg("path"))
      .def("__repr__", [](const Specimen& s) {
        const Cell& c = s.structure.cell;
        return "Specimen(" + std::to_string(s.structure.atoms.size()) + " atoms, cell " + std::to_string(c.x) + " × " +
               std::to_string(c.y) + " × " + std::to_string(c.z) + " Å, " + std::to_string(s.vacancies.size()) + " vacancies)";
      });
}

/// Structure files: read, orient along a zone axis, tile, load as a specimen.
void bind_structure_files(py::module_& mod) {
  mod.def("read_structure", [](const std::string& path) { return specimen_from_structure(read_structure(path)); }, py::arg("path"),
          "Reads CIF, (extended) XYZ, Prismatic XYZ or POSCAR with an orthogonal cell into a Specimen.");
  mod.def("read_crystal", &read_crystal, py::arg("path"), "Reads CIF or POSCAR as a general crystal (any lattice).");
  mod.def("orient_along",
          [](const Crystal& c, const py::object& uvw, const std::optional<py::object>& x_axis, double max_strain,
             double max_lateral, double max_period) {
            OrientOptions o;
            o.max_strain = max_strain, o.max_lateral = max_lateral, o.max_period = max_period;
            if (x_axis) o.x_axis = to_int3(*x_axis, "x_axis");
            OrientedCell oc = orient_along(c, to_int3(uvw, "zone axis"), o);
            return specimen_from_structure(std::move(oc.structure), {{"max_strain", oc.max_strain}});
          },
          py::arg("crystal"), py::arg("zone_axis"), py::arg("x_axis") = py::none(), py::arg("max_strain") = 1e-3,
          py::arg("max_lateral") = 30.0, py::arg("max_period") = 60.0,
          "Orthogonal periodic cell with the zone axis [uvw] along the beam (+z).");
  mod.def("tile", [](const Specimen& s, int nx, int ny, int nz) { return tile(s, nx, ny, nz); }, py::arg("specimen"),
          py::arg("nx"), py::arg("ny"), py::arg("nz"));
  mod.def("load_specimen",
          [](const std::string& path, const std::optional<py::object>& zone_axis, const std::optional<py::object>& repeats,
             const std::optional<std::vector<double>>& size_A) {
            Specimen s;
            if (zone_axis) {
              OrientedCell oc = orient_along(read_crystal(path), to_int3(*zone_axis, "zone axis"));
              s = specimen_from_structure(std::move(oc.structure), {{"max_strain", oc.max_strain}});
            } else {
              s = specimen_from_structure(read_structure(path));
            }
            if (repeats && size_A) throw std::invalid_argument("give repeats or size_A, not both");
            std::array<int, 3> r{1, 1, 1};
            if (repeats) r = to_int3(*repeats, "repeats");
            if (size_A) {
              if (size_A->size() != 3) throw std::invalid_argument("size_A is (x, y, thickness) in Å");
              r = repeats_for_size(s.structure.cell, (*size_A)[0], (*size_A)[1], (*size_A)[2]);
            }
            return tile(s, r[0], r[1], r[2]);
          },
          py::arg("path"), py::arg("zone_axis") = py::none(), py::arg("repeats") = py::none(), py::arg("size_A") = py::none(),
          "A structure file as a specimen: with zone_axis the crystal is oriented along it (read_crystal + "
          "orient_along); then tiled by repeats (nx, ny, nz) or to the nearest size_A (x, y, thickness).");
}

/// The builders (perovskite, film, stacking fault, nanoparticle, demo) and element names.
void bind_builders(py::module_& mod) {
  mod.def("perovskite",
          [](std::uint64_t seed, std::uint64_t sample, const py::kwargs& kw) { return build_perovskite(perovskite_params(kw, false), seed, sample); },
          py::arg("seed") = 0, py::arg("sample") = 0,
          "Cubic perovskite ABO3 supercell. Keywords: a (Å), A, B (element, or [(element, fraction), ...]), O, "
          "repeats=(nx, ny, nz), arrangement ('random', 'layered', 'clustered'), layer_axis, correlation_length, "
          "vacancy_order, vacancy_axis.");
  mod.def("film_on_substrate",
          [](const py::dict& substrate, const py::dict& film, int substrate_cells, int film_cells, double poisson,
             double vacuum, std::uint64_t seed, std::uint64_t sample) {
            FilmParams p;
            p.substrate = perovskite_params(substrate, false);
            p.film = perovskite_params(film, false);
            p.substrate_cells = substrate_cells, p.film_cells = film_cells, p.poisson = poisson, p.vacuum = vacuum;
            return build_film_on_substrate(p, seed, sample);
          },
          py::arg("substrate") = py::dict(), py::arg("film") = py::dict(), py::arg("substrate_cells") = 6,
          py::arg("film_cells") = 6, py::arg("poisson") = 0.3, py::arg("vacuum") = 0.0, py::arg("seed") = 0,
          py::arg("sample") = 0,
          "Coherent perovskite film on a perovskite substrate stacked along +y; substrate and film are dicts of "
          "perovskite() keywords (the substrate's repeats set x and z).");
  mod.def("fcc_stacking_fault",
          [](double a, const py::object& el, int planes, int fault_after, int repeats_x, int repeats_z) {
            StackingFaultParams p;
            p.a = a, p.Z = to_Z(el), p.planes = planes, p.fault_after = fault_after, p.repeats_x = repeats_x, p.repeats_z = repeats_z;
            return build_fcc_stacking_fault(p);
          },
          py::arg("a") = 4.078, py::arg("element") = "Au", py::arg("planes") = 14, py::arg("fault_after") = 6,
          py::arg("repeats_x") = 2, py::arg("repeats_z") = 4);
  mod.def("nanoparticle_on_support",
          [](double a, const py::object& el, const py::object& zone_axis, const std::string& shape, double radius,
             double cell_x, double cell_y, double support_thickness, const py::object& support_el, double gap,
             std::uint64_t seed, std::uint64_t sample) {
            NanoparticleParams p;
            p.a = a, p.Z = to_Z(el), p.zone_axis = to_int3(zone_axis, "zone_axis");
            p.shape = parse_enum("particle shape", shape, kParticle);
            p.radius = radius, p.cell_x = cell_x, p.cell_y = cell_y, p.support_thickness = support_thickness;
            p.support_Z = to_Z(support_el), p.gap = gap;
            return build_nanoparticle_on_support(p, seed, sample);
          },
          py::arg("a") = 4.078, py::arg("element") = "Au", py::arg("zone_axis") = py::make_tuple(1, 1, 0),
          py::arg("shape") = "cuboctahedron", py::arg("radius") = 10.0, py::arg("cell_x") = 40.0, py::arg("cell_y") = 40.0,
          py::arg("support_thickness") = 30.0, py::arg("support_element") = "C", py::arg("gap") = 2.0,
          py::arg("seed") = 0, py::arg("sample") = 0);
  mod.def("demo_specimen", &demo_specimen, py::arg("cells_x") = 8, py::arg("cells_y") = 8, py::arg("cells_z") = 2,
          py::arg("amorphous_fraction") = 0.25, py::arg("sr_vacancies") = 0.05, py::arg("seed") = 0,
          "SrTiO3 (a = 3.905 Å) cells_x × cells_y × cells_z cells viewed along [001], the left "
          "amorphous_fraction of it (along x) amorphous, and a fraction sr_vacancies of the crystalline Sr "
          "atoms removed (their sites are in vacancy_positions).");
  mod.def("element_symbol", &element_symbol, py::arg("Z"));
  mod.def("atomic_number", &atomic_number, py::arg("symbol"));
  mod.def("class_names", &default_class_names, "Specimen class names indexed by id.");
}

/// The physics detectors (classes and their short constructors).
void bind_detectors(py::module_& mod) {
  py::class_<AnnularDetector>(mod, "AnnularDetector")
      .def(py::init([](std::string name, double inner, double outer, std::optional<std::pair<double, double>> az) {
             return AnnularDetector{std::move(name), inner, outer, az};
           }),
           py::arg("name") = "haadf", py::arg("inner_mrad") = 70.0, py::arg("outer_mrad") = 200.0, py::arg("azimuth_deg") = py::none())
      .def_readwrite("name", &AnnularDetector::name)
      .def_readwrite("inner_mrad", &AnnularDetector::inner_mrad)
      .def_readwrite("outer_mrad", &AnnularDetector::outer_mrad)
      .def_readwrite("azimuth_deg", &AnnularDetector::azimuth_deg)
      .def("__repr__", [](const AnnularDetector& d) {
        return "annular('" + d.name + "', " + std::to_string(d.inner_mrad) + ", " + std::to_string(d.outer_mrad) + ")";
      });
  py::class_<RadialDetector>(mod, "RadialDetector")
      .def(py::init([](std::string name, double step, double max) { return RadialDetector{std::move(name), step, max}; }),
           py::arg("name") = "radial", py::arg("step_mrad") = 1.0, py::arg("max_mrad") = 0.0)
      .def_readwrite("name", &RadialDetector::name)
      .def_readwrite("step_mrad", &RadialDetector::step_mrad)
      .def_readwrite("max_mrad", &RadialDetector::max_mrad);
  py::class_<SegmentedDetector>(mod, "SegmentedDetector")
      .def(py::init([](std::string name, std::vector<double> edges, std::size_t segments, double rotation) {
             return SegmentedDetector{std::move(name), std::move(edges), segments, rotation};
           }),
           py::arg("name") = "dpc", py::arg("ring_edges_mrad") = std::vector<double>{10, 20}, py::arg("segments") = 4,
           py::arg("rotation_deg") = 0.0)
      .def_readwrite("name", &SegmentedDetector::name)
      .def_readwrite("ring_edges_mrad", &SegmentedDetector::ring_edges_mrad)
      .def_readwrite("segments", &SegmentedDetector::segments)
      .def_readwrite("rotation_deg", &SegmentedDetector::rotation_deg);
  py::class_<ComDetector>(mod, "ComDetector")
      .def(py::init([](std::string name) { return ComDetector{std::move(name)}; }), py::arg("name") = "com")
      .def_readwrite("name", &ComDetector::name);
  py::class_<PixelatedDetector>(mod, "PixelatedDetector")
      .def(py::init([](std::string name, double max_angle, std::size_t bin) { return PixelatedDetector{std::move(name), max_angle, bin}; }),
           py::arg("name") = "pattern", py::arg("max_angle_mrad") = 0.0, py::arg("bin") = 1)
      .def_readwrite("name", &PixelatedDetector::name)
      .def_readwrite("max_angle_mrad", &PixelatedDetector::max_angle_mrad)
      .def_readwrite("bin", &PixelatedDetector::bin);
  mod.def("annular", [](std::string name, double inner, double outer, std::optional<std::pair<double, double>> az) {
            return AnnularDetector{std::move(name), inner, outer, az};
          },
          py::arg("name"), py::arg("inner_mrad"), py::arg("outer_mrad"), py::arg("azimuth_deg") = py::none(),
          "Annular detector inner ≤ θ < outer (mrad): HAADF, ADF, ABF, BF.");
  mod.def("radial", [](std::string name, double step, double max) { return RadialDetector{std::move(name), step, max}; },
          py::arg("name") = "radial", py::arg("step_mrad") = 1.0, py::arg("max_mrad") = 0.0);
  mod.def("segmented", [](std::string name, std::vector<double> edges, std::size_t segments, double rotation) {
            return SegmentedDetector{std::move(name), std::move(edges), segments, rotation};
          },
          py::arg("name") = "dpc", py::arg("ring_edges_mrad") = std::vector<double>{10, 20}, py::arg("segments") = 4,
          py::arg("rotation_deg") = 0.0, "Segmented (DPC) detector: rings × segments, images name_<bin>.");
  mod.def("com", [](std::string name) { return ComDetector{std::move(name)}; }, py::arg("name") = "com",
          "Centre of mass (mrad): images name_x, name_y and the integrated name_idpc.");
  mod.def("pixelated", [](std::string name, double max_angle, std::size_t bin) { return PixelatedDetector{std::move(name), max_angle, bin}; },
          py::arg("name") = "pattern", py::arg("max_angle_mrad") = 0.0, py::arg("bin") = 1,
          "4D-STEM camera (probe_at / scan_points / simulate_stem patterns).");
}

/// The lazily generated World (world.hpp).
void bind_world(py::module_& mod) {
  py::class_<World>(mod, "World",
                    "A specimen micrometres wide made lazily from a seed (docs/specimens.md, 'The world'): a SrTiO3 "
                    "lamella with an amorphous edge, an LSFO-like film in grains, a carbon cap, Au particles on a carbon "
                    "support. Atoms exist only for the windows asked for (atoms_in).")
      .def(py::init([](std::uint64_t seed, const py::kwargs& kw) {
             WorldParams p;
             for (const auto& item : kw) {
               const std::string key = py::str(item.first);
               const auto rows = world_rows();  // key_reader.hpp: the scenario builder's world keys
               const auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return key == r.key.path; });
               if (it == rows.end())
                 throw py::key_error("World: unknown parameter '" + key + "' (known: " + key_list(world_keys()) + ")");
               set_from_python(*it, p, item.second);
             }
             return World(p, seed);
           }),
           py::arg("seed") = 0, "World(seed=0, **params): params are the scenario builder's keys (thickness, width, film, ...), Å.")
      .def_property_readonly("seed", &World::seed)
      .def_property_readonly("extent", [](const World& w) { const Cell c = w.extent(); return py::make_tuple(c.x, c.y, c.z); },
                             "(width, height, thickness) Å")
      .def("material_at", [](const World& w, double x, double y) { return class_name(w.material_at(x, y)); }, py::arg("x"), py::arg("y"),
           "The region's class name at (x, y) Å: vacuum, amorphous, crystal, film, support, particle.")
      .def("thickness_at", &World::thickness_at, py::arg("x"), py::arg("y"))
      .def("areal_density",
           [](const World& w, double x, double y) {
             py::dict d;
             const ArealDensity a = w.areal_density(x, y);
             for (std::size_t i = 0; i < a.n; ++i) d[py::str(element_symbol(a.Z[i]))] = a.per_A2[i];
             return d;
           },
           py::arg("x"), py::arg("y"), "{element: atoms per Å² projected along the beam} at (x, y)")
      .def("atoms_in", [](const World& w, double x0, double y0, double wx, double wy) { return w.atoms_in({x0, y0, wx, wy}); },
           py::arg("x0"), py::arg("y0"), py::arg("wx"), py::arg("wy"),
           "Specimen of the atoms with x in [x0, x0 + wx), y in [y0, y0 + wy) (world coordinates, Å).")
      .def("estimated_atoms", [](const World& w, double x0, double y0, double wx, double wy) { return w.estimated_atoms({x0, y0, wx, wy}); },
           py::arg("x0"), py::arg("y0"), py::arg("wx"), py::arg("wy"));
}

}  // namespace

void bind_specimens(py::module_& mod) {
  // Order matters: types used as default arguments are registered before their users.
  bind_specimen_classes(mod);
  bind_structure_files(mod);
  bind_builders(mod);
  bind_detectors(mod);
  bind_world(mod);
}

}  // namespace stemtwin::py_bindings
