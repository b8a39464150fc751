#include "stemtwin/specimen/structure_io.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin {
namespace {

struct Lines {
  std::string path;
  std::vector<std::string> lines;
  [[noreturn]] void fail(std::size_t index, const std::string& what) const {
    throw StructureError(path + ":" + std::to_string(index + 1) + ": " + what);
  }
  const std::string& at(std::size_t index, const std::string& what) const {
    if (index >= lines.size()) fail(lines.size() ? lines.size() - 1 : 0, "unexpected end of file: expected " + what);
    return lines[index];
  }
};

Lines read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw StructureError(path + ":0: cannot open file");
  Lines l{path, {}};
  std::string s;
  while (std::getline(in, s)) {
    if (!s.empty() && s.back() == '\r') s.pop_back();
    l.lines.push_back(s);
  }
  return l;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  std::string w;
  while (is >> w) out.push_back(w);
  return out;
}

bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

double number(const Lines& L, std::size_t line, const std::string& s, const std::string& what) {
  double v;
  if (!parse_double(s, v)) L.fail(line, "expected a number for " + what + ", got '" + s + "'");
  return v;
}

// Counts (atoms, column widths) are read as whole numbers written in digits and bounded:
// "1e30" or "2.5" is an error, not a silently truncated or overflowing cast. 10^8 atoms is
// beyond any file these readers are meant for (~4 GB of text); 1000 columns per property
// keeps every column index far inside an int.
constexpr std::size_t kMaxAtomCount = 100000000;
constexpr std::size_t kMaxPropertyWidth = 1000;

std::size_t count(const Lines& L, std::size_t line, const std::string& s, const std::string& what, std::size_t lo,
                  std::size_t hi) {
  const std::size_t start = !s.empty() && s[0] == '+' ? 1 : 0;
  const bool digits = s.size() > start && s.size() - start <= 12 &&
                      std::all_of(s.begin() + static_cast<std::ptrdiff_t>(start), s.end(),
                                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  if (!digits) L.fail(line, what + " must be a whole number written in digits, got '" + s + "'");
  const std::size_t v = std::stoull(s.substr(start));
  if (v < lo || v > hi)
    L.fail(line, what + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + s);
  return v;
}

int element(const Lines& L, std::size_t line, const std::string& s) {
  double z;
  if (parse_double(s, z)) {
    if (z != std::round(z) || z < 1 || z > 103) L.fail(line, "atomic number '" + s + "' outside 1..103");
    return static_cast<int>(z);
  }
  try {
    return atomic_number(s);
  } catch (const std::exception&) {
    L.fail(line, "unknown element '" + s + "'");
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// key="value" or key=value from an extended-XYZ comment line.
bool find_key(const std::string& line, const std::string& key, std::string& value) {
  std::string ll = lower(line), lk = lower(key) + "=";
  std::size_t pos = 0;
  while ((pos = ll.find(lk, pos)) != std::string::npos) {
    if (pos == 0 || std::isspace(static_cast<unsigned char>(ll[pos - 1]))) {
      std::size_t v = pos + lk.size();
      if (v < line.size() && line[v] == '"') {
        std::size_t e = line.find('"', v + 1);
        if (e == std::string::npos) return false;
        value = line.substr(v + 1, e - v - 1);
      } else {
        std::size_t e = v;
        while (e < line.size() && !std::isspace(static_cast<unsigned char>(line[e]))) ++e;
        value = line.substr(v, e - v);
      }
      return true;
    }
    pos += lk.size();
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

void check_orthogonal_matrix(const Lines& L, std::size_t line, const Mat3& rows) {
  // rows[i] = i-th lattice vector
  for (int i = 0; i < 3; ++i)
    for (int j = i + 1; j < 3; ++j) {
      double c = dot(rows[i], rows[j]) / (norm(rows[i]) * norm(rows[j]));
      if (std::abs(c) > 1e-6)
        L.fail(line, "non-orthogonal lattice: stemtwin simulates orthogonal cells; read it as a crystal "
                     "(read_crystal / POSCAR or CIF) and use orient_along to build an orthogonal supercell");
    }
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (i != j && std::abs(rows[i][j]) > 1e-6 * norm(rows[i]))
        L.fail(line, "lattice vectors must be along x, y and z (an orthogonal but rotated cell is not supported)");
  for (int i = 0; i < 3; ++i)
    if (!(rows[i][i] > 0)) L.fail(line, "lattice vectors must point along +x, +y, +z with positive length");
}

}  // namespace

StructureFormat detect_format(const std::string& path) {
  std::string base = std::filesystem::path(path).filename().string();
  std::string lb = lower(base);
  if (ends_with(lb, ".cif")) return StructureFormat::Cif;
  if (lb.rfind("poscar", 0) == 0 || lb.rfind("contcar", 0) == 0 || ends_with(lb, ".vasp") || ends_with(lb, ".poscar"))
    return StructureFormat::Poscar;
  if (ends_with(lb, ".xyz") || ends_with(lb, ".extxyz")) {
    Lines L = read_lines(path);
    if (L.lines.size() >= 2) {
      std::string dummy;
      const bool has_lattice = find_key(L.lines[1], "Lattice", dummy);
      auto w1 = split(L.lines[1]);
      double v;
      const bool second_is_cell =
          w1.size() == 3 && parse_double(w1[0], v) && parse_double(w1[1], v) && parse_double(w1[2], v);
      auto w0 = split(L.lines[0]);
      const bool first_is_count = w0.size() == 1 && parse_double(w0[0], v);
      bool terminator = false;
      for (const auto& line : L.lines)
        if (split(line) == std::vector<std::string>{"-1"}) terminator = true;
      if (!has_lattice && second_is_cell && (!first_is_count || terminator)) return StructureFormat::PrismaticXyz;
    }
    return StructureFormat::ExtendedXyz;
  }
  throw StructureError(path + ":0: unknown structure format (expected .cif, .xyz, .extxyz, POSCAR, CONTCAR, .vasp)");
}

Structure read_structure(const std::string& path) {
  switch (detect_format(path)) {
    case StructureFormat::Cif: return read_cif(path);
    case StructureFormat::ExtendedXyz: return read_xyz(path);
    case StructureFormat::PrismaticXyz: return read_prismatic_xyz(path);
    case StructureFormat::Poscar: return read_poscar(path);
  }
  throw StructureError(path + ":0: unknown structure format");
}

Crystal read_crystal(const std::string& path) {
  switch (detect_format(path)) {
    case StructureFormat::Cif: return crystal_from_cif(path);
    case StructureFormat::Poscar: return crystal_from_poscar(path);
    default: break;
  }
  throw StructureError(path + ":0: read_crystal reads CIF and POSCAR (XYZ files hold atoms, not a crystal)");
}

Structure read_cif(const std::string& path) {
  Crystal c = crystal_from_cif(path);
  if (!is_orthogonal(c))
    throw StructureError(path + ":1: non-orthogonal lattice (α, β, γ = " + std::to_string(c.alpha) + ", " +
                         std::to_string(c.beta) + ", " + std::to_string(c.gamma) +
                         "°): use read_crystal + orient_along to build an orthogonal supercell");
  return unit_cell_structure(c);
}

// --- XYZ ------------------------------------------------------------------------------------
Structure read_xyz(const std::string& path, std::optional<Cell> cell) {
  Lines L = read_lines(path);
  auto w = split(L.at(0, "atom count"));
  if (w.empty()) L.fail(0, "first line must be the number of atoms");
  const std::size_t n = count(L, 0, w[0], "the atom count (first line)", 0, kMaxAtomCount);
  const std::string& comment = L.at(1, "comment line");
  Structure s;
  std::string lat;
  if (find_key(comment, "Lattice", lat)) {
    auto v = split(lat);
    if (v.size() != 9) L.fail(1, "Lattice must have 9 numbers, found " + std::to_string(v.size()));
    Mat3 rows{};
    for (int i = 0; i < 9; ++i) rows[i / 3][i % 3] = number(L, 1, v[i], "Lattice");
    check_orthogonal_matrix(L, 1, rows);
    s.cell = {rows[0][0], rows[1][1], rows[2][2]};
  } else if (cell) {
    s.cell = *cell;
  } else {
    L.fail(1, "no Lattice=\"...\" in the comment line: plain XYZ needs the cell to be given");
  }
  // Properties: default species:S:1:pos:R:3
  std::string props = "species:S:1:pos:R:3";
  find_key(comment, "Properties", props);
  struct Col { std::string name; char type; std::size_t width; };
  std::vector<Col> cols;
  {
    std::vector<std::string> parts;
    std::string cur;
    for (char ch : props) {
      if (ch == ':') { parts.push_back(cur); cur.clear(); } else cur += ch;
    }
    parts.push_back(cur);
    if (parts.size() % 3 != 0) L.fail(1, "Properties must be name:type:count triples, got '" + props + "'");
    for (std::size_t i = 0; i < parts.size(); i += 3) {
      const std::size_t wd = count(L, 1, parts[i + 2], "the column count of '" + parts[i] + "' in Properties", 1,
                                   kMaxPropertyWidth);
      cols.push_back({lower(parts[i]), parts[i + 1].empty() ? 'S' : static_cast<char>(std::toupper(parts[i + 1][0])), wd});
    }
  }
  // Column indices; `total` ≤ (number of triples) × kMaxPropertyWidth, bounded by the line's length.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t c_species = kNone, c_pos = kNone, c_occ = kNone, c_rms = kNone, total = 0;
  for (const Col& c : cols) {
    if ((c.name == "species" || c.name == "element" || c.name == "z") && c.width == 1) c_species = total;
    if ((c.name == "pos" || c.name == "positions") && c.width == 3) c_pos = total;
    if ((c.name == "occupancy" || c.name == "occ") && c.width == 1) c_occ = total;
    if (c.name == "rms" && c.width == 1) c_rms = total;
    total += c.width;
  }
  if (c_species == kNone || c_pos == kNone) L.fail(1, "Properties must contain species:S:1 and pos:R:3");
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t ln = i + 2;
    auto f = split(L.at(ln, "atom " + std::to_string(i + 1) + " of " + std::to_string(n)));
    if (f.size() < total)
      L.fail(ln, "expected " + std::to_string(total) + " columns, found " + std::to_string(f.size()));
    Atom a;
    a.Z = element(L, ln, f[c_species]);
    a.x = number(L, ln, f[c_pos], "x");
    a.y = number(L, ln, f[c_pos + 1], "y");
    a.z = number(L, ln, f[c_pos + 2], "z");
    a.rms = 0.0;
    if (c_occ != kNone) {
      a.occupancy = number(L, ln, f[c_occ], "occupancy");
      if (a.occupancy < 0 || a.occupancy > 1) L.fail(ln, "occupancy outside 0..1");
    }
    if (c_rms != kNone) {
      a.rms = number(L, ln, f[c_rms], "rms");
      if (a.rms < 0) L.fail(ln, "rms must be ≥ 0 Å");
    }
    s.atoms.push_back(a);
  }
  return s;
}

Structure read_prismatic_xyz(const std::string& path) {
  Lines L = read_lines(path);
  L.at(0, "comment line");
  auto c = split(L.at(1, "cell line 'a b c'"));
  if (c.size() < 3) L.fail(1, "expected the cell 'a b c' (Å)");
  Structure s;
  s.cell = {number(L, 1, c[0], "a"), number(L, 1, c[1], "b"), number(L, 1, c[2], "c")};
  if (!(s.cell.x > 0 && s.cell.y > 0 && s.cell.z > 0)) L.fail(1, "cell lengths must be > 0 Å");
  bool ended = false;
  for (std::size_t ln = 2; ln < L.lines.size(); ++ln) {
    auto f = split(L.lines[ln]);
    if (f.empty()) continue;
    if (f[0] == "-1") {
      ended = true;
      break;
    }
    if (f.size() < 4) L.fail(ln, "expected 'Z x y z [occupancy rms]'");
    Atom a;
    a.Z = element(L, ln, f[0]);
    a.x = number(L, ln, f[1], "x");
    a.y = number(L, ln, f[2], "y");
    a.z = number(L, ln, f[3], "z");
    a.occupancy = f.size() > 4 ? number(L, ln, f[4], "occupancy") : 1.0;
    a.rms = f.size() > 5 ? number(L, ln, f[5], "rms") : 0.0;
    if (a.occupancy < 0 || a.occupancy > 1) L.fail(ln, "occupancy outside 0..1");
    if (a.rms < 0) L.fail(ln, "rms must be ≥ 0 Å");
    s.atoms.push_back(a);
  }
  if (!ended) L.fail(L.lines.size() ? L.lines.size() - 1 : 0, "missing the terminating line '-1'");
  return s;
}

// --- POSCAR ------------------------------------------------------------------------------------
namespace {
struct Poscar {
  Mat3 rows{};  // lattice vectors as rows, Å
  std::vector<int> Z;
  std::vector<Vec3> frac;
};

Poscar parse_poscar(const Lines& L) {
  Poscar p;
  L.at(0, "comment line");
  auto sc = split(L.at(1, "scale factor"));
  if (sc.empty()) L.fail(1, "expected the scale factor");
  double scale = number(L, 1, sc[0], "scale factor");
  if (scale == 0) L.fail(1, "scale factor must not be 0");
  for (int i = 0; i < 3; ++i) {
    auto v = split(L.at(2 + i, "lattice vector"));
    if (v.size() < 3) L.fail(2 + i, "expected three numbers (lattice vector)");
    for (int j = 0; j < 3; ++j) p.rows[i][j] = number(L, 2 + i, v[j], "lattice vector");
  }
  double vol = std::abs(det(p.rows));
  if (!(vol > 1e-9)) L.fail(2, "lattice vectors are degenerate");
  double s = scale > 0 ? scale : std::cbrt(-scale / vol);
  for (auto& r : p.rows)
    for (double& x : r) x *= s;
  auto names = split(L.at(5, "element symbols (VASP 5 format)"));
  double tmp;
  if (names.empty() || parse_double(names[0], tmp))
    L.fail(5, "expected element symbols (VASP 5 POSCAR); VASP 4 files without them are not supported");
  std::vector<int> species;
  for (auto& n : names) {
    std::string sym = n.substr(0, n.find_first_of("_/"));
    species.push_back(element(L, 5, sym));
  }
  auto counts = split(L.at(6, "atom counts"));
  if (counts.size() != species.size())
    L.fail(6, "expected " + std::to_string(species.size()) + " atom counts, found " + std::to_string(counts.size()));
  std::size_t line = 7;
  std::string mode = L.at(line, "Direct or Cartesian");
  std::string m = lower(split(mode).empty() ? std::string() : split(mode)[0]);
  if (!m.empty() && m[0] == 's') {
    ++line;
    mode = L.at(line, "Direct or Cartesian");
    m = lower(split(mode).empty() ? std::string() : split(mode)[0]);
  }
  bool cart;
  if (!m.empty() && (m[0] == 'c' || m[0] == 'k')) cart = true;
  else if (!m.empty() && m[0] == 'd') cart = false;
  else L.fail(line, "expected 'Direct' or 'Cartesian', got '" + mode + "'");
  ++line;
  Mat3 cols = transpose(p.rows);
  Mat3 inv = inverse(cols);
  for (std::size_t k = 0; k < species.size(); ++k) {
    const std::size_t cnt = count(L, 6, counts[k], "the atom count of " + names[k], 0, kMaxAtomCount);
    for (std::size_t i = 0; i < cnt; ++i, ++line) {
      auto f = split(L.at(line, "atom position"));
      if (f.size() < 3) L.fail(line, "expected three coordinates");
      Vec3 v{number(L, line, f[0], "x"), number(L, line, f[1], "y"), number(L, line, f[2], "z")};
      if (cart) {
        for (double& x : v) x *= s;
        v = mat_vec(inv, v);
      }
      for (double& x : v) {
        x -= std::floor(x);
        if (x >= 1) x = 0;
      }
      p.Z.push_back(species[k]);
      p.frac.push_back(v);
    }
  }
  return p;
}
}  // namespace

Crystal crystal_from_poscar(const std::string& path) {
  Lines L = read_lines(path);
  Poscar p = parse_poscar(L);
  Crystal c;
  c.name = L.lines[0];
  const double r2d = 180.0 / 3.14159265358979323846;
  Vec3 a = p.rows[0], b = p.rows[1], cc = p.rows[2];
  c.a = norm(a);
  c.b = norm(b);
  c.c = norm(cc);
  c.alpha = std::acos(dot(b, cc) / (c.b * c.c)) * r2d;
  c.beta = std::acos(dot(a, cc) / (c.a * c.c)) * r2d;
  c.gamma = std::acos(dot(a, b) / (c.a * c.b)) * r2d;
  if (det(p.rows) < 0) L.fail(2, "left-handed lattice vectors");
  for (std::size_t i = 0; i < p.Z.size(); ++i)
    c.sites.push_back({p.Z[i], p.frac[i][0], p.frac[i][1], p.frac[i][2], 1.0, 0.0,
                       element_symbol(p.Z[i])});
  return c;
}

Structure read_poscar(const std::string& path) {
  Lines L = read_lines(path);
  Poscar p = parse_poscar(L);
  check_orthogonal_matrix(L, 2, p.rows);
  Structure s;
  s.cell = {p.rows[0][0], p.rows[1][1], p.rows[2][2]};
  for (std::size_t i = 0; i < p.Z.size(); ++i)
    s.atoms.push_back({p.Z[i], p.frac[i][0] * s.cell.x, p.frac[i][1] * s.cell.y, p.frac[i][2] * s.cell.z, 1.0,
                       0.0});
  return s;
}

// --- writers ---------------------------------------------------------------------------------
void write_xyz(const Structure& s, const std::string& path, const std::string& comment) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw StructureError(path + ":0: cannot open for writing");
  std::string c = comment;
  std::replace(c.begin(), c.end(), '"', '\'');
  std::replace(c.begin(), c.end(), '\n', ' ');
  std::fprintf(f, "%zu\n", s.atoms.size());
  std::fprintf(f,
               "Lattice=\"%.6f 0 0 0 %.6f 0 0 0 %.6f\" Properties=species:S:1:pos:R:3:occupancy:R:1:rms:R:1 "
               "pbc=\"T T T\"%s%s%s\n",
               s.cell.x, s.cell.y, s.cell.z, c.empty() ? "" : " comment=\"", c.c_str(), c.empty() ? "" : "\"");
  for (const Atom& a : s.atoms)
    std::fprintf(f, "%s %.6f %.6f %.6f %.6g %.6g\n", element_symbol(a.Z).c_str(), a.x, a.y, a.z, a.occupancy, a.rms);
  if (std::fclose(f) != 0) throw StructureError(path + ":0: write failed");
}

void write_prismatic_xyz(const Structure& s, const std::string& path, const std::string& comment) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw StructureError(path + ":0: cannot open for writing");
  std::string c = comment.empty() ? "stemtwin" : comment;
  std::replace(c.begin(), c.end(), '\n', ' ');
  std::fprintf(f, "%s\n", c.c_str());
  std::fprintf(f, "    %.6f %.6f %.6f\n", s.cell.x, s.cell.y, s.cell.z);
  for (const Atom& a : s.atoms)
    std::fprintf(f, "%d %.6f %.6f %.6f %.6g %.6g\n", a.Z, a.x, a.y, a.z, a.occupancy, a.rms);
  std::fprintf(f, "-1\n");
  if (std::fclose(f) != 0) throw StructureError(path + ":0: write failed");
}

}  // namespace stemtwin
