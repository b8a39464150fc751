#pragma once
// Specimens and statistics shared by the method-auto and PRISM error tests
// (tests/test_auto_default.cpp, tests/test_prism_auto.cpp).
#include <cmath>
#include <vector>

#include "reference_case.hpp"
#include "stemtwin/specimen/builders.hpp"

namespace stemtwin::test {

/// SrTiO3 [001], n × n × m cells (the builder's defaults, seed 0).
inline Structure srtio3(int n, int m) {
  PerovskiteParams p;
  p.repeats = {n, n, m};
  return build_perovskite(p, 0).structure;
}

/// The Si [110] reference cell (16.3 × 15.4 Å), its top `thickness` Å, tiled 2 × 2.
inline Structure si110(double thickness) {
  const Structure one = read_reference_xyz();
  Structure s;
  s.cell = {2 * one.cell.x, 2 * one.cell.y, thickness};
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 2; ++i)
      for (Atom a : one.atoms)
        if (a.z < thickness) {
          a.x += i * one.cell.x;
          a.y += j * one.cell.y;
          s.atoms.push_back(a);
        }
  return s;
}

inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

/// Pearson correlation of two equally long series.
inline double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double ma = mean(a), mb = mean(b);
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

}  // namespace stemtwin::test
