"""The plain test runner shared by tests/test_*.py (run with Debian's /usr/bin/python3):
every module-level function named test_* runs in source order; the last line is
'N passed, M failed' and the exit code is non-zero when anything failed."""
import sys
import time
import traceback


def run_tests(namespace):
    tests = sorted(((n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)
                    and hasattr(f, "__code__")), key=lambda nf: nf[1].__code__.co_firstlineno)
    passed = failed = 0
    t_all = time.perf_counter()
    for name, f in tests:
        t0 = time.perf_counter()
        try:
            f()
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.perf_counter() - t0:.2f} s)")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name} ({time.perf_counter() - t0:.2f} s)")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed ({time.perf_counter() - t_all:.1f} s)")
    return 1 if failed else 0
