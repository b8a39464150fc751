"""Python's Microscope.scan_lines (issue 16): while scan() runs in one thread (the GIL is
released), another reads the rows completed so far; they arrive before the scan ends and are
exactly the finished frame's rows. scan(lines=f) hands the same rows to f as they complete,
with the GIL released in between (other threads run), and an exception from f stops the scan."""
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


def _session():
    spec = stemtwin.demo_specimen(cells_x=4, cells_y=4, cells_z=1, amorphous_fraction=0.0, sr_vacancies=0.0, seed=1)
    m = stemtwin.Microscope(spec, sampling_A=0.1, slice_thickness_A=A / 2, min_window_A=20, seed=3, method="multislice")
    m.set_detectors([stemtwin.annular("HAADF", 70, 150), stemtwin.annular("BF", 0, 10)])
    return m


def test_lines_callback_gets_the_final_frames_rows_as_they_complete():
    m = _session()
    m.set_scan(fov=A, n=24, dwell_us=2)  # as above: rows one block or two each
    calls = []
    ticks = [0]
    running = [True]

    def tick():  # runs only while scan() has the GIL released
        while running[0]:
            ticks[0] += 1
            time.sleep(0.001)

    def on_lines(l):
        assert threading.current_thread() is threading.main_thread()  # called on scan()'s thread
        calls.append((l["state"], l["first_row"], l["rows_done"], {k: v.copy() for k, v in l["images"].items()}))

    t = threading.Thread(target=tick)
    t.start()
    try:
        r = m.scan(lines=on_lines)
    finally:
        running[0] = False
        t.join(10)
    assert calls, "the callback was never called"
    assert calls[-1][0] == "done" and calls[-1][2] == 24
    assert sum(1 for c in calls if c[0] == "running" and 0 < c[2] < 24) > 0, "no rows before the frame was done"
    nxt = 0
    for state, first, done, images in calls:
        assert first == nxt  # each call brings the rows after the previous ones
        for rows in images.values():
            assert rows.shape == (done - first, 24)
        nxt = done
    for name in ("HAADF", "BF"):
        streamed = np.concatenate([c[3][name] for c in calls if name in c[3]])
        assert streamed.tobytes() == r["images"][name].tobytes(), name
    assert ticks[0] > 10, f"another thread ran only {ticks[0]} times during the scan: the GIL was held"
    print(f"lines callback: {len(calls)} calls; a second thread ticked {ticks[0]} times during the scan")


def test_an_exception_in_the_lines_callback_stops_the_scan_and_is_raised():
    m = _session()
    m.set_scan(fov=A * 0.9, n=24, dwell_us=2)

    class Enough(Exception):
        pass

    def on_lines(l):
        if l["rows_done"] > 0:
            raise Enough("seen enough rows")

    try:
        m.scan(lines=on_lines)
        raise AssertionError("scan() returned although its callback raised")
    except Enough:
        pass
    st = m.status()
    assert st["scan_state"] == "cancelled", st["scan_state"]
    assert 0 < st["rows_done"] < 24 and st["total_rows"] == 24
    # The positions simulated before the stop keep their dose (the frame stopped part way).
    assert 0 < st["positions_done"] < st["positions_total"] == 24 * 24
    assert st["total_electrons"] > 0
    try:
        m.scan(lines=3)
        raise AssertionError("a lines argument that is not callable was accepted")
    except TypeError as e:
        assert "lines" in str(e)


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
