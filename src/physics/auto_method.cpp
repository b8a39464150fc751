#include "stemtwin/physics/auto_method.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/windowed.hpp"

namespace stemtwin {

double prism_window_needed_A(const ProbeOptics& o, double thickness_A) {
  if (!(o.semiangle_mrad > 0)) throw std::invalid_argument("method auto: the probe's semiangle must be > 0");
  const double lambda = wavelength_A(o.energy_eV), alpha = o.semiangle_mrad * 1e-3;
  // Largest ray displacement (λ/2π)·|∂χ/∂α| inside the aperture, sampled on 24 × 24 angles.
  double r_ab = 0;
  if (o.aberrations.any()) {
    const double h = alpha * 1e-3;
    for (int i = 1; i <= 24; ++i)
      for (int j = 0; j < 24; ++j) {
        const double a = alpha * i / 24.0, phi = 2 * kPi * j / 24.0;
        const double d = (o.aberrations.chi(a + h, phi, lambda) - o.aberrations.chi(a - h, phi, lambda)) / (2 * h);
        r_ab = std::max(r_ab, std::fabs(d) * lambda / (2 * kPi));
      }
  }
  return kAutoTailFactor * lambda / alpha + 2 * (alpha * std::max(0.0, thickness_A) + r_ab);
}

std::size_t predict_interpolation(const Grid& g, const ProbeOptics& o, double thickness_A, std::size_t max_f) {
  const double w = prism_window_needed_A(o, thickness_A);
  for (std::size_t f = std::max<std::size_t>(1, max_f); f > 1; --f)
    if (g.nx % f == 0 && g.ny % f == 0 && std::min(g.lx, g.ly) / double(f) >= w) return f;
  return 1;
}

std::string auto_calibration_key(const Structure& s, const Grid& g, const ProbeOptics& o, const std::vector<Detector>& dets,
                                 const StemSettings& st) {
  std::ostringstream k;
  k.precision(10);
  if (!st.specimen_class.empty()) {
    k << "class=" << st.specimen_class;
  } else {
    std::map<int, std::size_t> count;
    for (const Atom& a : s.atoms) ++count[a.Z];
    k << "cell=" << s.cell.x << "," << s.cell.y << "," << s.cell.z << " atoms=";
    for (const auto& [z, n] : count) k << z << ":" << n << ";";
  }
  k << " slice=" << st.potential.slice_thickness_A << " grid=" << g.nx << "x" << g.ny << " E=" << o.energy_eV
    << " alpha=" << o.semiangle_mrad << " C=";
  for (std::size_t i = 0; i < o.aberrations.C.size(); ++i) k << o.aberrations.C[i] << "/" << o.aberrations.phi[i] << ",";
  k << " focal=" << o.focal_spread_A << "/" << o.focal_spread_points << " det=";
  for (const Detector& d : dets)
    if (const auto* a = std::get_if<AnnularDetector>(&d)) k << a->inner_mrad << "-" << a->outer_mrad << ",";
  k << " budget=" << st.budget.mean_rel << "/" << st.budget.min_correlation << "/" << st.budget.calibration_positions
    << " phonons=" << st.phonon_configurations << " depths=" << st.depths_A.size();
  return k.str();
}

AutoCost auto_cost(const Grid& g, const ProbeOptics& o, std::size_t positions, std::size_t prism_f, std::size_t window_points,
                   const StemSettings& st, std::size_t multislice_positions) {
  AutoCost c;
  const double F = o.focal_spread_A > 0 ? double(std::max<std::size_t>(1, o.focal_spread_points)) : 1.0;
  const double P = double(positions), C = double(std::min(positions, std::max<std::size_t>(1, st.budget.calibration_positions)));
  const double R = multislice_positions > 0 ? double(std::min(multislice_positions, positions)) : P;
  c.multislice = R * F;
  c.reference = C * F;
  double best = -1;
  if (prism_f > 1) {
    c.prism = double(prism_beams(g, o.energy_eV, o.semiangle_mrad, prism_f, prism_f).size());
    best = c.prism;
  }
  if (window_points > 0) {
    const double n = double(g.nx * g.ny), nw = double(window_points);
    const double rho = nw * std::log2(std::max(2.0, nw)) / (n * std::log2(std::max(2.0, n)));
    c.windowed = (C + P) * F * rho;
    if (best < 0 || c.windowed < best) best = c.windowed;
  }
  if (best >= 0) {
    c.least = c.reference + best;
    c.multislice_cheap = c.least > kAutoWorthwhile * c.multislice;
  }
  return c;
}

std::vector<std::size_t> calibration_subset(std::size_t n, std::size_t count) {
  count = std::min(n, std::max<std::size_t>(1, count));
  std::vector<std::size_t> idx;
  for (std::size_t k = 0; k < count; ++k) idx.push_back(std::min(n - 1, std::size_t((double(k) + 0.5) * double(n) / double(count))));
  idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
  return idx;
}

namespace {

struct Measured {
  double mean_error = 0, correlation = 1;
};

/// Folds one signal pair (test x, reference y, over the same positions) into m: the mean's
/// relative error and the correlation, worst so far.
void measure_pair(const std::vector<double>& x, const std::vector<double>& y, Measured& m) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < y.size(); ++i) mx += x[i], my += y[i];
  mx /= double(y.size());
  my /= double(y.size());
  if (my > 0) m.mean_error = std::max(m.mean_error, std::fabs(mx / my - 1));
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  // Flat reference (e.g. a single calibration position): correlation is undefined; the
  // mean criterion alone applies. 1e-6 relative spread ~ float round-off.
  if (syy > 1e-12 * my * my * double(y.size()) && sxx > 0) m.correlation = std::min(m.correlation, sxy / std::sqrt(sxx * syy));
  else if (syy > 1e-12 * my * my * double(y.size())) m.correlation = std::min(m.correlation, 0.0);
}

/// Worst mean error and correlation over every annular detector at every depth.
Measured compare(const StemResult& test, const StemResult& ref, const std::vector<Detector>& dets) {
  Measured m;
  for (const Detector& d : dets) {
    const auto* a = std::get_if<AnnularDetector>(&d);
    if (!a) continue;
    for (std::size_t k = 0; k < ref.depths_A.size(); ++k) measure_pair(test.signal(a->name, k).values, ref.signal(a->name, k).values, m);
  }
  return m;
}

/// The same measures over an observer's recorded signals (one per quantity, over positions);
/// a quantity that is 0 in the reference (an absent element) has nothing to compare.
Measured compare_signals(const std::vector<std::vector<double>>& test, const std::vector<std::vector<double>>& ref) {
  Measured m;
  if (test.size() != ref.size()) throw std::logic_error("method auto: the observers recorded different signals");
  for (std::size_t k = 0; k < ref.size(); ++k) {
    double sum = 0;
    for (double v : ref[k]) sum += v;
    if (sum > 0) measure_pair(test[k], ref[k], m);
  }
  return m;
}

Measured worst(const Measured& a, const Measured& b) {
  return {std::max(a.mean_error, b.mean_error), std::min(a.correlation, b.correlation)};
}

bool within(const Measured& m, const ErrorBudget& b) { return m.mean_error <= b.mean_rel && m.correlation >= b.min_correlation; }

}  // namespace

void calibrate_prism(const std::vector<Transmission>& tr, const Fft2& fft, const ProbeOptics& o, const std::vector<Point2>& positions,
                     const std::vector<Detector>& dets, const StemSettings& st, const std::vector<std::size_t>& factors, bool crop,
                     AutoChoice& choice, std::vector<SMatrix>& accepted, std::optional<StemResult>& reference,
                     SliceObserver* observer) {
  const std::vector<std::size_t> idx = calibration_subset(positions.size(), st.budget.calibration_positions);
  std::vector<Point2> cal;
  for (std::size_t i : idx) cal.push_back(positions[i]);
  choice.calibration_positions = cal.size();
  choice.calibrated = true;
  std::vector<Detector> annular;
  for (const Detector& d : dets)
    if (std::holds_alternative<AnnularDetector>(d)) annular.push_back(d);
  StemSettings cal_settings = st;
  cal_settings.method = Method::Multislice;
  cal_settings.progress = nullptr;
  // Spectra on PRISM: the S-matrices keep the observer's pixels; when it can be copied, the
  // reference and every trial carry a copy and what they record is measured too (as windowed's).
  std::vector<std::vector<std::vector<std::uint32_t>>> pixels;
  std::unique_ptr<SliceObserver> ref_obs, trial_obs;
  if (observer && !factors.empty() && !annular.empty()) {
    pixels = prism_observed_pixels(*observer, tr.front().grid, tr.front().slice_thickness_A, tr.size());
    ref_obs = observer->fresh_copy();
    trial_obs = observer->fresh_copy();
    if (ref_obs) reference.reset();  // made again with the reference's observer
  }
  for (const std::size_t f : factors) {
    if (annular.empty()) break;
    if (!reference) reference = scan_multislice(tr, o, cal, annular, cal_settings, fft, nullptr, ref_obs.get());
    std::vector<SMatrix> S;
    for (std::size_t c = 0; c < tr.size(); ++c)
      S.push_back(build_smatrix(tr[c], o.semiangle_mrad, f, f, st.depths_A, fft, crop, observer ? &pixels[c] : nullptr));
    const StemResult trial = scan_prism(S, o, cal, annular, cal_settings, nullptr, trial_obs.get());
    Measured m = compare(trial, *reference, annular);
    if (ref_obs) m = worst(m, compare_signals(trial_obs->recorded_signals(), ref_obs->recorded_signals()));
    choice.trials.push_back({f, m.mean_error, m.correlation});
    if (within(m, st.budget)) {
      choice.method = Method::Prism;
      choice.interpolation = f;
      choice.measured_mean_error = m.mean_error;
      choice.measured_correlation = m.correlation;
      accepted = std::move(S);
      return;
    }
  }
  choice.method = Method::Multislice;
  choice.interpolation = 1;
  choice.measured_mean_error = 0;
  choice.measured_correlation = 1;
}

AutoPlan plan_auto(const Structure& s, const Grid& g, const ProbeOptics& o, const std::vector<Point2>& positions,
                   const std::vector<Detector>& dets, const StemSettings& st, bool streams_patterns, bool observed,
                   bool observer_attached) {
  if (!(st.budget.mean_rel > 0) || !(st.budget.min_correlation <= 1))
    throw std::invalid_argument("method auto: the error budget needs mean_rel > 0 and min_correlation ≤ 1");
  if (positions.empty()) throw std::invalid_argument("method auto: no probe positions");
  AutoPlan p;
  AutoChoice& c = p.choice;
  c.window_needed_A = prism_window_needed_A(o, s.cell.z);
  c.predicted_interpolation = predict_interpolation(g, o, s.cell.z);
  const bool pixelated =
      std::any_of(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<PixelatedDetector>(d); });
  const bool measurable =
      std::any_of(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<AnnularDetector>(d); });
  p.crop = st.prism_band_limit_crop && !pixelated;
  const std::size_t budget_bytes = st.max_memory_bytes ? st.max_memory_bytes : default_memory_budget();
  const std::size_t ndepth = std::max<std::size_t>(1, st.depths_A.size());
  const std::size_t configurations = std::max<std::size_t>(1, st.phonon_configurations);
  for (std::size_t f = c.predicted_interpolation; f > 1; --f)
    if (g.nx % f == 0 && g.ny % f == 0 &&
        configurations * smatrix_bytes(g, o.energy_eV, o.semiangle_mrad, f, f, ndepth, p.crop) <= budget_bytes)
      p.prism_factors.push_back(f);
  // Windowed multislice is a candidate when its window is smaller than the cell (else it
  // is multislice to the byte) and every detector can be recorded in a window (no 4D
  // pattern stream).
  const WindowPlan window = plan_window(g, o, s.cell.z, positions, st);
  p.windowed_candidate = !streams_patterns && !pixelated && !window.full;
  if (!measurable) p.prism_factors.clear(), p.windowed_candidate = false;  // nothing the budget can measure
  if (observed) p.prism_factors.clear();  // PRISM cannot hand this observer its intensities
  // Multislice over one position per symmetry class (translational_symmetry.hpp): what it costs.
  const std::size_t streamed = streams_patterns ? std::size_t(std::count_if(dets.begin(), dets.end(), [](const Detector& d) {
    return std::holds_alternative<PixelatedDetector>(d);
  })) : 0;
  c.symmetry_positions = multislice_classes(s, g, positions, st, observed || observer_attached, streamed).representatives.size();
  c.total_positions = positions.size();
  const AutoCost cost = auto_cost(g, o, positions.size(), p.prism_factors.empty() ? 1 : p.prism_factors.front(),
                                  p.windowed_candidate ? window.nx * window.ny : 0, st, c.symmetry_positions);
  c.cost_multislice = cost.multislice;
  c.cost_auto_least = cost.least;
  p.calibrate = !cost.multislice_cheap || (st.budget.always_calibrate && cost.least > 0);
  if (!p.calibrate) c.measured_mean_error = c.measured_correlation = std::nan("");
  c.calibrated = p.calibrate;
  return p;
}

namespace {
/// plan_auto's PRISM factors whose S-matrices fit the memory budget together with an
/// observer's samples (beams × the pixels it reads, prism.hpp); all of them without an observer.
std::vector<std::size_t> observed_prism_factors(const AutoPlan& plan, SliceObserver* observer, const std::vector<Transmission>& tr,
                                                const ProbeOptics& o, const StemSettings& st) {
  if (!observer || plan.prism_factors.empty()) return plan.prism_factors;
  const Grid& g = tr.front().grid;
  std::size_t points = 0;
  for (const auto& conf : prism_observed_pixels(*observer, g, tr.front().slice_thickness_A, tr.size()))
    for (const auto& read : conf) points += read.size();
  const std::size_t budget = st.max_memory_bytes ? st.max_memory_bytes : default_memory_budget();
  const std::size_t ndepth = std::max<std::size_t>(1, st.depths_A.size());
  std::vector<std::size_t> out;
  for (std::size_t f : plan.prism_factors) {
    const std::size_t beams = prism_beams(g, o.energy_eV, o.semiangle_mrad, f, f).size();
    if (tr.size() * smatrix_bytes(g, o.energy_eV, o.semiangle_mrad, f, f, ndepth, plan.crop) + beams * points * sizeof(cfloat) <= budget)
      out.push_back(f);
  }
  return out;
}
}  // namespace

StemResult simulate_auto(const Structure& s, const Grid& g, const ProbeOptics& o, const std::vector<Point2>& positions,
                         const std::vector<Detector>& dets, const StemSettings& st, PatternSink* sink, SliceObserver* observer) {
  const AutoPlan plan = plan_auto(s, g, o, positions, dets, st, sink != nullptr, observer && !observer->reads_intensities(),
                                   observer != nullptr);
  AutoChoice choice = plan.choice;
  // With an observer the calibration measures its signals too: its choices are cached apart.
  const std::string key = st.auto_cache ? auto_calibration_key(s, g, o, dets, st) + (observer ? " observed" : "") : std::string();

  StemSettings ms_settings = st;
  ms_settings.method = Method::Multislice;
  const Fft2 fft(g, st.planning, st.fftw_wisdom_file);
  const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, ms_settings, fft);
  const bool crop = plan.crop;

  auto finish_multislice = [&](AutoChoice c) {
    StemResult r = scan_multislice_symmetric(s, tr, o, positions, dets, ms_settings, fft, sink, observer);
    r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
    r.method = "multislice";
    r.interpolation = 1;
    c.method = Method::Multislice;
    c.interpolation = 1;
    r.auto_choice = c;
    return r;
  };
  auto smatrices = [&](std::size_t f) {  // a cached PRISM choice: with the observer's samples
    std::vector<std::vector<std::vector<std::uint32_t>>> pixels;
    if (observer) pixels = prism_observed_pixels(*observer, g, tr.front().slice_thickness_A, tr.size());
    std::vector<SMatrix> S;
    for (std::size_t c = 0; c < tr.size(); ++c)
      S.push_back(build_smatrix(tr[c], o.semiangle_mrad, f, f, st.depths_A, fft, crop, observer ? &pixels[c] : nullptr));
    return S;
  };
  auto finish_prism = [&](const std::vector<SMatrix>& S, AutoChoice c) {
    StemSettings ps = st;
    ps.method = Method::Prism;
    ps.interpolation_x = ps.interpolation_y = c.interpolation;
    StemResult r = scan_prism(S, o, positions, dets, ps, sink, observer);
    r.fft_plan = fft.plan_id() + "/" + r.fft_plan;
    r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
    c.method = Method::Prism;
    r.auto_choice = c;
    return r;
  };
  const bool windowed_candidate = plan.windowed_candidate;
  auto finish_windowed = [&](AutoChoice c) {
    StemSettings ws = st;
    ws.method = Method::Windowed;
    StemResult r = simulate_windowed(s, g, o, positions, dets, ws, observer);
    r.method = "windowed";
    r.interpolation = 1;
    c.method = Method::Windowed;
    r.auto_choice = c;
    return r;
  };
  const std::vector<std::size_t> factors = observed_prism_factors(plan, observer, tr, o, st);
  auto fits = [&](std::size_t f) { return std::find(factors.begin(), factors.end(), f) != factors.end(); };

  // The cost model (auto_cost): multislice without calibrating when auto cannot earn its
  // calibration back (or has no candidate).
  if (!plan.calibrate) return finish_multislice(choice);

  if (st.auto_cache) {
    const auto it = st.auto_cache->entries.find(key);
    if (it != st.auto_cache->entries.end()) {
      AutoChoice c = it->second;
      c.from_cache = true;
      if (c.method == Method::Prism && c.interpolation > 1 && fits(c.interpolation)) return finish_prism(smatrices(c.interpolation), c);
      if (c.method == Method::Windowed && windowed_candidate) return finish_windowed(c);
      return finish_multislice(c);
    }
  }

  // Calibration: a few positions by multislice (the reference), then PRISM from the
  // predicted f downwards until the budget holds on them.
  std::vector<SMatrix> accepted;
  std::optional<StemResult> reference;
  calibrate_prism(tr, fft, o, positions, dets, st, factors, crop, choice, accepted, reference, observer);
  if (choice.method == Method::Prism) {
    if (st.auto_cache) st.auto_cache->entries[key] = choice;
    return finish_prism(accepted, choice);
  }
  const std::vector<std::size_t> idx = calibration_subset(positions.size(), st.budget.calibration_positions);
  std::vector<Point2> cal;
  for (std::size_t i : idx) cal.push_back(positions[i]);
  std::vector<Detector> annular;
  for (const Detector& d : dets)
    if (std::holds_alternative<AnnularDetector>(d)) annular.push_back(d);
  StemSettings cal_settings = ms_settings;
  cal_settings.progress = nullptr;
  // Windowed multislice where the probe's window is smaller than the cell (large fields):
  // measured on the same calibration positions against the whole-cell reference.
  if (windowed_candidate) {
    // With an observer that can be copied, both runs carry a fresh copy and what they record
    // is measured too (the reference is made again: PRISM's carried another copy).
    const std::unique_ptr<SliceObserver> ref_obs = observer ? observer->fresh_copy() : nullptr;
    const std::unique_ptr<SliceObserver> trial_obs = observer ? observer->fresh_copy() : nullptr;
    if (!reference || ref_obs) reference = scan_multislice(tr, o, cal, annular, cal_settings, fft, nullptr, ref_obs.get());
    StemSettings ws = cal_settings;
    ws.method = Method::Windowed;
    const StemResult trial = simulate_windowed(s, g, o, cal, annular, ws, trial_obs.get());
    Measured m = compare(trial, *reference, annular);
    if (ref_obs) m = worst(m, compare_signals(trial_obs->recorded_signals(), ref_obs->recorded_signals()));
    choice.windowed_trial = AutoChoice::Trial{1, m.mean_error, m.correlation};
    if (within(m, st.budget)) {
      choice.method = Method::Windowed;
      choice.interpolation = 1;
      choice.measured_mean_error = m.mean_error;
      choice.measured_correlation = m.correlation;
      if (st.auto_cache) st.auto_cache->entries[key] = choice;
      return finish_windowed(choice);
    }
  }
  // Multislice: exact by definition (the rejected trials stay in choice.trials).
  choice.measured_mean_error = 0;
  choice.measured_correlation = 1;
  choice.method = Method::Multislice;
  choice.interpolation = 1;
  if (st.auto_cache) st.auto_cache->entries[key] = choice;
  return finish_multislice(choice);
}

}  // namespace stemtwin
