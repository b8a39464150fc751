#!/usr/bin/python3
"""Latency of `stemtwin serve` as the DTMicroscope TEMClient sees it.

Starts `stemtwin serve` (default specimen: the world, 100 Å thick; pass `-- --specimen crystal` for
the earlier SrTiO3 [001] 46.9 × 46.9 × 7.8 Å cell; 0.05 Å sampling)
on a free port and drives it exactly like DTMicroscope/base/twisted_client.py's TEMClient:
one TCP connection per request, a netstring `<len>:<json>,` holding a JSON-RPC 2.0 object,
4096-byte reads until the bytes received end in ',', a 30 s socket timeout. Prints one
`BENCH name=... value=...` line per measurement (seconds unless the name says otherwise):

  frame64_cold_s     first 64 × 64 HAADF frame at 0.2 Å/pixel (full multislice)
  frame256_cold_s    first 256 × 256 frame at 0.2 Å/pixel elsewhere on the specimen
  repeat_s           the 64 × 64 frame again (clean signals cached: read-out only)
  stage_move_s       a 16 × 16 frame after moving the stage by one field of view
  overview_s         acquire_image at the reference client's defaults (512 px, 1 µm, 0.1 s)
  status_during_scan_ms  get_microscope_status latency while a scan runs (median and max)

With --overviews only the world's overview path is measured (no full-physics frame):

  overview_cold_s    the first acquire_image at the reference defaults (512 px, 1 µm, 0.1 s)
  overview_s         the same again
  overview_move_s    set_stage by one field of view (1 µm) + the overview there
  mid_move_s         set_stage by one field of view (100 Å) + 256 × 256 over 100 Å (0.39 Å
                     pixels: the incoherent map of the world's atoms), twice

With --spectra only EDS on `super_x` at atomic resolution is measured (run it once as is,
windowed multislice, and once with `-- --method multislice` to compare):

  spectrum_point_cold_s  the first acquire_spectrum (0.1 s) with the beam in a 12.8 Å field
  spectrum_point_s       set_beam_position elsewhere in that field + acquire_spectrum
  spectrum_points16_s    acquire_spectrum_points, 16 points spread over the field

A frame that does not answer within the client's timeout is cancelled by the server when the
client hangs up; its time is then extrapolated from the progress that get_microscope_status
reported (marked `extrapolated=1`), so the line still says how far the engine is from the
target. Standard library only. Usage:

  bench/bench_server.py [--cli build/stemtwin] [--timeout 30] [--skip-256] [--overviews | --spectra]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Client:
    """TEMClient's wire behaviour: connect per call, 4096-byte reads until the data ends in ','."""

    def __init__(self, port, timeout=30.0):
        self.port, self.timeout, self.next_id = port, timeout, 1

    def call(self, method, **params):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.next_id += 1
        payload = json.dumps(msg, separators=(",", ":")).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
            s.sendall(b"%d:%s," % (len(payload), payload))
            buf = b""
            while not buf.endswith(b","):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        head, rest = buf.split(b":", 1)
        reply = json.loads(rest[: int(head)])
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench(name, value, **extra):
    more = "".join(" %s=%s" % kv for kv in extra.items())
    print("BENCH name=%s value=%.4g%s" % (name, value, more), flush=True)


def timed_frame(port, timeout, label, watch_status=True, **settings):
    """One acquire_image('scan') with `settings`, status polled from another connection."""
    statuses, progress = [], []
    done = threading.Event()

    def poll():
        c = Client(port, 5)
        while not done.is_set():
            t0 = time.perf_counter()
            st = c.call("get_microscope_status")
            statuses.append(time.perf_counter() - t0)
            if st["status"] == "Acquiring":
                progress.append((time.perf_counter(), st["acquisition_progress"]))
            time.sleep(0.2)

    poller = threading.Thread(target=poll) if watch_status else None
    t0 = time.perf_counter()
    if poller:
        poller.start()
    result, err = None, None
    try:
        result = Client(port, timeout).call("acquire_image", device="scan", **settings)
    except (socket.timeout, TimeoutError) as e:
        err = e
    elapsed = time.perf_counter() - t0
    done.set()
    if poller:
        poller.join()
    if err is None:
        bench(label, elapsed)
    else:
        # Extrapolate from the last progress seen before the client gave up.
        seen = [(t - t0, f) for t, f in progress if f > 0]
        if seen:
            t, f = seen[-1]
            bench(label, t / f, extrapolated=1, timed_out_after_s=round(timeout), progress=round(f, 4))
        else:
            bench(label, float("inf"), timed_out_after_s=round(timeout), progress=0)
    return result, statuses


def overviews(c):
    ref = dict(device="scan", size=512, field_of_view=1e-6, exposure=0.1, detectors=["HAADF"])
    for name in ("overview_cold_s", "overview_s"):
        t0 = time.perf_counter()
        img = c.call("acquire_image", **ref)
        bench(name, time.perf_counter() - t0, shape="%dx%d" % tuple(img[1]))
    t0 = time.perf_counter()
    c.call("set_stage", stage_positions={"x": 1e-6}, relative=True)
    c.call("acquire_image", **ref)
    bench("overview_move_s", time.perf_counter() - t0, move_m=1e-6)
    c.call("set_stage", stage_positions={"x": -1e-6}, relative=True)
    mid = dict(device="scan", size=256, field_of_view=1e-8, exposure=2e-6, detectors=["HAADF"])
    for label in ("first", "second"):
        t0 = time.perf_counter()
        c.call("set_stage", stage_positions={"x": 1e-8}, relative=True)
        c.call("acquire_image", **mid)
        bench("mid_move_s", time.perf_counter() - t0, frame="256x256", fov_A=100, move=label)
    return 0


def spectra(c):
    c.call("device_settings", device="scan", size=64, field_of_view=64 * 0.2e-10, exposure=2e-6, detectors=["HAADF"])
    c.call("set_beam_position", x=0.5, y=0.5)
    t0 = time.perf_counter()
    c.call("acquire_spectrum", device="super_x", exposure=0.1)
    bench("spectrum_point_cold_s", time.perf_counter() - t0)
    c.call("set_beam_position", x=0.3, y=0.6)
    t0 = time.perf_counter()
    c.call("acquire_spectrum", device="super_x", exposure=0.1)
    bench("spectrum_point_s", time.perf_counter() - t0)
    points = [[0.2 + 0.2 * i, 0.2 + 0.2 * j] for i in range(4) for j in range(4)]
    t0 = time.perf_counter()
    c.call("acquire_spectrum_points", device="super_x", points=points, exposure=0.01)
    bench("spectrum_points16_s", time.perf_counter() - t0, points=len(points))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.path.join(HERE, "..", "build", "stemtwin"))
    ap.add_argument("--timeout", type=float, default=30.0, help="the client's socket timeout (TEMClient: 30 s)")
    ap.add_argument("--skip-256", action="store_true", help="leave out the 256 × 256 frame")
    ap.add_argument("--overviews", action="store_true", help="only the overview path (see above)")
    ap.add_argument("--spectra", action="store_true", help="only EDS point spectra (see above)")
    ap.add_argument("serve_args", nargs="*", help="extra arguments for stemtwin serve")
    a = ap.parse_args()

    port = free_port()
    server = subprocess.Popen([a.cli, "serve", "--port", str(port)] + a.serve_args,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                Client(port, 2).call("get_detectors")
                break
            except OSError:
                time.sleep(0.1)
        c = Client(port, a.timeout)
        if a.overviews:
            return overviews(c)
        if a.spectra:
            return spectra(c)
        atomic = dict(size=64, field_of_view=64 * 0.2e-10, exposure=2e-6, detectors=["HAADF"])
        # 1. 64 × 64 cold at 0.2 Å/pixel, status latency measured while it runs.
        _, statuses = timed_frame(port, a.timeout, "frame64_cold_s", **atomic)
        if statuses:
            bench("status_during_scan_ms", 1e3 * statistics.median(statuses), max_ms=round(1e3 * max(statuses), 2),
                  calls=len(statuses))
        # 2. A repeat: the 64 × 64 frame again if it finished (cached signals), else a 16 × 16
        # frame acquired cold and then repeated.
        small = dict(size=16, field_of_view=16 * 0.2e-10, exposure=2e-6, detectors=["HAADF"])
        repeat = atomic
        t0 = time.perf_counter()
        try:
            c.call("acquire_image", device="scan", **atomic)
        except (socket.timeout, TimeoutError, RuntimeError):
            repeat = small
            timed_frame(port, 3600, "frame16_cold_s", watch_status=False, **small)
        t0 = time.perf_counter()
        c.call("acquire_image", device="scan", **repeat)
        bench("repeat_s", time.perf_counter() - t0, frame="%dx%d" % (repeat["size"], repeat["size"]))
        # 3. A stage move of one field of view, then a 16 × 16 frame there.
        t0 = time.perf_counter()
        c.call("set_stage", stage_positions={"x": small["field_of_view"]}, relative=True)
        try:
            c.call("acquire_image", device="scan", **small)
            bench("stage_move_s", time.perf_counter() - t0, frame="16x16")
        except (socket.timeout, TimeoutError):
            bench("stage_move_s", float("inf"), timed_out_after_s=round(a.timeout))
        # 4. Overview at the reference client's defaults.
        t0 = time.perf_counter()
        img = c.call("acquire_image", device="scan", size=512, field_of_view=1e-6, exposure=0.1, detectors=["HAADF"])
        bench("overview_s", time.perf_counter() - t0, shape="%dx%d" % tuple(img[1]))
        # 5. 256 × 256 cold elsewhere (a fresh window: the stage moved by 20 Å).
        if not a.skip_256:
            c.call("set_stage", stage_positions={"y": 20e-10}, relative=True)
            timed_frame(port, a.timeout, "frame256_cold_s", size=256, field_of_view=256 * 0.2e-10, exposure=2e-6,
                        detectors=["HAADF"])
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
