#include "stemtwin/dataset/preview.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "stemtwin/dataset/plot.hpp"

namespace stemtwin {

std::array<std::uint8_t, 3> species_color(int s) {
  // Okabe–Ito palette (colour-blind safe), cycled.
  static const std::array<std::uint8_t, 3> p[8] = {{230, 159, 0},  {86, 180, 233}, {0, 158, 115}, {240, 228, 66},
                                                   {0, 114, 178},  {213, 94, 0},   {204, 121, 167}, {255, 255, 255}};
  const int n = 8;
  return p[((s % n) + n) % n];
}

namespace {

using plot::Rgb;

constexpr Rgb kBackground{32, 32, 36};
constexpr Rgb kText{235, 235, 235};
constexpr Rgb kDim{170, 170, 180};
constexpr std::uint8_t kBg = 32;

/// Colours of the species that occur, in order of species id: distinct for up to 8
/// species whatever their ids (Ti = 22 and Sr = 38 would share species_color(id)).
struct Palette {
  std::map<int, int> rank;
  std::array<std::uint8_t, 3> operator()(int species) const {
    const auto it = rank.find(species);
    return species_color(it == rank.end() ? species : it->second);
  }
};

Palette palette_of(const std::set<int>& present) {
  Palette p;
  for (int s : present) p.rank.emplace(s, static_cast<int>(p.rank.size()));
  return p;
}

/// What one row of the sheet shows.
struct RowKind {
  enum Kind { Channel, MaskOverlay, MeanPattern, VirtualImage, SpectrumMap } kind = Channel;
  std::string name;     ///< channel, mask or detector
  std::string title;    ///< row header, line 1
  std::string detail;   ///< row header, line 2
  bool scan = true;     ///< a scan image (scale bar, markers) rather than a pattern
};

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string upper_detail_of(const DetectorSettings& d) {
  if (d.type == "annular") return fmt(d.inner_mrad) + "-" + fmt(d.outer_mrad) + " mrad";
  if (d.type == "pixelated") return d.max_angle_mrad > 0 ? "to " + fmt(d.max_angle_mrad) + " mrad" : "full pattern";
  return d.type;
}

std::vector<RowKind> rows_of(const DatasetReader& r, const PreviewOptions& o) {
  const auto& L = r.layout();
  std::vector<RowKind> rows;
  const auto s0 = r.instrument(0);  // the file's instrument settings (/instrument); none in older files
  for (const auto& c : L.images) {
    RowKind k{RowKind::Channel, c, c, o.clean && L.store_clean ? "clean" : "acquired", true};
    if (s0)
      for (const auto& d : s0->detectors)
        if (d.name == c || c.rfind(d.name + "_", 0) == 0) k.detail += ", " + upper_detail_of(d);
    rows.push_back(k);
  }
  if (!L.images.empty())
    for (const auto& m : L.masks) rows.push_back({RowKind::MaskOverlay, m.name, "mask " + m.name, "over " + L.images[0], true});
  for (const auto& d : L.diffraction) {
    rows.push_back({RowKind::MeanPattern, d.name, d.name + " mean", "pattern, log scale", false});
    rows.push_back({RowKind::VirtualImage, d.name, d.name + " virtual", "annular image", true});
  }
  // Element maps of spectrometers (/maps/<det>/<El>_<line>, or /clean/maps with --clean).
  for (const auto& s : L.spectra)
    for (const auto& m : s.maps)
      rows.push_back({RowKind::SpectrumMap, s.name + "/" + m, m + " (" + s.technique + ")",
                      o.clean && L.store_clean ? "map, expected counts" : "map, counts", true});
  return rows;
}

/// Grey levels of an image between its 0.5 % and 99.5 % quantiles (robust to hot pixels).
std::pair<double, double> display_range(const std::vector<double>& v) {
  if (v.empty()) return {0, 1};
  std::vector<double> s(v);
  std::sort(s.begin(), s.end());
  const auto q = [&](double f) { return s[static_cast<std::size_t>(f * static_cast<double>(s.size() - 1))]; };
  double lo = q(0.005), hi = q(0.995);
  if (!(hi > lo)) lo = s.front(), hi = s.back();
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

/// A picture to put in a tile: grey values (nx × ny) plus an optional colour overlay.
struct Picture {
  std::size_t nx = 0, ny = 0;
  std::vector<double> grey;                              ///< ny·nx, drawn between lo and hi
  std::vector<std::array<std::uint8_t, 4>> overlay;      ///< rgba per pixel (empty: none)
  bool scan = true;
};

/// Mean pattern and virtual annular image of a 4D detector for one row.
struct FourD {
  Picture mean, virt;
  double inner_mrad = 0;
};

FourD four_d(const DatasetReader& r, const std::string& det, std::size_t row) {
  const auto& L = r.layout();
  const auto it = std::find_if(L.diffraction.begin(), L.diffraction.end(), [&](const DiffractionLayout& d) { return d.name == det; });
  const std::size_t kx = it->kx, ky = it->ky, n = kx * ky;
  std::vector<double> mean(n, 0.0), virt(L.nx * L.ny, 0.0);
  // Virtual detector: from the convergence angle (the bright-field disk's edge) outwards.
  const auto s = r.instrument(row);
  const double max_angle = 0.5 * std::min(static_cast<double>(kx) * it->sampling_x, static_cast<double>(ky) * it->sampling_y);
  double inner = s && s->convergence_mrad > 0 ? s->convergence_mrad * 1.1 : max_angle / 3;
  if (inner >= max_angle) inner = max_angle / 3;
  std::vector<char> in_det(n, 0);
  for (std::size_t j = 0; j < ky; ++j)
    for (std::size_t i = 0; i < kx; ++i) {
      const double ax = (static_cast<double>(i) - 0.5 * static_cast<double>(kx - 1)) * it->sampling_x;
      const double ay = (static_cast<double>(j) - 0.5 * static_cast<double>(ky - 1)) * it->sampling_y;
      in_det[j * kx + i] = std::hypot(ax, ay) >= inner;
    }
  for (std::size_t y = 0; y < L.ny; ++y) {
    const auto rowdata = r.diffraction_row(det, row, y);
    for (std::size_t x = 0; x < L.nx; ++x) {
      const float* p = &rowdata[x * n];
      double v = 0;
      for (std::size_t k = 0; k < n; ++k) {
        mean[k] += p[k];
        if (in_det[k]) v += p[k];
      }
      virt[y * L.nx + x] = v;
    }
  }
  const double peak = *std::max_element(mean.begin(), mean.end());
  for (double& m : mean) m = std::log10(m + 1e-5 * std::max(peak, 1e-30));
  FourD out;
  out.mean = {kx, ky, mean, {}, false};
  out.virt = {L.nx, L.ny, virt, {}, true};
  out.inner_mrad = inner;
  return out;
}

Picture picture_of(const DatasetReader& r, const RowKind& k, std::size_t row, const PreviewOptions& o, const Palette& pal) {
  const auto& L = r.layout();
  auto channel = [&](const std::string& c) {
    return o.clean && L.store_clean ? r.clean(c, row) : r.image(c, row);
  };
  switch (k.kind) {
    case RowKind::Channel: {
      const Image im = channel(k.name);
      return {im.nx, im.ny, im.data, {}, true};
    }
    case RowKind::MaskOverlay: {
      const Image base = channel(L.images[0]);
      const Image m = r.mask(k.name, row);
      Picture p{base.nx, base.ny, base.data, std::vector<std::array<std::uint8_t, 4>>(m.size()), true};
      for (std::size_t i = 0; i < m.size(); ++i) {
        const long v = std::lround(m.data[i]);
        if (v <= 0) continue;
        // species: the legend's colours; columns: one red; other masks (regions): by value.
        const auto c = k.name == "species"   ? pal(static_cast<int>(v) - 1)
                       : k.name == "columns" ? std::array<std::uint8_t, 3>{255, 70, 70}
                                             : species_color(static_cast<int>(v) + 4);
        p.overlay[i] = {c[0], c[1], c[2], 110};  // alpha 110/255: the image stays visible
      }
      return p;
    }
    case RowKind::MeanPattern: return four_d(r, k.name, row).mean;
    case RowKind::VirtualImage: return four_d(r, k.name, row).virt;
    case RowKind::SpectrumMap: {
      const SampleRecord rec = r.record(row);  // a few rows per sheet: reading the whole record is cheap enough
      const Image& im = (o.clean && L.store_clean ? rec.clean_maps : rec.maps).at(k.name);
      return {im.nx, im.ny, im.data, {}, true};
    }
  }
  return {};
}

/// Draws a picture fitted (aspect kept, nearest neighbour) into the box (x0, y0, w, h);
/// returns the screen rectangle the picture covers: x, y, width, height.
std::array<int, 4> blit(RgbImage& img, const Picture& p, int x0, int y0, int w, int h) {
  if (p.nx == 0 || p.ny == 0) return {x0, y0, 0, 0};
  const double s = std::min(static_cast<double>(w) / static_cast<double>(p.nx), static_cast<double>(h) / static_cast<double>(p.ny));
  const int pw = std::max(1, static_cast<int>(std::floor(s * static_cast<double>(p.nx)))),
            ph = std::max(1, static_cast<int>(std::floor(s * static_cast<double>(p.ny))));
  const int ox = x0 + (w - pw) / 2, oy = y0 + (h - ph) / 2;
  const auto [lo, hi] = display_range(p.grey);
  for (int y = 0; y < ph; ++y)
    for (int x = 0; x < pw; ++x) {
      const std::size_t ix = std::min(p.nx - 1, static_cast<std::size_t>(static_cast<double>(x) / s));
      const std::size_t iy = std::min(p.ny - 1, static_cast<std::size_t>(static_cast<double>(y) / s));
      const std::size_t i = iy * p.nx + ix;
      const double g = std::clamp((p.grey[i] - lo) / (hi - lo), 0.0, 1.0) * 255.0;
      double c[3] = {g, g, g};
      if (!p.overlay.empty() && p.overlay[i][3] > 0) {
        const double a = p.overlay[i][3] / 255.0;
        for (int k = 0; k < 3; ++k) c[k] = (1 - a) * c[k] + a * p.overlay[i][k];
      }
      img.set(static_cast<std::size_t>(ox + x), static_cast<std::size_t>(oy + y), static_cast<std::uint8_t>(c[0] + 0.5),
              static_cast<std::uint8_t>(c[1] + 0.5), static_cast<std::uint8_t>(c[2] + 0.5));
    }
  return {ox, oy, pw, ph};
}

/// Outlined text: readable on any image.
void label(RgbImage& img, int x, int y, const std::string& t, Rgb c, int scale = 1) {
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      if (dx || dy) plot::draw_text(img, x + dx, y + dy, t, Rgb{0, 0, 0}, scale);
  plot::draw_text(img, x, y, t, c, scale);
}

/// A scale bar (a round number of Å, about a quarter of the field) at the picture's lower left.
void scale_bar(RgbImage& img, const std::array<int, 4>& rect, std::size_t nx, double pixel_A) {
  if (!(pixel_A > 0) || rect[2] < 40) return;
  const double field = static_cast<double>(nx) * pixel_A;
  const double target = field / 4;
  double bar = std::pow(10.0, std::floor(std::log10(target)));
  for (double f : {5.0, 2.0, 1.0})
    if (f * std::pow(10.0, std::floor(std::log10(target))) <= target) {
      bar = f * std::pow(10.0, std::floor(std::log10(target)));
      break;
    }
  const int len = static_cast<int>(std::lround(bar / field * rect[2]));
  const int x = rect[0] + 6, y = rect[1] + rect[3] - 8;
  plot::fill_rect(img, x - 1, y - 1, x + len, y + 3, Rgb{0, 0, 0});
  plot::fill_rect(img, x, y, x + len - 1, y + 2, Rgb{255, 255, 255});
  label(img, x, y - 11, fmt(bar) + " Å", Rgb{255, 255, 255});
}

void markers(RgbImage& img, const std::array<int, 4>& rect, const std::vector<ColumnLabel>& cols, std::size_t nx,
             const Palette& pal) {
  const double s = static_cast<double>(rect[2]) / static_cast<double>(nx);
  const int rad = std::clamp(static_cast<int>(s * 0.12), 1, 3);
  for (const auto& l : cols) {
    const auto c = pal(l.species);
    const long cx = rect[0] + std::lround((l.px + 0.5) * s), cy = rect[1] + std::lround((l.py + 0.5) * s);
    for (int dy = -rad; dy <= rad; ++dy)
      for (int dx = -rad; dx <= rad; ++dx)
        if (dx * dx + dy * dy <= rad * rad && cx + dx >= rect[0] && cy + dy >= rect[1] && cx + dx < rect[0] + rect[2] &&
            cy + dy < rect[1] + rect[3])
          img.set(static_cast<std::size_t>(cx + dx), static_cast<std::size_t>(cy + dy), c[0], c[1], c[2]);
  }
}

/// Short name of a parameter path: its last component ("microscope.aberrations.defocus" → "defocus").
std::string short_name(const std::string& path) {
  const auto p = path.rfind('.');
  return p == std::string::npos ? path : path.substr(p + 1);
}

std::string param_text(const ParameterInfo& p, double v) {
  if (!p.categories.empty()) {
    const long i = std::lround(v);
    if (i >= 0 && static_cast<std::size_t>(i) < p.categories.size()) return short_name(p.name) + " " + p.categories[i];
  }
  return short_name(p.name) + " " + fmt(v);
}

/// Species that occur in the given rows' column labels (or masks), by id.
std::set<int> species_present(const DatasetReader& r, std::size_t rows) {
  std::set<int> s;
  for (std::size_t i = 0; i < rows; ++i)
    for (const auto& c : r.columns(i)) s.insert(c.species);
  return s;
}

/// Draws the species legend at (x, y); returns its height.
int legend(RgbImage& img, int x, int y, const DatasetReader& r, const std::set<int>& present, const Palette& pal,
           int max_w) {
  const auto& sp = r.layout().species;
  if (present.empty()) return 0;
  plot::draw_text(img, x, y, "species:", kDim, 1);
  int cx = x + plot::text_width("species:") + 8, cy = y;
  for (int s : present) {
    const std::string name = s >= 0 && static_cast<std::size_t>(s) < sp.size() ? sp[s] : std::to_string(s);
    const int w = 12 + plot::text_width(name) + 12;
    if (cx + w > x + max_w) cx = x + plot::text_width("species:") + 8, cy += 12;
    const auto c = pal(s);
    plot::fill_rect(img, cx, cy, cx + 8, cy + 7, Rgb{c[0], c[1], c[2]});
    plot::draw_text(img, cx + 12, cy, name, kText, 1);
    cx += w;
  }
  return cy - y + 12;
}

void fill(RgbImage& img) { std::fill(img.rgb.begin(), img.rgb.end(), kBg); }

}  // namespace

RgbImage render_contact_sheet(const DatasetReader& reader, const PreviewOptions& o) {
  const auto& L = reader.layout();
  const std::size_t cols = std::min(o.samples, reader.size());
  if (cols == 0) throw std::runtime_error("preview: the dataset has no complete samples");
  const auto rows = rows_of(reader, o);
  if (rows.empty()) throw std::runtime_error("preview: the dataset has no images or patterns to show");
  const int tile = std::max(o.tile, kMinTile), gap = std::max(o.gap, 2);
  const double pixel_A = L.pixel_size_A.size() == 2 ? L.pixel_size_A[0] : 0;
  // Column headers show the parameters that differ between the shown samples (then the rest).
  std::vector<std::pair<const ParameterInfo*, std::vector<double>>> shown;
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& p : L.params) {
      auto v = reader.param(p.name);
      v.resize(cols);
      const bool varies = std::any_of(v.begin(), v.end(), [&](double x) { return x != v[0]; });
      if (varies == (pass == 0) && shown.size() < 4) shown.emplace_back(&p, v);
    }
  const std::size_t nparams = shown.size();
  const auto present = species_present(reader, cols);
  const Palette pal = palette_of(present);

  // Geometry: title, column headers, row headers on the left, tiles, legend.
  int label_w = 0;
  for (const auto& k : rows) label_w = std::max({label_w, plot::text_width(k.title, 2), plot::text_width(k.detail, 1)});
  label_w += 16;
  const int title_h = 28, col_h = 22 + static_cast<int>(nparams) * 11 + 4;
  const int grid_x = label_w, grid_y = title_h + col_h;
  const int width = grid_x + static_cast<int>(cols) * (tile + gap) + gap;
  const int legend_y = grid_y + static_cast<int>(rows.size()) * (tile + gap) + 4;
  RgbImage img(static_cast<std::size_t>(std::max(width, 420)), static_cast<std::size_t>(legend_y + 40));
  fill(img);

  plot::draw_text(img, 8, 6, L.scenario_name + ": " + std::to_string(cols) + " of " + std::to_string(reader.size()) +
                                 " samples", kText, 2);
  for (std::size_t c = 0; c < cols; ++c) {
    const int x = grid_x + gap + static_cast<int>(c) * (tile + gap);
    plot::draw_text(img, x, title_h + 2, "sample " + std::to_string(reader.sample_index(c)), kText, 2);
    for (std::size_t p = 0; p < nparams; ++p) {
      std::string t = param_text(*shown[p].first, shown[p].second[c]);
      while (plot::text_width(t) > tile && t.size() > 4) t.pop_back();
      plot::draw_text(img, x, title_h + 22 + static_cast<int>(p) * 11, t, kDim, 1);
    }
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const int y = grid_y + static_cast<int>(r) * (tile + gap) + gap;
    plot::draw_text(img, 8, y + tile / 2 - 12, rows[r].title, kText, 2);
    plot::draw_text(img, 8, y + tile / 2 + 6, rows[r].detail, kDim, 1);
  }
  for (std::size_t c = 0; c < cols; ++c) {
    const auto labels = o.markers ? reader.columns(c) : std::vector<ColumnLabel>{};
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const int x = grid_x + gap + static_cast<int>(c) * (tile + gap), y = grid_y + static_cast<int>(r) * (tile + gap) + gap;
      const Picture p = picture_of(reader, rows[r], c, o, pal);
      const auto rect = blit(img, p, x, y, tile, tile);
      if (p.scan) {
        if (o.markers) markers(img, rect, labels, p.nx, pal);
        scale_bar(img, rect, p.nx, pixel_A);
      }
    }
  }
  legend(img, 8, legend_y + 4, reader, present, pal, static_cast<int>(img.width) - 16);
  return img;
}

void write_preview(const DatasetReader& reader, const std::string& png_path, const PreviewOptions& options) {
  write_png(png_path, render_contact_sheet(reader, options));
}

RgbImage render_sample_sheet(const DatasetReader& reader, std::size_t row, const PreviewOptions& o) {
  if (row >= reader.size())
    throw std::out_of_range("show: sample row " + std::to_string(row) + " beyond the " + std::to_string(reader.size()) +
                            " complete samples");
  const auto& L = reader.layout();
  PreviewOptions oo = o;
  std::vector<RowKind> kinds;
  // Acquired and (when stored) clean channels, then overlays and 4D pictures.
  for (auto k : rows_of(reader, oo)) {
    kinds.push_back(k);
    if (k.kind == RowKind::Channel && L.store_clean && !o.clean) {
      k.detail.replace(0, std::string("acquired").size(), "clean");
      kinds.push_back(k);
    }
  }
  const int tile = std::max(o.tile, kMinTile) + 32, gap = 10, cap = 30;
  const int per_row = std::min<int>(4, static_cast<int>(kinds.size()));
  const int grid_rows = (static_cast<int>(kinds.size()) + per_row - 1) / per_row;
  // Text column: sample, parameters, instrument, species.
  std::vector<std::string> lines;
  const std::size_t index = reader.sample_index(row);
  for (const auto& p : L.params) lines.push_back(param_text(p, reader.param(p.name)[row]));
  lines.push_back("");
  if (const auto s = reader.instrument(row)) {
    lines.push_back("energy " + fmt(s->energy_eV * 1e-3) + " keV");
    lines.push_back("convergence " + fmt(s->convergence_mrad) + " mrad");
    lines.push_back("current " + fmt(s->current_pA) + " pA");
    lines.push_back("dwell " + fmt(s->dwell_us) + " us");
    lines.push_back("scan " + std::to_string(L.nx) + " x " + std::to_string(L.ny) + ", step " + fmt(s->step_x_A) + " Å");
    for (const auto& d : s->detectors) lines.push_back(d.name + ": " + upper_detail_of(d));
  } else {
    lines.push_back("instrument settings not stored");  // a file from before /instrument
  }
  if (L.has_class) {
    const int c = reader.class_id(row);
    lines.push_back("class " + (c >= 0 && static_cast<std::size_t>(c) < L.class_names.size() ? L.class_names[c] : std::to_string(c)));
  }
  const auto cols = reader.columns(row);
  std::set<int> present;
  for (const auto& c : cols) present.insert(c.species);
  const Palette pal = palette_of(present);
  if (L.columns) lines.push_back(std::to_string(cols.size()) + " labelled columns");
  int text_w = 0;
  for (const auto& l : lines) text_w = std::max(text_w, plot::text_width(l));
  text_w = std::max(text_w + 24, 220);
  const int grid_w = per_row * (tile + gap) + gap;
  const int height = std::max(40 + grid_rows * (tile + cap + gap) + 30, 40 + static_cast<int>(lines.size()) * 12 + 60);
  RgbImage img(static_cast<std::size_t>(grid_w + text_w), static_cast<std::size_t>(height));
  fill(img);
  plot::draw_text(img, 8, 8, L.scenario_name + ": sample " + std::to_string(index) + " (row " + std::to_string(row) + ")",
                  kText, 2);
  const double pixel_A = L.pixel_size_A.size() == 2 ? L.pixel_size_A[0] : 0;
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const int gx = static_cast<int>(k) % per_row, gy = static_cast<int>(k) / per_row;
    const int x = gap + gx * (tile + gap), y = 40 + gy * (tile + cap + gap);
    plot::draw_text(img, x, y, kinds[k].title, kText, 2);
    plot::draw_text(img, x, y + 17, kinds[k].detail, kDim, 1);
    PreviewOptions po = o;
    po.clean = kinds[k].detail.rfind("clean", 0) == 0;
    const Picture p = picture_of(reader, kinds[k], row, po, pal);
    const auto rect = blit(img, p, x, y + cap, tile, tile);
    if (p.scan) {
      if (o.markers) markers(img, rect, cols, p.nx, pal);
      scale_bar(img, rect, p.nx, pixel_A);
    }
  }
  const int tx = grid_w + 8;
  for (std::size_t i = 0; i < lines.size(); ++i) plot::draw_text(img, tx, 44 + static_cast<int>(i) * 12, lines[i], kText, 1);
  legend(img, 8, height - 24, reader, present, pal, static_cast<int>(img.width) - 16);
  return img;
}

}  // namespace stemtwin
