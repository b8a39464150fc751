#!/usr/bin/env python3
"""MPI dataset generation (issue #18): `stemtwin run` on 1 and on 2 ranks, one OpenMP thread
each, on the shipped quick-start scenario (8 samples whose cost differs 4x: thickness 2-8
cells); then a simulated cluster, R ranks oversubscribed on this machine with tiny samples,
for the work queue's overhead per sample. Prints BENCH lines.

    bench/bench_mpi.py [--bin build/stemtwin] [--ranks 16] [--small-samples 64] [--skip-quickstart]

Needs a stemtwin built with MPI (CMake found libopenmpi-dev) and mpirun on PATH."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

SMALL = """name: queue-overhead
seed: 3
samples: {n}
specimen:
  builder: {{type: perovskite, a: 3.905, A: {{Sr: 1.0}}, B: {{Ti: 1.0}}}}
  repeat: [1, 1, 1]
microscope: {{energy: 200e3, convergence: 20, current: 20}}
scan: {{start: [0, 0], fov: [3.905, 3.905], pixels: [2, 2], dwell: 2}}
detectors:
  - {{name: haadf, type: annular, inner: 25, outer: 40}}
simulation: {{sampling: 0.2, slice_thickness: 3.905}}
output: {{file: small.h5}}
"""


def mpirun(ranks):
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none",
           "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
           "--mca", "oob_tcp_if_include", "lo"]  # shared memory between ranks, the runtime on loopback
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench_mpi: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return t, r.stdout


def mpi_line(out):
    m = re.search(r"mpi: (\d+) ranks.*?(\d+) samples in ([\d.]+) s.*load-balance efficiency ([\d.]+); "
                  r"queue overhead ([\d.]+) ms per sample; writing ([\d.]+) ms per sample, computing ([\d.]+) ms", out)
    if not m:
        sys.exit("bench_mpi: no 'mpi:' line in the output:\n" + out)
    return {"ranks": int(m[1]), "samples": int(m[2]), "loop_s": float(m[3]), "efficiency": float(m[4]),
            "overhead_ms": float(m[5]), "write_ms": float(m[6]), "compute_ms": float(m[7])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "stemtwin"))
    ap.add_argument("--ranks", type=int, default=16)
    ap.add_argument("--small-samples", type=int, default=64)
    ap.add_argument("--skip-quickstart", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="stemtwin_bench_mpi_")
    if not a.skip_quickstart:
        # Both under mpirun (same start-up cost); 1 rank runs the serial path.
        t1, _ = timed(mpirun(1) + [a.bin, "run", "-o", f"{tmp}/q1.h5", "--threads", "1", "--force"])
        t2, out = timed(mpirun(2) + [a.bin, "run", "-o", f"{tmp}/q2.h5", "--threads", "1", "--force"])
        s = mpi_line(out)
        print(f"BENCH case=mpi_quickstart ranks=1 threads=1 samples=8 seconds={t1:.2f}")
        print(f"BENCH case=mpi_quickstart ranks=2 threads=1 samples=8 seconds={t2:.2f} speedup={t1 / t2:.2f} "
              f"load_balance_efficiency={s['efficiency']:.3f} queue_overhead_ms_per_sample={s['overhead_ms']:.2f} "
              f"write_ms_per_sample={s['write_ms']:.2f} compute_ms_per_sample={s['compute_ms']:.1f}")
    path = f"{tmp}/small.yaml"
    with open(path, "w") as f:
        f.write(SMALL.format(n=a.small_samples))
    t, out = timed(mpirun(a.ranks) + [a.bin, "run", path, "-o", f"{tmp}/small.h5", "--threads", "1", "--force"])
    s = mpi_line(out)
    print(f"BENCH case=mpi_queue ranks={a.ranks} cores={os.cpu_count()} threads=1 samples={s['samples']} "
          f"seconds={t:.2f} loop_seconds={s['loop_s']:.2f} samples_per_s={s['samples'] / s['loop_s']:.1f} "
          f"load_balance_efficiency={s['efficiency']:.3f} queue_overhead_ms_per_sample={s['overhead_ms']:.2f} "
          f"write_ms_per_sample={s['write_ms']:.2f} compute_ms_per_sample={s['compute_ms']:.1f}")


if __name__ == "__main__":
    main()
