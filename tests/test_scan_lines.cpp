// The Microscope's progressive image (issue 16): AcquisitionControl::lines hands out a scan's
// rows as blocks complete them and Microscope::scan_lines returns them from any thread; the
// rows are the finished frame's bytes, channels that need the whole frame (iDPC, a source-size
// blur) come only at the end, and a cancelled scan keeps its rows.
#include <gtest/gtest.h>

#include <cstring>

#include "stemtwin/session/microscope.hpp"

using namespace stemtwin;

namespace {

/// SrTiO3, 2 × 2 × 1 cells at 0.1 Å: a 12 × 12 frame is a few seconds of multislice.
Specimen small_specimen() {
  Structure s;
  const double a = 3.905;
  s.cell = {2 * a, 2 * a, a};
  for (int j = 0; j < 2; ++j)
    for (int i = 0; i < 2; ++i) {
      const double x = i * a, y = j * a;
      s.atoms.push_back({38, x, y, 0, 1, 0});
      s.atoms.push_back({22, x + a / 2, y + a / 2, a / 2, 1, 0});
      s.atoms.push_back({8, x + a / 2, y, a / 2, 1, 0});
    }
  return make_specimen(s);
}

Microscope small_session() {
  MicroscopeSettings st;
  st.sampling_A = 0.1;
  st.potential.slice_thickness_A = 3.905;
  st.min_window_A = 8;
  st.window_snap_A = 4;
  st.method = Method::Multislice;  // blocks of ≥ 8 positions: rows complete one at a time
  st.seed = 5;
  return Microscope(small_specimen(), st);
}

ScanSettings small_scan() {
  ScanSettings s;
  s.fov_x_A = s.fov_y_A = 2.4;  // 0.2 Å pixels: full physics
  s.nx = s.ny = 12;
  return s;
}

bool same_rows(const Image& rows, const Image& frame, std::size_t first_row) {
  // No rows (the last report of a frame may carry none): equal, and no memcmp on a null pointer.
  if (rows.nx != frame.nx || first_row * frame.nx + rows.data.size() > frame.data.size()) return false;
  return rows.data.empty() ||
         std::memcmp(rows.data.data(), frame.data.data() + first_row * frame.nx, rows.data.size() * sizeof(double)) == 0;
}

}  // namespace

TEST(ScanLines, RowsArriveAsTheyCompleteAndAreTheFinalFramesBytes) {
  Microscope m = small_session();
  EXPECT_EQ(m.scan_lines().state, "idle");
  std::vector<ScanLines> seen;
  AcquisitionControl ctl;
  ctl.lines = [&](const ScanLines& l) { seen.push_back(l); };
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 150, std::nullopt}, ComDetector{"com"}};
  const ScanResult r = m.scan(small_scan(), dets, ctl);
  ASSERT_GE(seen.size(), 3u) << "rows should come in several steps";
  std::size_t next = 0;
  for (const ScanLines& l : seen) {
    EXPECT_EQ(l.call, r.call);
    EXPECT_EQ(l.first_row, next);
    EXPECT_EQ(l.whole_frame, std::vector<std::string>{"com_idpc"});
    for (const std::string c : {"haadf", "com_x", "com_y"}) {
      ASSERT_EQ(l.rows.count(c), 1u) << c;
      EXPECT_EQ(l.rows.at(c).ny, l.rows_done - l.first_row);
      EXPECT_TRUE(same_rows(l.rows.at(c), r.images.at(c), l.first_row)) << c << " rows " << l.first_row << "–" << l.rows_done;
    }
    EXPECT_EQ(l.rows.count("com_idpc"), 0u);
    EXPECT_EQ(l.state, &l == &seen.back() ? "done" : "running");
    next = l.rows_done;
  }
  EXPECT_EQ(next, 12u);
  ASSERT_EQ(seen.back().whole.count("com_idpc"), 1u);  // the whole-frame channel comes with the end
  EXPECT_TRUE(same_rows(seen.back().whole.at("com_idpc"), r.images.at("com_idpc"), 0));
  // Afterwards, from any thread: the last frame, from a given row.
  const ScanLines after = m.scan_lines(5);
  EXPECT_EQ(after.state, "done");
  EXPECT_EQ(after.first_row, 5u);
  EXPECT_EQ(after.rows_done, 12u);
  EXPECT_TRUE(same_rows(after.rows.at("haadf"), r.images.at("haadf"), 5));
}

TEST(ScanLines, SourceSizeHoldsEveryChannelBackAndACachedFrameComesAtOnce) {
  Microscope m = small_session();
  Optics o = m.optics();
  o.probe.source_size_A = 0.3;  // a blur over the whole frame: no row is final before the end
  m.set_optics(o);
  std::vector<ScanLines> seen;
  AcquisitionControl ctl;
  ctl.lines = [&](const ScanLines& l) { seen.push_back(l); };
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 150, std::nullopt}};
  const ScanResult r = m.scan(small_scan(), dets, ctl);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].state, "done");
  EXPECT_TRUE(seen[0].rows.empty());
  EXPECT_TRUE(same_rows(seen[0].whole.at("haadf"), r.images.at("haadf"), 0));
  // The same frame again comes from the clean-signal cache: no blocks, its rows at the end.
  o.probe.source_size_A = 0;
  m.set_optics(o);
  m.scan(small_scan(), dets);  // fills the cache for this probe
  seen.clear();
  const ScanResult again = m.scan(small_scan(), dets, ctl);
  ASSERT_TRUE(again.signal_cache_hit);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first_row, 0u);
  EXPECT_TRUE(same_rows(seen[0].rows.at("haadf"), again.images.at("haadf"), 0));
}

TEST(ScanLines, ACancelledScanKeepsItsRows) {
  Microscope m = small_session();
  AcquisitionControl ctl;
  ctl.lines = [&](const ScanLines& l) {
    if (l.rows_done >= 2) m.cancel();  // from the scanning thread: stops before the next block
  };
  EXPECT_THROW(m.scan(small_scan(), {AnnularDetector{"haadf", 70, 150, std::nullopt}}, ctl), AcquisitionCancelled);
  const ScanLines l = m.scan_lines();
  EXPECT_EQ(l.state, "cancelled");
  EXPECT_GE(l.rows_done, 2u);
  EXPECT_LT(l.rows_done, 12u);
  EXPECT_EQ(l.rows.at("haadf").ny, l.rows_done);
}
