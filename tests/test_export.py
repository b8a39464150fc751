#!/usr/bin/python3
"""Datasets and their exports open calibrated in the field's readers (issue #17), checked with
what Debian ships: h5py (dimension scales; EMD 1.0 and NSID against their specifications, as
emdfile and pyNSID check them), HyperSpy 1.7 (python3-hyperspy) for .hspy, and zarr 2.x
(python3-zarr) for zarr. Run by CTest with Debian's /usr/bin/python3 and STEMTWIN_BIN.
Prints 'N passed, M failed'; exits non-zero on failure. With --print it also prints the
HyperSpy axes managers of an image stack, a 4D set and a spectrum image.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from py_runner import run_tests  # tests/py_runner.py (this directory is on sys.path)

SOURCE = os.environ.get("STEMTWIN_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STEMTWIN_BIN", os.path.join(SOURCE, "build", "stemtwin"))
TMP = tempfile.mkdtemp(prefix="stemtwin_export_")
DATA = os.path.join(TMP, "tiny.h5")
SPECTRA = os.path.join(TMP, "spectra.h5")
EDS = os.path.join(TMP, "eds.h5")   # a real run with an EDS spectrometer (tests/data/export_eds.yaml)
STEP = 0.65          # Å, tests/data/export_tiny.yaml
# The EDS spectrometer's settings in tests/data/export_eds.yaml, as the dataset and the EMD,
# NSID and zarr exports name them (spectrometer_settings, dataset.hpp).
SETTINGS = {"resolution_mn_ka_eV": 125.0, "solid_angle_sr": 0.9, "takeoff_deg": 22.0}
ENERGY = 200e3       # eV
PRINT = "--print" in sys.argv


def stemtwin(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    if ok:
        assert p.returncode == 0, f"stemtwin {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def wavelength(e):  # relativistic, Å (as physics/constants)
    return 12.2642584 / np.sqrt(e * (1 + 0.97847573e-6 * e))


def setup():
    stemtwin("run", os.path.join(SOURCE, "tests", "data", "export_tiny.yaml"), "-o", DATA, "--force", "--threads", "1")
    stemtwin("run", os.path.join(SOURCE, "tests", "data", "export_eds.yaml"), "-o", EDS, "--force", "--threads", "1")
    # Spectroscopy does not exist yet: a copy with synthetic EDS and EELS spectrum images laid
    # out as it will be (/spectra/<det> [N, ny, nx, channels], /axes/<det>/energy_eV).
    with h5py.File(DATA, "r") as f, h5py.File(SPECTRA, "w") as g:
        for k in f:
            f.copy(k, g)
        for k, v in f.attrs.items():
            g.attrs[k] = v
        n = int(f.attrs["complete_samples"])
        ny, nx = f["images/haadf"].shape[1:]
    with h5py.File(SPECTRA, "a") as g:
        g["axes/eds/energy_eV"] = 100.0 + 10.0 * np.arange(200)
        d = g.create_dataset("spectra/eds", data=np.random.default_rng(1).random((n, ny, nx, 200), dtype="f4"))
        d.attrs["technique"] = "EDS"
        g["axes/eels/energy_eV"] = 400.0 + 0.5 * np.arange(64)
        d = g.create_dataset("spectra/eels", data=np.random.default_rng(2).random((n, ny, nx, 64), dtype="f4"))
        d.attrs["technique"] = "EELS"


def test_h5py_sees_dimension_scales_units_and_value_names():
    with h5py.File(DATA, "r") as f:
        n = int(f.attrs["complete_samples"])
        im = f["images/haadf"]
        assert [d.label for d in im.dims] == ["sample", "y", "x"]
        assert im.attrs["long_name"] and "units" in im.attrs
        assert list(im.dims[0][0][:n]) == list(f["params/sample_index"][:n])
        y = im.dims[1][0]
        assert y.attrs["units"] == "Å" and np.allclose(y[:], STEP * np.arange(im.shape[1]))
        cam = f["diffraction/cam"]
        assert [d.label for d in cam.dims] == ["sample", "y", "x", "ky", "kx"]
        kx = cam.dims[4]
        assert len(kx) == 2 and kx[0].attrs["units"] == "mrad" and kx[1].attrs["units"] == "1/Å"
        step = cam.attrs["angular_sampling"][0]
        assert np.isclose(kx[0][1] - kx[0][0], step)
        assert np.isclose(kx[1][1] - kx[1][0], step * 1e-3 / wavelength(ENERGY), rtol=1e-5)
        assert abs(kx[0][:].mean()) < 1e-9  # zero angle in the middle
        species = list(f["labels/masks/species"].attrs["values"])
        assert species[0] == "background" and species[1:] == list(f["labels/columns"].attrs["species_names"])
        assert "Sr" in species and list(f["labels/masks/columns"].attrs["values"]) == ["background", "column"]


def hspy_load(path):
    import hyperspy.api as hs
    out = hs.load(path)
    return {s.metadata.General.title: s for s in (out if isinstance(out, list) else [out])}


def axes(s):
    return [(a.name, a.units, a.size, round(a.scale, 9), a.navigate) for a in s.axes_manager._axes]


def test_hyperspy_loads_image_stacks_and_4d():
    out = os.path.join(TMP, "tiny.hspy")
    stemtwin("export", DATA, "--to", "hspy", "-o", out, "--force")
    s = hspy_load(out)
    with h5py.File(DATA, "r") as f:
        n, ny, nx = f["images/haadf"].shape
        haadf = f["images/haadf"][:]
        ky, kx = f["diffraction/cam"].shape[3:]
        step = f["diffraction/cam"].attrs["angular_sampling"]
    assert set(s) == {"haadf", "bf", "cam", "mask_columns", "mask_species"}, set(s)
    im = s["haadf"]
    assert type(im).__name__ == "Signal2D" and im.axes_manager.signal_dimension == 2
    assert axes(im) == [("sample", "<undefined>", n, 1.0, True), ("y", "Å", ny, STEP, False), ("x", "Å", nx, STEP, False)]
    assert np.array_equal(im.data, haadf)
    assert im.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    assert im.metadata.Acquisition_instrument.TEM.convergence_angle == 20.0
    assert np.isclose(im.metadata.Acquisition_instrument.TEM.beam_current, 0.02)      # nA
    assert np.isclose(im.metadata.Acquisition_instrument.TEM.dwell_time, 2e-6)       # s
    assert im.metadata.Acquisition_instrument.TEM.Detector.haadf.inner_angle == 70.0
    cam = s["cam"]
    assert cam.metadata.Signal.signal_type == "electron_diffraction"
    assert cam.axes_manager.navigation_dimension == 3 and cam.axes_manager.signal_dimension == 2
    assert axes(cam)[3:] == [("ky", "mrad", ky, round(step[1], 9), False), ("kx", "mrad", kx, round(step[0], 9), False)]
    assert np.isclose(cam.axes_manager["kx"].offset, -0.5 * (kx - 1) * step[0])
    assert cam.data.shape == (n, ny, nx, ky, kx)
    if PRINT:
        print("--- HyperSpy: image stack (haadf)\n", im, "\n", im.axes_manager, sep="")
        print("--- HyperSpy: 4D (cam)\n", cam, "\n", cam.axes_manager, sep="")


def test_hyperspy_loads_spectrum_images_with_energy_axes():
    out = os.path.join(TMP, "spectra.hspy")
    stemtwin("export", SPECTRA, "--to", "hspy", "-o", out, "--force", "--channel", "eds", "--channel", "eels")
    s = hspy_load(out)
    eds, eels = s["eds"], s["eels"]
    assert type(eds).__name__ == "EDSTEMSpectrum" and eds.metadata.Signal.signal_type == "EDS_TEM"
    assert type(eels).__name__ == "EELSSpectrum" and eels.metadata.Signal.signal_type == "EELS"
    e = eds.axes_manager.signal_axes[0]
    assert (e.name, e.units, e.size) == ("energy", "keV", 200) and np.isclose(e.offset, 0.1) and np.isclose(e.scale, 0.01)
    e = eels.axes_manager.signal_axes[0]
    assert (e.name, e.units, e.size) == ("energy", "eV", 64) and np.isclose(e.offset, 400) and np.isclose(e.scale, 0.5)
    assert [a.name for a in eels.axes_manager.navigation_axes] == ["x", "y", "sample"]
    assert eels.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    with h5py.File(SPECTRA, "r") as f:
        assert np.array_equal(eels.data, f["spectra/eels"][:])
    if PRINT:
        print("--- HyperSpy: spectrum image (eels)\n", eels, "\n", eels.axes_manager, sep="")


def test_real_eds_run_exports_spectra_and_maps_to_hyperspy():
    out = os.path.join(TMP, "eds.hspy")
    stemtwin("export", EDS, "--to", "hspy", "-o", out, "--force")
    s = hspy_load(out)
    # Clean maps, like clean images, only when named.
    assert set(s) == {"haadf", "eds", "eds_Sr_Ka", "eds_Ti_Ka"}, set(s)
    with h5py.File(EDS, "r") as f:
        n, ny, nx, channels = f["spectra/eds"].shape
        spectra = f["spectra/eds"][:]
        sr = f["maps/eds/Sr_Ka"][:]
        sr_clean = f["clean/maps/eds/Sr_Ka"][:]
    eds = s["eds"]
    assert type(eds).__name__ == "EDSTEMSpectrum" and np.array_equal(eds.data, spectra)
    e = eds.axes_manager.signal_axes[0]
    # channel centres 10, 30, … eV (energy_range [0, 20480], 20 eV channels), in keV for HyperSpy
    assert channels == 1024 and (e.name, e.units, e.size) == ("energy", "keV", channels)
    assert np.isclose(e.offset, 0.010) and np.isclose(e.scale, 0.020)
    assert [a.name for a in eds.axes_manager.navigation_axes] == ["x", "y", "sample"]
    md = eds.metadata
    assert list(md.Sample.xray_lines) == ["Sr_Ka", "Ti_Ka"] and list(md.Sample.elements) == ["Sr", "Ti"]
    assert md.Acquisition_instrument.TEM.beam_energy == 200.0
    assert md.Acquisition_instrument.TEM.convergence_angle == 20.0
    det = md.Acquisition_instrument.TEM.Detector.EDS
    assert np.isclose(det.live_time, 0.1)
    # The spectrometer's settings (tests/data/export_eds.yaml), where HyperSpy looks for them;
    # without them it falls back to its preferences (130 eV, 35°, 0°).
    assert det.energy_resolution_MnKa == 125.0 and det.elevation_angle == 22.0 and det.solid_angle == 0.9, det
    # HyperSpy's own tools use them: its integration window is windows_width × its FWHM at
    # the line, scaled from energy_resolution_MnKa (Fiori & Newbury), 125 eV here, not 130.
    from hyperspy.misc.eds.utils import get_FWHM_at_Energy
    from hyperspy.misc.elements import elements_db
    e_sr = elements_db["Sr"]["Atomic_properties"]["Xray_lines"]["Ka"]["energy (keV)"]
    (lo, hi), = eds.estimate_integration_windows(windows_width=1.0, xray_lines=["Sr_Ka"])
    assert np.isclose(hi - lo, get_FWHM_at_Energy(125.0, e_sr), rtol=1e-9)
    assert not np.isclose(hi - lo, get_FWHM_at_Energy(130.0, e_sr), rtol=1e-3)
    # HyperSpy's own EDS tools run on it: line intensities of the metadata's lines, one map each.
    lines = eds.get_lines_intensity()
    assert [l.metadata.Sample.xray_lines[0] for l in lines] == ["Sr_Ka", "Ti_Ka"]
    assert lines[0].data.shape == (n, ny, nx) and lines[0].data.sum() > 0
    m = s["eds_Sr_Ka"]
    assert type(m).__name__ == "Signal2D" and np.array_equal(m.data, sr)
    assert axes(m)[1:] == [("y", "Å", ny, round(scan_step(EDS), 9), False), ("x", "Å", nx, round(scan_step(EDS), 9), False)]
    assert axes(m)[0][0] == "sample" and axes(m)[0][4]
    # The clean map by its path.
    out = os.path.join(TMP, "eds_clean.hspy")
    stemtwin("export", EDS, "--to", "hspy", "-o", out, "--force", "--channel", "clean/maps/eds/Sr_Ka")
    c = hspy_load(out)
    assert set(c) == {"eds_Sr_Ka_clean"} and np.array_equal(c["eds_Sr_Ka_clean"].data, sr_clean)
    if PRINT:
        print("--- HyperSpy: EDS spectrum image of a run\n", eds, "\n", eds.axes_manager, "\n", md, sep="")
        print("--- HyperSpy: Sr Ka map\n", m, "\n", m.axes_manager, sep="")


def test_real_eels_run_exports_edge_maps_with_elements():
    with open(os.path.join(SOURCE, "tests", "data", "export_eds.yaml")) as f:
        text = f.read()
    eds = text[text.index("  - name: eds"):text.index("simulation:")]
    eels = """  - name: eels
    type: eels
    energy_range: [300, 700]
    channel_width: 1
    collection: 50
    low_loss: false
    window: {pre_edge: 40, gap: 5, signal: 40}
    maps: [O_K, Ti_L3]
"""
    yaml = os.path.join(TMP, "export_eels.yaml")
    with open(yaml, "w") as f:
        f.write(text.replace(eds, eels).replace("file: eds.h5", "file: eels.h5"))
    data, out = os.path.join(TMP, "eels.h5"), os.path.join(TMP, "eels.hspy")
    stemtwin("run", yaml, "-o", data, "--force", "--threads", "1")
    stemtwin("export", data, "--to", "hspy", "-o", out, "--force")
    s = hspy_load(out)
    assert set(s) == {"haadf", "eels", "eels_O_K", "eels_Ti_L3"}, set(s)
    e = s["eels"]
    assert type(e).__name__ == "EELSSpectrum", type(e).__name__
    # HyperSpy's EELSSpectrum keeps its elements in a Python set and lists them back in hash
    # order (PYTHONHASHSEED), so the order it shows is not the file's (sorted) order.
    assert sorted(e.metadata.Sample.elements) == ["O", "Ti"], e.metadata.Sample
    assert "xray_lines" not in e.metadata.Sample
    tem = e.metadata.Acquisition_instrument.TEM  # the scenario's beam and collection angle
    assert tem.beam_energy == 200.0 and tem.convergence_angle == 20.0 and tem.Detector.EELS.collection_angle == 50.0
    assert "EDS" not in tem.Detector
    a = e.axes_manager.signal_axes[0]
    assert (a.units, a.size) == ("eV", 400) and np.isclose(a.offset, 300.5) and np.isclose(a.scale, 1.0)
    with h5py.File(data, "r") as f:
        assert np.array_equal(s["eels_O_K"].data, f["maps/eels/O_K"][:], equal_nan=True)


def scan_step(path):
    """The scan step of a dataset (root attribute pixel_size_A, x)."""
    with h5py.File(path, "r") as f:
        return float(f.attrs["pixel_size_A"][0])


def test_real_eds_run_exports_maps_to_emd_nsid_and_zarr():
    import zarr
    with h5py.File(EDS, "r") as f:
        spectra = f["spectra/eds"][:]
        ti = f["maps/eds/Ti_Ka"][:]
    out = os.path.join(TMP, "eds.emd")
    stemtwin("export", EDS, "--to", "emd", "-o", out, "--force")
    with h5py.File(out, "r") as f:
        root = f[[k for k in f if f[k].attrs.get("emd_group_type") == "root"][0]]
        assert np.array_equal(root["eds_Ti_Ka"]["data"][:], ti)
        assert [root["eds_Ti_Ka"][f"dim{i}"].attrs["name"] for i in range(3)] == ["sample", "y", "x"]
        assert np.array_equal(root["eds"]["data"][:], spectra)
        assert root["eds"]["dim3"].attrs["units"] == "eV"
        sp = root["eds/metadatabundle/spectrometer"]  # the node's own metadata, as emdfile writes it
        assert sp.attrs["emd_group_type"] == "metadata"
        assert {k: sp[k][()] for k in sp} == {"technique": b"EDS", **SETTINGS}, {k: sp[k][()] for k in sp}
    out = os.path.join(TMP, "eds_nsid.h5")
    stemtwin("export", EDS, "--to", "nsid", "-o", out, "--force", "--sample", "1")
    with h5py.File(out, "r") as f:
        chans = f["Measurement_000"]
        found = {}
        for c in chans:
            for k, d in chans[c].items():
                if isinstance(d, h5py.Dataset) and "main_data_name" in d.attrs:
                    nsid_is_main(d)
                    found[k] = d
        assert set(found) == {"haadf", "eds", "eds_Sr_Ka", "eds_Ti_Ka"}, set(found)
        assert found["eds_Ti_Ka"].attrs["data_type"] == "IMAGE" and np.array_equal(found["eds_Ti_Ka"][:], ti[1])
        assert found["eds"].attrs["data_type"] == "SPECTRAL_IMAGE" and np.array_equal(found["eds"][:], spectra[1])
        md = found["eds"].parent["metadata"].attrs
        assert {k: md[k] for k in SETTINGS} == SETTINGS and md["convergence_angle_mrad"] == 20.0
        assert "resolution_mn_ka_eV" not in found["eds_Ti_Ka"].parent["metadata"].attrs  # maps are images
    out = os.path.join(TMP, "eds.zarr")
    stemtwin("export", EDS, "--to", "zarr", "-o", out, "--force")
    z = zarr.open(out, mode="r")
    assert np.array_equal(z["eds_Ti_Ka"][:], ti) and np.array_equal(z["eds"][:], spectra)
    assert z["eds_Ti_Ka"].attrs["_ARRAY_DIMENSIONS"] == ["sample", "y", "x"]
    assert z["eds"].attrs["axes"][3]["units"] == "eV"
    assert z["eds"].attrs["spectrometer"] == {"technique": "EDS", **SETTINGS}
    with h5py.File(EDS, "r") as f:  # the dataset itself: attributes of its spectrum image
        assert {k: f["spectra/eds"].attrs[k] for k in SETTINGS} == SETTINGS
        assert {k: f["clean/spectra/eds"].attrs[k] for k in SETTINGS} == SETTINGS


def test_emd_follows_the_emd_1_0_layout_py4dstem_reads():
    out = os.path.join(TMP, "tiny.emd")
    stemtwin("export", DATA, "--to", "emd", "-o", out, "--force")
    with h5py.File(out, "r") as f, h5py.File(DATA, "r") as src:
        # emdfile._is_EMD_file
        assert f.attrs["emd_group_type"] == "file" and f.attrs["version_major"] == 1 and f.attrs["version_minor"] == 0
        roots = [k for k in f if f[k].attrs.get("emd_group_type") == "root"]
        assert roots == ["export-tiny"], roots
        root = f[roots[0]]
        cal = root["metadatabundle/calibration"]
        assert cal.attrs["emd_group_type"] == "metadata" and cal.attrs["python_class"] == "Calibration"
        assert np.isclose(cal["R_pixel_size"][()], STEP) and cal["R_pixel_units"][()].decode() == "A"
        q = src["diffraction/cam"].attrs["angular_sampling"][0] * 1e-3 / wavelength(ENERGY)
        assert np.isclose(cal["Q_pixel_size"][()], q, rtol=1e-5) and cal["Q_pixel_units"][()].decode() == "A^-1"
        for k in cal:
            assert cal[k].attrs["type"] in ("number", "string")
        img = root["haadf"]
        assert img.attrs["emd_group_type"] == "array" and img.attrs["python_class"] == "Array"
        assert np.array_equal(img["data"][:], src["images/haadf"][:])
        assert [img[f"dim{i}"].attrs["name"] for i in range(3)] == ["sample", "y", "x"]
        assert img["dim1"].attrs["units"] == "A" and np.allclose(img["dim1"][:], [0, STEP])
        cubes = sorted(k for k in root if root[k].attrs.get("python_class") == "DataCube")
        assert cubes == [f"cam_sample{i}" for i in range(4)], cubes
        c = root["cam_sample2"]
        assert c["data"].shape == src["diffraction/cam"].shape[1:]
        assert np.array_equal(c["data"][:], src["diffraction/cam"][2])
        assert [c[f"dim{i}"].attrs["name"] for i in range(4)] == ["Rx", "Ry", "Qx", "Qy"]
        assert [c[f"dim{i}"].attrs["units"] for i in range(4)] == ["A", "A", "A^-1", "A^-1"]
        assert np.isclose(c["dim3"][1] - c["dim3"][0], q, rtol=1e-5)


def nsid_is_main(d):
    """pyNSID.io.hdf_utils.check_if_main, restated."""
    for k in ("quantity", "units", "main_data_name", "pyNSID_version", "data_type", "modality", "source"):
        assert isinstance(d.attrs.get(k), str), k
    assert sum(1 for dim in d.dims if len(dim.values()) > 0) == d.ndim
    for i, dim in enumerate(d.dims):
        s = d.parent[dim.label]
        assert isinstance(s, h5py.Dataset) and s.ndim == 1 and s.shape[0] == d.shape[i], dim.label
        for k in ("name", "quantity", "units", "dimension_type"):
            assert isinstance(s.attrs.get(k), str), (dim.label, k)


def test_nsid_is_what_pynsid_and_dtmicroscope_register():
    out = os.path.join(TMP, "tiny_nsid.h5")
    stemtwin("export", DATA, "--to", "nsid", "-o", out, "--force", "--sample", "1")
    with h5py.File(out, "r") as f, h5py.File(DATA, "r") as src:
        chans = f["Measurement_000"]
        assert list(chans) == ["Channel_000", "Channel_001", "Channel_002"]
        haadf = chans["Channel_000/haadf"]
        nsid_is_main(haadf)
        assert haadf.attrs["data_type"] == "IMAGE" and haadf.ndim == 2  # DTMicroscope's scans
        assert np.array_equal(haadf[:], src["images/haadf"][1])
        assert [d.label for d in haadf.dims] == ["y", "x"]
        x = chans["Channel_000/x"]
        assert x.attrs["units"] == "Å" and x.attrs["dimension_type"] == "SPATIAL" and np.isclose(x[1] - x[0], STEP)
        cam = chans["Channel_002/cam"]
        nsid_is_main(cam)
        assert cam.attrs["data_type"] == "IMAGE_4D"
        kx = chans["Channel_002/kx"]
        assert kx.attrs["dimension_type"] == "RECIPROCAL" and kx.attrs["units"] == "1/Å"
        assert chans["Channel_000/metadata"].attrs["acceleration_voltage_V"] == ENERGY
    out = os.path.join(TMP, "spectra_nsid.h5")
    stemtwin("export", SPECTRA, "--to", "nsid", "-o", out, "--force", "--channel", "haadf", "--channel", "eels")
    with h5py.File(out, "r") as f:
        eels = f["Measurement_000/Channel_001/eels"]
        nsid_is_main(eels)
        assert eels.attrs["data_type"] == "SPECTRAL_IMAGE"  # DTMicroscope's point data
        e = f["Measurement_000/Channel_001/energy"]
        assert e.attrs["dimension_type"] == "SPECTRAL" and e.attrs["units"] == "eV" and e[0] == 400.0


def test_zarr_store_opens_with_python3_zarr():
    import zarr
    out = os.path.join(TMP, "tiny.zarr")
    stemtwin("export", DATA, "--to", "zarr", "-o", out, "--force")
    z = zarr.open(out, mode="r")
    with h5py.File(DATA, "r") as src:
        assert np.array_equal(z["haadf"][:], src["images/haadf"][:])
        assert np.array_equal(z["cam"][:], src["diffraction/cam"][:])
        assert np.array_equal(z["mask_species"][:], src["labels/masks/species"][:])
    a = z["haadf"].attrs
    assert a["_ARRAY_DIMENSIONS"] == ["sample", "y", "x"]
    assert a["axes"][2]["units"] == "Å" and np.isclose(a["axes"][2]["scale"], STEP)
    assert z["cam"].attrs["axes"][4]["units"] == "mrad"


def test_errors_name_the_file_and_what_is_wrong():
    out = os.path.join(TMP, "tiny.hspy")
    p = stemtwin("export", DATA, "--to", "hspy", "-o", out, ok=False)
    assert p.returncode == 1 and out in p.stderr and "--force" in p.stderr, p.stderr
    p = stemtwin("export", DATA, "--to", "hspy", "-o", out, "--force", "--channel", "nope", ok=False)
    assert p.returncode == 1 and DATA in p.stderr and "nope" in p.stderr and "images/haadf" in p.stderr, p.stderr
    p = stemtwin("export", DATA, "--to", "tiff", "-o", out, ok=False)
    assert p.returncode == 1 and "hspy, emd, nsid or zarr" in p.stderr, p.stderr
    with h5py.File(SPECTRA, "r") as f, h5py.File(os.path.join(TMP, "broken.h5"), "w") as g:
        for k in f:
            f.copy(k, g)
        for k, v in f.attrs.items():
            g.attrs[k] = v
        del g["axes/eds/energy_eV"]
    p = stemtwin("export", os.path.join(TMP, "broken.h5"), "--to", "hspy", "-o", os.path.join(TMP, "b.hspy"), ok=False)
    assert p.returncode == 1 and "broken.h5" in p.stderr and "/axes/eds/energy_eV" in p.stderr, p.stderr
    # A misshapen element map is named before anything is written.
    broken = os.path.join(TMP, "broken_map.h5")
    with h5py.File(EDS, "r") as f, h5py.File(broken, "w") as g:
        for k in f:
            f.copy(k, g)
        for k, v in f.attrs.items():
            g.attrs[k] = v
        del g["maps/eds/Ti_Ka"]
        g["maps/eds/Ti_Ka"] = np.zeros((2, 3), dtype="f4")
    out = os.path.join(TMP, "bm.hspy")
    p = stemtwin("export", broken, "--to", "hspy", "-o", out, ok=False)
    assert p.returncode == 1 and "broken_map.h5" in p.stderr and "maps/eds/Ti_Ka" in p.stderr, p.stderr
    assert not os.path.exists(out)


def test_info_prints_occurring_species_and_calibrations():
    out = stemtwin("info", DATA).stdout
    if PRINT:
        print("--- stemtwin info\n" + out)
    assert "species 8=O" in out and "38=Sr" in out and "He" not in out, out
    assert "calibrations" in out and "0.65 Å" in out and "1/Å" in out, out


def main():
    setup()
    return run_tests(globals())


if __name__ == "__main__":
    sys.exit(main())
