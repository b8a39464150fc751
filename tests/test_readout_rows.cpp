// Progressive read-out (acquisition/readout_rows.hpp): the first rows of a frame, read out
// before the rest exists, are byte for byte the whole frame's rows — through every causal step
// of the chain (shot noise, gain spread, afterglow across lines and flyback, read noise, ADC,
// dose multipliers from current noise) — and the channels that need the whole frame (iDPC, a
// source-size blur) are held back.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "stemtwin/acquisition/readout_rows.hpp"

using namespace stemtwin;

namespace {

const std::vector<Detector> kDetectors = {AnnularDetector{"haadf", 70, 150, std::nullopt}, SegmentedDetector{"dpc", {5, 10, 20}, 2, 0.0},
                                          ComDetector{"com"}, AnnularDetector{"bf", 0, 10, std::nullopt}};

StemResult synthetic(std::size_t n) {
  StemResult r;
  auto sig = [&](const std::string& name, std::size_t bins, double scale) {
    DetectorSignal s{name, 0, bins, std::vector<double>(n * bins)};
    for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = scale * (1.0 + std::sin(0.7 * double(i) + scale));
    r.signals.push_back(s);
  };
  sig("haadf", 1, 0.01), sig("dpc", 4, 0.05), sig("com", 2, 0.3), sig("bf", 1, 0.4);
  return r;
}

struct Frame {
  std::size_t nx = 7, ny = 5;
  ReadoutSettings rs;
  AcquisitionSettings acq;
  DistortedScan ds;
  Frame() {
    acq.beam_current_pA = 30;
    acq.annular.gain_ADU_per_electron = 3;
    acq.annular.gain_shape = 4;             // pulse-height spread: one gamma draw per pixel
    acq.annular.read_noise_ADU = 2;
    acq.annular.dark_offset_ADU = 50;
    acq.annular.adc_bits = 12;
    acq.annular.afterglow.time_constant_us = 3;  // light carried to the next pixels and lines
    acq.annular.afterglow.delayed_fraction = 0.3;
    acq.distortion.current.relative_rms = 0.1;   // dose multipliers ≠ 1
    acq.scan = ScanGeometry::from_fov({0, 0}, 7 * 0.3, 5 * 0.3, nx, ny, 0, 2, 1);
    ds = plan_scan(acq, 11, 3);
    rs.nx = nx, rs.ny = ny, rs.step_x_A = rs.step_y_A = 0.3;
    rs.seed = 11, rs.sample = 3;
  }
};

bool same_bytes(const Image& a, const Image& b, std::size_t rows) {
  return a.nx == b.nx && a.data.size() >= rows * a.nx && b.data.size() >= rows * b.nx &&
         std::memcmp(a.data.data(), b.data.data(), rows * a.nx * sizeof(double)) == 0;
}

}  // namespace

TEST(ReadoutRows, EveryRowCountGivesTheFinalFramesBytes) {
  const Frame f;
  const StemResult res = synthetic(f.nx * f.ny);
  const ReadOut whole = readout(res, kDetectors, f.rs, f.acq, f.ds);
  for (std::size_t rows = 1; rows <= f.ny; ++rows) {
    // Only the positions simulated so far: a result cut after `rows` rows.
    StemResult prefix = res;
    for (DetectorSignal& s : prefix.signals) s.values.resize(rows * f.nx * s.bins);
    const ReadOut part = readout_rows(prefix, rows, kDetectors, f.rs, f.acq, f.ds);
    const std::vector<std::string> streamed = {"haadf", "dpc_r0s0", "dpc_r0s1", "dpc_r1s0", "dpc_r1s1", "com_x", "com_y", "bf"};
    ASSERT_EQ(part.channels, streamed);  // every channel but iDPC, in read-out order
    for (const std::string& c : streamed) {
      ASSERT_EQ(part.images.at(c).ny, rows) << c;
      EXPECT_TRUE(same_bytes(part.images.at(c), whole.images.at(c), rows)) << c << " after " << rows << " rows";
      EXPECT_TRUE(same_bytes(part.clean.at(c), whole.clean.at(c), rows)) << c << " after " << rows << " rows";
    }
    EXPECT_EQ(part.images.count("com_idpc"), 0u);
  }
}

TEST(ReadoutRows, AfterglowCarriesAcrossRows) {
  // The identity above is not trivial: the afterglow carries light from row 0 into row 1
  // (across the flyback), so a read-out that started afresh at each row would differ.
  Frame f;
  const StemResult res = synthetic(f.nx * f.ny);
  const ReadOut two = readout_rows(res, 2, kDetectors, f.rs, f.acq, f.ds);
  f.acq.annular.afterglow.delayed_fraction = 0;
  const ReadOut no_glow = readout_rows(res, 2, kDetectors, f.rs, f.acq, f.ds);
  EXPECT_NE(two.images.at("haadf")(1, 0), no_glow.images.at("haadf")(1, 0));
}

TEST(ReadoutRows, WholeFrameStepsHoldTheirChannelsBack) {
  Frame f;
  const StemResult res = synthetic(f.nx * f.ny);
  f.rs.source_size_A = 0.4;  // a periodic blur over the whole frame: no row is final before it
  const ReadOut part = readout_rows(res, 2, kDetectors, f.rs, f.acq, f.ds);
  EXPECT_TRUE(part.channels.empty());
  EXPECT_TRUE(part.images.empty());
  EXPECT_THROW(readout_rows(res, 0, kDetectors, f.rs, f.acq, f.ds), std::invalid_argument);
  EXPECT_THROW(readout_rows(res, f.ny + 1, kDetectors, f.rs, f.acq, f.ds), std::invalid_argument);
  StemResult short_res = res;
  for (DetectorSignal& s : short_res.signals) s.values.resize(f.nx * s.bins);
  f.rs.source_size_A = 0;
  EXPECT_THROW(readout_rows(short_res, 2, kDetectors, f.rs, f.acq, f.ds), std::invalid_argument);
}
