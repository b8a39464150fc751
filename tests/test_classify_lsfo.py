#!/usr/bin/python3
"""The features of examples/classify_lsfo.py against their invariants (numpy only, synthetic
counts, seeded): the binomial dispersion index is ≈ 1 for a homogeneous film whatever the dose
and composition, and layering (pure-La / pure-Sr rows) lifts the row index far above 1 while
leaving the column index near 1. Run by CTest; prints 'N passed, M failed'."""
import os
import sys

import numpy as np

from py_runner import run_tests  # tests/py_runner.py (this directory is on sys.path)

SOURCE = os.environ.get("STEMTWIN_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SOURCE, "examples"))
import classify_lsfo as C  # noqa: E402


def homogeneous(rng, p, dose, shape=(4, 5)):
    n = rng.poisson(dose, size=shape).astype(float)
    return rng.binomial(n.astype(int), p).astype(float), n


def test_dispersion_is_one_for_a_homogeneous_film_at_any_dose_and_composition():
    rng = np.random.default_rng(15)
    for p, dose in ((0.5, 5), (0.8, 20), (0.6, 200)):
        d = np.mean([C.dispersion(*homogeneous(rng, p, dose), axis=None) for _ in range(400)])
        # Pearson χ² over G = 20 cells with p fitted has mean (G − 1)/G = 0.95 per cell; the mean of
        # 400 draws has sd ≈ sqrt(2/20)/sqrt(400) ≈ 0.016 (more at dose 5, where cells with n = 0
        # drop out and the binomial is skewed): ±0.1 is > 5 sd and still far below the layered
        # film's index (next test).
        assert abs(d - 0.95) < 0.1, (p, dose, d)


def test_layered_rows_lift_the_row_index_not_the_column_index():
    rng = np.random.default_rng(16)
    n = rng.poisson(20, size=(4, 5)).astype(float)
    la = n * np.array([1, 0, 1, 1])[:, None]  # rows pure La, pure Sr, La, La: x = 0.25
    rows, cols = C.dispersion(la, n, axis=1), C.dispersion(la, n, axis=0)
    # Rows: each holds ~100 counts all of one kind, p = 0.75: (L − np)²/(np(1−p)) ≈ 100·p/(1−p) or
    # 100·(1−p)/p for the Sr row, far above 1. Columns: each has the same 3:1 mix of rows, so they
    # differ only by the counts drawn per cell (≈ 1, bounded here well below the rows).
    assert rows > 20, rows
    assert cols < 3, cols


def test_cell_index_puts_pixels_on_the_nearest_film_column():
    x = np.arange(16) * 19.5 / 16
    y = np.arange(16) * 19.6 / 16
    i, j, ncols = C.cell_index(x, y, 3.905, 3.905, 3.95, 19.5, 4)
    assert ncols == 5
    assert i[0] == 0 and i[-1] == 0  # x = 18.3 Å is nearer the periodic image of column 0
    assert list(j[:3]) == [-1, -1, 0] and j.max() == 3  # substrate rows excluded


def main():
    return run_tests(globals())


if __name__ == "__main__":
    sys.exit(main())
