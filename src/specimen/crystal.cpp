#include "stemtwin/specimen/crystal.hpp"

#include <gemmi/cif.hpp>
#include <gemmi/numb.hpp>
#include <gemmi/symmetry.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/specimen/structure_error.hpp"

namespace stemtwin {

// --- vector helpers ---------------------------------------------------------------------
Vec3 mat_vec(const Mat3& m, const Vec3& v) {
  Vec3 r{};
  for (int i = 0; i < 3; ++i) r[i] = m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2];
  return r;
}
Mat3 mat_mul(const Mat3& a, const Mat3& b) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
  return r;
}
Mat3 transpose(const Mat3& m) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = m[j][i];
  return r;
}
double det(const Mat3& m) {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}
Mat3 inverse(const Mat3& m) {
  double d = det(m);
  if (std::abs(d) < 1e-300) throw std::invalid_argument("singular 3×3 matrix");
  Mat3 r{};
  r[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / d;
  r[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / d;
  r[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / d;
  r[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / d;
  r[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / d;
  r[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / d;
  r[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / d;
  r[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / d;
  r[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / d;
  return r;
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }

// --- lattice ------------------------------------------------------------------------------
Mat3 lattice_matrix(const Crystal& c) {
  const double d2r = kPi / 180.0;
  double ca = std::cos(c.alpha * d2r), cb = std::cos(c.beta * d2r), cg = std::cos(c.gamma * d2r);
  double sg = std::sin(c.gamma * d2r);
  if (!(c.a > 0) || !(c.b > 0) || !(c.c > 0) || !(std::abs(sg) > 1e-9))
    throw std::invalid_argument("degenerate lattice (a, b, c must be > 0 Å and γ not 0 or 180°)");
  double cx = c.c * cb;
  double cy = c.c * (ca - cb * cg) / sg;
  double cz2 = c.c * c.c - cx * cx - cy * cy;
  if (!(cz2 > 1e-12)) throw std::invalid_argument("degenerate lattice: α, β, γ do not form a cell");
  Mat3 m{};
  m[0] = {c.a, c.b * cg, cx};
  m[1] = {0.0, c.b * sg, cy};
  m[2] = {0.0, 0.0, std::sqrt(cz2)};
  return m;
}

double cell_volume(const Crystal& c) { return std::abs(det(lattice_matrix(c))); }

bool is_orthogonal(const Crystal& c) {
  return std::abs(c.alpha - 90) < 1e-6 && std::abs(c.beta - 90) < 1e-6 && std::abs(c.gamma - 90) < 1e-6;
}

namespace {
double wrap01(double f) {
  f -= std::floor(f);
  return f >= 1.0 ? 0.0 : f;
}
// Shortest periodic distance between two fractional positions (Å).
double frac_distance(const Mat3& L, const Vec3& a, const Vec3& b) {
  Vec3 d{};
  for (int i = 0; i < 3; ++i) {
    d[i] = a[i] - b[i];
    d[i] -= std::round(d[i]);
  }
  // check neighbours too: for oblique cells the rounded image is not always the nearest
  double best = 1e300;
  for (int i = -1; i <= 1; ++i)
    for (int j = -1; j <= 1; ++j)
      for (int k = -1; k <= 1; ++k) {
        Vec3 e{d[0] + i, d[1] + j, d[2] + k};
        best = std::min(best, norm(mat_vec(L, e)));
      }
  return best;
}
}  // namespace

std::vector<Vec3> centring_translations(const Crystal& c, double tolerance) {
  std::vector<Vec3> out;
  if (c.sites.empty()) return out;
  Mat3 L = lattice_matrix(c);
  const Site& s0 = c.sites[0];
  for (const Site& s : c.sites) {
    if (s.Z != s0.Z || std::abs(s.occupancy - s0.occupancy) > 1e-6) continue;
    Vec3 t{wrap01(s.fx - s0.fx), wrap01(s.fy - s0.fy), wrap01(s.fz - s0.fz)};
    for (double& v : t)
      if (v > 1 - 1e-6) v = 0;  // guard wrap01 rounding
    if (norm(mat_vec(L, t)) < tolerance || frac_distance(L, t, {0, 0, 0}) < tolerance) continue;
    bool maps = true;
    for (const Site& a : c.sites) {
      Vec3 p{a.fx + t[0], a.fy + t[1], a.fz + t[2]};
      bool found = false;
      for (const Site& b : c.sites)
        if (b.Z == a.Z && std::abs(b.occupancy - a.occupancy) < 1e-6 &&
            frac_distance(L, p, {b.fx, b.fy, b.fz}) < tolerance) {
          found = true;
          break;
        }
      if (!found) {
        maps = false;
        break;
      }
    }
    if (maps) out.push_back(t);
  }
  return out;
}

Structure unit_cell_structure(const Crystal& c) {
  if (!is_orthogonal(c))
    throw std::invalid_argument("crystal '" + c.name +
                                "' has a non-orthogonal lattice; use orient_along to build an orthogonal cell");
  Structure s;
  s.cell = {c.a, c.b, c.c};
  for (const Site& site : c.sites)
    s.atoms.push_back({site.Z, site.fx * c.a, site.fy * c.b, site.fz * c.c, site.occupancy, site.rms});
  return s;
}

Crystal perovskite_crystal(double a, int A, int B, int O) {
  if (!(a > 0)) throw std::invalid_argument("perovskite lattice parameter must be > 0 Å");
  Crystal c;
  c.name = element_symbol(A) + element_symbol(B) + element_symbol(O) + "3";
  c.a = c.b = c.c = a;
  c.sites = {{A, 0, 0, 0, 1, 0.0, element_symbol(A)},
             {B, 0.5, 0.5, 0.5, 1, 0.0, element_symbol(B)},
             {O, 0.5, 0.5, 0, 1, 0.0, element_symbol(O) + "1"},
             {O, 0.5, 0, 0.5, 1, 0.0, element_symbol(O) + "2"},
             {O, 0, 0.5, 0.5, 1, 0.0, element_symbol(O) + "3"}};
  return c;
}

// --- CIF --------------------------------------------------------------------------------
namespace {

[[noreturn]] void cif_fail(const std::string& name, int line, const std::string& what) {
  throw StructureError(name + ":" + std::to_string(std::max(line, 1)) + ": " + what);
}

int item_line(const gemmi::cif::Block& b, const std::string& tag) {
  if (const gemmi::cif::Item* it = b.find_pair_item(tag)) return it->line_number;
  if (const gemmi::cif::Item* it = b.find_loop_item(tag)) return it->line_number;
  return -1;
}

int block_line(const gemmi::cif::Block& b) {
  for (const auto& it : b.items)
    if (it.line_number > 0) return it.line_number;
  return 1;
}

// True when `s` holds a run of more than `max_digits` decimal digits.
bool has_long_digit_run(const std::string& s, std::size_t max_digits) {
  std::size_t run = 0;
  for (char ch : s) {
    run = (ch >= '0' && ch <= '9') ? run + 1 : 0;
    if (run > max_digits) return true;
  }
  return false;
}

std::vector<gemmi::Op> symmetry_ops(const gemmi::cif::Block& b, const std::string& name) {
  std::vector<gemmi::Op> ops;
  for (const char* tag : {"_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz",
                          "_space_group_symop.operation_xyz"}) {
    gemmi::cif::Column col = const_cast<gemmi::cif::Block&>(b).find_values(tag);
    if (!col) continue;
    int line = item_line(b, tag);
    for (const std::string& v : col) {
      std::string t = gemmi::cif::as_string(v);
      // gemmi multiplies each integer by 24 in an int: a long digit run overflows (UB, found
      // by fuzz_cif). Real operations use 1-digit numerators and denominators 2, 3, 4, 6.
      if (has_long_digit_run(t, 3))
        cif_fail(name, line, "bad symmetry operation '" + t.substr(0, 60) + "': a number with more than 3 digits");
      try {
        ops.push_back(gemmi::parse_triplet(t));
      } catch (const std::exception& e) {
        cif_fail(name, line, "bad symmetry operation '" + t + "': " + e.what());
      }
    }
    if (!ops.empty()) return ops;
  }
  const gemmi::SpaceGroup* sg = nullptr;
  std::string hm;
  for (const char* tag : {"_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M", "_space_group.name_H-M_alt"})
    if (const std::string* v = b.find_value(tag)) {
      hm = gemmi::cif::as_string(*v);
      sg = gemmi::find_spacegroup_by_name(hm);
      if (!sg) cif_fail(name, item_line(b, tag), "unknown space group '" + hm + "'");
      break;
    }
  if (!sg)
    for (const char* tag : {"_space_group_IT_number", "_symmetry_Int_Tables_number"})
      if (const std::string* v = b.find_value(tag)) {
        int n = std::atoi(gemmi::cif::as_string(*v).c_str());
        sg = gemmi::find_spacegroup_by_number(n);
        if (!sg) cif_fail(name, item_line(b, tag), "unknown space-group number '" + *v + "'");
        break;
      }
  if (!sg)
    cif_fail(name, block_line(b),
             "no symmetry: give _space_group_symop_operation_xyz, a Hermann-Mauguin name or an IT number "
             "(for P1 write _space_group_name_H-M_alt 'P 1')");
  return sg->operations().all_ops_sorted();
}

// Line of a loop row: the first line after the loop header whose first token is `token`
// (the row's label); the loop's own line when not found.
int row_line(const std::vector<std::string>& lines, int loop_line, const std::string& token, int& cursor) {
  for (int i = std::max(cursor, loop_line); i < static_cast<int>(lines.size()); ++i) {
    std::istringstream is(lines[i]);
    std::string first;
    is >> first;
    if (first == token) {
      cursor = i + 1;
      return i + 1;
    }
  }
  return loop_line;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  std::string l;
  while (std::getline(is, l)) out.push_back(l);
  return out;
}

Crystal crystal_from_document(gemmi::cif::Document& doc, const std::string& name, double merge_distance,
                              const std::vector<std::string>& lines) {
  gemmi::cif::Block* block = nullptr;
  for (auto& b : doc.blocks)
    if (b.find_loop_item("_atom_site_fract_x") || b.find_pair_item("_atom_site_fract_x")) {
      block = &b;
      break;
    }
  if (!block) cif_fail(name, 1, "no data block with _atom_site_fract_x (fractional atom sites)");
  const gemmi::cif::Block& b = *block;
  for (const char* tag : {"_cell_length_a", "_cell_length_b", "_cell_length_c"})
    if (!b.find_value(tag)) cif_fail(name, block_line(b), std::string("missing ") + tag + " in data_" + b.name);

  auto num = [&](const char* tag) {
    const std::string* v = b.find_value(tag);
    return v ? gemmi::cif::as_number(*v) : 90.0;  // absent angles are 90°
  };
  Crystal c;
  c.name = b.name;
  c.a = num("_cell_length_a");
  c.b = num("_cell_length_b");
  c.c = num("_cell_length_c");
  c.alpha = num("_cell_angle_alpha");
  c.beta = num("_cell_angle_beta");
  c.gamma = num("_cell_angle_gamma");
  // Lengths: the largest unit cells on record (virus crystals) are ~1000 Å; a longer one is
  // a typo that would size every later grid. Angles: a cell needs each in (0°, 180°).
  constexpr double kMaxCellLength_A = 1000;
  for (const char* tag : {"_cell_length_a", "_cell_length_b", "_cell_length_c"}) {
    const double v = num(tag);
    if (!(std::isfinite(v) && v > 0 && v <= kMaxCellLength_A))
      cif_fail(name, item_line(b, tag), std::string(tag) + " must be > 0 and ≤ 1000 Å (got " + std::to_string(v) + ")");
  }
  for (const char* tag : {"_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"}) {
    const double v = num(tag);
    if (!(std::isfinite(v) && v > 0 && v < 180))
      cif_fail(name, b.find_value(tag) ? item_line(b, tag) : block_line(b),
               std::string(tag) + " must be between 0 and 180° (got " + std::to_string(v) + ")");
  }
  Mat3 L;
  try {
    L = lattice_matrix(c);
  } catch (const std::exception& e) {
    cif_fail(name, item_line(b, "_cell_length_a"), e.what());
  }
  std::vector<gemmi::Op> ops = symmetry_ops(b, name);

  enum { kX, kY, kZ, kLabel, kSymbol, kU, kB, kOcc };
  gemmi::cif::Table table = const_cast<gemmi::cif::Block&>(b).find(
      "_atom_site_", {"fract_x", "fract_y", "fract_z", "?label", "?type_symbol", "?U_iso_or_equiv",
                      "?B_iso_or_equiv", "?occupancy"});
  if (!table.ok()) cif_fail(name, item_line(b, "_atom_site_fract_x"), "atom sites need _atom_site_fract_x, _y and _z in one loop");
  int row_index = 0, cursor = 0;
  for (auto row : table) {
    ++row_index;
    std::string label = row.has(kLabel) ? gemmi::cif::as_string(row[kLabel]) : "site" + std::to_string(row_index);
    const int site_line = row_line(lines, item_line(b, "_atom_site_fract_x"),
                                   row.has(kLabel) ? std::string(row[kLabel]) : std::string(row[kX]), cursor);
    std::string symbol = row.has(kSymbol) ? gemmi::cif::as_string(row[kSymbol]) : label;
    const std::string where = "atom site '" + label + "' (row " + std::to_string(row_index) + ")";
    // element: leading letters of the type symbol ("Sr2+", "O1" → "Sr", "O")
    std::string el;
    for (char ch : symbol) {
      if (!std::isalpha(static_cast<unsigned char>(ch)) || el.size() == 2) break;
      el += ch;
    }
    int Z = 0;
    try {
      Z = atomic_number(el);
    } catch (const std::exception&) {
      if (el.size() == 2) {
        try {
          Z = atomic_number(el.substr(0, 1));
        } catch (const std::exception&) {
        }
      }
    }
    if (Z < 1) cif_fail(name, site_line, where + ": unknown element '" + symbol + "'");
    Vec3 f{gemmi::cif::as_number(row[kX]), gemmi::cif::as_number(row[kY]), gemmi::cif::as_number(row[kZ])};
    if (!std::isfinite(f[0]) || !std::isfinite(f[1]) || !std::isfinite(f[2]))
      cif_fail(name, site_line, where + " has no numeric fractional coordinates");
    double occ = row.has(kOcc) ? gemmi::cif::as_number(row[kOcc], 1.0) : 1.0;
    if (!(occ >= 0 && occ <= 1.000001)) cif_fail(name, site_line, where + ": occupancy outside 0..1");
    double rms = 0.0;
    double u = row.has(kU) ? gemmi::cif::as_number(row[kU], NAN) : NAN;
    if (!std::isfinite(u) && row.has(kB)) u = gemmi::cif::as_number(row[kB], NAN) / (8 * kPi * kPi);
    if (std::isfinite(u)) {
      if (u < 0) cif_fail(name, site_line, where + ": negative displacement parameter");
      rms = std::sqrt(u);
    }
    const std::size_t first = c.sites.size();
    for (const gemmi::Op& op : ops) {
      std::array<double, 3> g = op.apply_to_xyz({f[0], f[1], f[2]});
      Vec3 p{wrap01(g[0]), wrap01(g[1]), wrap01(g[2])};
      bool dup = false;
      for (std::size_t i = first; i < c.sites.size(); ++i)
        if (frac_distance(L, p, {c.sites[i].fx, c.sites[i].fy, c.sites[i].fz}) < merge_distance) {
          dup = true;
          break;
        }
      if (!dup) c.sites.push_back({Z, p[0], p[1], p[2], std::min(occ, 1.0), rms, label});
    }
  }
  if (c.sites.empty()) cif_fail(name, item_line(b, "_atom_site_fract_x"), "no atom sites");
  return c;
}

}  // namespace

Crystal crystal_from_cif(const std::string& path, double merge_distance) {
  if (!std::ifstream(path)) throw StructureError(path + ":0: cannot open file");
  gemmi::cif::Document doc;
  try {
    doc = gemmi::cif::read_file(path);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw StructureError(msg);
    throw StructureError(path + ":1: " + msg);
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return crystal_from_document(doc, path, merge_distance, split_lines(ss.str()));
}

Crystal crystal_from_cif_text(const std::string& text, const std::string& name, double merge_distance) {
  gemmi::cif::Document doc;
  try {
    doc = gemmi::cif::read_memory(text.data(), text.size(), name.c_str());
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (msg.rfind(name, 0) == 0) throw StructureError(msg);
    throw StructureError(name + ":1: " + msg);
  }
  return crystal_from_document(doc, name, merge_distance, split_lines(text));
}

}  // namespace stemtwin
