// The same SrTiO3 [001] field three ways: clean HAADF, at low dose, and at low dose with
// specimen drift and line jitter — the distorted probe positions go through the physics, and
// the column labels are mapped through the same scan (drawn as dots).
// Writes acquisition_clean.png, acquisition_low_dose.png, acquisition_drift.png.
//
//   example_acquisition_pictures [output directory] [--quick]
#include <cstdio>
#include <cstring>
#include <string>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/columns.hpp"
#include "stemtwin/dataset/png.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;

namespace {
void dots(RgbImage& im, const std::vector<Point2>& px, int scale) {
  for (const Point2& p : px) {
    const long cx = std::lround((p.x + 0.5) * scale), cy = std::lround((p.y + 0.5) * scale);
    for (long dy = -2; dy <= 2; ++dy)
      for (long dx = -2; dx <= 2; ++dx)
        if (dx * dx + dy * dy <= 4 && cx + dx >= 0 && cy + dy >= 0) im.set(std::size_t(cx + dx), std::size_t(cy + dy), 230, 80, 40);
  }
}
}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else dir = argv[i];
  }
  PerovskiteParams p;  // SrTiO3
  p.repeats = {4, 4, quick ? 4 : 10};
  Specimen sp = build_perovskite(p, 1);
  for (Atom& a : sp.structure.atoms) a.rms = 0.08;
  const Grid grid = Grid::from_sampling(sp.structure.cell.x, sp.structure.cell.y, quick ? 0.08 : 0.05);
  ProbeOptics optics;
  StemSettings st;
  st.potential.slice_thickness_A = 1.9525;
  st.phonon_configurations = quick ? 1 : 4;
  const std::vector<Detector> det = {AnnularDetector{"HAADF", 70, 160}};
  const std::size_t n = quick ? 24 : 64;
  const double fov = 2 * 3.905;

  AcquisitionSettings acq;
  acq.scan = ScanGeometry::from_fov({3.0, 3.0}, fov, fov, n, n, 0, 2.0, 20.0);
  acq.beam_current_pA = 5;  // ≈ 62 e⁻ per position: low dose
  const std::vector<Column> cols = find_columns(sp);
  const int scale = int(512 / n);

  auto render = [&](const char* name, const Distortion& d, bool noisy) {
    AcquisitionSettings a = acq;
    a.distortion = d;
    a.annular.shot_noise = noisy;
    const DistortedScan ds = plan_scan(a, 7);
    const StemResult r = simulate_stem(sp.structure, grid, optics, ds.positions_A, det, st);
    const Image clean = r.image("HAADF", n, n);
    const Image img = noisy ? acquire_annular(clean, a, ds, NoiseStream{7, 0, 1}) : clean;
    RgbImage rgb = to_rgb(img, 0, 0, scale);
    std::vector<Point2> px;
    // Sr columns of the whole periodic specimen that fall into the frame.
    for (const Column& c : cols)
      if (c.dominant_Z == 38)
        for (int ix = -1; ix <= 1; ++ix)
          for (int iy = -1; iy <= 1; ++iy) {
            const MappedPoint m = map_to_image(ds, a.scan, {c.x + ix * sp.structure.cell.x, c.y + iy * sp.structure.cell.y});
            if (m.found && m.inside) px.push_back(m.image_px);
          }
    dots(rgb, px, scale);
    const std::string path = dir + "/" + name;
    write_png(path, rgb);
    std::printf("wrote %s (mean %.4g %s)\n", path.c_str(), img.mean(), noisy ? "detected electrons" : "fraction of the beam");
  };
  render("acquisition_clean.png", Distortion{}, false);
  render("acquisition_low_dose.png", Distortion{}, true);
  Distortion drift;
  drift.drift.velocity_x_A_per_s = 300;   // Å/s: ≈ 1.5 Å over the frame
  drift.drift.velocity_y_A_per_s = -150;
  drift.jitter.rms_A = 0.08;
  render("acquisition_drift.png", drift, true);
  return 0;
}
