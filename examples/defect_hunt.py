#!/usr/bin/python3
"""An agent hunts defects like an operator: a low-dose overview of the whole specimen, then
high-dose zooms only on what looks anomalous, keeping the total dose low.

The specimen is stemtwin.demo_specimen(): SrTiO3 viewed along [001] with an amorphous strip
along its left edge and missing Sr atoms (vacancies). The agent is told the nominal lattice
(cubic, a = 3.905 Å, Sr columns at multiples of a in stage coordinates, as after a lattice
calibration) and nothing else. It
  1. scans an overview at 50 pA, 4 µs (about 1250 electrons per pixel) with pixels of a/4, so one pixel sits on every Sr site;
  2. measures per unit cell the lattice contrast (the TiO-site pixel over the cell's mean): near
     1 in the amorphous strip, well above 1 in the crystal; and the Sr-site signal relative to
     the median Sr site of the crystalline cells (a half-empty column scatters less): below
     75 % makes a candidate;
  3. zooms (a small scan at 200 pA, 10 µs: 10 × the overview's electrons per pixel) on crystalline cells whose Sr site
     is dim, and on the median cell as the reference, and calls a vacancy where the Sr column
     gives less than 80 % of the reference;
  4. reports what it found against the ground truth, and the dose it spent.

    PYTHONPATH=build/python /usr/bin/python3 examples/defect_hunt.py [--quick]
"""
import argparse
import sys

import numpy as np

import stemtwin

A = 3.905  # Å, SrTiO3


def overview(m, cells):
    """Low-dose raster over the whole cell: pixel (4i, 4j) on the Sr site (i·a, j·a)."""
    n = 4 * cells
    step = A / 4
    m.set_current(50)
    m.set_scan(fov=cells * A, n=n, dwell_us=4)
    m.move_stage(x=(n - 1) / 2 * step, y=(n - 1) / 2 * step)  # first pixel at (0, 0)
    frame = m.scan()
    img = frame["images"]["ADF"] / frame["electrons_per_position"]  # detected fraction of the beam
    tiles = img.reshape(cells, 4, cells, 4)  # [j][py][i][px]
    site = tiles[:, 0, :, 0]  # Sr column at (i·a, j·a)
    tio = tiles[:, 2, :, 2]   # TiO column at ((i + ½)·a, (j + ½)·a): unaffected by Sr vacancies
    cell_mean = tiles.mean(axis=(1, 3))
    return site, tio / np.maximum(cell_mean, 1e-12), frame


def zoom_signal(m, i, j):
    """High-dose small scan around the Sr site (i·a, j·a): mean detected fraction within 0.5 Å."""
    m.set_current(200)
    m.set_scan(fov=1.2, n=6, dwell_us=10)
    m.move_stage(x=i * A, y=j * A)
    frame = m.scan()
    pos = frame["positions"]
    r = np.hypot(pos[..., 0] - i * A, pos[..., 1] - j * A)
    img = frame["images"]["ADF"] / frame["electrons_per_position"]
    return float(img[r < 0.5].mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller specimen (for tests)")
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    cells = 5 if args.quick else 8

    specimen = stemtwin.demo_specimen(cells_x=cells, cells_y=cells, cells_z=2, amorphous_fraction=0.25,
                                      sr_vacancies=0.1, seed=args.seed)
    m = stemtwin.Microscope(specimen, sampling_A=0.1, slice_thickness_A=A / 2, min_window_A=20, seed=args.seed)
    m.set_detectors([stemtwin.annular("ADF", 40, 80)])

    site, contrast, frame = overview(m, cells)
    # A lattice is there where the TiO columns stand out (at least twice the cell's mean); an
    # Sr site counts as crystalline when the four TiO columns around it do (not at the front).
    lattice = contrast > 2.0
    crystalline = lattice & np.roll(lattice, 1, axis=0) & np.roll(lattice, 1, axis=1) & np.roll(lattice, (1, 1), axis=(0, 1))
    ref_level = np.median(site[crystalline])
    dim = crystalline & (site < 0.75 * ref_level)
    print(f"overview: {site.size} cells, {frame['dose_e_per_A2']:.0f} e/Å², "
          f"{(~lattice).sum()} look amorphous, {dim.sum()} crystalline cells with a dim Sr site")

    # Reference: the crystalline cell whose Sr site is closest to the median.
    cj, ci = np.argwhere(crystalline)[np.argmin(np.abs(site[crystalline] - ref_level))]
    reference = zoom_signal(m, ci, cj)
    found = []
    for j, i in np.argwhere(dim):
        ratio = zoom_signal(m, i, j) / reference
        verdict = "vacancy" if ratio < 0.6 else "intact"  # half a column missing: ~0.5
        print(f"  zoom on Sr site ({i * A:5.2f}, {j * A:5.2f}) Å: {ratio:.2f} of the reference -> {verdict}")
        if verdict == "vacancy":
            found.append((int(i), int(j)))

    # Ground truth (the agent never looked at it).
    truth = {(int(round(x / A)) % cells, int(round(y / A)) % cells)
             for x, y, _ in specimen.vacancy_positions}
    hits = len(truth & set(found))
    amorphous_columns = int((np.median(contrast, axis=0) <= 2.0).sum())  # columns of cells along y
    status = m.status()
    dose = m.dose_map(1.0)
    print(f"vacancies: found {len(found)}, {hits} of {len(truth)} true ones, {len(found) - hits} false alarms")
    print(f"amorphous strip: {amorphous_columns} of {cells} columns of cells look amorphous "
          f"(built: the left 25 %, {specimen.info['amorphous_fraction']:.2f} of the atoms)")
    print(f"dose: {status['total_electrons']:.3g} electrons in {status['calls']} acquisitions; "
          f"mean {dose.mean():.0f} e/Å², max {dose.max():.0f} e/Å² (zoomed sites)")
    if truth and hits == 0:
        print("defect hunt FAILED: no true vacancy found")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
