#!/usr/bin/python3
"""The world from Python (python/bind_specimens.cpp `World`, `Microscope(world)`): run by CTest
like tests/test_python_module.py (PYTHONPATH=<build>/python). Small windows only: fast."""
import sys

from py_runner import run_tests  # tests/py_runner.py

import numpy as np

import stemtwin


def test_world_keywords_are_the_scenario_keys_and_bad_ones_are_refused():
    w = stemtwin.World(3, thickness=150, film=300)
    assert w.extent == (20000.0, 20000.0, 150.0)
    assert w.material_at(8000, 8000) == "crystal"
    assert w.material_at(8000, 10400 + 100) == "film"
    assert w.material_at(8000, 10400 + 350) == "support"  # the carbon cap above the 300 Å film
    try:
        stemtwin.World(0, thickness_A=100)  # the C++ field name is not a key
    except KeyError as e:
        assert "thickness_A" in str(e)
    else:
        raise AssertionError("unknown World keyword accepted")


def test_atoms_in_is_deterministic_and_seamless():
    a, b = stemtwin.World(7), stemtwin.World(7)
    left, right = a.atoms_in(8000, 8000, 12.3, 30), a.atoms_in(8012.3, 8000, 17.7, 30)
    both = b.atoms_in(8000, 8000, 30, 30)
    key = lambda s: sorted(map(tuple, np.column_stack([s.positions, s.Z])))
    assert key(left) + key(right) != []
    assert sorted(key(left) + key(right)) == key(both)
    dens = a.areal_density(8000, 8000)
    assert set(dens) >= {"Sr", "Ti", "O"} and dens["O"] > dens["Ti"]


def test_a_session_on_the_world_overview_and_dose():
    m = stemtwin.Microscope(stemtwin.World(1))
    m.set_scan(fov=1e4, n=64)
    r = m.scan()
    assert r["clean"]["HAADF"].shape == (64, 64)
    assert r["clean"]["HAADF"].max() > 0 and r["clean"]["HAADF"].min() == 0  # vacuum below the edge
    m.move_stage_relative(dx=1e4)
    r2 = m.scan()
    assert not np.array_equal(r["clean"]["HAADF"], r2["clean"]["HAADF"])


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
