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
                                             const AcquisitionControl& ctl, Visited& visited, const BlockHook& on_block) {
  const std::string key = physics_key(sn.effective_probe(), dets);
  for (auto it = clean_cache.begin(); it != clean_cache.end(); ++it)
    if (it->window == &w && it->specimen_version == specimen_version && it->key == key && it->positions.size() == pos.size() &&
        std::equal(pos.begin(), pos.end(), it->positions.begin(), [](Point2 a, Point2 b) { return a.x == b.x && a.y == b.y; })) {
      clean_cache.splice(clean_cache.begin(), clean_cache, it);
      hit = true;
      visited = Visited{{}, pos.size()};
      return clean_cache.front().result;
    }
  hit = false;
  StemResult r = simulate(sn, w, pos, dets, nullptr, ctl, visited, nullptr, on_block);
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
  ast.symmetry_reuse = false;  // the session's multislice simulates every position (cell_only has no atoms to test)
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
                                      PatternSink* sink, const AcquisitionControl& ctl, Visited& visited,
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
  // Method::Windowed (windowed.hpp): each tile of positions on a window of its own around the
  // probe instead of the whole simulated window — for a static specimen and detectors that
  // are not pixelated (no pattern stream); spectra ride on it (the recorder reads each tile's
  // window). Its potentials are built per tile, so the window's own transmission functions
  // are never built. Every other path needs them.
  const bool windowed = settings.method == Method::Windowed && !sink && w.configurations == 1 &&
                        std::none_of(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<PixelatedDetector>(d); });
  if (!windowed) transmissions(w);
  // Spectra need the wave inside the specimen: windowed multislice as above, else
  // whole-window multislice whatever the method (never PRISM or auto's calibration).
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
  if (windowed) frame.method = "windowed";
  {
    std::lock_guard<std::mutex> lock(state);
    last_frame = frame;
  }
  std::optional<Structure> window_atoms;
  if (windowed) window_atoms = window_atoms_of(w);
  // Blocks of 4 positions per thread: ~1 s of work each for a default window at 0.05 Å.
  // Windowed: blocks of whole tiles of the frame's own tiling (the tile side planned for
  // all its positions, then fixed for every block), at least 256 positions each and
  // independent of the thread count (the same bytes on any); so every tile's window and
  // potential is built once per frame (tiles over 1024 positions in parts of 1024, so a
  // cancelled scan stops after at most ~1024 positions). Blocks cut in scan order split
  // each tile into strips of rows that each built the tile's potential again.
  const std::size_t block = std::max<std::size_t>(8, 4 * std::size_t(omp_get_max_threads()));
  std::vector<std::size_t> order, starts;  // positions in simulation order; where each block starts
  if (windowed) {
    st.window.tile_A = plan_window(w.grid, probe, window_atoms->cell.z, local, st).tile_A;
    for (const auto& tile : window_tiles(w.grid, local, st.window.tile_A))
      for (std::size_t i = 0; i < tile.size(); ++i) {  // a tile over 1024 positions in parts (cancellation)
        if (starts.empty() || (i == 0 && order.size() - starts.back() >= 256) || (i > 0 && i % 1024 == 0))
          starts.push_back(order.size());
        order.push_back(tile[i]);
      }
  } else {
    for (std::size_t i = 0; i < local.size(); ++i) order.push_back(i);
    for (std::size_t first = 0; first < local.size(); first += block) starts.push_back(first);
  }
  // Windowed blocks finish in tile order. `slot`: a position's place in simulation order;
  // in_scan_order(sim, n_sim, n): the first n positions in scan order (all among sim's n_sim).
  std::vector<std::size_t> slot(local.size());
  for (std::size_t i = 0; i < order.size(); ++i) slot[order[i]] = i;
  const auto in_scan_order = [&slot](const StemResult& sim, std::size_t n_sim, std::size_t n) {
    StemResult out = sim;
    for (std::size_t k = 0; k < out.signals.size(); ++k) {
      const std::vector<double>& src = sim.signals[k].values;
      const std::size_t bins = src.size() / std::max<std::size_t>(1, n_sim);
      std::vector<double> v(n * bins);
      for (std::size_t j = 0; j < n; ++j) std::copy_n(src.begin() + long(slot[j] * bins), bins, v.begin() + long(j * bins));
      out.signals[k].values = std::move(v);
    }
    return out;
  };
  std::vector<char> done(local.size(), 0);
  std::size_t prefix = 0;  // positions finished in scan order, from the first
  StemResult all;
  visited = Visited{};
  if (windowed) visited.order = order;  // blocks of whole tiles: the positions exposed are these, in this order
  total_positions.store(pos.size());
  for (std::size_t b = 0; b < starts.size(); ++b) {
    const std::size_t first = starts[b], last = b + 1 < starts.size() ? starts[b + 1] : local.size();
    if (stop_requested(sn, ctl)) throw AcquisitionCancelled("acquisition cancelled after " + std::to_string(first) + " of " +
                                                            std::to_string(local.size()) + " positions");
    std::vector<Point2> part;
    for (std::size_t i = first; i < last; ++i) part.push_back(local[order[i]]);
    // Windowed blocks are large (whole tiles): progress every 64 positions inside them (the
    // engine calls this on one thread; an exception stops it after those positions).
    if (windowed)
      st.progress = [&, first](std::size_t k, std::size_t) {
        visited.count = first + k;  // exposed, whatever happens next (dose on a cancel)
        done_positions.store(visited.count);
        if (stop_requested(sn, ctl)) throw AcquisitionCancelled("acquisition cancelled after " + std::to_string(first + k) + " of " +
                                                                std::to_string(local.size()) + " positions");
      };
    OffsetSink os;
    os.inner = sink;
    os.offset = first;
    PatternSink* s = sink ? &os : nullptr;
    StemResult r = S              ? scan_prism(*S, probe, part, dets, st, s)
                   : window_atoms ? (rec ? rec->scan_windowed(*window_atoms, w.grid, probe, part, dets, st)
                                         : simulate_windowed(*window_atoms, w.grid, probe, part, dets, st))
                   : rec          ? rec->scan(w.configs, probe, part, dets, st, *w.fft, s)
                                  : scan_multislice(w.configs, probe, part, dets, st, *w.fft, s);
    if (first == 0) {
      all = std::move(r);
    } else {
      for (std::size_t k = 0; k < all.signals.size(); ++k)
        all.signals[k].values.insert(all.signals[k].values.end(), r.signals[k].values.begin(), r.signals[k].values.end());
    }
    visited.count = last;
    done_positions.store(last);
    if (!windowed) {
      if (on_block) on_block(all, last);
    } else {
      for (std::size_t i = first; i < last; ++i) done[order[i]] = 1;
      const std::size_t before = prefix;
      while (prefix < local.size() && done[prefix]) ++prefix;
      if (on_block && prefix > before) on_block(in_scan_order(all, last, prefix), prefix);
    }
    if (ctl.progress) ctl.progress(last, local.size());
  }
  if (windowed) {  // back to the positions' order
    all = in_scan_order(all, local.size(), local.size());
    if (rec) rec->reorder(slot);
  }
  return all;
}

}  // namespace stemtwin
