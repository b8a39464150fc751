#pragma once
// The LSFO-like film both method benchmarks time (bench_auto --only film, bench_windowed
// --only film): cubic La0.7Sr0.3FeO3, a = 3.9 Å, La/Sr at random on the A site (seed 1),
// 12 × 12 × 12 cells with --quick, else 26 × 26 × 51 (101 × 101 Å, 20 nm).
#include "stemtwin/specimen/builders.hpp"

namespace stemtwin::bench {

inline Structure lsfo_film(bool quick) {
  PerovskiteParams p;
  p.a = 3.9;
  p.A = {{57, 0.7}, {38, 0.3}};
  p.B = {{26, 1.0}};
  p.repeats = {quick ? 12 : 26, quick ? 12 : 26, quick ? 12 : 51};
  return build_perovskite(p, 1).structure;
}

}  // namespace stemtwin::bench
