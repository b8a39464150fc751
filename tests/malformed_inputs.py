"""Malformed inputs through the real CLI (issue #12, "inputs that can never hurt").

Generates >= 120 malformed scenario YAML, CIF, extended/Prismatic XYZ and POSCAR files at
test time (plus the hand-written ones in tests/data/malformed/) and runs each through
`stemtwin validate` and `stemtwin run --dry-run` (a sample of them also through
`stemtwin run -o existing.h5 --force` against a dataset whose bytes must stay the same).
Every run must:
  - end with a normal error exit code (1 or 2: no signal, no abort, no 'valid'),
  - finish within 10 s (a refusal takes milliseconds; 10 s absorbs a loaded CI machine),
  - stay within 1 GB of address space (RLIMIT_AS; skipped under sanitizers, whose shadow
    memory reserves terabytes of address space): a refusal needs a few tens of MB,
  - print to stderr the file name and line ("file:line") and, for scenario keys, the key.

Usage: malformed_inputs.py <stemtwin binary> <source dir> [--sanitized]
Debian's /usr/bin/python3, standard library only."""
import hashlib
import re
import os
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_runner import run_tests  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("STEMTWIN_BIN", "stemtwin"))
SRC = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("STEMTWIN_SOURCE_DIR", "."))
SANITIZED = "--sanitized" in sys.argv
TIMEOUT_S = 10
ADDRESS_SPACE = 1 << 30
WORK = tempfile.mkdtemp(prefix="stemtwin_malformed_")

# A small valid scenario that uses every section; each YAML case edits one line of it.
# Line numbers below are found by searching for the edited text, never hard-coded.
BASE = """name: malformed-base
seed: 3
samples: 1
specimen:
  builder:
    type: defects
    a: 3.905
    A: {Sr: 1}
    B: {Ti: 1}
    vacancies: [{element: O, fraction: 0.05}]
    interstitials: [{element: O, count: 1, min_distance: 1.5}]
  zone_axis: [0, 0, 1]
  repeat: [1, 1, 2]
  thermal: {rms: 0.08, configurations: 1}
microscope:
  energy: 200e3
  convergence: 20
  aberrations: {defocus: 10, C30: 0, phi12: 0.5}
  focal_spread: 0
  source_size: 0
  current: 20
scan:
  fov: [3.905, 3.905]
  pixels: [4, 4]
  dwell: 2
detectors:
  - {name: haadf, type: annular, inner: 70, outer: 160}
  - {name: radial, type: radial, step: 5}
  - {name: dpc, type: segmented, rings: [5, 20], segments: 4}
simulation:
  method: multislice
  sampling: 0.05
  slice_thickness: 1.9525
acquisition:
  noise: true
  beam_current_pA: 20
  drift: {velocity_A_per_s: [0.1, 0], diffusion_A_per_sqrt_s: 0}
  jitter: {rms_A: 0.01}
  scan_noise: {frequencies_Hz: [50], rms_A: 0.01}
  annular: {detection_efficiency: 0.9, read_noise_ADU: 1, adc_bits: 16}
labels:
  mask_radius: 0.5
output:
  compression: 4
"""

STRUCTURE_BASE = BASE.replace("""  builder:
    type: defects
    a: 3.905
    A: {Sr: 1}
    B: {Ti: 1}
    vacancies: [{element: O, fraction: 0.05}]
    interstitials: [{element: O, count: 1, min_distance: 1.5}]
""", "  structure: STRUCTURE\n")


def line_of(text, needle):
    p = text.find(needle)
    assert p >= 0, needle
    return text.count("\n", 0, p) + 1


def edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)


class Case:
    """One malformed input: the file to write, which file the error must name, and at
    which line, and the key (or word) the message must contain."""

    def __init__(self, name, text, line, key, kind="yaml", structure=None, binary=False):
        self.name, self.text, self.line, self.key = name, text, line, key
        self.kind, self.structure, self.binary = kind, structure, binary


def yaml_edit(name, old, new, key, needle=None):
    t = edit(old, new)
    return Case(name, t, line_of(t, needle or new.strip().splitlines()[0]), key)


# Values out of the range table (src/acquisition/ranges.cpp, docs/scenario.md "Ranges"): every key
# class, each with values beyond both ends, NaN-like words and overflowing literals.
RANGE_EDITS = [
    ("samples: 1", "samples", ["samples: 0", "samples: 1e9", "samples: -5", "samples: 2.5"]),
    ("repeat: [1, 1, 2]", "specimen.repeat", ["repeat: [1, 1, 1e6]", "repeat: [0, 1, 1]", "repeat: [1, 1, 2.5]",
                                              "repeat: [200, 200, 200]"]),
    ("zone_axis: [0, 0, 1]", "specimen.zone_axis", ["zone_axis: [0, 0, 1e9]", "zone_axis: [0, 0, 0]"]),
    ("thermal: {rms: 0.08, configurations: 1}", "specimen.thermal",
     ["thermal: {rms: 5, configurations: 1}", "thermal: {rms: 0.08, configurations: 1e9}",
      "thermal: {rms: -1, configurations: 1}", "thermal: {rms: {Xx: 0.1}}"]),
    ("a: 3.905", "specimen.builder.a", ["a: 0", "a: 1e300", "a: {uniform: [1, 100]}"]),
    ("fraction: 0.05", "specimen.builder.vacancies[0].fraction", ["fraction: 2", "fraction: -0.1"]),
    ("count: 1,", "specimen.builder.interstitials[0].count", ["count: 1e9,", "count: -1,", "count: 0.5,"]),
    ("min_distance: 1.5", "specimen.builder.interstitials[0].min_distance", ["min_distance: 1e6"]),
    ("energy: 200e3", "microscope.energy", ["energy: 0", "energy: 1e300", "energy: -200e3", "energy: 5",
                                            "energy: {normal: [200e3, 1e6]}", "energy: {loguniform: [1, 1e9]}"]),
    ("convergence: 20", "microscope.convergence", ["convergence: 0", "convergence: 1e6"]),
    ("defocus: 10", "microscope.aberrations.defocus", ["defocus: 1e300", "defocus: -1e12"]),
    ("C30: 0", "microscope.aberrations.C30", ["C30: 1e300"]),
    ("phi12: 0.5", "microscope.aberrations.phi12", ["phi12: 1e6"]),
    ("focal_spread: 0", "microscope.focal_spread", ["focal_spread: -1", "focal_spread: 1e300"]),
    ("source_size: 0", "microscope.source_size", ["source_size: 1e9"]),
    ("current: 20", "microscope.current", ["current: 1e300", "current: -1"]),
    ("fov: [3.905, 3.905]", "scan.fov", ["fov: [0, 3.905]", "fov: [1e300, 3.905]"]),
    ("pixels: [4, 4]", "scan.pixels", ["pixels: [1e6, 4]", "pixels: [0, 4]", "pixels: [4, 4.5]",
                                       "pixels: [4, 99999999999999999999]"]),
    ("dwell: 2", "scan.dwell", ["dwell: 1e300", "dwell: 0", "dwell: 1e-9", "dwell: {uniform: [1, 1e12]}"]),
    ("inner: 70, outer: 160", "detectors.haadf", ["inner: 70, outer: 1e300", "inner: -5, outer: 160",
                                                  "inner: 170, outer: 160"]),
    ("step: 5}", "detectors.radial", ["step: 1e-9}", "step: 0}", "step: 5, max: 1e300}"]),
    ("rings: [5, 20], segments: 4", "detectors.dpc", ["rings: [5, 20], segments: 100000",
                                                      "rings: [5, 1e300], segments: 4",
                                                      "rings: [20, 5], segments: 4",
                                                      "rings: [5], segments: 4"]),
    ("sampling: 0.05", "simulation.sampling", ["sampling: 1e-9", "sampling: 0", "sampling: 100"]),
    ("slice_thickness: 1.9525", "simulation.slice_thickness", ["slice_thickness: 1e-9", "slice_thickness: 1e9"]),
    ("beam_current_pA: 20", "acquisition.beam_current_pA", ["beam_current_pA: 1e300", "beam_current_pA: -3"]),
    ("velocity_A_per_s: [0.1, 0]", "acquisition.drift.velocity_A_per_s", ["velocity_A_per_s: [1e300, 0]"]),
    ("rms_A: 0.01}\n  scan", "acquisition.jitter.rms_A", ["rms_A: 1e9}\n  scan"]),
    ("frequencies_Hz: [50]", "acquisition.scan_noise.frequencies_Hz", ["frequencies_Hz: [1e300]",
                                                                       "frequencies_Hz: [-50]"]),
    ("detection_efficiency: 0.9", "acquisition.annular.detection_efficiency", ["detection_efficiency: 7"]),
    ("adc_bits: 16", "acquisition.annular.adc_bits", ["adc_bits: 1e6", "adc_bits: 3.5"]),
    ("mask_radius: 0.5", "labels.mask_radius", ["mask_radius: 1e9", "mask_radius: 0"]),
    ("compression: 4", "output.compression", ["compression: 10", "compression: 1e300"]),
]


def range_cases():
    return [yaml_edit(f"range_{key}_{i}", old, new, key, needle=new.splitlines()[0])
            for old, key, news in RANGE_EDITS for i, new in enumerate(news)]


def structural_cases():
    c = []
    acq = "acquisition:\n  noise: true\n"
    # aliases: a cycle and "billion laughs" (10^10 nodes) in builder and acquisition keys
    c.append(Case("alias_cycle_top", "x: &a [*a]\n", 1, "cycle"))
    t = edit(acq, "acquisition: &acq\n  noise: true\n  jitter: [*acq]\n")
    c.append(Case("alias_cycle_acquisition", t, line_of(t, "jitter"), "cycle"))
    t = edit("    B: {Ti: 1}\n", "    B: &b {Ti: [*b]}\n")
    c.append(Case("alias_cycle_builder", t, line_of(t, "B: &b"), "cycle"))
    for where in ("acquisition", "builder"):
        lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 11):
            lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
        if where == "acquisition":
            t = edit(acq, "acquisition:\n  noise: true\n" + "".join("  " + s + "\n" for s in lines))
        else:
            t = edit("    B: {Ti: 1}\n", "    B: {Ti: 1}\n" + "".join("    " + s + "\n" for s in lines))
        c.append(Case(f"alias_bomb_{where}", t, line_of(t, "l4:"), "100000 nodes"))
    t = edit("dwell: 2", "dwell: &d 2\n  bomb: [" + ", ".join(["*d"] * 200000) + "]")
    c.append(Case("alias_wide", t, line_of(t, "bomb:"), "100000 nodes"))
    t = edit(acq, "acquisition: {x: " + "[" * 200 + "]" * 200 + "}\n")
    c.append(Case("deep_nesting", t, line_of(t, "acquisition: {"), "levels"))
    t = edit(acq, "acquisition: {x: " + "{a: " * 70 + "1" + "}" * 70 + "}\n")
    c.append(Case("deep_maps", t, line_of(t, "acquisition: {"), "levels"))
    # documents
    t = BASE + "---\nname: second\n"
    c.append(Case("two_documents", t, line_of(t, "---"), "second YAML document"))
    t = BASE + "---\n" + BASE
    c.append(Case("two_full_documents", t, line_of(t, "---"), "second YAML document"))
    # keys that are not words
    t = edit("  current: 20\n", "  current: 20\n  {a: 1}: 2\n")
    c.append(Case("map_as_key", t, line_of(t, "{a: 1}"), "YAML"))
    t = edit("  current: 20\n", "  current: 20\n  [a, b]: 2\n")
    c.append(Case("list_as_key", t, line_of(t, "[a, b]"), "YAML"))
    t = edit("acquisition:\n  noise: true\n", "acquisition:\n  noise: true\n  ? [a]\n  : 1\n")
    c.append(Case("complex_key_in_tree", t, line_of(t, "? [a]"), "YAML"))
    # syntax
    c.append(Case("unclosed_flow", edit("pixels: [4, 4]", "pixels: [4, 4"), line_of(BASE, "dwell: 2"), "YAML syntax"))
    t = edit("  current: 20\n", "  current: 20\n\tsource_size: 1\n")
    c.append(Case("tab_indent", t, line_of(t, "\tsource"), "YAML syntax"))
    t = edit("seed: 3", "seed: *nothing")
    c.append(Case("undefined_alias", t, line_of(t, "seed:"), "YAML syntax"))
    t = edit("seed: 3", "seed: 3\nseed: 4")
    c.append(Case("duplicate_key", t, line_of(t, "seed: 4"), "seed"))
    t = edit("seed: 3", "seed: 3\nsaemples: 4")
    c.append(Case("unknown_key", t, line_of(t, "saemples"), "saemples"))
    # types
    for old, new, key in [("energy: 200e3", "energy: [1, 2]", "microscope.energy"),
                          ("energy: 200e3", "energy: .nan", "microscope.energy"),
                          ("energy: 200e3", "energy: .inf", "microscope.energy"),
                          ("energy: 200e3", "energy: 1e999", "microscope.energy"),
                          ("energy: 200e3", "energy: ''", "microscope.energy"),
                          ("energy: 200e3", "energy: !!binary aGVsbG8=", "microscope.energy"),
                          ("convergence: 20", "convergence: {uniform: [1e300, -1e300]}", "microscope.convergence"),
                          ("convergence: 20", "convergence: {uniform: [1, 2], normal: [1, 2]}", "microscope.convergence"),
                          ("convergence: 20", "convergence: {choice: [a, 1]}", "microscope.convergence"),
                          ("convergence: 20", "convergence: {sweep: []}", "microscope.convergence"),
                          ("seed: 3", "seed: 1e300", "seed"),
                          ("seed: 3", "seed: -1", "seed"),
                          ("samples: 1", "samples: {sweep: [1, 2]}", "samples"),
                          ("name: malformed-base", "name: [a, b]", "name"),
                          ("method: multislice", "method: warp", "simulation.method"),
                          ("interstitials: [{element: O, count: 1, min_distance: 1.5}]",
                           "interstitials: {element: O}", "specimen.builder.interstitials"),
                          ("interstitials: [{element: O, count: 1, min_distance: 1.5}]",
                           "interstitials: [{element: Qq, count: 1}]", "specimen.builder.interstitials[0].element"),
                          ("jitter: {rms_A: 0.01}", "jitter: {rms_A: 0.01, wobble: 3}", "acquisition.jitter.wobble"),
                          ("type: defects", "type: teapot", "specimen.builder.type"),
                          ("  - {name: haadf, type: annular, inner: 70, outer: 160}",
                           "  - {name: 'ha adf', type: annular, inner: 70, outer: 160}", "detectors[0].name"),
                          ("  - {name: haadf, type: annular, inner: 70, outer: 160}", "  - 7", "detectors[0]")]:
        c.append(yaml_edit("type_" + key + "_" + str(len(c)), old, new, key))
    # whole-file shapes
    c.append(Case("empty_file", "", 0, "scenario"))
    c.append(Case("only_comment", "# nothing\n", 0, "scenario"))
    c.append(Case("a_list", "- 1\n- 2\n", 1, "scenario"))
    c.append(Case("a_scalar", "hello\n", 1, "scenario"))
    c.append(Case("binary_garbage", bytes(range(256)) * 4, 0, "", binary=True))
    c.append(Case("invalid_utf8", b"name: \xff\xfe\xfd\nseed: 1\n", 0, "", binary=True))
    t = "samples: 1\n" * 1 + "name: " + "x" * 1000000 + "\n"
    c.append(Case("very_long_name", t, 0, "specimen"))
    t = edit("samples: 1", "samples: 10000")
    t = edit("convergence: 20", "convergence: {sweep: [" + ", ".join(str(10 + i % 10) for i in range(5000)) + "]}", t)
    c.append(Case("huge_sweep_grid", t, line_of(t, "samples"), "samples"))
    return c


XYZ_OK = 'Lattice="3.905 0 0 0 3.905 0 0 0 3.905" Properties=species:S:1:pos:R:3'


def structure_cases():
    c = []

    def add(name, fname, text, line, word):
        c.append(Case(name, STRUCTURE_BASE.replace("STRUCTURE", fname), line, word, kind="structure",
                      structure=(fname, text)))

    # extended XYZ
    add("xyz_count_1e30", "a.xyz", "1e30\n" + XYZ_OK + "\nSr 0 0 0\n", 1, "atom count")
    add("xyz_count_negative", "b.xyz", "-1\n" + XYZ_OK + "\nSr 0 0 0\n", 1, "atom count")
    add("xyz_count_fraction", "c.xyz", "1.5\n" + XYZ_OK + "\nSr 0 0 0\n", 1, "atom count")
    add("xyz_count_overflow", "d.xyz", "18446744073709551617\n" + XYZ_OK + "\nSr 0 0 0\n", 1, "atom count")
    add("xyz_count_too_many", "e.xyz", "5\n" + XYZ_OK + "\nSr 0 0 0\n", 3, "end of file")
    add("xyz_count_word", "f.xyz", "many\n" + XYZ_OK + "\nSr 0 0 0\n", 1, "atom count")
    add("xyz_width_overflow", "g.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=species:S:1:pos:R:3:junk:R:3000000000\nSr 0 0 0 1\n", 2, "column count")
    add("xyz_width_int_wrap", "h.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=junk:R:4294967295:species:S:1:pos:R:3\nSr 0 0 0\n", 2, "column count")
    add("xyz_width_zero", "i.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=species:S:1:pos:R:0\nSr 0 0 0\n", 2, "column count")
    add("xyz_props_not_triples", "j.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=species:S\nSr 0 0 0\n", 2, "triples")
    add("xyz_no_species", "k.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=pos:R:3\n0 0 0\n", 2, "species")
    add("xyz_lattice_8", "l.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0"\nSr 0 0 0\n', 2, "9 numbers")
    add("xyz_lattice_nan", "m.xyz", '1\nLattice="nan 0 0 0 3.905 0 0 0 3.905"\nSr 0 0 0\n', 2, "Lattice")
    add("xyz_lattice_oblique", "n.xyz", '1\nLattice="3 0 0 1.5 2.6 0 0 0 5"\nSr 0 0 0\n', 2, "orthogonal")
    add("xyz_no_lattice", "o.xyz", "1\ncomment\nSr 0 0 0\n", 2, "Lattice")
    add("xyz_bad_element", "p.xyz", "1\n" + XYZ_OK + "\nXx 0 0 0\n", 3, "element")
    add("xyz_bad_coordinate", "q.xyz", "1\n" + XYZ_OK + "\nSr 0 inf 0\n", 3, "number")
    add("xyz_short_row", "r.xyz", "1\n" + XYZ_OK + "\nSr 0 0\n", 3, "columns")
    add("xyz_occupancy", "s.xyz", '1\nLattice="3.905 0 0 0 3.905 0 0 0 3.905" '
        "Properties=species:S:1:pos:R:3:occupancy:R:1\nSr 0 0 0 7\n", 3, "occupancy")
    add("xyz_unclosed_quote", "t.xyz", '1\nLattice="3.905 0 0\nSr 0 0 0\n', 2, "Lattice")
    add("xyz_empty", "u.xyz", "", 1, "atom count")
    # Prismatic XYZ
    add("prism_no_terminator", "v.xyz", "comment\n 4 4 4\n38 0 0 0 1 0.08\n", 3, "-1")
    add("prism_bad_z", "w.xyz", "comment\n 4 4 4\n1000 0 0 0 1 0.08\n-1\n", 3, "1..103")
    add("prism_negative_cell", "x.xyz", "comment\n -4 4 4\n38 0 0 0 1 0.08\n-1\n", 2, "cell")
    # POSCAR
    pos = "SrTiO3\n1.0\n 3.905 0 0\n 0 3.905 0\n 0 0 3.905\nSr Ti\nCOUNTS\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    for i, bad in enumerate(["1 1e30", "1 -1", "1 2.5", "1 nan", "1 99999999999999999999", "1 x", "1"]):
        add(f"poscar_counts_{i}", f"POSCAR_{i}", pos.replace("COUNTS", bad), 7, "atom count")
    add("poscar_scale_zero", "POSCAR_z", pos.replace("1.0", "0", 1).replace("COUNTS", "1 1"), 2, "scale")
    add("poscar_degenerate", "POSCAR_d", pos.replace(" 0 3.905 0\n", " 3.905 0 0\n").replace("COUNTS", "1 1"), 3,
        "degenerate")
    add("poscar_vasp4", "POSCAR_4", pos.replace("Sr Ti\n", "").replace("COUNTS", "1 1"), 6, "element symbols")
    add("poscar_no_mode", "POSCAR_m", pos.replace("Direct", "Upwards").replace("COUNTS", "1 1"), 8, "Direct")
    add("poscar_truncated", "POSCAR_t", "SrTiO3\n1.0\n 3.905 0 0\n", 3, "lattice vector")
    add("poscar_missing_atoms", "POSCAR_a", pos.replace("COUNTS", "1 5"), 10, "atom position")
    add("poscar_bad_element", "POSCAR_e", pos.replace("Sr Ti", "Sr Qq").replace("COUNTS", "1 1"), 6, "element")
    # CIF (through gemmi)
    cif = ("data_x\n_cell_length_a 3.905\n_cell_length_b 3.905\n_cell_length_c 3.905\n_cell_angle_alpha 90\n"
           "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P m -3 m'\nloop_\n"
           "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
           "Sr1 Sr 0 0 0\n")
    add("cif_garbage", "g.cif", "this is not ' a cif\n\x01\x02 loop_ loop_\n", 1, "")
    add("cif_no_cell", "n.cif", cif.replace("_cell_length_a 3.905\n", ""), 0, "_cell_length_a")
    add("cif_zero_cell", "z.cif", cif.replace("_cell_length_a 3.905", "_cell_length_a 0"), 0, "cell")
    add("cif_huge_cell", "h.cif", cif.replace("_cell_length_a 3.905", "_cell_length_a 1e300"), 2, "_cell_length_a")
    add("cif_bad_angle", "a.cif", cif.replace("_cell_angle_gamma 90", "_cell_angle_gamma 400"), 7, "_cell_angle_gamma")
    add("cif_bad_group", "s.cif", cif.replace("'P m -3 m'", "'Q q q'"), 8, "space group")
    add("cif_bad_element", "e.cif", cif.replace("Sr1 Sr", "Xx1 Xx"), 0, "element")
    add("cif_nan_position", "p.cif", cif.replace("Sr1 Sr 0 0 0", "Sr1 Sr nan 0 0"), 0, "")
    add("cif_empty", "empty.cif", "", 0, "")
    add("cif_unclosed_quote", "q.cif", cif.replace("'P m -3 m'", "'P m -3 m"), 0, "")
    return c


def hand_written_cases():
    # tests/data/malformed/*.yaml: each starts with "# expect: <line> <key or word>".
    d = os.path.join(SRC, "tests", "data", "malformed")
    out = []
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        text = open(os.path.join(d, f), encoding="utf-8").read()
        first = text.splitlines()[0].split()
        assert first[:2] == ["#", "expect:"], f
        out.append(Case("hand_" + f, text, int(first[2]), " ".join(first[3:])))
    return out


def spectrometer_cases():
    """EDS/EELS spectrometers (docs/scenario.md, "Spectrometers"): BASE with a valid EDS entry,
    each case breaking one of its keys."""
    dpc = "  - {name: dpc, type: segmented, rings: [5, 20], segments: 4}\n"
    eds = dpc + "  - {name: eds, type: eds, channel_width: 10, resolution: 130, elements: [Sr, Ti, O], maps: [Sr_Ka, Ti_Ka]}\n"
    base = edit(dpc, eds)
    c = []
    for old, new, key in [("channel_width: 10", "channel_width: 0", "detectors.eds.channel_width"),
                          ("channel_width: 10", "channel_width: 1e300", "detectors.eds.channel_width"),
                          ("channel_width: 10", "channel_width: 0.001", "detectors.eds.channel_width"),
                          ("resolution: 130", "resolution: 50", "detectors.eds"),
                          ("resolution: 130", "resolution: .nan", "detectors.eds.resolution"),
                          ("resolution: 130", "resolution: {uniform: [120, 140]}", "detectors.eds.resolution"),
                          ("elements: [Sr, Ti, O]", "elements: [Sr, Ti, Qq]", "detectors.eds.elements[2]"),
                          ("elements: [Sr, Ti, O]", "elements: [Sr, Sr]", "detectors.eds.elements[1]"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Zz]", "detectors.eds.maps[0]"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [SrKa]", "detectors.eds.maps[0]"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Fe_Ka]", "detectors.eds.maps[0]"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Ka, Ti_Ka], energy_range: [0, 5000]", "detectors.eds"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Ka, Ti_Ka], takeoff: 95", "detectors.eds.takeoff"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Ka, Ti_Ka], solid_angle: -1", "detectors.eds.solid_angle"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Ka, Ti_Ka], energy_range: [10, 5]", "detectors.eds.energy_range[1]"),
                          ("maps: [Sr_Ka, Ti_Ka]", "maps: [Sr_Ka, Ti_Ka], collection: 20", "detectors.eds.collection"),
                          ("type: eds", "type: eels", "detectors.eels.resolution")]:
        t = edit(old, new, base)
        needle = "name: eds"  # every error points at the spectrometer's own entry (one line)
        if new == "type: eels":
            t = t.replace("name: eds", "name: eels")
            needle = "name: eels"
        c.append(Case("spectrometer_" + str(len(c)), t, line_of(t, needle), key))
    return c


ALL = range_cases() + structural_cases() + structure_cases() + hand_written_cases() + spectrometer_cases()


def limit_resources():
    if not SANITIZED:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_cli(args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        p = subprocess.run([BIN] + args, capture_output=True, timeout=TIMEOUT_S, preexec_fn=limit_resources,
                           cwd=WORK, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{' '.join(args)}: no answer within {TIMEOUT_S} s (a hang)")
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write_case(case):
    d = os.path.join(WORK, case.name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "bad.yaml")
    with open(path, "wb") as f:
        f.write(case.text if case.binary else case.text.encode("utf-8"))
    if case.structure:
        fname, text = case.structure
        with open(os.path.join(d, fname), "w", encoding="utf-8") as f:
            f.write(text)
        return path, os.path.join(d, fname)
    return path, path


def check(case, args, named_file):
    rc, out, err = run_cli(args)
    what = f"{case.name}: stemtwin {' '.join(args)}"
    assert rc in (1, 2), f"{what}: exit code {rc} (want 1 or 2; negative = killed by a signal)\n{err[-2000:]}"
    assert "valid\n" not in out, f"{what}: reported valid"
    assert "AddressSanitizer" not in err and "runtime error" not in err, f"{what}: sanitizer report\n{err[-3000:]}"
    want = named_file + (f":{case.line}:" if case.line > 0 else ":")
    assert want in err, f"{what}: stderr does not name '{want}'\n{err[-2000:]}"
    assert case.key in err, f"{what}: stderr does not name '{case.key}'\n{err[-2000:]}"


def make_existing_dataset():
    """A small real dataset that malformed runs with --force must leave byte-for-byte alone."""
    path = os.path.join(WORK, "good.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(BASE.replace("acquisition:\n  noise: true\n", "acquisition:\n  noise: false\n"))
    h5 = os.path.join(WORK, "existing.h5")
    rc, out, err = run_cli(["run", path, "-o", h5])
    assert rc == 0, f"the base scenario must run: {err[-3000:]}"
    return h5


def test_enough_cases():
    assert len(ALL) >= 120, len(ALL)
    assert len({c.name for c in ALL}) == len(ALL), "case names must be unique"


def test_base_scenario_is_valid():
    # Otherwise every case would fail for the wrong reason.
    for text in (BASE, STRUCTURE_BASE.replace("STRUCTURE", os.path.join(SRC, "scenarios", "structures",
                                                                          "SrTiO3.cif"))):
        path = os.path.join(WORK, "base.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        for args in (["validate", path], ["run", "--dry-run", path]):
            rc, out, err = run_cli(args)
            assert rc == 0, f"{args}: {err[-3000:]}"


def test_validate_and_dry_run_refuse_every_case():
    failures = []
    for case in ALL:
        path, named = write_case(case)
        for args in (["validate", path], ["run", "--dry-run", path]):
            try:
                check(case, args, named)
            except AssertionError as e:
                failures.append(str(e))
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:20])


def test_forced_run_leaves_an_existing_dataset_alone():
    h5 = make_existing_dataset()
    before = hashlib.sha256(open(h5, "rb").read()).hexdigest()
    failures = []
    for case in ALL[::4]:  # every fourth case: each family is represented
        path, named = write_case(case)
        try:
            check(case, ["run", path, "-o", h5, "--force"], named)
        except AssertionError as e:
            failures.append(str(e))
        if hashlib.sha256(open(h5, "rb").read()).hexdigest() != before:
            failures.append(f"{case.name}: the existing dataset changed")
            break
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:20])


def test_docs_list_the_range_table():
    # docs/scenario.md "Ranges" copies the key table kKeyRanges (src/acquisition/ranges.cpp, one table with the
    # session's ranges): a key added to one and not the other fails here (the bounds are compared by eye: the
    # docs write 1e7, −2π, …).
    src = open(os.path.join(SRC, "src", "acquisition", "ranges.cpp"), encoding="utf-8").read()
    table = src[src.index("const KeyRange kKeyRanges[]"):src.index("// clang-format on")]
    rows = re.findall(r'^\s*\{"([^"]+)", (?:ranges::k\w+|(?:key|whole)\(.*\))\},(?:\s*//.*)?$', table, re.M)
    doc = open(os.path.join(SRC, "docs", "scenario.md"), encoding="utf-8").read()
    doc_keys = set(re.findall(r"^\| `([^`]+)`(?: \(entries\))? \|", doc[doc.index("## Ranges"):], re.M))
    src_keys = {path.rstrip("#") for path in rows}
    assert len(rows) > 100, len(rows)
    assert src_keys == doc_keys, f"only in the code: {src_keys - doc_keys}; only in the docs: {doc_keys - src_keys}"


def test_samples_on_the_command_line_are_bounded_too():
    # `run --samples` changes the count after parsing; the same limit applies.
    path = os.path.join(WORK, "override.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(BASE)
    rc, out, err = run_cli(["run", "--dry-run", "--samples", "100000000000", path])
    assert rc == 1, f"exit code {rc}: {err[-2000:]}"
    assert path + ": samples: samples × sweep grid = 1e+11 is more than 10000000 samples" in err, err[-2000:]


if __name__ == "__main__":
    sys.exit(run_tests(dict(globals())))
