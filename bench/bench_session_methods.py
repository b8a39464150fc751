#!/usr/bin/python3
"""Cost of an atomic-resolution session frame by simulation method, measured in one run.

The session simulates a window around the scanned field (microscope_impl.hpp); its method
(MicroscopeSettings.method) decides how: `multislice` propagates every probe over the whole
window, `windowed` over a smaller window per tile of positions (windowed.hpp), `prism` builds
the window's S-matrix once. A specimen like `stemtwin serve`'s default (SrTiO3 [001] 12 × 12 × 2
cells, 0.05 Å, 200 kV, 20 mrad, HAADF 70–160 mrad), one cold frame per method of n × n pixels
at 0.2 Å (`--n`, default 16), then the same frame again (clean signals cached). Prints
`BENCH name=session_<method>_frame<n>_cold_s value=...`, the repeat, and the ratio to
multislice; HAADF's mean and its difference to multislice in percent. With `--eds` the frames
carry an EDS spectrum image (scan(eds=True): windowed multislice records it on its tile
windows, the other methods by multislice over the session window; names get `_eds`, the
repeat is not cached), and a cold point spectrum (spectrum_at at the field's centre, a fresh
session) is timed as `session_<method>_eds_point_spectrum_cold_s`. `--world`: the specimen is
`stemtwin serve`'s default world (stemtwin.World(0), 100 Å thick) at its centre (names get
`_world`). Usage (from the repository root):

  PYTHONPATH=build/python bench/bench_session_methods.py [--n 16] [--methods multislice,windowed,prism] [--eds] [--world]
"""
import argparse
import time

import numpy as np

import stemtwin


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--methods", default="multislice,windowed,prism")
    ap.add_argument("--eds", action="store_true", help="EDS spectrum images and a point spectrum")
    ap.add_argument("--world", action="store_true", help="the server's default specimen: the world (100 Å thick), at its centre")
    a = ap.parse_args()
    tag = "_eds" if a.eds else ""
    specimen = stemtwin.World(0) if a.world else stemtwin.demo_specimen(cells_x=12, cells_y=12, cells_z=2, amorphous_fraction=0.0, seed=1)
    if a.world:
        tag += "_world"
    reference = None
    for method in a.methods.split(","):
        if a.eds:
            p = stemtwin.Microscope(specimen, sampling_A=0.05, method=method, seed=1)
            t0 = time.perf_counter()
            p.spectrum_at(p.stage.x_A, p.stage.y_A, dwell_us=1e5)
            print("BENCH name=session_%s%s_point_spectrum_cold_s value=%.4g" % (method, tag, time.perf_counter() - t0), flush=True)
        m = stemtwin.Microscope(specimen, sampling_A=0.05, method=method, seed=1)
        m.set_detectors([stemtwin.annular("HAADF", 70, 160)])
        m.set_scan(fov=a.n * 0.2, n=a.n, dwell_us=2)
        t0 = time.perf_counter()
        r = m.scan(eds=a.eds)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        m.scan(eds=a.eds)
        repeat = time.perf_counter() - t0
        haadf = r["clean"]["HAADF"]
        if reference is None:
            reference = (cold, haadf)
        diff = 100 * (haadf.mean() / reference[1].mean() - 1)
        corr = float(np.corrcoef(haadf.ravel(), reference[1].ravel())[0, 1])
        print("BENCH name=session_%s%s_frame%d_cold_s value=%.4g ratio_to_first=%.3g haadf_mean_diff_pct=%.3g corr=%.5f"
              % (method, tag, a.n, cold, cold / reference[0], diff, corr), flush=True)
        print("BENCH name=session_%s%s_frame%d_repeat_s value=%.4g" % (method, tag, a.n, repeat), flush=True)


if __name__ == "__main__":
    main()
