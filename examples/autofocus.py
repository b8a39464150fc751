#!/usr/bin/python3
"""An agent focuses the twin: sweep the defocus, score the sharpness of each ADF frame, fit the
peak, then refine around it.

The specimen sits at a stage height the agent does not know (stage z acts as extra defocus:
the crossover lies z deeper below the entrance surface), so the focus it must find is
about -z + t/2 (crossover in the middle of a specimen of thickness t). The agent only sees the
noisy read-out; the sharpness is the normalised variance with the shot-noise variance removed,
(var - g*mean) / mean**2 (for Poisson counts times a gain g, var = g*mean adds to the image's
own contrast), so a noisier frame does not look sharper.

    PYTHONPATH=build/python /usr/bin/python3 examples/autofocus.py [--quick] [--height 57]

Exits with status 1 when the focus found is further than --tolerance from the true one.
"""
import argparse
import sys

import numpy as np

import stemtwin


def sharpness(image, gain=1.0):
    """Poisson-corrected normalised variance of a read-out image (ADU, gain ADU per electron)."""
    mean = float(image.mean())
    if mean <= 0:
        return 0.0
    return (float(image.var()) - gain * mean) / mean**2


def peak_of(defoci, scores):
    """Defocus of the sharpness peak: a parabola through log(score) over the run of points
    around the best one that score above half of it (at least the best point and its
    neighbours); a Gaussian-shaped focus curve is a parabola in log. The best point itself
    when the fit is not a maximum inside the sampled range."""
    d = np.asarray(defoci, float)
    s = np.asarray(scores, float)
    i = int(np.argmax(s))
    lo, hi = i, i + 1
    while lo > 0 and s[lo - 1] > 0.5 * s[i]:
        lo -= 1
    while hi < len(s) and s[hi] > 0.5 * s[i]:
        hi += 1
    lo, hi = min(lo, max(0, i - 1)), max(hi, min(len(d), i + 2))
    if hi - lo < 3 or np.any(s[lo:hi] <= 0):
        return float(d[i])
    a, b, _ = np.polyfit(d[lo:hi], np.log(s[lo:hi]), 2)
    if a >= 0:
        return float(d[i])
    return float(np.clip(-b / (2 * a), d[lo], d[hi - 1]))


def autofocus(microscope, start=-200.0, stop=200.0, step=25.0, fine_step=5.0, detector="ADF", log=print):
    """Coarse sweep start..stop, then a fine sweep of +-1 coarse step around the coarse peak.
    Leaves the microscope at the focus found and returns it (Å)."""
    def measure(defocus):
        microscope.set_defocus(defocus)
        frame = microscope.scan()
        return sharpness(frame["images"][detector])

    coarse = np.arange(start, stop + step / 2, step)
    scores = [measure(d) for d in coarse]
    guess = peak_of(coarse, scores)
    log(f"coarse sweep {start:.0f}..{stop:.0f} Å in {step:.0f} Å steps: peak near {guess:.1f} Å")
    fine = guess + np.arange(-step, step + fine_step / 2, fine_step)
    fine_scores = [measure(d) for d in fine]
    best = peak_of(fine, fine_scores)
    log(f"fine sweep {fine[0]:.1f}..{fine[-1]:.1f} Å in {fine_step:.0f} Å steps: focus {best:.1f} Å")
    microscope.set_defocus(best)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="coarser sweep and smaller frames (for tests)")
    ap.add_argument("--height", type=float, default=57.0, help="hidden stage height z, Å")
    ap.add_argument("--tolerance", type=float, default=10.0, help="allowed |found - true| focus, Å")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    specimen = stemtwin.demo_specimen(cells_x=8, cells_y=8, cells_z=2, seed=args.seed)
    thickness = specimen.cell[2]
    m = stemtwin.Microscope(specimen, sampling_A=0.1, slice_thickness_A=thickness / 4, min_window_A=20, seed=args.seed)
    m.set_detectors([stemtwin.annular("ADF", 40, 80)])
    m.set_current(200)  # about 2500 electrons per position at 2 µs: enough counts for the score
    a = 3.905
    m.move_stage(x=4.5 * a, y=4.5 * a, z=args.height)  # crystalline region; the height is hidden from the agent
    m.set_scan(fov=a if args.quick else 2 * a, n=8 if args.quick else 12, dwell_us=2)

    found = autofocus(m, step=40.0 if args.quick else 25.0, fine_step=10.0 if args.quick else 5.0)
    true_focus = -args.height + thickness / 2
    status = m.status()
    print(f"autofocus: found defocus {found:.1f} Å, true focus {true_focus:.1f} Å (-z + t/2), "
          f"error {found - true_focus:+.1f} Å, {status['calls']} frames, {status['total_electrons']:.3g} electrons")
    if abs(found - true_focus) > args.tolerance:
        print(f"autofocus FAILED: error beyond {args.tolerance} Å")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
