#include "stemtwin/session/serve.hpp"

#include <algorithm>
#include <exception>
#include <sstream>
#include <optional>
#include <variant>
#include <stdexcept>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/session/json_rpc.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/session/microscope.hpp"
#include "stemtwin/session/rpc_server.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace stemtwin {

Specimen default_serve_specimen(std::uint64_t seed) {
  PerovskiteParams p;  // SrTiO3, a = 3.905 Å
  p.repeats = {12, 12, 2};
  Specimen s = build_perovskite(p, seed);
  AmorphousParams am;
  am.axis = 0;
  am.fraction = 0.25;
  amorphize(s, am, seed);
  add_dopants(s, 38, 57, 0.04, seed);
  add_vacancies(s, 8, 0.03, seed);
  return s;
}

namespace {
/// "MEAN[,CORRELATION]" → ErrorBudget (the rest at its defaults); throws naming the option.
ErrorBudget parse_error_budget(const std::string& text) {
  ErrorBudget b;
  std::istringstream in(text);
  std::string mean, corr;
  std::getline(in, mean, ',');
  std::getline(in, corr);
  try {
    std::size_t used = 0;
    b.mean_rel = std::stod(mean, &used);
    if (used != mean.size()) throw std::invalid_argument("");
    if (!corr.empty()) {
      b.min_correlation = std::stod(corr, &used);
      if (used != corr.size()) throw std::invalid_argument("");
    }
  } catch (const std::exception&) {
    throw std::invalid_argument("--error-budget '" + text + "': expected MEAN[,CORRELATION], e.g. 0.01,0.995");
  }
  if (!(b.mean_rel > 0 && b.mean_rel < 1)) throw std::invalid_argument("--error-budget: MEAN must be in (0, 1), e.g. 0.01");
  if (!(b.min_correlation > 0 && b.min_correlation <= 1))
    throw std::invalid_argument("--error-budget: CORRELATION must be in (0, 1], e.g. 0.995");
  return b;
}
}  // namespace

int cmd_serve(const ServeOptions& o, std::ostream& log) {
  try {
    if (!o.structure.empty() && !o.scenario.empty())
      throw std::invalid_argument("give a structure file or a scenario, not both");
    if (o.specimen != "world" && o.specimen != "crystal")
      throw std::invalid_argument("--specimen must be world or crystal (got '" + o.specimen + "')");
    Specimen specimen;
    std::optional<World> world;
    std::optional<SampledScenario> sample;
    if (!o.scenario.empty()) {
      const ScenarioSpec spec = parse_scenario_file(o.scenario);
      check_physics_keys(spec);
      sample = sample_parameters(spec, 0);
      if (sample->builder_type == "world") {
        world.emplace(world_params(*sample->builder), sample->seed);
        log << "specimen: the world of " << o.scenario << " (seed " << sample->seed << ")\n";
      } else {
        specimen = build_specimen(*sample);
        log << "specimen: sample 0 of " << o.scenario << ", " << specimen.structure.atoms.size() << " atoms\n";
      }
    } else if (o.structure.empty() && o.specimen == "world") {
      // --world-thickness below the default support and particles' room: the support film
      // and the particles shrink with it (support ≤ 30 % of the thickness, particles fit on it),
      // so a thin world is one option rather than four.
      WorldParams wp = o.world;
      const WorldParams defaults;
      if (wp.thickness_A < defaults.thickness_A && wp.thickness_A > 0) {
        wp.support_thickness_A = std::min(wp.support_thickness_A, 0.3 * wp.thickness_A);
        wp.particle_radius_max_A = std::min(wp.particle_radius_max_A, 0.45 * (wp.thickness_A - wp.support_thickness_A));
        wp.particle_radius_min_A = std::min(wp.particle_radius_min_A, wp.particle_radius_max_A);
      }
      world.emplace(wp, o.seed);
      log << "specimen: a world (seed " << o.seed << "): SrTiO3 lamella with an amorphous edge, an LSFO-like film in grains, "
          << "a carbon cap, and Au particles on a carbon support; atoms are made only where imaged at atomic resolution\n";
    } else if (o.structure.empty()) {
      specimen = default_serve_specimen(o.seed);
      log << "specimen: default SrTiO3 [001] with an amorphous region, La dopants and O vacancies, "
          << specimen.structure.atoms.size() << " atoms\n";
    } else {
      specimen = make_specimen(read_structure(o.structure));
      log << "specimen: " << o.structure << ", " << specimen.structure.atoms.size() << " atoms\n";
    }
    const Cell c = world ? world->extent() : specimen.structure.cell;
    log << "cell: " << c.x << " x " << c.y << " x " << c.z << " A\n";
    MicroscopeSettings ms;
    ms.sampling_A = o.sampling_A;
    ms.method = parse_method(o.method);
    if (!o.error_budget.empty()) ms.budget = parse_error_budget(o.error_budget);
    ms.prism_interpolation = o.prism_interpolation;
    ms.seed = o.seed;
    ms.residual_aberrations = !o.ideal_column;
    log << (o.ideal_column ? std::string("column: ideal (no residual aberrations)\n")
                           : "column: residual aberrations of a tuned corrector drawn from seed " + std::to_string(o.seed) +
                                 " (hidden; acquireTableau / measureC1A1 measure them, correctAberration corrects)\n");
    if (sample) {
      const StemSettings st = stem_settings(*sample);
      ms.sampling_A = sample->sampling;
      ms.potential = st.potential;
      ms.thermal = thermal_vibration(*sample);
      ms.method = st.method;
      if (ms.method == Method::Auto && (sample->budget_mean_rel || sample->budget_min_correlation)) ms.budget = st.budget;
      ms.prism_interpolation = st.interpolation_x;
    }
    Microscope microscope = world ? Microscope(std::move(*world), ms) : Microscope(std::move(specimen), ms);
    if (!sample) {
      // The scan device starts at the reference client's defaults (DTMicroscope's Twisted
      // server: 512 pixels over 1 µm), an overview that the incoherent model answers at once;
      // the dwell stays the session's 2 µs (the reference's 0.1 s is accepted when asked).
      ScanSettings sc = microscope.scan_settings();
      sc.nx = sc.ny = 512;
      sc.fov_x_A = sc.fov_y_A = 1e4;
      microscope.set_scan(sc);
    }
    if (sample) {
      microscope.set_optics(Optics{probe_optics(*sample), sample->current});
      bool noisy = false;
      microscope.set_acquisition(acquisition_settings(*sample, noisy));
      std::vector<Detector> annular;
      for (const Detector& d : physics_detectors(*sample))
        if (std::holds_alternative<AnnularDetector>(d)) annular.push_back(d);
      if (!annular.empty()) microscope.set_detectors(annular);
      ScanSettings sc = microscope.scan_settings();
      sc.nx = sample->scan.nx;
      sc.ny = sample->scan.ny;
      sc.fov_x_A = sample->scan.step_x * double(sample->scan.nx);
      sc.fov_y_A = sample->scan.step_y * double(sample->scan.ny);
      sc.dwell_us = sample->dwell_us;
      microscope.set_scan(sc);
      log << "session: " << ms.sampling_A << " A sampling, " << name_of(ms.method, kMethodNames)
          << ", " << sample->current << " pA, read-out " << (noisy ? "with" : "without") << " counting noise\n";
    }
    MicroscopeService service(microscope, o.limits);
    RpcDispatcher dispatcher;
    service.register_methods(dispatcher);
    RpcServerOptions ro;
    ro.host = o.host;
    ro.port = o.port;
    ro.max_connections = o.max_connections;
    ro.max_request_bytes = o.max_request_bytes;
    ro.read_timeout_s = o.read_timeout_s;
    ro.handle_signals = true;
    RpcServer server(dispatcher, ro, &log);
    log << "stemtwin serve: JSON-RPC 2.0 in netstrings on " << o.host << ":" << server.port()
        << " (DTMicroscope TEM client protocol; docs/server.md). Ctrl-C stops.\n"
        << std::flush;
    if (o.on_listening) o.on_listening(server.port());
    server.run();
    return 0;
  } catch (const std::exception& e) {
    log << "stemtwin serve: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace stemtwin
