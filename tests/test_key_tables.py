"""The typed key tables (src/scenario/key_tables.cpp) against the docs and the range table:
docs/scenario.md's key list of a section names exactly the table's keys, and every numeric key
has a row in the range table (src/acquisition/ranges.cpp) while no range row names a key the
table lacks. A key added to one place and not the others fails here."""
import os
import re
import sys

from py_runner import run_tests  # tests/py_runner.py (this directory is on sys.path)

SOURCE = os.environ.get("STEMTWIN_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path):
    with open(os.path.join(SOURCE, *path), encoding="utf-8") as f:
        return f.read()


def table_rows(name):
    src = read("src", "scenario", "key_tables.cpp")
    body = src[src.index(f" {name}[] = {{"):]  # constexpr KeyRow<Target> name[] = {
    body = body[:body.index("\n};")]
    rows = re.findall(r'^\s*\{\{"([^"]+)", T::(\w+),', body, re.M)
    assert rows, name
    return dict(rows)


def doc_keys(section):
    """Key paths of the docs' table under "## `section`": `a`, `m: {x, y: [..], z: {u, v}}`."""
    doc = read("docs", "scenario.md")
    part = doc[doc.index(f"## `{section}`"):]
    part = part[:part.index("\n## ", 3)]
    out = set()

    def parse(text, prefix):
        i = 0
        while i < len(text):
            m = re.compile(r"\s*(\w+)").match(text, i)
            if not m:
                break
            key, i = prefix + m.group(1), m.end()
            out.add(key)
            if text.startswith(": {", i) or text.startswith(":{", i):
                start = text.index("{", i)
                depth, j = 0, start
                while True:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    if depth == 0:
                        break
                    j += 1
                parse(text[start + 1:j], key + ".")
                i = j + 1
            elif text.startswith(": [", i):
                i = text.index("]", i) + 1
            i = text.find(",", i)
            if i < 0:
                break
            i += 1

    for cell in re.findall(r"^\| `([^`]+)` \|", part, re.M):
        parse(cell, "")
    return out


def range_paths():
    src = read("src", "acquisition", "ranges.cpp")
    table = src[src.index("const KeyRange kKeyRanges[]"):src.index("// clang-format on")]
    return re.findall(r'^\s*\{"([^"]+)", ', table, re.M)


def matches(pattern, path):
    rx = re.escape(pattern.rstrip("#")).replace(r"\*", r"[^.]+").replace(r"\[\]", "")
    return re.fullmatch(rx, path) is not None


def check_section(section, name):
    rows = table_rows(name)
    docs = doc_keys(section)
    keys = set(rows)
    assert keys == docs, f"only in the table: {sorted(keys - docs)}; only in the docs: {sorted(docs - keys)}"
    ranges = [p for p in range_paths() if p.startswith(section + ".")]
    numeric = {k for k, t in rows.items() if t in ("Number", "Pair", "Numbers")}
    for k in sorted(numeric):
        assert any(matches(p, f"{section}.{k}") for p in ranges), f"{section}.{k} has no range row"
    for p in ranges:
        assert any(matches(p, f"{section}.{k}") for k in numeric), f"range row {p} names no numeric key of the table"


def test_acquisition_keys_equal_the_docs_and_the_ranges():
    check_section("acquisition", "kAcquisitionKeys")


def doc_builder_keys(heading):
    """Key paths of the builder table that follows the paragraph starting with `heading`."""
    doc = read("docs", "scenario.md")
    part = doc[doc.index("## `specimen`"):doc.index("## `microscope`")]
    part = part[part.index("\n" + heading):]
    table = re.search(r"((?:^\|.*\n)+)", part, re.M).group(1)
    out = set()
    for cell in re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \|", table, re.M):
        for item in re.findall(r"`([^`]+)`", cell):
            m = re.match(r"(\w+)(?:: \[?\{([^}]*)\}\]?)?$", item)
            assert m, item
            out.add(m.group(1))
            if m.group(2):
                out |= {m.group(1) + "." + k.strip() for k in m.group(2).split(",") if k.strip() != "…"}
    return out


def test_builder_keys_equal_the_docs():
    for heading, name in [("`perovskite`", "kPerovskiteKeys"), ("Modifiers", "kBuilderModifierKeys"),
                          ("`nanoparticle`", "kNanoparticleKeys")]:
        keys, docs = set(table_rows(name)), doc_builder_keys(heading)
        assert keys == docs, f"{name}: only in the table: {sorted(keys - docs)}; only in the docs: {sorted(docs - keys)}"
    # film: its own keys (substrate and film hold perovskite keys, listed with the perovskite)
    keys, docs = set(table_rows("kFilmKeys")), {k for k in doc_builder_keys("`film`") if "." not in k}
    assert keys == docs, f"film: only in the table: {sorted(keys - docs)}; only in the docs: {sorted(docs - keys)}"
    # world: the World's keys and a dataset window's (x, y, size) share one docs table
    keys, docs = set(table_rows("kWorldKeys")) | set(table_rows("kWorldWindowKeys")), doc_builder_keys("`world`")
    assert keys == docs, f"world: only in the table: {sorted(keys - docs)}; only in the docs: {sorted(docs - keys)}"


def test_builder_numbers_have_ranges():
    ranges = [p for p in range_paths() if p.startswith("specimen.builder.")]
    for name in ("kPerovskiteKeys", "kBuilderModifierKeys", "kNanoparticleKeys", "kFilmKeys"):
        for k, t in table_rows(name).items():
            if t not in ("Number", "Numbers"):
                continue
            path = "specimen.builder." + k  # list entries: the rows' "[]" is matched away
            assert any(matches(p, path) for p in ranges), f"{name}: {path} has no range row"


def test_python_perovskite_keywords_are_the_table():
    # Python's stemtwin.perovskite takes the scenario builder's perovskite keys (plus O, repeats):
    # each is accepted, and the message for an unknown one lists them.
    try:
        import stemtwin
    except ImportError:
        print("stemtwin module not built: skipped")
        return
    values = {"a": 3.9, "A": "Sr", "B": "Ti", "arrangement": "random", "layer_axis": 1, "correlation_length": 8.0,
              "vacancy_order": False, "vacancy_axis": 1}
    assert set(values) == set(table_rows("kPerovskiteKeys")), "a perovskite key without a test value"
    for k, v in values.items():
        stemtwin.perovskite(repeats=(1, 1, 1), **{k: v})
    try:
        stemtwin.perovskite(colour="red")
    except ValueError as e:
        assert all(k in str(e) for k in values), e
    else:
        raise AssertionError("an unknown keyword was accepted")


def test_python_world_keywords_are_the_table():
    # Python's stemtwin.World takes the scenario builder's world keys (not the window's x, y, size):
    # each is accepted and lands in the World, and the message for an unknown one lists them.
    try:
        import stemtwin
    except ImportError:
        print("stemtwin module not built: skipped")
        return
    keys = table_rows("kWorldKeys")
    body = read("src", "scenario", "key_tables.cpp")
    body = body[body.index(" kWorldKeys[] = {"):]
    defaults = dict(re.findall(r'^\s*\{\{"([^"]+)", T::\w+, "[^"]*", "([^"]*)"', body[:body.index("\n};")], re.M))
    assert set(defaults) == set(keys)
    for k in keys:  # each at its table default (a valid world): accepted
        stemtwin.World(0, **{k: float(defaults[k])})
    assert stemtwin.World(0, thickness=140).extent[2] == 140.0
    for bad in ("size", "thickness_A"):
        try:
            stemtwin.World(0, **{bad: 1.0})
        except KeyError as e:
            assert bad in str(e) and all(k in str(e) for k in keys), e
        else:
            raise AssertionError(f"World accepted {bad}")


def test_the_doc_parser_reads_nested_maps():
    # The helper above must see through nesting, or the comparison could not fail.
    keys = doc_keys("acquisition")
    assert {"annular.afterglow.time_constant_us", "drift.velocity_A_per_s", "camera.mode", "noise"} <= keys, keys


def main():
    return run_tests(globals())


if __name__ == "__main__":
    sys.exit(main())
