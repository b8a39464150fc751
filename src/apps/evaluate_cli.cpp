#include "stemtwin/apps/evaluate_cli.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "stemtwin/evaluate/evaluate.hpp"

namespace stemtwin {
namespace {

std::string fmt(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::pair<std::string, std::vector<double>> parse_edges_spec(const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument("bin edges '" + spec + "': expected PARAM=E0,E1,... (e.g. dose=0,100,1000)");
  std::vector<double> edges;
  std::stringstream ss(spec.substr(eq + 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(v))
      throw std::invalid_argument("bin edges '" + spec + "': '" + item + "' is not a finite number");
    edges.push_back(v);
  }
  if (edges.size() < 2) throw std::invalid_argument("bin edges '" + spec + "': need at least two edges");
  for (std::size_t i = 1; i < edges.size(); ++i)
    if (!(edges[i] > edges[i - 1])) throw std::invalid_argument("bin edges '" + spec + "': edges must increase");
  return {spec.substr(0, eq), edges};
}

int cmd_evaluate(const std::string& dataset, const std::string& predictions, const std::string& out_dir,
                 double tolerance, const std::string& tolerance_unit, std::size_t bins,
                 const std::vector<std::string>& edges, const std::vector<std::string>& params, std::ostream& out,
                 std::ostream& err) {
  try {
    EvaluateOptions o;
    o.tolerance = tolerance;
    o.tolerance_unit = tolerance_unit == "Å" ? "A" : tolerance_unit;
    o.bins = bins;
    o.params = params;
    for (const auto& spec : edges) {
      auto [name, e] = parse_edges_spec(spec);
      o.edges[name] = e;
    }
    const Report r = evaluate(dataset, predictions, o);
    const auto files = write_report(r, out_dir);
    out << "evaluated " << r.n_samples << " samples of " << dataset << " against " << predictions << "\n";
    for (const auto& w : r.warnings) out << "warning: " << w << "\n";
    auto get = [&](const std::string& k) { return r.overall.count(k) ? r.overall.at(k) : NAN; };
    if (r.has_detection)
      out << "  columns (" << r.coordinate_frame << ", tolerance " << o.tolerance << " " << o.tolerance_unit
          << "): precision " << fmt(get("detection.precision")) << ", recall " << fmt(get("detection.recall"))
          << ", F1 " << fmt(get("detection.f1")) << ", RMSE " << fmt(get("detection.rmse_A")) << " A / "
          << fmt(get("detection.rmse_px")) << " px\n";
    if (r.has_classification) out << "  classes: accuracy " << fmt(get("classification.accuracy")) << "\n";
    for (const auto& [name, c] : r.segmentation)
      out << "  mask " << name << ": mean IoU " << fmt(get("segmentation." + name + ".mean_iou")) << ", mean Dice "
          << fmt(get("segmentation." + name + ".mean_dice")) << "\n";
    for (const auto& [name, c] : r.regression)
      out << "  " << name << ": MAE " << fmt(get("regression." + name + ".mae")) << ", RMSE "
          << fmt(get("regression." + name + ".rmse")) << ", bias " << fmt(get("regression." + name + ".bias")) << "\n";
    out << "wrote " << files.size() << " files to " << out_dir << " (report.json, report.csv, "
        << (files.size() - 2) << " plots)\n";
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin evaluate: error: " << e.what() << "\n";
    return 1;
  }
}

int cmd_baseline(const std::string& dataset, const std::string& out_path, const std::string& detector,
                 double sigma_px, double threshold, int min_distance_px, bool use_clean, std::ostream& out,
                 std::ostream& err) {
  try {
    BaselineOptions o;
    o.detector = detector;
    o.sigma_px = sigma_px;
    o.threshold = threshold;
    o.min_distance_px = min_distance_px;
    o.use_clean = use_clean;
    const BaselineSummary s = run_baseline(dataset, out_path, o);
    out << "baseline on /" << (use_clean ? "clean/" : "images/") << s.detector << ": " << s.n_columns
        << " columns in " << s.n_samples << " samples";
    if (s.wrote_classes) {
      out << "; classes from mean-intensity thresholds";
      for (double t : s.class_thresholds) out << " " << fmt(t);
    }
    out << "\nwrote " << out_path << "\n";
    return 0;
  } catch (const std::exception& e) {
    err << "stemtwin baseline: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace stemtwin
