// The evaluation report on disk: report.json, a CSV per breakdown, plots (write_report). The
// evaluation itself: evaluate.cpp.
#include "stemtwin/evaluate/evaluate.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

#include "evaluate_io.hpp"
#include "stemtwin/dataset/plot.hpp"

namespace stemtwin {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const char* const kMatchingRule =
    "one-to-one matching of predicted to true columns in the same sample; a pair is admissible "
    "when its distance is <= tolerance; among all assignments of admissible pairs the one with "
    "the most matches and, among those, the smallest summed distance is taken (Hungarian "
    "algorithm, pairs beyond tolerance cost tolerance*(min(n_true,n_pred)+1)); unmatched "
    "predictions are false positives, unmatched true columns false negatives; counts are summed "
    "over samples before the ratios are taken";

using Json = nlohmann::ordered_json;

Json num(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json metric_json(const MetricMap& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = num(v);
  return j;
}

std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

Json report_json(const Report& r) {
  using json = Json;
  json j;
  j["dataset"] = r.dataset_path;
  j["predictions"] = r.predictions_path;
  j["n_samples"] = r.n_samples;
  json edges = json::object();
  for (const auto& [p, e] : r.options.edges) edges[p] = e;
  j["options"] = {{"tolerance", r.options.tolerance},
                  {"tolerance_unit", r.options.tolerance_unit},
                  {"bins", r.options.bins},
                  {"edges", edges},
                  {"params", r.options.params}};
  j["warnings"] = r.warnings;
  if (r.has_detection) {
    const auto d = metrics::detection_metrics(r.detection);
    json det = {{"frame", r.coordinate_frame},
                {"matching_rule", kMatchingRule},
                {"true_positives", r.detection.true_positives},
                {"false_positives", r.detection.false_positives},
                {"false_negatives", r.detection.false_negatives},
                {"precision", num(d.precision)},
                {"recall", num(d.recall)},
                {"f1", num(d.f1)},
                {"rmse_A", r.overall.count("detection.rmse_A") ? num(r.overall.at("detection.rmse_A")) : json(nullptr)},
                {"rmse_px", r.overall.count("detection.rmse_px") ? num(r.overall.at("detection.rmse_px")) : json(nullptr)}};
    det["species_accuracy"] =
        r.overall.count("detection.species_accuracy") ? num(r.overall.at("detection.species_accuracy")) : json(nullptr);
    det["species_compared"] = r.detection.species_compared;
    j["detection"] = det;
  }
  if (r.has_classification) {
    const auto m = metrics::classification_metrics(r.confusion);
    json cm = json::array();
    for (std::size_t t = 0; t < r.confusion.k; ++t) {
      json row = json::array();
      for (std::size_t p = 0; p < r.confusion.k; ++p) row.push_back(r.confusion.at(t, p));
      cm.push_back(row);
    }
    json per = json::array();
    for (std::size_t k = 0; k < r.confusion.k; ++k) {
      std::size_t support = 0;
      for (std::size_t p = 0; p < r.confusion.k; ++p) support += r.confusion.at(k, p);
      per.push_back({{"id", k}, {"name", r.class_names[k]}, {"precision", num(m.precision[k])},
                     {"recall", num(m.recall[k])}, {"support", support}});
    }
    j["classification"] = {{"class_names", r.class_names},
                           {"confusion_matrix", cm},
                           {"confusion_matrix_layout", "rows: true class, columns: predicted class"},
                           {"accuracy", num(m.accuracy)},
                           {"per_class", per}};
  }
  for (const auto& [name, c] : r.segmentation) {
    const auto m = metrics::segmentation_metrics(c);
    json cls = json::array();
    for (std::size_t k = 0; k < m.iou.size(); ++k)
      cls.push_back({{"id", k}, {"iou", num(m.iou[k])}, {"dice", num(m.dice[k])}, {"true_pixels", c.truth[k]},
                     {"pred_pixels", c.pred[k]}, {"intersection", c.intersection[k]}});
    j["segmentation"][name] = {{"classes", cls}, {"mean_iou", num(m.mean_iou)}, {"mean_dice", num(m.mean_dice)}};
  }
  for (const auto& [name, c] : r.regression) {
    const auto m = metrics::regression_metrics(c);
    j["regression"][name] = {{"n", c.n}, {"mae", num(m.mae)}, {"rmse", num(m.rmse)}, {"bias", num(m.bias)}};
  }
  j["overall"] = metric_json(r.overall);
  json bd = json::array();
  for (const Breakdown& b : r.breakdowns) {
    json bins = json::array();
    for (const BinResult& x : b.bins)
      bins.push_back({{"lo", x.lo}, {"hi", x.hi}, {"mean", num(x.mean)}, {"n_samples", x.n_samples},
                      {"metrics", metric_json(x.metrics)}});
    bd.push_back({{"param", b.param}, {"binning", b.binning}, {"edges", b.edges}, {"n_outside", b.n_outside},
                  {"bins", bins}});
  }
  j["breakdown"] = bd;
  return j;
}

struct PlotGroup {
  std::string file, title, y_label;
  std::vector<std::pair<std::string, std::string>> series;  // (metric key, legend)
  bool unit_range;
};

std::vector<PlotGroup> plot_groups(const Report& r) {
  std::vector<PlotGroup> g;
  if (r.has_detection) {
    PlotGroup d{"detection", "Detection", "score", {{"detection.precision", "precision"}, {"detection.recall", "recall"},
                                                     {"detection.f1", "F1"}}, true};
    if (r.overall.count("detection.species_accuracy")) d.series.push_back({"detection.species_accuracy", "species acc."});
    g.push_back(d);
    const bool A = r.overall.count("detection.rmse_A") && std::isfinite(r.overall.at("detection.rmse_A"));
    g.push_back({"localisation_rmse", "Localisation RMSE", A ? "RMSE (A)" : "RMSE (px)",
                 {{A ? "detection.rmse_A" : "detection.rmse_px", A ? "RMSE A" : "RMSE px"}}, false});
  }
  if (r.has_classification)
    g.push_back({"classification", "Classification", "accuracy", {{"classification.accuracy", "accuracy"}}, true});
  for (const auto& [name, c] : r.segmentation)
    g.push_back({"segmentation_" + name, "Segmentation " + name, "score",
                 {{"segmentation." + name + ".mean_iou", "mean IoU"}, {"segmentation." + name + ".mean_dice", "mean Dice"}},
                 true});
  for (const auto& [name, c] : r.regression)
    g.push_back({"regression_" + name, "Regression " + name, "error",
                 {{"regression." + name + ".mae", "MAE"}, {"regression." + name + ".rmse", "RMSE"},
                  {"regression." + name + ".bias", "bias"}},
                 false});
  return g;
}

}  // namespace

std::vector<std::string> write_report(const Report& report, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("write_report: cannot create directory '" + dir + "': " + ec.message());
  std::vector<std::string> written;

  const std::string json_path = (fs::path(dir) / "report.json").string();
  {
    std::ofstream out(json_path);
    out << report_json(report).dump(2) << "\n";
    if (!out) throw std::runtime_error("write_report: cannot write '" + json_path + "'");
  }
  written.push_back(json_path);

  // CSV: one row for all samples, then one per (parameter, bin); a column per metric.
  std::set<std::string> keys;
  for (const auto& [k, v] : report.overall) keys.insert(k);
  for (const auto& b : report.breakdowns)
    for (const auto& x : b.bins)
      for (const auto& [k, v] : x.metrics) keys.insert(k);
  keys.erase("n_samples");
  const std::string csv_path = (fs::path(dir) / "report.csv").string();
  {
    std::ofstream out(csv_path);
    out << "param,bin,lo,hi,mean,n_samples";
    for (const auto& k : keys) out << "," << csv_field(k);
    out << "\n";
    auto row = [&](const std::string& param, const std::string& bin, double lo, double hi, double mean,
                   std::size_t n, const MetricMap& m) {
      out << csv_field(param) << "," << bin << "," << csv_number(lo) << "," << csv_number(hi) << ","
          << csv_number(mean) << "," << n;
      for (const auto& k : keys) {
        const auto it = m.find(k);
        out << "," << (it == m.end() ? "" : csv_number(it->second));
      }
      out << "\n";
    };
    row("all", "", kNaN, kNaN, kNaN, report.n_samples, report.overall);
    for (const auto& b : report.breakdowns)
      for (std::size_t i = 0; i < b.bins.size(); ++i)
        row(b.param, std::to_string(i), b.bins[i].lo, b.bins[i].hi, b.bins[i].mean, b.bins[i].n_samples,
            b.bins[i].metrics);
    if (!out) throw std::runtime_error("write_report: cannot write '" + csv_path + "'");
  }
  written.push_back(csv_path);

  static const plot::Rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}};
  for (const Breakdown& b : report.breakdowns) {
    if (b.bins.empty()) continue;
    for (const PlotGroup& g : plot_groups(report)) {
      plot::Figure f;
      f.title = g.title + " vs " + b.param;
      f.x_label = b.param;
      f.y_label = g.y_label;
      f.fixed_y = g.unit_range;
      f.y_min = 0, f.y_max = 1.05;
      for (const BinResult& x : b.bins) {
        f.bin_lo.push_back(x.lo);
        f.bin_hi.push_back(x.hi);
        f.counts.push_back(static_cast<double>(x.n_samples));
      }
      for (std::size_t s = 0; s < g.series.size(); ++s) {
        plot::Series ser;
        ser.label = g.series[s].second;
        ser.color = palette[s % std::size(palette)];
        for (const BinResult& x : b.bins) {
          ser.x.push_back(std::isfinite(x.mean) ? x.mean : 0.5 * (x.lo + x.hi));
          const auto it = x.metrics.find(g.series[s].first);
          ser.y.push_back(it == x.metrics.end() ? kNaN : it->second);
        }
        f.series.push_back(std::move(ser));
      }
      const std::string path = (fs::path(dir) / (file_safe(b.param) + "__" + file_safe(g.file) + ".png")).string();
      write_png(path, plot::render(f));
      written.push_back(path);
    }
  }
  return written;
}

}  // namespace stemtwin
