#!/usr/bin/python3
"""The Python agent examples run as they stand (with --quick) and do what they claim. Run by
CTest with Debian's /usr/bin/python3 and PYTHONPATH=<build>/python (a test of its own so that
tests/test_python_module.py stays short). Prints 'N passed, M failed'; exits non-zero on failure.
"""
import os
import re
import subprocess
import sys

from py_runner import run_tests  # tests/py_runner.py (this directory is on sys.path)

SOURCE = os.environ.get("STEMTWIN_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(name, *args):
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "examples", name), *args], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout + p.stderr


def test_autofocus_example_finds_the_hidden_focus():
    code, out = run("autofocus.py", "--quick")
    assert code == 0, out
    m = re.search(r"found defocus (-?[\d.]+) Å, true focus (-?[\d.]+) Å", out)
    assert m, out
    found, truth = float(m.group(1)), float(m.group(2))
    print(f"    autofocus.py: found {found} Å, true {truth} Å")
    assert abs(truth - (-57 + 3.905)) < 0.1 and abs(found - truth) < 10.0  # tolerance as in test_python_module.py
    code, out = run("autofocus.py", "--quick", "--tolerance", "0.001")  # its own check can fail
    assert code == 1 and "FAILED" in out, out


def test_defect_hunt_example_finds_vacancies():
    code, out = run("defect_hunt.py", "--quick")
    assert code == 0, out
    m = re.search(r"vacancies: found (\d+), (\d+) of (\d+) true ones", out)
    assert m, out
    found, hits, truth = map(int, m.groups())
    print(f"    defect_hunt.py: found {found}, {hits} of {truth} true vacancies")
    assert truth > 0 and hits > 0
    assert "dose:" in out


def main():
    return run_tests(globals())


if __name__ == "__main__":
    sys.exit(main())
