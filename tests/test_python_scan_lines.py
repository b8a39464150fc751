"""Python's Microscope.scan_lines (issue 16): while scan() runs in one thread (the GIL is
released), another reads the rows completed so far; they arrive before the scan ends and are
exactly the finished frame's rows."""
import sys
import threading
import time

from py_runner import run_tests  # tests/py_runner.py (this directory is on sys.path)

import numpy as np

import stemtwin

A = 3.905  # Å, SrTiO3


def test_rows_arrive_during_the_scan_and_are_the_final_frames_rows():
    spec = stemtwin.demo_specimen(cells_x=4, cells_y=4, cells_z=1, amorphous_fraction=0.0, sr_vacancies=0.0, seed=1)
    m = stemtwin.Microscope(spec, sampling_A=0.1, slice_thickness_A=A / 2, min_window_A=20, seed=3, method="multislice")
    m.set_detectors([stemtwin.annular("HAADF", 70, 150), stemtwin.annular("BF", 0, 10)])
    m.set_scan(fov=A, n=24, dwell_us=2)  # 0.16 Å pixels: full physics, rows one block or two each
    assert m.scan_lines()["state"] == "idle"
    result = {}
    t = threading.Thread(target=lambda: result.update(m.scan()))
    t.start()
    got, nxt, while_running, first = {"HAADF": [], "BF": []}, 0, 0, 0
    t0 = time.time()
    while time.time() - t0 < 300:
        l = m.scan_lines(nxt)
        if l["state"] in ("running", "done"):
            assert l["first_row"] == nxt
            for name, rows in l["images"].items():
                assert rows.shape == (l["rows_done"] - nxt, 24)
                got[name].append(rows)
            if l["state"] == "running":
                while_running = max(while_running, l["rows_done"])
                first = first or l["rows_done"]
            nxt = l["rows_done"]
            if l["state"] == "done":
                break
        time.sleep(0.005)
    t.join(60)
    assert not t.is_alive()
    assert while_running > 0, "no row arrived before the scan ended"
    assert 0 < first < 24, first  # the first rows came before the others: progressively
    for name in ("HAADF", "BF"):
        streamed = np.concatenate(got[name])
        assert streamed.shape == (24, 24)
        assert streamed.tobytes() == result["images"][name].tobytes(), name
    print(f"scan_lines: {while_running} of 24 rows read while the scan ran")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
