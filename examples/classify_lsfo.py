#!/usr/bin/python3
"""Classify La(1-x)Sr(x)FeO3 A-site order from HAADF alone, EDS alone and both (issue #15).

Reads a dataset made from scenarios/lsfo_haadf_eds.yaml:

    stemtwin run scenarios/lsfo_haadf_eds.yaml          # writes lsfo_haadf_eds.h5
    /usr/bin/python3 examples/classify_lsfo.py lsfo_haadf_eds.h5

and trains a tiny classifier (nearest class centroid on standardised features, numpy only;
h5py only reads the file) on three feature sets, scoring each by leave-one-out cross
validation (every sample is classified by centroids of all the others).

What tells the orders apart. The beam runs along z (the film's [001]), so a scan pixel sees a
projected A column of `repeat z` atoms. Layered: whole A planes ⊥ y are La or Sr, so in
projection every film A row is pure La or pure Sr and the rows differ, the columns of one row
do not. Random: every column is a binomial mix of its atoms, so rows, columns and cells
differ only by that and by counting noise. Clustered: smooth La/Sr blobs (σ ≈ 2 cells) make
neighbouring columns alike and the cells differ more than random in both directions. The
features therefore bin each map onto the film's A-column grid (every pixel to its nearest
A column: x = k·a, y = y0 + k·c with y0 the first film A plane, from /params
specimen.interface_y and specimen.film_c) and measure how much rows, columns and cells
differ:

  EDS:   dispersion indices of the La-L counts among La-L + Sr-K counts (`dispersion`): for
         each row (column, cell) with n counts of which L are La, Σ (L − n p)² / (n p (1−p))
         over the groups, divided by their number, with p the film's overall share. Under a
         homogeneous film it is ≈ 1 whatever the dose and composition (binomial counting);
         layering lifts the row index far above 1 and leaves the column one near 1, clusters
         lift all three. Plus the x- and y-neighbour correlation of the cell shares.
  HAADF: the same contrasts of the mean HAADF signal per A-column cell (La, Z = 57, scatters
         far more than Sr, Z = 38): spread of the row means, of the column means and of the
         cells about their row mean, each over the film mean, after dividing every cell by its
         median over the dataset (the scan grid is not commensurate with the lattice, so cells
         hold different pixel sets; that pattern is the same in every sample). Plus the
         neighbour correlations.
  both:  the two sets side by side.

Prints one line per feature set: "accuracy <set>: <fraction> (<correct>/<samples>)"; chance is
1/3. Measured numbers are in docs/spectroscopy.md §7 (composition, amorphous fraction and
defocus vary from sample to sample; an amorphous front mixes the A sites it covers).
"""
import argparse
import sys
import warnings

import h5py
import numpy as np


def cell_index(x_A, y_A, y0_A, a_A, c_A, fov_x_A, film_cells):
    """Nearest film A column of every scan pixel: per-axis indices (i along x, wrapped into the
    periodic field of round(fov / a) cells; j along y, −1 where the pixel lies outside the
    film's A rows 0 … film_cells − 1)."""
    ncols = max(int(round(fov_x_A / a_A)), 1)
    i = np.rint(np.asarray(x_A) / a_A).astype(int) % ncols
    j = np.rint((np.asarray(y_A) - y0_A) / c_A).astype(int)
    j[(j < 0) | (j >= film_cells)] = -1
    return i, j, ncols


def cell_sums(image, i, j, rows, cols, reduce=np.sum):
    """[ny, nx] image → [rows, cols] by `reduce` over the pixels nearest each film A column (NaN
    where no pixel falls)."""
    out = np.full((rows, cols), np.nan)
    for jj in range(rows):
        for ii in range(cols):
            block = image[np.ix_(j == jj, i == ii)]
            if block.size:
                out[jj, ii] = reduce(block)
    return out


def dispersion(la, total, axis):
    """Binomial dispersion index of La among La + Sr counts over groups (rows: axis=1 sums over
    x; columns: axis=0; cells: axis=None): mean over groups of (L − n p)² / (n p (1 − p)).
    ≈ 1 for a film whose groups share one composition; ≫ 1 when they differ."""
    if axis is None:
        L, n = la.ravel(), total.ravel()
    else:
        L, n = np.nansum(la, axis=axis), np.nansum(total, axis=axis)
    keep = np.isfinite(n) & (n > 0)
    L, n = L[keep], n[keep]
    if n.sum() <= 0:
        return 1.0
    p = np.clip(L.sum() / n.sum(), 0.02, 0.98)  # clipped: one-element films give 0/0
    return float(np.mean((L - n * p) ** 2 / (n * p * (1 - p)))) if len(n) else 1.0


def neighbour_correlation(v, axis):
    """Correlation of a [rows, cols] map with its neighbour along axis (x periodic), NaNs skipped."""
    if v.shape[axis] < 2:
        return 0.0
    w = np.roll(v, -1, axis=1) if axis == 1 else v[1:]
    u = v if axis == 1 else v[:-1]
    ok = np.isfinite(u) & np.isfinite(w)
    if ok.sum() < 3 or np.std(u[ok]) == 0 or np.std(w[ok]) == 0:
        return 0.0
    return float(np.corrcoef(u[ok], w[ok])[0, 1])


def eds_features(la_maps, sr_maps, grids):
    out = []
    for la_map, sr_map, (i, j, rows, cols) in zip(la_maps, sr_maps, grids):
        la = np.clip(cell_sums(la_map, i, j, rows, cols), 0, None)  # background-subtracted maps can dip below 0
        tot = la + np.clip(cell_sums(sr_map, i, j, rows, cols), 0, None)
        share = np.where(tot > 0, la / np.where(tot > 0, tot, 1), np.nan)
        d = [dispersion(la, tot, ax) for ax in (1, 0, None)]
        out.append(np.log(np.maximum(d, 1e-3)).tolist() +
                   [neighbour_correlation(share, 1), neighbour_correlation(share, 0)])
    return np.array(out)


def haadf_features(images, grids):
    peaks = np.array([cell_sums(im.astype(np.float64), i, j, rows, cols, np.max)
                      for im, (i, j, rows, cols) in zip(images, grids)])
    floors = np.array([cell_sums(im.astype(np.float64), i, j, rows, cols, np.min)
                       for im, (i, j, rows, cols) in zip(images, grids)])
    # Amorphous cells: no channelling, so even the cell's dimmest pixel is bright (the crystal's
    # dimmest pixels, between columns, are ~10× dimmer); they carry no column order.
    amorphous = floors > 3 * np.nanmin(floors.reshape(len(floors), -1), axis=1)[:, None, None]
    peaks[amorphous] = np.nan
    flat = np.nanmedian(peaks, axis=0)  # the scan-grid pattern common to all samples
    # Cells whose nearest pixel misses the A column by much (the scan is not commensurate with
    # the lattice) see mostly the probe tail: keep the better-sampled half.
    peaks[:, flat < np.nanmedian(flat)] = np.nan
    out = []
    for v in peaks / np.where(flat > 0, flat, 1):
        if np.isfinite(v).sum() < 2:
            out.append([0.0] * 5)
            continue
        mean = np.nanmean(v) + 1e-12
        row, col = np.nanmean(v, axis=1), np.nanmean(v, axis=0)
        resid = v - row[:, None]
        out.append([np.log(np.nanstd(row) / mean + 1e-6), np.log(np.nanstd(col) / mean + 1e-6),
                    np.log(np.nanstd(resid) / mean + 1e-6), neighbour_correlation(v, 1), neighbour_correlation(v, 0)])
    return np.array(out)


def leave_one_out_accuracy(x, y):
    """Nearest class centroid on features standardised with the training samples' mean and sd."""
    n = len(y)
    correct = 0
    for i in range(n):
        train = np.arange(n) != i
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
        z = (x - mu) / sd
        classes = [c for c in np.unique(y[train])]
        centroids = np.array([z[train & (y == c)].mean(axis=0) for c in classes])
        d = ((centroids - z[i]) ** 2).sum(axis=1)
        correct += int(classes[int(np.argmin(d))] == y[i])
    return correct, n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", help="HDF5 file written by stemtwin run from scenarios/lsfo_haadf_eds.yaml")
    p.add_argument("--haadf", default="haadf", help="image channel of the HAADF detector (default haadf)")
    p.add_argument("--la", default="La_La", help="La map under /maps/<spectrometer>/ (default La_La)")
    p.add_argument("--sr", default="Sr_Ka", help="Sr map (default Sr_Ka)")
    p.add_argument("--a", type=float, default=3.905, help="in-plane lattice parameter, Å (default SrTiO3's 3.905)")
    p.add_argument("--film-cells", type=int, default=4, help="film A planes in the field (default 4, as the scenario)")
    p.add_argument("--clean", action="store_true", help="use the noise-free maps and image under /clean")
    a = p.parse_args(argv)
    pre = "clean/" if a.clean else ""
    with h5py.File(a.dataset, "r") as f:
        n = int(f.attrs["complete_samples"])
        if n < 3:
            sys.exit(f"{a.dataset}: {n} complete samples; leave-one-out needs at least 3")
        for need in ("labels/class", "params/specimen.interface_y", "params/specimen.film_c", "maps"):
            if need not in f:
                sys.exit(f"{a.dataset}: no /{need} (is it made from scenarios/lsfo_haadf_eds.yaml?)")
        y = f["labels/class"][:n]
        names = [str(s) for s in f["labels/class"].attrs["names"]]
        haadf = f[("clean/" if a.clean else "images/") + a.haadf][:n]
        det = sorted(f["maps"])[0]
        for m in (a.la, a.sr):
            if m not in f["maps/" + det]:
                sys.exit(f"{a.dataset}: no map /maps/{det}/{m}")
        la, sr = f[f"{pre}maps/{det}/{a.la}"][:n], f[f"{pre}maps/{det}/{a.sr}"][:n]
        x_A, y_A = f["axes/x_A"][:], f["axes/y_A"][:]
        y_iface, film_c = f["params/specimen.interface_y"][:n], f["params/specimen.film_c"][:n]
    fov_x = x_A[-1] + (x_A[1] - x_A[0] if len(x_A) > 1 else a.a)
    grids = []
    for k in range(n):
        # the first film A plane lies a quarter cell above the interface (midway between the last
        # substrate BO2 plane and it)
        i, j, cols = cell_index(x_A, y_A, y_iface[k] + film_c[k] / 4, a.a, film_c[k], fov_x, a.film_cells)
        grids.append((i, j, a.film_cells, cols))
    with warnings.catch_warnings():  # all-NaN rows/columns (amorphous, unsampled) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        x_haadf = haadf_features(haadf, grids)
        x_eds = eds_features(la, sr, grids)
    counts = np.bincount(y, minlength=len(names))
    print(f"{n} samples: " + ", ".join(f"{names[c]} {counts[c]}" for c in range(len(names))) +
          f"; EDS maps: {det}/{a.la}, {det}/{a.sr}" + (" (clean)" if a.clean else ""))
    for label, x in (("HAADF", x_haadf), ("EDS", x_eds), ("HAADF+EDS", np.concatenate([x_haadf, x_eds], axis=1))):
        c, total = leave_one_out_accuracy(x, y)
        print(f"accuracy {label}: {c / total:.3f} ({c}/{total})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
