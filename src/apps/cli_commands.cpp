#include "stemtwin/apps/cli_commands.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <iomanip>
#include <map>
#include <sstream>

#include "stemtwin/dataset/axes.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_checks.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace stemtwin {

namespace {

std::string describe(const Distribution& d) {
  std::ostringstream o;
  o.precision(6);
  auto list = [&](const char* kind) {
    o << kind << " [";
    for (std::size_t i = 0; i < d.options.size(); ++i) {
      if (i) o << ", ";
      if (d.options[i].is_text) o << d.options[i].text;
      else o << d.options[i].number;
    }
    o << ']';
  };
  switch (d.kind) {
    case Distribution::Kind::Fixed: list("fixed"); break;
    case Distribution::Kind::Uniform: o << "uniform [" << d.a << ", " << d.b << ')'; break;
    case Distribution::Kind::Normal: o << "normal mean " << d.a << " sd " << d.b; break;
    case Distribution::Kind::LogUniform: o << "loguniform [" << d.a << ", " << d.b << ')'; break;
    case Distribution::Kind::Choice: list("choice"); break;
    case Distribution::Kind::Sweep: list("sweep"); break;
  }
  return o.str();
}

}  // namespace

int cmd_info(const std::string& path, std::ostream& out, std::ostream& err) {
  try {
    const DatasetReader r(path);
    const DatasetLayout& L = r.layout();
    out << path << ": stemtwin dataset (version " << r.version() << ", created " << r.created() << ")\n";
    out << "  scenario:  " << L.scenario_name << ", seed " << L.seed << "\n";
    out << "  samples:   " << r.size() << " complete";
    if (L.shard.count > 1) out << " in shard " << L.shard.index << '/' << L.shard.count;
    out << " of " << L.total_samples << " in the scenario\n";
    out << "  scan:      " << L.nx << " x " << L.ny << " pixels (nx x ny)\n";
    out << "  images:    ";
    for (const auto& c : L.images) out << c << ' ';
    out << (L.store_clean ? "(acquired + clean)" : "(acquired)") << "  float32 [" << r.size() << ", " << L.ny << ", "
        << L.nx << "]\n";
    for (const auto& rl : L.radial)
      out << "  radial:    " << rl.name << " " << rl.bins() << " bins " << rl.edges.front() << "–" << rl.edges.back()
          << " mrad\n";
    for (const auto& d : L.diffraction)
      out << "  diffraction: " << d.name << " [" << r.size() << ", " << L.ny << ", " << L.nx << ", " << d.ky << ", "
          << d.kx << "] at " << d.sampling_x << " x " << d.sampling_y << " mrad/pixel\n";
    if (!L.params.empty()) out << "  params:    (min / mean / max over complete samples)\n";
    for (const auto& p : L.params) {
      const auto v = r.param(p.name);
      if (v.empty()) {
        out << "    " << p.name << '\n';
        continue;
      }
      double s = 0;
      for (double x : v) s += x;
      const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
      out << "    " << std::left << std::setw(40) << p.name << std::right << ' ' << *mn << " / "
          << s / static_cast<double>(v.size()) << " / " << *mx;
      if (!p.categories.empty()) {
        out << "  (";
        for (std::size_t i = 0; i < p.categories.size(); ++i) out << (i ? ", " : "") << i << '=' << p.categories[i];
        out << ')';
      }
      out << '\n';
    }
    if (L.has_class) {
      std::map<int, std::size_t> counts;
      for (std::size_t i = 0; i < r.size(); ++i) ++counts[r.class_id(i)];
      out << "  classes:  ";
      for (const auto& [c, n] : counts) {
        const std::string name =
            c >= 0 && static_cast<std::size_t>(c) < L.class_names.size() ? L.class_names[c] : std::to_string(c);
        out << ' ' << name << ": " << n;
      }
      out << '\n';
    }
    for (const auto& m : L.masks)
      out << "  mask:      " << m.name << (m.type == MaskType::UInt8 ? " uint8" : " int16") << " [" << r.size() << ", "
          << L.ny << ", " << L.nx << "]\n";
    if (L.columns) {
      // The species that occur (a layout may name every element; the legend shows what is there).
      std::map<int, std::size_t> occur;
      for (std::size_t i = 0; i < r.size(); ++i)
        for (const auto& c : r.columns(i)) ++occur[c.species];
      out << "  columns:   " << r.column_count() << " labelled columns";
      if (!occur.empty()) {
        out << ", species";
        for (const auto& [s, n] : occur)
          out << ' ' << s << '=' << (s >= 0 && static_cast<std::size_t>(s) < L.species.size() ? L.species[s] : "?")
              << " (" << n << ')';
      }
      out << '\n';
    }
    out << "  calibrations (axes of every array; HDF5 dimension scales under /axes):\n";
    const Calibration cal = calibration_for(L);
    if (cal.energy_eV) out << "    beam energy " << *cal.energy_eV * 1e-3 << " keV (k = θ/λ, λ from it)\n";
    for (const auto& a : dataset_arrays(L, cal, r.size())) {
      out << "    " << std::left << std::setw(22) << a.path << std::right << " [" << (a.units.empty() ? "label values" : a.units)
          << "]";
      for (const auto& ax : a.axes) {
        out << "  " << ax.name;
        if (ax.name == "sample") continue;
        out << ' ' << ax.size << " x ";
        if (ax.values.empty()) out << ax.scale << ' ' << ax.units << " from " << ax.offset;
        else out << "(" << ax.values.front() << "…" << ax.values.back() << ") " << ax.units;
        if (!ax.alt_name.empty()) out << " (" << ax.alt_scale << ' ' << ax.alt_units << ')';
      }
      out << '\n';
    }
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin info: " << e.what() << '\n';
    return 1;
  }
}

int cmd_preview(const std::string& dataset, const std::string& png, std::size_t samples, bool clean, std::ostream& out,
                std::ostream& err) {
  PreviewOptions o;
  o.samples = samples;
  o.clean = clean;
  return cmd_preview(dataset, png, o, out, err);
}

int cmd_preview(const std::string& dataset, const std::string& png, const PreviewOptions& o, std::ostream& out,
                std::ostream& err) {
  try {
    const DatasetReader r(dataset);
    const RgbImage sheet = render_contact_sheet(r, o);
    write_png(png, sheet);
    out << "wrote " << png << " (" << sheet.width << " x " << sheet.height << "): " << std::min(o.samples, r.size())
        << " samples\n";
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin preview: " << dataset << ": " << e.what() << '\n';
    return 1;
  }
}

int cmd_show(const std::string& dataset, std::size_t row, const std::string& png, const PreviewOptions& o,
             std::ostream& out, std::ostream& err) {
  try {
    const DatasetReader r(dataset);
    const RgbImage sheet = render_sample_sheet(r, row, o);
    write_png(png, sheet);
    out << "wrote " << png << " (" << sheet.width << " x " << sheet.height << "): sample " << r.sample_index(row)
        << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin show: " << dataset << ": " << e.what() << '\n';
    return 1;
  }
}

int cmd_export(const std::string& dataset, const std::string& output, const ExportOptions& o, std::ostream& out,
               std::ostream& err) {
  try {
    const ExportReport rep = export_dataset(dataset, output, o);
    out << "wrote " << output << " (" << to_string(o.format) << "): " << rep.samples << " samples of";
    for (const auto& a : rep.arrays) out << ' ' << a;
    out << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin export: " << e.what() << '\n';
    return 1;
  }
}

int cmd_validate(const std::string& scenario, std::ostream& out, std::ostream& err) {
  try {
    const ScenarioSpec s = parse_scenario_file(scenario);
    // The structure file is read too (not tiled): a malformed one is named by its own
    // file:line now rather than when a run starts.
    if (!s.specimen.structure.empty()) {
      const StructureFormat f = detect_format(s.specimen.structure);
      if (f == StructureFormat::Cif || f == StructureFormat::Poscar) (void)read_crystal(s.specimen.structure);
      else (void)read_structure(s.specimen.structure);
    }
    // Everything `run` would refuse before it starts, before "valid" is printed: every draw,
    // the builder's and acquisition's keys, the band limit, thermal settings, 4D pattern
    // shapes and the memory of the largest samples.
    const std::size_t n = std::min<std::size_t>(s.total_samples(), 100000);
    for (std::size_t i = 0; i < n; ++i) (void)sample_parameters(s, i);
    check_physics_keys(s);
    const ScenarioCheck checked = check_scenario_physics(s);
    (void)check_run(s);
    const SampledScenario s0 = sample_parameters(s, 0);
    out << scenario << ": valid\n";
    out << "  name:     " << s.name << ", seed " << s.seed << "\n";
    out << "  samples:  " << s.total_samples() << " = " << s.samples << " x sweep grid " << s.grid_size() << "\n";
    out << "  specimen: "
        << (s.specimen.structure.empty() ? "builder " + s.specimen.builder_type : s.specimen.structure) << "\n";
    out << "  scan:     " << s0.scan.nx << " x " << s0.scan.ny << " positions, step " << s0.scan.step_x << " x "
        << s0.scan.step_y << " Å\n";
    out << "  detectors:";
    for (const auto& d : s.detectors) out << ' ' << d.name << " (" << to_string(d.type) << ')';
    out << "\n  simulation: " << s.simulation.method << ", " << s.simulation.parametrization << ", "
        << s.simulation.projection << " projection\n";
    out << "  acquisition: " << (s.acquisition ? "on" : "absent (images = clean signals)") << "\n";
    const auto sampled = s.sampled();
    out << "  sampled parameters: " << sampled.size() << "\n";
    for (const Distribution* d : sampled) out << "    " << d->source.path << ": " << describe(*d) << "\n";
    out << "  sampling: " << (s.simulation.auto_sampling ? "auto, " : "") << checked.sampling_A
        << " Å for sample 0 (band limit ≥ " << checked.band_limit_mrad << " mrad)\n";
    for (const CountEstimate& c : checked.counts)
      out << "  expected counts per pixel, " << c.detector << ": " << c.counts_per_pixel << " (" << c.fraction
          << " of the beam; kinematic estimate)\n";
    for (const std::string& w : checked.warnings) err << "stemtwin validate: warning: " << w << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin validate: " << e.what() << '\n';
    return 1;
  }
}

int cmd_merge(const std::vector<std::string>& inputs, const std::string& output, bool force, std::ostream& out,
              std::ostream& err) {
  try {
    const MergeReport rep = merge_datasets(inputs, output, force);
    out << "wrote " << output << ": " << rep.samples << " samples from " << inputs.size() << " files\n";
    if (rep.missing > 0)
      err << "stemtwin merge: warning: " << rep.missing << " samples of the scenario are in none of the inputs "
          << "(unfinished shards? resume them and merge again)\n";
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin merge: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace stemtwin
