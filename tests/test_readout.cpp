// The one read-out (acquisition/readout.hpp): channel names, noise-stream numbering, iDPC and
// the source-size blur; and the issue-13 contract that a session scan and a one-sample
// dataset of the same seed, specimen, optics, scan and detectors read out the same bytes.
#include <gtest/gtest.h>

#include <cmath>

#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/session/microscope.hpp"

using namespace stemtwin;

namespace {

const std::vector<Detector> kDetectors = {AnnularDetector{"haadf", 70, 150, std::nullopt},
                                          RadialDetector{"rad", 10, 50},
                                          SegmentedDetector{"dpc", {5, 10, 20}, 2, 0.0},
                                          ComDetector{"com"},
                                          PixelatedDetector{"cam", 30, 1},
                                          AnnularDetector{"bf", 0, 10, std::nullopt}};

/// A synthetic result of nx·ny positions for kDetectors, every value distinct.
StemResult synthetic(std::size_t nx, std::size_t ny) {
  StemResult r;
  auto sig = [&](const std::string& name, std::size_t bins, double scale) {
    DetectorSignal s{name, 0, bins, std::vector<double>(nx * ny * bins)};
    for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = scale * (1.0 + std::sin(0.7 * double(i) + scale));
    r.signals.push_back(s);
  };
  sig("haadf", 1, 0.01), sig("rad", 5, 0.02), sig("dpc", 4, 0.05), sig("com", 2, 0.3), sig("bf", 1, 0.4);
  return r;
}

}  // namespace

TEST(Readout, ChannelNamesOrderAndNoiseNumbers) {
  const std::vector<ReadoutChannel> c = readout_channels(kDetectors);
  const std::vector<std::string> names = {"haadf", "dpc_r0s0", "dpc_r0s1", "dpc_r1s0", "dpc_r1s1",
                                          "com_x", "com_y",    "com_idpc", "bf"};
  ASSERT_EQ(readout_channel_names(kDetectors), names);
  // Noise streams 1, 2, … in order; iDPC is derived and takes no number.
  const std::vector<std::uint64_t> noise = {1, 2, 3, 4, 5, 6, 7, 0, 8};
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i].noise_channel, noise[i]) << c[i].name;
  EXPECT_EQ(c[3].bin, 2u);  // ring 1, segment 0 of 2 segments
  EXPECT_EQ(c[6].bin, 1u);  // COM y
  EXPECT_EQ(channel_units(ChannelKind::Idpc, true), "mrad·Å");
  EXPECT_EQ(channel_units(ChannelKind::Segment, true), "ADU");
  EXPECT_EQ(channel_units(ChannelKind::Segment, false), "fraction of the incident probe");
}

TEST(Readout, RefusesTwoDetectorsMakingTheSameChannel) {
  // A COM detector "a" makes "a_x"; an annular detector named "a_x" would overwrite it.
  EXPECT_THROW(readout_channels({ComDetector{"a"}, AnnularDetector{"a_x", 10, 20, std::nullopt}}), std::invalid_argument);
}

TEST(Readout, BlurAcquisitionAndIdpcFollowTheOneRule) {
  const std::size_t nx = 8, ny = 6;
  const StemResult res = synthetic(nx, ny);
  AcquisitionSettings acq;
  acq.scan = ScanGeometry::from_fov({0, 0}, 0.4 * nx, 0.5 * ny, nx, ny);
  acq.annular.read_noise_ADU = 0.5;
  const DistortedScan ds = plan_scan(acq, 11, 3);
  ReadoutSettings rs;
  rs.nx = nx, rs.ny = ny, rs.step_x_A = 0.4, rs.step_y_A = 0.5, rs.source_size_A = 0.6, rs.seed = 11, rs.sample = 3;
  const ReadOut out = readout(res, kDetectors, rs, acq, ds);
  EXPECT_EQ(out.channels, readout_channel_names(kDetectors));
  // Clean = the blurred signal; acquired = acquire_annular with stream (seed, sample, k).
  const Image dpc = apply_source_size(res.image("dpc", nx, ny, 2), 0.4, 0.5, 0.6);
  EXPECT_EQ(out.clean.at("dpc_r1s0").data, dpc.data);
  EXPECT_EQ(out.images.at("dpc_r1s0").data, acquire_annular(dpc, acq, ds, NoiseStream{11, 3, 4}).data);
  const Image bf = apply_source_size(res.image("bf", nx, ny), 0.4, 0.5, 0.6);
  EXPECT_EQ(out.images.at("bf").data, acquire_annular(bf, acq, ds, NoiseStream{11, 3, 8}).data);
  // The blur did something (the test of equality above is not vacuous).
  EXPECT_NE(out.clean.at("bf").data, res.image("bf", nx, ny).data);
  // COM and iDPC are not acquired; iDPC is the integral of the stored (blurred) COM pair.
  EXPECT_EQ(out.images.at("com_x").data, out.clean.at("com_x").data);
  EXPECT_EQ(out.clean.at("com_idpc").data, integrate_com(out.clean.at("com_x"), out.clean.at("com_y"), 0.4, 0.5).data);
  EXPECT_EQ(out.images.at("com_idpc").data, out.clean.at("com_idpc").data);
  // acquire = false: images are the clean channels.
  rs.acquire = false;
  const ReadOut plain = readout(res, kDetectors, rs, acq, ds);
  for (const std::string& n : plain.channels) EXPECT_EQ(plain.images.at(n).data, plain.clean.at(n).data) << n;
  EXPECT_NE(out.images.at("haadf").data, plain.images.at("haadf").data);
}

TEST(Readout, RefusesASignalOfTheWrongSize) {
  AcquisitionSettings acq;
  acq.scan = ScanGeometry::from_fov({0, 0}, 2, 2, 4, 4);
  const DistortedScan ds = plan_scan(acq, 1, 0);
  ReadoutSettings rs;
  rs.nx = 4, rs.ny = 4, rs.step_x_A = rs.step_y_A = 0.5;
  EXPECT_THROW(readout(synthetic(3, 4), kDetectors, rs, acq, ds), std::invalid_argument);
}

// Issue 13: a session's first scan and a dataset's sample 0 with the same seed, specimen,
// optics, scan and detectors (annular + segmented + COM, noise and source size on) give the
// same channel names and the same bytes, clean and acquired.
TEST(Readout, SessionScanEqualsOneSampleDataset) {
  const char* yaml = R"(name: same
seed: 21
samples: 1
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [2, 2, 2]
microscope:
  energy: 200e3
  convergence: 20
  aberrations: {defocus: 10}
  source_size: 0.3
  current: 30
scan:
  start: [1, 1]
  fov: [3, 3]
  pixels: [6, 6]
  dwell: 4
detectors:
  - {name: haadf, type: annular, inner: 60, outer: 150}
  - {name: dpc, type: segmented, rings: [5, 20], segments: 4}
  - {name: com, type: com}
simulation: {method: multislice, sampling: 0.1, slice_thickness: 1.9525}
acquisition: {noise: true, annular: {read_noise_ADU: 0.5}}
)";
  const ScenarioSpec spec = parse_scenario_text(yaml, "same.yaml");
  const SampledScenario s0 = sample_parameters(spec, 0);
  DatasetLayout layout = layout_for(spec);
  complete_layout(layout, spec);
  const SampleRecord rec = simulate_sample(s0, spec, layout, [](const std::string&, std::size_t, const float*) {});

  // The session: the same specimen and physics; its window is exactly the specimen's cell
  // (snap = cell side, margin and minimum smaller), so the same grid and potential.
  const Specimen sp = build_specimen(s0);
  ASSERT_EQ(sp.structure.cell.x, sp.structure.cell.y);
  MicroscopeSettings ms;
  ms.sampling_A = s0.sampling;
  ms.potential = stem_settings(s0).potential;
  ms.method = Method::Multislice;
  ms.seed = s0.seed;
  ms.window_snap_A = sp.structure.cell.x;
  ms.window_margin_A = 0.5;
  ms.min_window_A = 1;
  Microscope m(sp, ms);
  Optics o;
  o.probe = probe_optics(s0);
  o.current_pA = s0.current;
  m.set_optics(o);
  bool noisy = false;
  m.set_acquisition(acquisition_settings(s0, noisy));
  ASSERT_TRUE(noisy);
  // Stage at the field's centre: the session's first position is the scenario's start.
  const double step = s0.scan.step_x;
  m.move_stage({s0.scan.start.x + 0.5 * double(s0.scan.nx - 1) * step, s0.scan.start.y + 0.5 * double(s0.scan.ny - 1) * step});
  ScanSettings sc;
  sc.fov_x_A = step * double(s0.scan.nx), sc.fov_y_A = s0.scan.step_y * double(s0.scan.ny);
  sc.nx = s0.scan.nx, sc.ny = s0.scan.ny, sc.dwell_us = s0.dwell_us;
  const ScanResult r = m.scan(sc, physics_detectors(s0));
  ASSERT_EQ(r.call, 0u);  // the session's call 0 plays the dataset's sample 0

  EXPECT_EQ(r.channels, layout.images);
  const std::vector<std::string> want = {"haadf", "dpc_r0s0", "dpc_r0s1", "dpc_r0s2", "dpc_r0s3", "com_x", "com_y", "com_idpc"};
  EXPECT_EQ(layout.images, want);
  for (const std::string& ch : layout.images) {
    EXPECT_EQ(r.clean.at(ch).data, rec.clean.at(ch).data) << ch;
    EXPECT_EQ(r.images.at(ch).data, rec.images.at(ch).data) << ch;
  }
  // Not vacuous: noise acted (acquired differs from clean in ADU) and the signal is not flat.
  EXPECT_NE(rec.images.at("haadf").data, rec.clean.at("haadf").data);
  EXPECT_GT(rec.clean.at("haadf").data[0], 0.0);
}
