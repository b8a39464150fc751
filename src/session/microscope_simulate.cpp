// Microscope::Impl: clean signals simulated in blocks of positions (cancellable, with
// progress), the clean-signal cache, and method auto's choice per window.
#include <algorithm>
#include <optional>
#include <string>
#include <omp.h>

#include "microscope_impl.hpp"
#include "stemtwin/physics/windowed.hpp"

namespace stemtwin {

StemResult Microscope::Impl::simulate_cached(const Snapshot& sn, Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets, bool& hit,
                                             const AcquisitionControl& ctl, std::size_t& simulated, const BlockHook& on_block) {
  const std::string key = physics_key(sn.effective_probe(), dets);
  for (auto it = clean_cache.begin(); it != clean_cache.end(); ++it)
    if (it->window == &w && it->specimen_version == specimen_version && it->key == key && it->positions.size() == pos.size() &&
        std::equal(pos.begin(), pos.end(), it->positions.begin(), [](Point2 a, Point2 b) { return a.x == b.x && a.y == b.y; })) {
      clean_cache.splice(clean_cache.begin(), clean_cache, it);
      hit = true;
      simulated = pos.size();
      return clean_cache.front().result;
    }
  hit = false;
  StemResult r = simulate(sn, w, pos, dets, nullptr, ctl, simulated, nullptr, on_block);
  clean_cache.push_front({&w, specimen_version, key, pos, r});
  while (clean_cache.size() > 4) clean_cache.pop_back();
  return r;
}

std::vector<SMatrix>* Microscope::Impl::auto_method(Window& w, const ProbeOptics& probe, const std::vector<Point2>& local,
                                                    const std::vector<Detector>& dets, FrameMethod& frame) {
  Structure cell_only;  // plan_auto reads the thickness (and the cell for its window plan)
  cell_only.cell = {w.wx, w.wy, specimen.structure.cell.z};
  StemSettings ast;
  ast.potential = settings.potential;
  ast.budget = settings.budget;
  ast.phonon_configurations = w.configs.size();
  const AutoPlan plan = plan_auto(cell_only, w.grid, probe, local, dets, ast, /*no windowed candidate*/ true);
  AutoChoice c = plan.choice;
  std::vector<SMatrix>* S = nullptr;
  if (plan.calibrate) {
    const std::string key = physics_key(probe, dets);
    auto it = w.auto_choices.find(key);
    if (it == w.auto_choices.end()) {
      std::vector<SMatrix> accepted;
      std::optional<StemResult> reference;
      calibrate_prism(w.configs, *w.fft, probe, local, dets, ast, plan.prism_factors, false, c, accepted, reference);
      if (c.method == Method::Prism) w.auto_smatrices[key] = std::move(accepted);
      it = w.auto_choices.emplace(key, c).first;
    } else {
      c = it->second;
      c.from_cache = true;
    }
    if (c.method == Method::Prism) S = &w.auto_smatrices[key];
  }
  frame.method = c.method == Method::Prism ? "prism" : "multislice";
  frame.interpolation = c.method == Method::Prism ? c.interpolation : 1;
  frame.calibrated = c.calibrated;
  frame.mean_error = c.measured_mean_error;
  frame.correlation = c.measured_correlation;
  return S;
}

StemResult Microscope::Impl::simulate(const Snapshot& sn, Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets,
                                      PatternSink* sink, const AcquisitionControl& ctl, std::size_t& simulated,
                                      ElementIntensity* inelastic, const BlockHook& on_block) {
  std::vector<Point2> local(pos.size());
  for (std::size_t i = 0; i < pos.size(); ++i) local[i] = {pos[i].x - w.x0, pos[i].y - w.y0};
  StemSettings st;
  st.potential = settings.potential;
  st.pattern_block = 64;
  const ProbeOptics probe = sn.effective_probe();
  std::vector<SMatrix>* S = nullptr;
  std::optional<SpectraRecording> rec;
  if (inelastic) {
    Structure atoms = static_atoms(window_atoms_of(w));
    const std::vector<int> elements = elements_of(atoms);
    rec.emplace(std::move(atoms), settings.seed, inelastic_settings(sn.spectrometers, elements), *inelastic);
  }
  // Spectra need the wave inside the specimen: whole-window multislice whatever the method.
  FrameMethod frame;
  if (settings.method == Method::Prism && !inelastic) {
    const std::size_t f = std::max<std::size_t>(1, settings.prism_interpolation);
    S = &w.smatrices[probe.semiangle_mrad];
    if (S->empty())
      for (const Transmission& t : w.configs) S->push_back(build_smatrix(t, probe.semiangle_mrad, f, f, {}, *w.fft));
    frame.method = "prism";
    frame.interpolation = f;
  } else if (settings.method == Method::Auto && !inelastic) {
    S = auto_method(w, probe, local, dets, frame);
  }
  // Method::Windowed (windowed.hpp): each tile of positions on a window of its own around the
  // probe instead of the whole simulated window — for a static specimen and detectors that
  // are not pixelated (no pattern stream, no spectra); its potentials are built per tile.
  const bool windowed = settings.method == Method::Windowed && !sink && !inelastic && w.configs.size() == 1 &&
                        std::none_of(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<PixelatedDetector>(d); });
  if (windowed) frame.method = "windowed";
  {
    std::lock_guard<std::mutex> lock(state);
    last_frame = frame;
  }
  std::optional<Structure> window_atoms;
  if (windowed) window_atoms = window_atoms_of(w);
  // Blocks of 4 positions per thread: ~1 s of work each for a default window at 0.05 Å.
  // Windowed: a fixed 256 (its tiles follow the block's positions, so the block must not
  // depend on the thread count for the same bytes on any thread count). Measured on 16 × 16
  // frames (bench_session_methods.py): blocks of 256 ×3.5 faster than multislice, of 64 only
  // ×2.2 (more tiles, each building its potential); the price is that a cancelled scan stops
  // only after its block (~10 s under load).
  const std::size_t block = windowed ? 256 : std::max<std::size_t>(8, 4 * std::size_t(omp_get_max_threads()));
  StemResult all;
  simulated = 0;
  total_positions.store(pos.size());
  for (std::size_t first = 0; first < local.size(); first += block) {
    if (stop_requested(sn, ctl)) throw AcquisitionCancelled("acquisition cancelled after " + std::to_string(first) + " of " +
                                                            std::to_string(local.size()) + " positions");
    const std::vector<Point2> part(local.begin() + long(first), local.begin() + long(std::min(local.size(), first + block)));
    OffsetSink os;
    os.inner = sink;
    os.offset = first;
    PatternSink* s = sink ? &os : nullptr;
    StemResult r = S ? scan_prism(*S, probe, part, dets, st, s)
                     : window_atoms ? simulate_windowed(*window_atoms, w.grid, probe, part, dets, st)
                     : rec ? rec->scan(w.configs, probe, part, dets, st, *w.fft, s)
                           : scan_multislice(w.configs, probe, part, dets, st, *w.fft, s);
    if (first == 0) {
      all = std::move(r);
    } else {
      for (std::size_t k = 0; k < all.signals.size(); ++k)
        all.signals[k].values.insert(all.signals[k].values.end(), r.signals[k].values.begin(), r.signals[k].values.end());
    }
    simulated = first + part.size();
    done_positions.store(simulated);
    if (on_block) on_block(all, simulated);
    if (ctl.progress) ctl.progress(simulated, local.size());
  }
  return all;
}

}  // namespace stemtwin
