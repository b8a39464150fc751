// The non-learned baseline: HAADF peak finding for columns, a mean-intensity threshold for classes.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "evaluate_io.hpp"
#include "stemtwin/evaluate/evaluate.hpp"

namespace stemtwin {
namespace {

// Separable Gaussian blur, edges clamped; radius ceil(3σ).
Image gaussian_blur(const Image& in, double sigma) {
  if (sigma <= 0 || in.size() == 0) return in;
  const int r = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> k(static_cast<std::size_t>(2 * r + 1));
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[static_cast<std::size_t>(i + r)] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& v : k) v /= sum;
  const auto nx = static_cast<long>(in.nx), ny = static_cast<long>(in.ny);
  Image tmp(in.nx, in.ny), out(in.nx, in.ny);
  for (long y = 0; y < ny; ++y)
    for (long x = 0; x < nx; ++x) {
      double s = 0;
      for (int i = -r; i <= r; ++i)
        s += k[static_cast<std::size_t>(i + r)] * in(static_cast<std::size_t>(y), static_cast<std::size_t>(std::clamp(x + i, 0L, nx - 1)));
      tmp(static_cast<std::size_t>(y), static_cast<std::size_t>(x)) = s;
    }
  for (long y = 0; y < ny; ++y)
    for (long x = 0; x < nx; ++x) {
      double s = 0;
      for (int i = -r; i <= r; ++i)
        s += k[static_cast<std::size_t>(i + r)] * tmp(static_cast<std::size_t>(std::clamp(y + i, 0L, ny - 1)), static_cast<std::size_t>(x));
      out(static_cast<std::size_t>(y), static_cast<std::size_t>(x)) = s;
    }
  return out;
}

}  // namespace

std::vector<metrics::Point> detect_columns(const Image& image, const BaselineOptions& o) {
  if (o.min_distance_px < 1) throw std::invalid_argument("detect_columns: min_distance_px must be >= 1");
  if (!(o.threshold >= 0 && o.threshold <= 1)) throw std::invalid_argument("detect_columns: threshold must be in [0, 1]");
  std::vector<metrics::Point> peaks;
  if (image.size() == 0) return peaks;
  const Image s = gaussian_blur(image, o.sigma_px);
  const auto [mn, mx] = std::minmax_element(s.data.begin(), s.data.end());
  if (!(*mx > *mn)) return peaks;
  const double thr = *mn + o.threshold * (*mx - *mn);
  const long nx = static_cast<long>(s.nx), ny = static_cast<long>(s.ny), r = o.min_distance_px;
  auto at = [&](long y, long x) { return s(static_cast<std::size_t>(y), static_cast<std::size_t>(x)); };
  for (long y = 0; y < ny; ++y)
    for (long x = 0; x < nx; ++x) {
      const double v = at(y, x);
      if (!(v > thr)) continue;
      // Maximum of its neighbourhood; on a plateau the first pixel in raster order wins.
      bool is_max = true;
      for (long yy = std::max(0L, y - r); yy <= std::min(ny - 1, y + r) && is_max; ++yy)
        for (long xx = std::max(0L, x - r); xx <= std::min(nx - 1, x + r); ++xx) {
          if (yy == y && xx == x) continue;
          const double w = at(yy, xx);
          const bool before = yy < y || (yy == y && xx < x);
          if (w > v || (before && w == v)) {
            is_max = false;
            break;
          }
        }
      if (!is_max) continue;
      double dx = 0, dy = 0;
      if (x > 0 && y > 0 && x < nx - 1 && y < ny - 1) {
        // Least-squares quadratic a + b·u + c·v + d·u² + e·u·v + g·v² on the 3×3 neighbourhood;
        // on that grid the basis {1, u, v, u²−2/3, u·v, v²−2/3} is orthogonal, so each
        // coefficient is one weighted sum.
        double b = 0, c = 0, d = 0, e = 0, g = 0;
        for (int j = -1; j <= 1; ++j)
          for (int i = -1; i <= 1; ++i) {
            const double f = at(y + j, x + i);
            b += i * f / 6.0;
            c += j * f / 6.0;
            e += i * j * f / 4.0;
            d += (i * i - 2.0 / 3.0) * f / 2.0;
            g += (j * j - 2.0 / 3.0) * f / 2.0;
          }
        const double det = 4 * d * g - e * e;
        if (d < 0 && g < 0 && det > 0) {  // a true maximum of the fitted surface
          dx = std::clamp((e * c - 2 * g * b) / det, -0.5, 0.5);
          dy = std::clamp((e * b - 2 * d * c) / det, -0.5, 0.5);
        }
      }
      peaks.push_back({static_cast<double>(x) + dx, static_cast<double>(y) + dy, 0});
    }
  return peaks;
}

BaselineSummary run_baseline(const std::string& dataset_path, const std::string& out_path, const BaselineOptions& o) {
  const evalio::DatasetReader ds(dataset_path);
  BaselineSummary sum;
  const auto dets = ds.detectors();
  if (dets.empty()) throw std::runtime_error(dataset_path + ": /images: no detector images to run the baseline on");
  if (!o.detector.empty()) {
    if (std::find(dets.begin(), dets.end(), o.detector) == dets.end()) {
      std::string list;
      for (const auto& d : dets) list += (list.empty() ? "" : ", ") + d;
      throw std::runtime_error(dataset_path + ": /images/" + o.detector + ": missing (detectors: " + list + ")");
    }
    sum.detector = o.detector;
  } else {
    sum.detector = dets.front();
    for (const auto& d : dets) {
      std::string lower = d;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (lower.find("haadf") != std::string::npos) {
        sum.detector = d;
        break;
      }
    }
  }
  const std::size_t n = ds.n_samples();
  if (ds.image_shape(sum.detector).n < n)
    throw std::runtime_error(dataset_path + ": /images/" + sum.detector + ": holds fewer than the " + std::to_string(n) +
                             " samples");
  evalio::Predictions pred;
  pred.with_columns = true;
  pred.columns.px_present = true;
  std::vector<double> mean(n);
  for (std::size_t s = 0; s < n; ++s) {
    const Image img = ds.image(sum.detector, s, o.use_clean);
    mean[s] = img.mean();
    for (const metrics::Point& p : detect_columns(img, o)) {
      pred.columns.sample.push_back(static_cast<std::int64_t>(s));
      pred.columns.x_px.push_back(p.x);
      pred.columns.y_px.push_back(p.y);
    }
  }
  sum.n_samples = n;
  sum.n_columns = pred.columns.size();

  if (ds.has_classes() && n > 0) {
    std::size_t k = ds.class_names().size();
    if (k == 0) {  // no names: the number of classes is what the labels use
      for (int c : ds.classes()) k = std::max(k, static_cast<std::size_t>(std::max(c, 0)) + 1);
    }
    k = std::max<std::size_t>(k, 1);
    std::vector<double> thr = o.class_thresholds;
    if (thr.empty()) {  // quantiles j/k of the mean intensity: class 0 is the darkest
      std::vector<double> sorted = mean;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t j = 1; j < k; ++j) {
        const double h = static_cast<double>(n - 1) * static_cast<double>(j) / static_cast<double>(k);
        const auto lo = static_cast<std::size_t>(std::floor(h));
        const std::size_t hi = std::min(lo + 1, n - 1);
        thr.push_back(sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]));
      }
    }
    std::sort(thr.begin(), thr.end());
    for (double m : mean)  // class = number of thresholds the mean intensity exceeds
      pred.classes.push_back(static_cast<int>(std::count_if(thr.begin(), thr.end(), [&](double t) { return m > t; })));
    sum.wrote_classes = true;
    sum.class_thresholds = thr;
  }
  std::ostringstream method;
  method << "stemtwin baseline: local maxima of the Gaussian-smoothed /" << (o.use_clean ? "clean/" : "images/")
         << sum.detector << " (sigma " << o.sigma_px << " px, window " << 2 * o.min_distance_px + 1
         << " px, threshold " << o.threshold << " of the range), 3x3 quadratic sub-pixel refinement";
  if (sum.wrote_classes) method << "; class = number of mean-intensity thresholds exceeded";
  pred.method = method.str();
  evalio::write_predictions(out_path, pred);
  return sum;
}

}  // namespace stemtwin
