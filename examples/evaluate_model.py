#!/usr/bin/python3
"""Score your own model on a stemtwin dataset.

Reads a dataset written by `stemtwin generate` (HDF5, layout in docs/evaluate.md), runs a
model on every sample, writes predictions.h5 in the format `stemtwin evaluate` reads, and
optionally runs the evaluation:

    /usr/bin/python3 examples/evaluate_model.py dataset.h5 -o predictions.h5
    stemtwin evaluate dataset.h5 predictions.h5 -o report/

Needs only Debian's python3-h5py and python3-numpy. The "model" here is a plain numpy
peak finder (the same method as `stemtwin baseline`) so the script runs as it is; replace
the body of `Model.predict_sample` / `Model.predict_classes` with calls to your network.
Whatever you return, keep the units: column positions in pixels (x fast, pixel centres at
integer coordinates, as in /labels/columns/x_px) or in Å (then write x_A/y_A instead).
"""
import argparse
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np


# --- reading the dataset ------------------------------------------------------------------------

def dataset_info(f):
    """Number of complete samples, detector names, class names, mask names, parameter names."""
    if "complete_samples" in f.attrs:
        n = int(f.attrs["complete_samples"])
    elif "labels/class" in f:
        n = f["labels/class"].shape[0]
    else:
        n = next(iter(f["images"].values())).shape[0]
    names = []
    if "labels/class" in f and "names" in f["labels/class"].attrs:
        raw = f["labels/class"].attrs["names"]
        if isinstance(raw, (bytes, str)):
            raw = [raw]
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(raw)]
        if len(names) == 1 and "," in names[0]:
            names = [s.strip() for s in names[0].split(",")]
    return {
        "n": n,
        "detectors": sorted(f["images"].keys()) if "images" in f else [],
        "class_names": names,
        "masks": sorted(f["labels/masks"].keys()) if "labels/masks" in f else [],
        "params": sorted(f["params"].keys()) if "params" in f else [],
    }


# --- the model: replace with yours ---------------------------------------------------------------

def gaussian_smooth(img, sigma):
    """Separable Gaussian blur with edges clamped (radius ceil(3 sigma))."""
    if sigma <= 0:
        return img
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, r, mode="edge")
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, p)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, p)


def find_columns(img, sigma=1.0, threshold=0.5, radius=2):
    """Local maxima of the smoothed image above min + threshold*(max - min), refined by a
    least-squares quadratic fit to the 3x3 neighbourhood. Returns (x, y) in pixels."""
    s = gaussian_smooth(np.asarray(img, dtype=np.float64), sigma)
    lo, hi = s.min(), s.max()
    if hi <= lo:
        return np.zeros((0, 2))
    w = 2 * radius + 1
    padded = np.pad(s, radius, mode="constant", constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, (w, w)).max(axis=(2, 3))
    ys, xs = np.nonzero((s >= local_max) & (s > lo + threshold * (hi - lo)))
    out = []
    ny, nx = s.shape
    u = np.array([-1, 0, 1], dtype=np.float64)
    U, V = np.meshgrid(u, u)  # U along x, V along y
    for y, x in zip(ys, xs):
        dx = dy = 0.0
        if 0 < x < nx - 1 and 0 < y < ny - 1:
            f = s[y - 1:y + 2, x - 1:x + 2]
            b, c = (U * f).sum() / 6, (V * f).sum() / 6
            e = (U * V * f).sum() / 4
            d, g = ((U**2 - 2 / 3) * f).sum() / 2, ((V**2 - 2 / 3) * f).sum() / 2
            det = 4 * d * g - e * e
            if d < 0 and g < 0 and det > 0:
                dx = float(np.clip((e * c - 2 * g * b) / det, -0.5, 0.5))
                dy = float(np.clip((e * b - 2 * d * c) / det, -0.5, 0.5))
        out.append((x + dx, y + dy))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


class Model:
    """A stand-in for a trained network: swap the method bodies for your own inference."""

    def predict_sample(self, image):
        """One image [ny, nx] -> (columns [k, 2] in pixels, mean intensity, mask [ny, nx])."""
        cols = find_columns(image)
        smooth = gaussian_smooth(np.asarray(image, dtype=np.float64), 1.0)
        mask = (smooth > smooth.mean()).astype(np.int16)  # 1 = brighter than average
        return cols, float(np.mean(image)), mask

    def predict_classes(self, means, n_classes):
        """Class per sample: which n_classes-quantile of the mean intensity it falls in."""
        if n_classes < 2:
            return np.zeros(len(means), dtype=np.int32)
        edges = np.quantile(means, np.arange(1, n_classes) / n_classes)
        return (means[:, None] > edges[None, :]).sum(axis=1).astype(np.int32)


# --- writing predictions.h5 ---------------------------------------------------------------------

def write_predictions(path, samples, xy, classes=None, masks=None, scalars=None, method=""):
    """The documented format: /columns/{sample,x_px,y_px}, /class, /masks/<name>, /scalars/<name>."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "stemtwin-predictions-1"
        f.attrs["method"] = method
        g = f.create_group("columns")
        g["sample"] = np.asarray(samples, dtype=np.int64)
        g["x_px"] = np.asarray(xy[:, 0], dtype=np.float64)
        g["y_px"] = np.asarray(xy[:, 1], dtype=np.float64)
        if classes is not None:
            f["class"] = np.asarray(classes, dtype=np.int32)
        for name, m in (masks or {}).items():
            f.create_dataset("masks/" + name, data=np.asarray(m, dtype=np.int16),
                             chunks=(1,) + m.shape[1:], compression="gzip")
        for name, v in (scalars or {}).items():
            f["scalars/" + name] = np.asarray(v, dtype=np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("-o", "--output", default="predictions.h5")
    ap.add_argument("--detector", help="image to use (default: the first named like HAADF)")
    ap.add_argument("--evaluate", metavar="REPORT_DIR",
                    help="then run `stemtwin evaluate` (binary from $STEMTWIN_BIN or PATH) into this folder")
    args = ap.parse_args()

    model = Model()
    with h5py.File(args.dataset, "r") as f:
        info = dataset_info(f)
        if not info["detectors"]:
            sys.exit(f"{args.dataset}: /images: no detector images")
        det = args.detector or next((d for d in info["detectors"] if "haadf" in d.lower()), info["detectors"][0])
        images = f["images/" + det]
        n = info["n"]
        samples, xy, means = [], [], np.zeros(n)
        masks = {name: np.zeros((n,) + images.shape[1:], dtype=np.int16) for name in info["masks"]}
        for i in range(n):  # one sample at a time: datasets can be larger than memory
            cols, means[i], mask = model.predict_sample(images[i])
            samples.extend([i] * len(cols))
            xy.append(cols)
            for name in masks:
                masks[name][i] = mask
        has_classes = "labels/class" in f
        n_classes = len(info["class_names"]) if info["class_names"] else (
            int(f["labels/class"][:n].max()) + 1 if has_classes and n else 0)
    xy = np.concatenate(xy) if xy else np.zeros((0, 2))
    classes = model.predict_classes(means, n_classes) if has_classes else None
    write_predictions(args.output, samples, xy, classes, masks,
                      method=f"examples/evaluate_model.py numpy peak finder on /images/{det}")
    print(f"{args.output}: {len(samples)} columns in {n} samples"
          + (f", classes for {n} samples" if classes is not None else "")
          + (f", masks {', '.join(masks)}" if masks else ""))

    if args.evaluate:
        exe = os.environ.get("STEMTWIN_BIN") or shutil.which("stemtwin")
        if not exe:
            sys.exit("stemtwin not found: set STEMTWIN_BIN or put it on PATH")
        sys.exit(subprocess.call([exe, "evaluate", args.dataset, args.output, "-o", args.evaluate]))


if __name__ == "__main__":
    main()
