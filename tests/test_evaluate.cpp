// Scoring predictions against ground truth (issue 9): metrics, matching, binning, file
// validation, report output and the baseline. Every fixture is written here with the HDF5
// C API in the dataset layout that docs/evaluate.md documents.
#include <gtest/gtest.h>
#include <unistd.h>
#include <hdf5.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>

#include "stemtwin/evaluate/evaluate.hpp"
#include "stemtwin/apps/evaluate_cli.hpp"
#include "stemtwin/evaluate/metrics.hpp"
#include "stemtwin/dataset/plot.hpp"

namespace fs = std::filesystem;
using namespace stemtwin;

namespace {

// --- a tiny HDF5 writer for fixtures -----------------------------------------------------------
class H5Out {
 public:
  explicit H5Out(const std::string& path) {
    f_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    lcpl_ = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl_, 1);
    if (f_ < 0) throw std::runtime_error("fixture: cannot create " + path);
  }
  ~H5Out() {
    H5Pclose(lcpl_);
    H5Fclose(f_);
  }
  template <class T>
  void write(const std::string& path, const std::vector<hsize_t>& dims, const std::vector<T>& v, hid_t type) {
    hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(f_, path.c_str(), type, s, lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) throw std::runtime_error("fixture: cannot create " + path);
    if (!v.empty()) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
    H5Sclose(s);
  }
  void f64(const std::string& p, const std::vector<double>& v) { write(p, {v.size()}, v, H5T_NATIVE_DOUBLE); }
  void i64(const std::string& p, const std::vector<std::int64_t>& v) { write(p, {v.size()}, v, H5T_NATIVE_INT64); }
  void i32(const std::string& p, const std::vector<int>& v) { write(p, {v.size()}, v, H5T_NATIVE_INT); }
  void group(const std::string& p) { H5Gclose(H5Gcreate2(f_, p.c_str(), lcpl_, H5P_DEFAULT, H5P_DEFAULT)); }
  void attr_f64(const std::string& obj, const std::string& name, const std::vector<double>& v) {
    const hsize_t n = v.size();
    hid_t s = v.size() == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate_by_name(f_, obj.c_str(), name.c_str(), H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, v.data());
    H5Aclose(a);
    H5Sclose(s);
  }
  void attr_i64(const std::string& obj, const std::string& name, std::int64_t v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(f_, obj.c_str(), name.c_str(), H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(s);
  }
  /// Variable-length UTF-8 string list (what h5py writes for a list of str).
  void attr_strings(const std::string& obj, const std::string& name, const std::vector<std::string>& v) {
    std::vector<const char*> ptr;
    for (const auto& s : v) ptr.push_back(s.c_str());
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const hsize_t n = v.size();
    hid_t s = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate_by_name(f_, obj.c_str(), name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, ptr.data());
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
  }
  /// One fixed-length string.
  void attr_string(const std::string& obj, const std::string& name, const std::string& v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, v.size());
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(f_, obj.c_str(), name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v.data());
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
  }

 private:
  hid_t f_ = -1, lcpl_ = -1;
};

fs::path scratch(const std::string& name) {
  // One directory per process: CTest runs the tests of this file in parallel processes.
  const fs::path dir = fs::path(STEMTWIN_BINARY_DIR) / ("test_evaluate_tmp_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

// --- the fake dataset ---------------------------------------------------------------------------
// 12 samples of 32×32 px, pixel size {0.2, 0.25} Å (x, y; anisotropic on purpose), origin
// (1, 2) Å. Each sample: a 3×3 grid of columns at sub-pixel positions, species alternating
// Sr(38)/Ti(22), drawn as Gaussians (σ 1.5 px) in /images/HAADF; class = i mod 3 with names
// "vacancy,pristine,dopant" (one joined string); mask "phase": 1 right of a sample-dependent
// column, else 0; params dose = 100·(i+1) (12 distinct values) and thickness ∈ {10,20,30,40}
// (three samples each).
constexpr std::size_t kN = 12, kNy = 32, kNx = 32;
constexpr double kPsx = 0.2, kPsy = 0.25, kX0 = 1.0, kY0 = 2.0;

struct Truth {
  std::vector<std::int64_t> sample;
  std::vector<double> x_px, y_px, x_A, y_A;
  std::vector<int> species, cls;
  std::vector<std::uint8_t> mask;  // [N, ny, nx]
  std::vector<double> dose, thickness;
};

Truth make_truth() {
  Truth t;
  for (std::size_t s = 0; s < kN; ++s) {
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 3; ++i) {
        const double x = 6.0 + 10.0 * i + 0.37 * std::sin(1.3 * static_cast<double>(s) + i);
        const double y = 6.0 + 10.0 * j + 0.29 * std::cos(0.7 * static_cast<double>(s) + j);
        t.sample.push_back(static_cast<std::int64_t>(s));
        t.x_px.push_back(x);
        t.y_px.push_back(y);
        t.x_A.push_back(kX0 + x * kPsx);
        t.y_A.push_back(kY0 + y * kPsy);
        t.species.push_back((i + j) % 2 ? 22 : 38);
      }
    t.cls.push_back(static_cast<int>(s % 3));
    t.dose.push_back(100.0 * static_cast<double>(s + 1));
    t.thickness.push_back(10.0 * static_cast<double>(s / 3 + 1));
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) t.mask.push_back(x >= 8 + s ? 1 : 0);
  }
  return t;
}

std::vector<float> render_haadf(const Truth& t) {
  std::vector<float> img(kN * kNy * kNx, 0.0f);
  for (std::size_t c = 0; c < t.sample.size(); ++c) {
    const auto s = static_cast<std::size_t>(t.sample[c]);
    const double amp = t.species[c] == 38 ? 1.0 : 0.7;
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) {
        const double r2 = std::pow(x - t.x_px[c], 2) + std::pow(y - t.y_px[c], 2);
        img[(s * kNy + y) * kNx + x] += static_cast<float>(amp * std::exp(-r2 / (2 * 1.5 * 1.5)));
      }
  }
  // Class-dependent brightness, so the mean-intensity classifier has something to find.
  for (std::size_t s = 0; s < kN; ++s)
    for (std::size_t p = 0; p < kNy * kNx; ++p) img[s * kNy * kNx + p] += 0.05f * static_cast<float>(s % 3);
  return img;
}

std::string write_dataset(const std::string& name, const Truth& t) {
  const std::string path = scratch(name).string();
  H5Out h(path);
  h.attr_f64("/", "pixel_size_A", {kPsx, kPsy});
  h.attr_i64("/", "complete_samples", static_cast<std::int64_t>(kN));
  const auto img = render_haadf(t);
  h.write("/images/HAADF", {kN, kNy, kNx}, img, H5T_NATIVE_FLOAT);
  h.write("/clean/HAADF", {kN, kNy, kNx}, img, H5T_NATIVE_FLOAT);
  h.f64("/params/dose", t.dose);
  h.f64("/params/thickness", t.thickness);
  h.i32("/labels/class", t.cls);
  h.attr_string("/labels/class", "names", "vacancy,pristine,dopant");
  h.write("/labels/masks/phase", {kN, kNy, kNx}, t.mask, H5T_NATIVE_UINT8);
  h.i64("/labels/columns/sample", t.sample);
  h.f64("/labels/columns/x_A", t.x_A);
  h.f64("/labels/columns/y_A", t.y_A);
  h.f64("/labels/columns/x_px", t.x_px);
  h.f64("/labels/columns/y_px", t.y_px);
  h.i32("/labels/columns/species", t.species);
  h.f64("/labels/columns/count", std::vector<double>(t.sample.size(), 1.0));
  h.i32("/labels/columns/class", std::vector<int>(t.sample.size(), 0));
  return path;
}

const Truth& truth() {
  static const Truth t = make_truth();
  return t;
}
const std::string& dataset() {
  static const std::string p = write_dataset("dataset.h5", truth());
  return p;
}

std::vector<std::int16_t> mask16(const Truth& t) { return {t.mask.begin(), t.mask.end()}; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

double metric(const MetricMap& m, const std::string& k) {
  const auto it = m.find(k);
  if (it == m.end()) throw std::runtime_error("no metric " + k);
  return it->second;
}

}  // namespace

// --- matching -------------------------------------------------------------------------------------

TEST(Matching, HungarianBeatsGreedyOnACraftedCase) {
  // Truth at x = 0 and 2; predictions at 1.1 and 3.3; tolerance 1.4. Greedy takes the closest
  // pair (1.1 ↔ 2, d = 0.9) and leaves 3.3 with nothing in reach: 1 match. The optimum pairs
  // 1.1 ↔ 0 (1.1) and 3.3 ↔ 2 (1.3): 2 matches.
  const std::vector<metrics::Point> t{{0, 0}, {2, 0}}, p{{1.1, 0}, {3.3, 0}};
  const auto greedy = metrics::match_columns_greedy(t, p, 1.4);
  const auto best = metrics::match_columns(t, p, 1.4);
  ASSERT_EQ(greedy.size(), 1u);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].truth, 0u);
  EXPECT_EQ(best[0].pred, 0u);
  EXPECT_EQ(best[1].truth, 1u);
  EXPECT_EQ(best[1].pred, 1u);
  EXPECT_DOUBLE_EQ(metrics::detection_metrics(metrics::detection_counts(t, p, best)).f1, 1.0);
  EXPECT_DOUBLE_EQ(metrics::detection_metrics(metrics::detection_counts(t, p, greedy)).f1, 0.5);
}

TEST(Matching, AgreesWithBruteForceOnRandomCases) {
  // The rule: most matches within tolerance, then smallest summed distance. Brute force over
  // every injective assignment of up to 5 × 6 points.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.0, 3.0);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t nt = 1 + rng() % 5, np = 1 + rng() % 6;
    std::vector<metrics::Point> t(nt), p(np);
    for (auto& q : t) q = {u(rng), u(rng)};
    for (auto& q : p) q = {u(rng), u(rng)};
    const double tol = 1.0;
    std::size_t best_n = 0;
    double best_d = 0;
    std::vector<int> assign(nt, -1);
    std::function<void(std::size_t, std::vector<char>&, std::size_t, double)> rec =
        [&](std::size_t i, std::vector<char>& used, std::size_t n, double d) {
          if (i == nt) {
            if (n > best_n || (n == best_n && d < best_d)) best_n = n, best_d = d;
            return;
          }
          rec(i + 1, used, n, d);  // leave truth i unmatched
          for (std::size_t j = 0; j < np; ++j) {
            const double dist = std::hypot(t[i].x - p[j].x, t[i].y - p[j].y);
            if (used[j] || dist > tol) continue;
            used[j] = 1;
            rec(i + 1, used, n + 1, d + dist);
            used[j] = 0;
          }
        };
    std::vector<char> used(np, 0);
    rec(0, used, 0, 0.0);
    const auto m = metrics::match_columns(t, p, tol);
    double d = 0;
    std::vector<char> tu(nt, 0), pu(np, 0);
    for (const auto& x : m) {
      EXPECT_LE(x.distance, tol);
      EXPECT_FALSE(tu[x.truth] || pu[x.pred]) << "not one-to-one";
      tu[x.truth] = pu[x.pred] = 1;
      d += x.distance;
    }
    ASSERT_EQ(m.size(), best_n) << "trial " << trial;
    EXPECT_NEAR(d, best_d, 1e-9) << "trial " << trial;  // sums of ≤ 5 distances of O(1)
  }
}

TEST(Matching, RejectsBadTolerance) {
  EXPECT_THROW(metrics::match_columns({}, {}, 0.0), std::invalid_argument);
  EXPECT_THROW(metrics::match_columns({}, {}, NAN), std::invalid_argument);
}

// --- pure metrics --------------------------------------------------------------------------------

TEST(Metrics, SegmentationIoUAndDiceByHand) {
  // truth 0 0 1 1, prediction 0 1 1 1: class 0: I=1, U=2 → IoU 0.5, Dice 2/3;
  // class 1: I=2, U=3 → IoU 2/3, Dice 0.8.
  const auto c = metrics::segmentation_counts({0, 0, 1, 1}, {0, 1, 1, 1});
  const auto m = metrics::segmentation_metrics(c);
  EXPECT_DOUBLE_EQ(m.iou[0], 0.5);
  EXPECT_DOUBLE_EQ(m.dice[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.iou[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.dice[1], 0.8);
  EXPECT_DOUBLE_EQ(m.mean_iou, (0.5 + 2.0 / 3.0) / 2);
}

TEST(Metrics, RegressionByHand) {
  metrics::RegressionCounts c;
  c.add(1.0, 2.0);   // +1
  c.add(2.0, -1.0);  // −3
  const auto r = metrics::regression_metrics(c);
  EXPECT_DOUBLE_EQ(r.mae, 2.0);
  EXPECT_DOUBLE_EQ(r.rmse, std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(r.bias, -1.0);
}

TEST(Metrics, ClassificationByHand) {
  const auto c = metrics::confusion({0, 0, 1, 1, 2}, {0, 1, 1, 1, 0}, 3);
  EXPECT_EQ(c.at(0, 1), 1u);
  EXPECT_EQ(c.at(2, 0), 1u);
  const auto m = metrics::classification_metrics(c);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  EXPECT_DOUBLE_EQ(m.precision[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall[0], 0.5);
  EXPECT_TRUE(std::isnan(m.precision[2]));  // never predicted
  EXPECT_THROW(metrics::confusion({0}, {3}, 3), std::invalid_argument);
}

TEST(Binning, QuantileDistinctAndGivenEdges) {
  std::vector<double> v(12);
  std::iota(v.begin(), v.end(), 1.0);  // 1..12
  const auto e = metrics::quantile_edges(v, 4);
  ASSERT_EQ(e.size(), 5u);
  EXPECT_DOUBLE_EQ(e[1], 3.75);  // type 7: 1 + 11·0.25
  EXPECT_EQ(metrics::bin_counts(metrics::assign_bins(v, e), 4), (std::vector<std::size_t>{3, 3, 3, 3}));
  // Ties: 4 distinct values → one bin per value.
  const std::vector<double> t{10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40, 40};
  const auto et = metrics::quantile_edges(t, 4);
  EXPECT_EQ(et, (std::vector<double>{10, 15, 25, 35, 40}));
  EXPECT_EQ(metrics::bin_counts(metrics::assign_bins(t, et), 4), (std::vector<std::size_t>{3, 3, 3, 4}));
  // Given edges: the last bin is closed, values outside get −1.
  const auto b = metrics::assign_bins({-1, 0, 0.5, 1, 2, 2.5}, {0, 1, 2});
  EXPECT_EQ(b, (std::vector<int>{-1, 0, 0, 1, 1, -1}));
  // Constant values: one degenerate bin.
  EXPECT_EQ(metrics::quantile_edges({5, 5, 5}, 4), (std::vector<double>{5, 5}));
  EXPECT_EQ(metrics::assign_bins({5, 5, 6}, {5, 5}), (std::vector<int>{0, 0, -1}));
  EXPECT_THROW(metrics::assign_bins({1}, {0, 2, 1}), std::invalid_argument);
}

// --- evaluate end to end ------------------------------------------------------------------------

namespace {
// Writes predictions equal to the truth, with optional modifications.
struct PredSpec {
  double dx_A = 0, dy_A = 0;
  bool in_px = false;
  double dx_px = 0, dy_px = 0;
  std::vector<int> cls;
  bool with_species = true;
  bool columns_only = false;
};
std::string write_predictions_file(const std::string& name, const PredSpec& s) {
  const Truth& t = truth();
  const std::string path = scratch(name).string();
  H5Out h(path);
  h.i64("/columns/sample", t.sample);
  std::vector<double> x, y;
  for (std::size_t i = 0; i < t.sample.size(); ++i) {
    x.push_back(s.in_px ? t.x_px[i] + s.dx_px : t.x_A[i] + s.dx_A);
    y.push_back(s.in_px ? t.y_px[i] + s.dy_px : t.y_A[i] + s.dy_A);
  }
  h.f64(s.in_px ? "/columns/x_px" : "/columns/x_A", x);
  h.f64(s.in_px ? "/columns/y_px" : "/columns/y_A", y);
  if (s.with_species) h.i32("/columns/species", t.species);
  if (s.columns_only) return path;
  h.i32("/class", s.cls.empty() ? t.cls : s.cls);
  const auto m = mask16(t);
  h.write("/masks/phase", {kN, kNy, kNx}, m, H5T_NATIVE_INT16);
  h.f64("/scalars/thickness", t.thickness);
  return path;
}
}  // namespace

TEST(Evaluate, PerfectPredictionsGivePerfectScores) {
  const Report r = evaluate(dataset(), write_predictions_file("perfect.h5", {}), {});
  EXPECT_EQ(r.n_samples, kN);
  EXPECT_EQ(r.coordinate_frame, "A");
  EXPECT_EQ(r.detection.true_positives, kN * 9);
  EXPECT_EQ(r.detection.false_positives + r.detection.false_negatives, 0u);
  for (const char* k : {"detection.precision", "detection.recall", "detection.f1", "detection.species_accuracy",
                        "classification.accuracy", "segmentation.phase.mean_iou", "segmentation.phase.mean_dice"})
    EXPECT_DOUBLE_EQ(metric(r.overall, k), 1.0) << k;
  for (const char* k : {"detection.rmse_A", "detection.rmse_px", "regression.thickness.mae",
                        "regression.thickness.rmse", "regression.thickness.bias"})
    EXPECT_DOUBLE_EQ(metric(r.overall, k), 0.0) << k;
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"vacancy", "pristine", "dopant"}));
  ASSERT_EQ(r.breakdowns.size(), 2u);
  for (const auto& b : r.breakdowns)
    for (const auto& bin : b.bins) EXPECT_DOUBLE_EQ(metric(bin.metrics, "detection.f1"), 1.0);
}

TEST(Evaluate, ShiftOfEveryColumnByDeltaGivesRmseDelta) {
  // Shift along x by δ = 0.1 Å: RMSE = 0.1 Å = 0.5 px (x pixel 0.2 Å). The tolerance for the
  // comparison is 1e-12: coordinates are O(10) and each subtraction rounds at ~1e-15.
  const double delta = 0.1;
  Report r = evaluate(dataset(), write_predictions_file("shift_A.h5", {.dx_A = delta}), {});
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.f1"), 1.0);
  EXPECT_NEAR(metric(r.overall, "detection.rmse_A"), delta, 1e-12);
  EXPECT_NEAR(metric(r.overall, "detection.rmse_px"), delta / kPsx, 1e-11);
  // A diagonal shift in Å: RMSE is the length of the shift vector.
  r = evaluate(dataset(), write_predictions_file("shift_diag.h5", {.dx_A = 0.06, .dy_A = -0.08}), {});
  EXPECT_NEAR(metric(r.overall, "detection.rmse_A"), 0.1, 1e-12);
  // Predictions in pixels, shifted 1.5 px along y (0.375 Å with 0.25 Å pixels), matched with
  // a tolerance of 0.5 Å: compared against the true pixel positions, RMSE 1.5 px = 0.375 Å.
  r = evaluate(dataset(), write_predictions_file("shift_px.h5", {.in_px = true, .dy_px = 1.5}), {});
  EXPECT_EQ(r.coordinate_frame, "px");
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.recall"), 1.0);
  EXPECT_NEAR(metric(r.overall, "detection.rmse_px"), 1.5, 1e-12);
  EXPECT_NEAR(metric(r.overall, "detection.rmse_A"), 1.5 * kPsy, 1e-12);
  // The same shift with a tolerance of 0.3 Å (< 0.375): nothing matches.
  EvaluateOptions o;
  o.tolerance = 0.3;
  r = evaluate(dataset(), scratch("shift_px.h5").string(), o);
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.recall"), 0.0);
  // Tolerance in pixels: 1.6 px admits the 1.5 px shift.
  o.tolerance = 1.6, o.tolerance_unit = "px";
  r = evaluate(dataset(), scratch("shift_px.h5").string(), o);
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.recall"), 1.0);
}

TEST(Evaluate, SwappingTwoClassesShowsInTheConfusionMatrix) {
  const Truth& t = truth();
  std::vector<int> swapped;
  for (int c : t.cls) swapped.push_back(c == 0 ? 1 : c == 1 ? 0 : c);
  const Report r = evaluate(dataset(), write_predictions_file("swap.h5", {.cls = swapped}), {});
  ASSERT_EQ(r.confusion.k, 3u);
  // 4 samples of each class: rows (truth) 0 and 1 land entirely in the other column.
  EXPECT_EQ(r.confusion.at(0, 1), 4u);
  EXPECT_EQ(r.confusion.at(1, 0), 4u);
  EXPECT_EQ(r.confusion.at(0, 0), 0u);
  EXPECT_EQ(r.confusion.at(1, 1), 0u);
  EXPECT_EQ(r.confusion.at(2, 2), 4u);
  EXPECT_NEAR(metric(r.overall, "classification.accuracy"), 4.0 / 12.0, 1e-15);
  EXPECT_DOUBLE_EQ(metric(r.overall, "classification.recall.vacancy"), 0.0);
  EXPECT_DOUBLE_EQ(metric(r.overall, "classification.recall.dopant"), 1.0);
}

TEST(Evaluate, BreakdownBinsHoldTheRightSampleCounts) {
  // Columns predicted only for samples with dose <= 600 (samples 0..5).
  const Truth& t = truth();
  const std::string path = scratch("half.h5").string();
  {
    H5Out h(path);
    std::vector<std::int64_t> s;
    std::vector<double> x, y;
    for (std::size_t i = 0; i < t.sample.size(); ++i)
      if (t.sample[i] < 6) s.push_back(t.sample[i]), x.push_back(t.x_A[i]), y.push_back(t.y_A[i]);
    h.i64("/columns/sample", s);
    h.f64("/columns/x_A", x);
    h.f64("/columns/y_A", y);
  }
  EvaluateOptions o;
  Report r = evaluate(dataset(), path, o);
  ASSERT_EQ(r.breakdowns.size(), 2u);
  const Breakdown& dose = r.breakdowns[0];
  const Breakdown& thick = r.breakdowns[1];
  EXPECT_EQ(dose.param, "dose");
  EXPECT_EQ(dose.binning, "quantile");
  ASSERT_EQ(dose.bins.size(), 4u);
  for (const auto& b : dose.bins) EXPECT_EQ(b.n_samples, 3u);
  EXPECT_DOUBLE_EQ(dose.edges[1], 375.0);  // 100 + 1100·0.25
  EXPECT_DOUBLE_EQ(metric(dose.bins[0].metrics, "detection.f1"), 1.0);
  EXPECT_DOUBLE_EQ(metric(dose.bins[3].metrics, "detection.f1"), 0.0);
  EXPECT_DOUBLE_EQ(metric(dose.bins[3].metrics, "detection.n_true"), 27.0);
  EXPECT_EQ(thick.binning, "distinct");
  ASSERT_EQ(thick.bins.size(), 4u);
  for (const auto& b : thick.bins) EXPECT_EQ(b.n_samples, 3u);
  EXPECT_DOUBLE_EQ(thick.bins[1].mean, 20.0);  // plotted at the value itself, not the bin centre
  // Given edges: [0,250) holds 100, 200; [250,650) 300..600; [650,2000] 700..1200.
  o.edges["dose"] = {0, 250, 650, 2000};
  o.params = {"dose"};
  r = evaluate(dataset(), path, o);
  ASSERT_EQ(r.breakdowns.size(), 1u);
  EXPECT_EQ(r.breakdowns[0].binning, "edges");
  std::vector<std::size_t> counts;
  for (const auto& b : r.breakdowns[0].bins) counts.push_back(b.n_samples);
  EXPECT_EQ(counts, (std::vector<std::size_t>{2, 4, 6}));
  EXPECT_EQ(r.breakdowns[0].n_outside, 0u);
  EXPECT_DOUBLE_EQ(metric(r.breakdowns[0].bins[1].metrics, "detection.recall"), 1.0);  // samples 2..5, all predicted
  EXPECT_DOUBLE_EQ(metric(r.breakdowns[0].bins[2].metrics, "detection.recall"), 0.0);  // samples 6..11, none
  // Edges that leave samples out: [150, 1000] keeps 200..1000 and drops 100, 1100, 1200.
  o.edges["dose"] = {150, 1000};
  r = evaluate(dataset(), path, o);
  EXPECT_EQ(r.breakdowns[0].bins.at(0).n_samples, 9u);
  EXPECT_EQ(r.breakdowns[0].n_outside, 3u);
  // Unknown parameter names are refused.
  o.edges = {{"nope", {0, 1}}};
  EXPECT_THROW(evaluate(dataset(), path, o), std::invalid_argument);
}

TEST(Evaluate, CsvPredictionsAreScoredLikeHdf5) {
  const Truth& t = truth();
  const fs::path p = scratch("columns.csv");
  {
    std::ofstream out(p);
    out << "sample,x_A,y_A,species\n";
    out.precision(17);
    for (std::size_t i = 0; i < t.sample.size(); ++i)
      out << t.sample[i] << "," << t.x_A[i] + 0.05 << "," << t.y_A[i] << "," << t.species[i] << "\n";
  }
  const Report r = evaluate(dataset(), p.string(), {});
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.f1"), 1.0);
  EXPECT_NEAR(metric(r.overall, "detection.rmse_A"), 0.05, 1e-12);
  EXPECT_FALSE(r.has_classification);
}

TEST(Evaluate, NoPredictedColumnsGiveZeroRecall) {
  // /columns present with zero rows: every true column is a false negative; precision has a
  // zero denominator (NaN → null in the report).
  const std::string path = scratch("none.h5").string();
  {
    H5Out h(path);
    h.i64("/columns/sample", {});
    h.f64("/columns/x_px", {});
    h.f64("/columns/y_px", {});
  }
  const Report r = evaluate(dataset(), path, {});
  EXPECT_EQ(r.coordinate_frame, "px");
  EXPECT_EQ(r.detection.false_negatives, kN * 9);
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.recall"), 0.0);
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.f1"), 0.0);
  EXPECT_TRUE(std::isnan(metric(r.overall, "detection.precision")));
  EXPECT_TRUE(std::isnan(metric(r.overall, "detection.rmse_A")));
}

// --- malformed files -------------------------------------------------------------------------------

TEST(Evaluate, MalformedPredictionFilesGetClearErrors) {
  struct Case {
    std::string name, expect;
    std::function<void(H5Out&)> fill;
  };
  const Truth& t = truth();
  const std::vector<Case> cases = {
      {"no_sample.h5", "/columns/sample", [&](H5Out& h) { h.f64("/columns/x_A", t.x_A), h.f64("/columns/y_A", t.y_A); }},
      {"short_y.h5", "/columns/y_A",
       [&](H5Out& h) {
         h.i64("/columns/sample", t.sample), h.f64("/columns/x_A", t.x_A);
         h.f64("/columns/y_A", std::vector<double>(t.y_A.begin(), t.y_A.end() - 1));
       }},
      {"no_coords.h5", "neither x_A/y_A nor x_px/y_px", [&](H5Out& h) { h.i64("/columns/sample", t.sample); }},
      {"bad_sample.h5", "/columns/sample",
       [&](H5Out& h) {
         auto s = t.sample;
         s[3] = 99;
         h.i64("/columns/sample", s), h.f64("/columns/x_A", t.x_A), h.f64("/columns/y_A", t.y_A);
       }},
      {"short_class.h5", "/class", [&](H5Out& h) { h.i32("/class", {0, 1, 2}); }},
      {"float_class.h5", "/class", [&](H5Out& h) { h.f64("/class", std::vector<double>(kN, 1.0)); }},
      {"2d_class.h5", "/class",
       [&](H5Out& h) { h.write("/class", {kN, 2}, std::vector<int>(2 * kN, 0), H5T_NATIVE_INT); }},
      {"mask_shape.h5", "/masks/phase",
       [&](H5Out& h) { h.write("/masks/phase", {kN, 16, 16}, std::vector<std::uint8_t>(kN * 256, 0), H5T_NATIVE_UINT8); }},
      {"mask_unknown.h5", "/masks/grain",
       [&](H5Out& h) { h.write("/masks/grain", {kN, kNy, kNx}, truth().mask, H5T_NATIVE_UINT8); }},
      {"scalar_unknown.h5", "/scalars/defocus", [&](H5Out& h) { h.f64("/scalars/defocus", std::vector<double>(kN, 0)); }},
      {"scalar_nan.h5", "/scalars/dose",
       [&](H5Out& h) {
         auto d = t.dose;
         d[2] = NAN;
         h.f64("/scalars/dose", d);
       }},
      {"empty.h5", "nothing to score", [&](H5Out& h) { h.group("/other"); }},
  };
  for (const Case& c : cases) {
    const std::string path = scratch(c.name).string();
    {
      H5Out h(path);
      c.fill(h);
    }
    const std::string msg = error_of([&] { evaluate(dataset(), path, {}); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
  // Not HDF5 at all, and missing.
  const fs::path junk = scratch("junk.h5");
  std::ofstream(junk) << "not hdf5\n";
  std::string msg = error_of([&] { evaluate(dataset(), junk.string(), {}); });
  EXPECT_NE(msg.find(junk.string() + ": not an HDF5 file"), std::string::npos) << msg;
  msg = error_of([&] { evaluate(dataset(), scratch("missing.h5").string(), {}); });
  EXPECT_NE(msg.find("missing.h5: cannot open"), std::string::npos) << msg;
  // CSV: a bad header and a bad number name the line.
  const fs::path csv = scratch("bad.csv");
  std::ofstream(csv) << "sample,x,y\n0,1,2\n";
  msg = error_of([&] { evaluate(dataset(), csv.string(), {}); });
  EXPECT_NE(msg.find(csv.string() + ": line 1"), std::string::npos) << msg;
  std::ofstream(csv) << "sample,x_A,y_A\n0,1,2\n1,abc,2\n";
  msg = error_of([&] { evaluate(dataset(), csv.string(), {}); });
  EXPECT_NE(msg.find(csv.string() + ": line 3"), std::string::npos) << msg;
  // The CLI turns errors into exit code 1 and a message on `err`.
  std::ostringstream out, err;
  EXPECT_EQ(cmd_evaluate(dataset(), junk.string(), scratch("never").string(), 0.5, "A", 4, {}, {}, out, err), 1);
  EXPECT_NE(err.str().find("not an HDF5 file"), std::string::npos);
}

TEST(Evaluate, DatasetProblemsNameTheDatasetPath) {
  // A dataset without column labels, scored against predictions that hold columns.
  const std::string ds = scratch("no_columns.h5").string();
  {
    H5Out h(ds);
    h.f64("/params/dose", truth().dose);
    h.i32("/labels/class", truth().cls);
    h.attr_strings("/labels/class", "names", {"a", "b", "c"});
  }
  const std::string pred = write_predictions_file("perfect2.h5", {});
  const std::string msg = error_of([&] { evaluate(ds, pred, {}); });
  EXPECT_NE(msg.find(ds), std::string::npos) << msg;
  EXPECT_NE(msg.find("/labels/columns"), std::string::npos) << msg;
  // Class names given as a list of strings are read as such; without complete_samples the
  // sample count comes from /labels/class.
  const std::string pc = scratch("classes_only.h5").string();
  {
    H5Out h(pc);
    h.i32("/class", truth().cls);
  }
  const Report r = evaluate(ds, pc, {});
  EXPECT_EQ(r.n_samples, kN);
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"a", "b", "c"}));

  // A dataset with pixel positions only and no pixel size.
  const std::string dp = scratch("px_only.h5").string();
  {
    H5Out h(dp);
    h.attr_i64("/", "complete_samples", static_cast<std::int64_t>(kN));
    h.i64("/labels/columns/sample", truth().sample);
    h.f64("/labels/columns/x_px", truth().x_px);
    h.f64("/labels/columns/y_px", truth().y_px);
  }
  std::string m = error_of([&] { evaluate(dp, write_predictions_file("in_A.h5", {.with_species = false, .columns_only = true}), {}); });
  EXPECT_NE(m.find(dp + ": /labels/columns/x_A: missing"), std::string::npos) << m;
  const std::string in_px = write_predictions_file("in_px.h5", {.in_px = true, .dx_px = 0.3, .with_species = false, .columns_only = true});
  m = error_of([&] { evaluate(dp, in_px, {}); });  // tolerance in Å, columns in px
  EXPECT_NE(m.find("pixel_size_A"), std::string::npos) << m;
  EvaluateOptions o;
  o.tolerance_unit = "px";
  const Report rp = evaluate(dp, in_px, o);
  EXPECT_NEAR(metric(rp.overall, "detection.rmse_px"), 0.3, 1e-12);
  EXPECT_TRUE(std::isnan(metric(rp.overall, "detection.rmse_A")));
}

// --- report output ----------------------------------------------------------------------------------

TEST(Report, WritesJsonCsvAndPlots) {
  const Report r = evaluate(dataset(), write_predictions_file("report.h5", {.dx_A = 0.02}), {});
  const fs::path dir = scratch("report");
  fs::remove_all(dir);
  const auto files = write_report(r, dir.string());
  // json + csv + (detection, localisation, classification, segmentation, regression) × 2 params
  ASSERT_EQ(files.size(), 2u + 5u * 2u);
  for (const auto& f : files) EXPECT_TRUE(fs::exists(f)) << f;
  std::ifstream png(dir / "dose__detection.png", std::ios::binary);
  char sig[8] = {};
  png.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  const auto j = nlohmann::json::parse(std::ifstream(dir / "report.json"));
  EXPECT_EQ(j["n_samples"], kN);
  EXPECT_EQ(j["classification"]["confusion_matrix"][1][1], 4);
  EXPECT_NEAR(j["detection"]["rmse_A"].get<double>(), 0.02, 1e-12);
  EXPECT_EQ(j["breakdown"][0]["bins"].size(), 4u);
  // CSV: header + "all" + 4 dose bins + 4 thickness bins.
  std::ifstream csv(dir / "report.csv");
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(csv, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u + 1u + 4u + 4u);
  EXPECT_EQ(lines[0].rfind("param,bin,lo,hi,mean,n_samples,", 0), 0u);
  EXPECT_EQ(lines[1].rfind("all,,,,,12,", 0), 0u);
  EXPECT_EQ(lines[2].rfind("dose,0,100,375,200,3,", 0), 0u);  // samples 100, 200, 300
}

TEST(Plot, FontTicksAndRendering) {
  // The glyph of '1' drawn at (0, 0): its top row 00100 lights pixel x = 2 only.
  RgbImage img(12, 8, 255);
  plot::draw_text(img, 0, 0, "1", {0, 0, 0});
  EXPECT_EQ(img.rgb[(0 * 12 + 2) * 3], 0);
  EXPECT_EQ(img.rgb[(0 * 12 + 1) * 3], 255);
  EXPECT_EQ(img.rgb[(6 * 12 + 1) * 3], 0);  // bottom row 01110
  EXPECT_EQ(plot::text_width("10"), 11);
  EXPECT_EQ(plot::glyph('a'), plot::glyph('A'));
  EXPECT_EQ(plot::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(plot::format_tick(0.25, 0.05), "0.25");
  EXPECT_EQ(plot::format_tick(1500, 500), "1500");
  EXPECT_EQ(plot::format_tick(0.00285, 0.00005), "0.00285");
  EXPECT_EQ(plot::format_tick(2.85e-7, 5e-9), "2.85e-07");
  EXPECT_EQ(plot::format_tick(-1e-17, 0.1), "0.0");
  // A red series appears in the picture; the count bars use their own colour.
  plot::Figure f;
  f.series.push_back({"F1", {0.5, 1.5}, {0.2, 0.8}, {255, 0, 0}});
  f.bin_lo = {0, 1};
  f.bin_hi = {1, 2};
  f.counts = {3, 5};
  const RgbImage pic = plot::render(f);
  std::size_t red = 0;
  for (std::size_t i = 0; i < pic.rgb.size(); i += 3)
    red += pic.rgb[i] == 255 && pic.rgb[i + 1] == 0 && pic.rgb[i + 2] == 0;
  EXPECT_GT(red, 100u);
  f.counts = {1};
  EXPECT_THROW(plot::render(f), std::invalid_argument);
}

// --- baseline -------------------------------------------------------------------------------------

TEST(Baseline, SubPixelPeaksOfGaussians) {
  // Gaussians of σ 1.5 px blurred by σ 1 px are ≈ σ 1.8 px peaks; a 3×3 quadratic fit to such
  // a peak is biased by at most 0.04 px over all sub-pixel offsets (computed for the continuous
  // profile), so 0.06 px is the bound; without refinement errors reach 0.5 px.
  Image img(48, 40);
  std::vector<std::array<double, 2>> where;
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 4; ++i) where.push_back({6.0 + 11.0 * i + 0.13 * i - 0.41 * j, 7.0 + 12.0 * j + 0.37 * i - 0.2});
  for (const auto& w : where)
    for (std::size_t y = 0; y < img.ny; ++y)
      for (std::size_t x = 0; x < img.nx; ++x)
        img(y, x) += std::exp(-(std::pow(x - w[0], 2) + std::pow(y - w[1], 2)) / (2 * 1.5 * 1.5));
  const auto peaks = detect_columns(img, {});
  ASSERT_EQ(peaks.size(), where.size());
  for (const auto& w : where) {
    double best = 1e9;
    for (const auto& p : peaks) best = std::min(best, std::max(std::abs(p.x - w[0]), std::abs(p.y - w[1])));
    EXPECT_LT(best, 0.06);
  }
}

TEST(Baseline, RunsEndToEndThroughEvaluate) {
  const std::string pred = scratch("baseline.h5").string();
  std::ostringstream out, err;
  ASSERT_EQ(cmd_baseline(dataset(), pred, "", 1.0, 0.5, 2, false, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("108 columns in 12 samples"), std::string::npos) << out.str();
  const Report r = evaluate(dataset(), pred, {});
  EXPECT_EQ(r.coordinate_frame, "px");
  EXPECT_DOUBLE_EQ(metric(r.overall, "detection.f1"), 1.0);
  EXPECT_LT(metric(r.overall, "detection.rmse_px"), 0.06);  // bound of SubPixelPeaksOfGaussians
  // Brightness rises with the class id in the fixture, so tercile thresholds recover them.
  EXPECT_DOUBLE_EQ(metric(r.overall, "classification.accuracy"), 1.0);
  std::ostringstream out2;
  ASSERT_EQ(cmd_evaluate(dataset(), pred, scratch("baseline_report").string(), 0.5, "A", 3, {"dose=0,600,1200"}, {},
                         out2, err),
            0)
      << err.str();
  EXPECT_NE(out2.str().find("F1 1"), std::string::npos) << out2.str();
  EXPECT_TRUE(fs::exists(scratch("baseline_report") / "dose__detection.png"));
}
