"""`mpirun -n 2 stemtwin run` against the serial run (registered by CMake when MPI is found).

Two ranks, oversubscribed, shared memory / loopback only, one OpenMP thread each:
* the MPI file holds the same bytes in every dataset (and every root attribute but `created`)
  as a serial run with the same seed;
* a sample that fails is reported with its index, rank and reason, every rank stops, the
  file keeps every sample before it, and --resume starts again at that sample;
* a job killed mid-run (SIGKILL to every rank, or to one worker rank, after which mpirun
  ends the job) resumes, under MPI, to the serial file.
Environment: STEMTWIN_BIN (the CLI), STEMTWIN_MPIEXEC (mpirun)."""
import os
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")  # read the file while a killed-to-be job writes it
import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from py_runner import run_tests  # noqa: E402

BIN = os.environ["STEMTWIN_BIN"]
MPIEXEC = os.environ.get("STEMTWIN_MPIEXEC") or "mpirun"
HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "tiny.yaml")
BAD = os.path.join(HERE, "bad.yaml")
TMP = tempfile.mkdtemp(prefix="stemtwin_mpi_test_")


def mpirun(ranks):
    cmd = [MPIEXEC, "-n", str(ranks), "--oversubscribe", "--bind-to", "none",
           "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
           "--mca", "oob_tcp_if_include", "lo"]  # shared memory between ranks, the runtime on loopback
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


# stemtwin itself keeps HDF5's file locking (a second writer is refused); only this test's
# reader, which watches a file being written, goes without.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}


def run(args, ranks=1, env=None):
    cmd = (mpirun(ranks) if ranks > 1 else []) + [BIN, "run"] + args + ["--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env or CHILD_ENV)


FAIL3 = dict(CHILD_ENV, STEMTWIN_FAIL_SAMPLE="3")  # bad.yaml's sample 3 throws while computed


def kill_session(sid):
    """SIGKILL every process of session `sid` (mpirun gives each rank its own process
    group, so killing mpirun's group would leave the ranks running) and wait until none is left."""
    for _ in range(500):
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                alive.append(int(pid))
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    raise AssertionError(f"processes of session {sid} survive SIGKILL")


def attr_bytes(v, f=None):
    a = np.asarray(v)
    if f is not None and a.dtype.names is None and a.dtype == object and a.size and isinstance(a.ravel()[0], h5py.Reference):
        return ("ref", a.shape, repr([f[x].name for x in a.ravel()]))  # DIMENSION_LIST: what it points to
    if f is not None and a.dtype.names:  # REFERENCE_LIST: (dataset, dimension) pairs, by name
        return ("refs", a.shape, repr([(f[x[0]].name, int(x[1])) for x in a.ravel()]))
    if a.dtype == object:  # variable-length strings: their text, not their addresses
        return ("O", a.shape, repr([str(f[y].name) if isinstance(y, h5py.Reference) else
                                    (y.decode() if isinstance(y, bytes) else str(y)) for x in a.ravel()
                                    for y in (x if isinstance(x, np.ndarray) else [x])]))
    return (a.dtype.str, a.shape, a.tobytes())


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        n = int(f.attrs["complete_samples"])
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype.str, obj.shape, obj[()].tobytes(),
                             {k: attr_bytes(v, f) for k, v in obj.attrs.items()})
        f.visititems(visit)
        attrs = {k: attr_bytes(v) for k, v in f.attrs.items() if k != "created"}
    return n, out, attrs


def assert_same_bytes(a, b):
    na, da, aa = datasets(a)
    nb, db, ab = datasets(b)
    assert na == nb, f"complete_samples {na} != {nb}"
    assert sorted(da) == sorted(db), f"datasets differ: {sorted(set(da) ^ set(db))}"
    for name in da:
        assert da[name][:2] == db[name][:2], f"{name}: dtype/shape {da[name][:2]} != {db[name][:2]}"
        assert da[name][2] == db[name][2], f"{name}: bytes differ"
        assert da[name][3] == db[name][3], f"{name}: attributes differ"
    assert aa == ab, f"root attributes differ: {[k for k in aa if aa[k] != ab.get(k)]}"
    return na, len(da)


def serial(scenario, name, env=None):
    path = os.path.join(TMP, name)
    if not os.path.exists(path):
        r = run([scenario, "-o", path], env=env)
        assert r.returncode in (0, 1), r.stderr
    return path


def test_two_ranks_same_bytes_as_serial():
    ref = serial(TINY, "serial.h5")
    out = os.path.join(TMP, "mpi2.h5")
    r = run([TINY, "-o", out], ranks=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mpi: 2 ranks" in r.stdout and "load-balance efficiency" in r.stdout, r.stdout
    n, count = assert_same_bytes(ref, out)
    assert n == 6 and count > 20, (n, count)
    with h5py.File(out, "r") as f:  # the plan travels with each sample (compared above too)
        assert len(f.attrs["fft_plan"]) >= 16, "the MPI file lacks the root attribute fft_plan"
    # The comparison can fail: another seed changes the bytes.
    other = os.path.join(TMP, "seed8.h5")
    assert run([TINY, "-o", other, "--seed", "8", "--samples", "1"]).returncode == 0
    try:
        assert_same_bytes(ref, other)
    except AssertionError:
        pass
    else:
        raise AssertionError("files of different seeds compared equal")


def test_spectroscopy_travels_to_rank_0():
    # An EDS scenario (spectra, element maps noisy and clean, composition labels): before the
    # wire carried them, an MPI file silently lacked /spectra, /maps and the composition labels.
    eds = os.path.join(HERE, "..", "data", "export_eds.yaml")
    ref = serial(eds, "eds_serial.h5")
    out = os.path.join(TMP, "eds_mpi.h5")
    r = run([eds, "-o", out], ranks=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_bytes(ref, out)
    _, names, _ = datasets(out)
    for must in ("spectra/eds", "clean/spectra/eds", "maps/eds/Sr_Ka", "clean/maps/eds/Ti_Ka",
                 "labels/columns/composition/Sr", "labels/regions/composition"):
        assert must in names, f"{must} missing from the MPI file"


def test_resume_refuses_another_fft_plan():
    """--resume under MPI refuses a file written with another FFT plan, naming both."""
    out = os.path.join(TMP, "other_plan.h5")
    assert run([TINY, "-o", out, "--samples", "1"]).returncode == 0  # 3 samples
    with h5py.File(out, "r+") as f:  # as if written where FFTW chose another plan
        f.attrs["fft_plan"] = "00000000deadbeef"
    r = run([TINY, "-o", out, "--samples", "1", "--resume"], ranks=2)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "00000000deadbeef" in r.stderr and "this machine plans" in r.stderr, r.stderr
    with h5py.File(out, "r") as f:
        assert int(f.attrs["complete_samples"]) == 3 and f.attrs["fft_plan"] == "00000000deadbeef"  # left as it was


def test_failing_sample_reported_others_stop_file_kept():
    ref = serial(BAD, "bad_serial.h5", env=FAIL3)
    out = os.path.join(TMP, "bad_mpi.h5")
    r = run([BAD, "-o", out], ranks=2, env=FAIL3)
    assert r.returncode != 0, r.stdout + r.stderr
    err = r.stderr
    assert "sample 3 failed on rank" in err, err
    assert "injected by STEMTWIN_FAIL_SAMPLE" in err, err
    assert "the 3 complete samples before it are in" in err, err
    with h5py.File(out, "r") as f:
        assert int(f.attrs["complete_samples"]) == 3
        assert list(f["params/sample_index"][:3]) == [0, 1, 2]
    assert_same_bytes(ref, out)  # the serial run stops at the same sample with the same bytes
    # --resume continues at the failed sample (and reports it again), keeping the file.
    r2 = run([BAD, "-o", out, "--resume"], ranks=2, env=FAIL3)
    assert r2.returncode != 0 and "sample 3 failed on rank" in r2.stderr, r2.stderr
    assert_same_bytes(ref, out)


def start_job_until_two_samples(out, more):
    """Starts a 2-rank run of TINY into `out` in a session of its own and returns it once the
    file holds 2 complete samples (or the job ended, or 300 s passed)."""
    cmd = mpirun(2) + [BIN, "run", TINY, "-o", out, "--threads", "1"] + more
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env=CHILD_ENV)
    t0 = time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        time.sleep(0.02)
        try:
            with h5py.File(out, "r") as f:
                if int(f.attrs.get("complete_samples", 0)) >= 2:
                    break
        except Exception:
            continue
    return p


def test_killed_job_resumes_to_serial_bytes():
    more = ["--samples", "10"]  # 30 samples: long enough to be killed mid-run
    ref = os.path.join(TMP, "serial30.h5")
    assert run([TINY, "-o", ref] + more).returncode == 0
    out = os.path.join(TMP, "killed.h5")
    p = start_job_until_two_samples(out, more)
    kill_session(p.pid)  # mpirun and both ranks, mid-run (as a scheduler kills a job)
    p.wait()
    with h5py.File(out, "r") as f:
        complete = int(f.attrs["complete_samples"])
    assert 2 <= complete < 30, complete  # killed mid-run
    r = run([TINY, "-o", out, "--resume"] + more, ranks=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_bytes(ref, out)


def session_rank(sid, rank):
    """The pid of MPI rank `rank` among the processes of session `sid` (None if not there yet)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[3]) != sid:
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(pid)
    return None


def test_one_rank_killed_job_stops_file_resumes():
    # A worker rank dies (node lost): mpirun ends the job; the file keeps its complete
    # samples and resumes to the serial bytes.
    more = ["--samples", "10"]
    ref = os.path.join(TMP, "serial30.h5")
    if not os.path.exists(ref):
        assert run([TINY, "-o", ref] + more).returncode == 0
    out = os.path.join(TMP, "rank_killed.h5")
    p = start_job_until_two_samples(out, more)
    worker = session_rank(p.pid, 1)
    assert worker, "rank 1 not found"
    os.kill(worker, signal.SIGKILL)
    try:
        code = p.wait(timeout=60)
    finally:
        kill_session(p.pid)  # whatever mpirun left behind
    assert code != 0, code
    with h5py.File(out, "r") as f:
        complete = int(f.attrs["complete_samples"])
    assert 2 <= complete < 30, complete
    r = run([TINY, "-o", out, "--resume"] + more, ranks=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_bytes(ref, out)


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
