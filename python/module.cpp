// The stemtwin Python module: its entry point. The bindings are split by subsystem
// (bind_specimens.cpp, bind_instrument.cpp, bind_datasets.cpp); shared helpers and the
// module-wide notes on arrays, threads and errors are in bindings.hpp.
#include "bindings.hpp"

using namespace stemtwin::py_bindings;

PYBIND11_MODULE(stemtwin, mod) {
  mod.doc() =
      "stemtwin: a digital twin of a scanning transmission electron microscope.\n\n"
      "Microscope(specimen, **settings) is a session: move_stage, set_defocus, set_detectors,\n"
      "set_scan, scan() -> dict of numpy images, probe_at(x, y) -> diffraction pattern,\n"
      "dose_map(), status(). Specimens come from files (load_specimen) or builders\n"
      "(perovskite, film_on_substrate, Specimen.amorphize/add_vacancies/add_dopants, demo_specimen).\n"
      "run_scenario(yaml, output) writes a labelled HDF5 dataset; Dataset(path) reads one.\n"
      "Units: Å, mrad, eV, pA, µs. Arrays are [y][x] (x fast).";

#ifdef STEMTWIN_VERSION
  mod.attr("__version__") = STEMTWIN_VERSION;
#endif

  // Order matters: types used as default arguments are registered before their users.
  bind_specimens(mod);
  bind_instrument(mod);
  bind_datasets(mod);
}
