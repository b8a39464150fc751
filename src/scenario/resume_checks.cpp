#include "stemtwin/scenario/resume_checks.hpp"

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

namespace stemtwin {

void check_resume_fft_plan(const ScenarioSpec& spec, const std::string& path, Shard shard) {
  if (!std::filesystem::exists(path) || unfinished_dataset(path)) return;
  std::string plans;
  {
    const h5::Handle f = h5::open_file(path, false);
    if (!h5::has_attr(f, "fft_plan")) return;
    plans = h5::read_attr_string(f, "fft_plan");
  }
  if (plans.empty()) return;
  const DatasetReader r(path);
  const DatasetLayout& L = r.layout();
  if (r.size() == 0 || r.scenario_text() != spec.text || L.shard.index != shard.index || L.shard.count != shard.count)
    return;
  const std::size_t row = r.size() - 1;
  for (const ParameterInfo& p : L.params)
    if (p.name == "method") {
      const double m = r.param("method")[row];
      if (m >= 0 && std::size_t(m) < p.categories.size() && p.categories[std::size_t(m)] == "windowed") return;
    }
  const std::size_t index = r.sample_index(row);
  const SampledScenario s = sample_parameters(spec, index);
  const Grid grid = simulation_grid(s, build_specimen(s).structure.cell);
  const StemSettings st = stem_settings(s);
  const std::string mine = Fft2(grid, st.planning, st.fftw_wisdom_file).plan_id();
  // Each recorded plan starts with the full grid's plan (multislice: the whole id; PRISM:
  // the S-matrix plan before '/').
  std::istringstream words(plans);
  for (std::string w; words >> w;)
    if (w.substr(0, w.find_first_of("/+")) == mine) return;
  std::ostringstream m;
  m << "--resume: '" << path << "' was written with FFT plan(s) " << plans << " but this machine plans " << mine
    << " for sample " << index << "'s " << grid.nx << " x " << grid.ny
    << " grid: the resumed samples would not have the bytes of an uninterrupted run (another machine, FFTW or wisdom file; "
       "STEMTWIN_FFTW_WISDOM; docs/physics.md, \"FFT plans and reproducibility\"). Resume where the file was written, with "
       "its wisdom file, or start again with --force";
  throw std::runtime_error(m.str());
}

}  // namespace stemtwin
