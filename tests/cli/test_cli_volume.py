"""`nstyle volume`: one-line errors with exit status 2 for bad inputs, refused before any
optimisation step and with nothing written or clobbered, and tiny successful runs on
real scans.

Inputs: nibabel's bundled anatomical.nii (33x41x25 int16 MR) and example4d.nii.gz
(128x96x24, two volumes), pydicom's CT_small.dcm (one 128x128 CT slice) and rtdose.dcm
(a 15x10x10 multi-frame RT dose grid).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

import nstyle.kinds.volume
import nstyle.pipeline
from nstyle.modalities.volume import PREVIEW_CELL, PREVIEW_LABEL_H
from nstyle.outputs.guard import OUTPUT_MARKER
from tests.cli.test_cli import OLD_BYTES, assert_one_error_line, run, snapshot_folder

NIB_DATA = Path(os.path.dirname(nib.__file__)) / "tests" / "data"
ANAT = NIB_DATA / "anatomical.nii"
EX4D = NIB_DATA / "example4d.nii.gz"
CT = Path(get_testdata_file("CT_small.dcm"))
RTDOSE = Path(get_testdata_file("rtdose.dcm"))

TINY = ["--steps", "2", "--quiet"]
BOX = (slice(10, 23), slice(12, 29), slice(8, 17))  # central box of anatomical.nii's 33x41x25


@pytest.fixture
def no_optimisation(monkeypatch):
    """Every refusal below must come before the first optimisation step."""

    def refuse(*args, **kwargs):
        raise AssertionError("the optimisation started although the input was bad")

    monkeypatch.setattr(nstyle.pipeline, "optimize", refuse)


@pytest.fixture(scope="module")
def box_mask(tmp_path_factory) -> Path:
    """anatomical.nii's shape and affine, ones in BOX."""
    img = nib.load(ANAT)
    m = np.zeros(img.shape, dtype=np.uint8)
    m[BOX] = 1
    path = tmp_path_factory.mktemp("mask") / "box.nii"
    nib.save(nib.Nifti1Image(m, img.affine), path)
    return path


@pytest.fixture(scope="module")
def style_crop(tmp_path_factory) -> Path:
    """A 40x40x20 block of example4d's first volume as an int16 .npy: a small, quick style."""
    vol = np.asarray(nib.load(EX4D).dataobj[44:84, 28:68, 2:22, 0])
    path = tmp_path_factory.mktemp("style") / "ex4d_crop.npy"
    np.save(path, vol)
    return path


def _int16_step(path: Path) -> float:
    """One quantisation step of the stored data, in the file's units."""
    slope = nib.load(path).dataobj.slope
    return float(slope) if slope is not None else 1.0


# --------------------------------------------------------------------------- bad inputs


def _npy(d: Path, name: str, arr: np.ndarray) -> Path:
    np.save(d / name, arr)
    return d / name


def _npy_4d(d: Path) -> Path:
    return _npy(d, "four_d.npy", np.random.default_rng(0).random((2, 8, 8, 8)))


def _nan_npy(d: Path) -> Path:
    x = np.random.default_rng(0).random((16, 16, 16))
    x[3, 4, 5] = np.nan
    return _npy(d, "nan.npy", x)


def _thin_npy(d: Path) -> Path:
    return _npy(d, "thin.npy", np.random.default_rng(0).random((4, 40, 40)))


def _empty_dicom_folder(d: Path) -> Path:
    (d / "empty_dicom").mkdir()
    (d / "empty_dicom" / "notes.txt").write_text("no slices here\n")
    return d / "empty_dicom"


def _one_slice_folder(d: Path) -> Path:
    (d / "one_slice").mkdir()
    (d / "one_slice" / "ct.dcm").write_bytes(CT.read_bytes())
    return d / "one_slice"


def _mask_other_shape(d: Path) -> Path:
    path = d / "small_mask.nii"
    nib.save(nib.Nifti1Image(np.ones((33, 41, 24), dtype=np.uint8), nib.load(ANAT).affine), path)
    return path


# (which argument is bad, its maker, extra options, output name, what the line must name)
VOLUME_BAD = {
    "content-2d-dicom": ("content", lambda d: CT, [], "out.nii.gz", ["CT_small.dcm", "2D", "3 axes"]),
    "style-2d-dicom": ("style", lambda d: CT, [], "out.nii.gz", ["CT_small.dcm", "2D", "3 axes"]),
    "content-one-slice-folder": ("content", _one_slice_folder, [], "out.nii.gz", ["one_slice", "one DICOM slice"]),
    "style-4d-npy": ("style", _npy_4d, [], "out.nii.gz", ["four_d.npy", "4D", "2x8x8x8", "3 axes"]),
    "style-4d-npy-with-style-index": (
        "style", _npy_4d, ["--style-index", "1"], "out.nii.gz", ["four_d.npy", "4D", "2x8x8x8", "3 axes"]
    ),
    "content-nan": ("content", _nan_npy, [], "out.nii.gz", ["nan.npy", "1 NaN", "4096"]),
    "style-nan": ("style", _nan_npy, [], "out.nii.gz", ["nan.npy", "1 NaN"]),
    "content-empty-dicom-folder": (
        "content", _empty_dicom_folder, [], "out.nii.gz", ["empty_dicom", "no readable DICOM"]
    ),
    "content-missing": ("content", lambda d: d / "gone.nii.gz", [], "out.nii.gz", ["gone.nii.gz", "no such file"]),
    "mask-other-shape": ("mask", _mask_other_shape, [], "out.nii.gz", ["small_mask.nii", "33x41x24", "33x41x25"]),
    "mask-missing": ("mask", lambda d: d / "nomask.nii", [], "out.nii.gz", ["nomask.nii", "no such file"]),
    "content-too-thin": ("content", _thin_npy, [], "out.nii.gz", ["thin.npy", "(4, 40, 40)", "too thin for VGG"]),
    "style-too-thin": ("style", _thin_npy, [], "out.nii.gz", ["thin.npy", "too thin for VGG"]),
    "index-out-of-range": (
        "content", lambda d: EX4D, ["--index", "5"], "out.nii.gz", ["example4d.nii.gz", "index 5", "2 volumes"]
    ),
    "style-index-out-of-range": (
        None, None, ["--style-index", "2"], "out.nii.gz", ["example4d.nii.gz", "index 2", "2 volumes"]
    ),
    "index-on-a-3d-volume": (
        None, None, ["--index", "1"], "out.nii.gz", ["anatomical.nii", "single volume", "index 1"]
    ),
    "window-reversed": (None, None, ["--window", "5,1"], "out.nii.gz", ["--window", "'5,1'"]),
    "window-garbage": (None, None, ["--window", "abc"], "out.nii.gz", ["--window", "'abc'", "LO,HI"]),
    "window-nan": (None, None, ["--window", "nan,1"], "out.nii.gz", ["--window", "'nan,1'"]),
    "net-bogus": (None, None, ["--net", "bogus"], "out.nii.gz", ["--net", "'bogus'", "triplanar"]),
    "output-png": (None, None, [], "out.png", ["out.png", "unknown volume extension", "'.png'"]),
    "output-dcm-for-nifti-content": (None, None, [], "out.dcm", ["out.dcm", "multi-frame DICOM", "anatomical.nii"]),
    "output-folder-for-nifti-content": (
        None, None, [], "slices/", ["slices", "folder of DICOM slices", "anatomical.nii"]
    ),
    "random-branch-wider-than-volume": (
        None, None, ["--net", "random", "--branches", "3x16:8"], "out.nii.gz", ["anatomical.nii", "widest branch (33)"]
    ),
    "style-weight-negative": (None, None, ["--style-weight=-1"], "out.nii.gz", ["style weight", "-1"]),
    "content-layer-unknown": (None, None, ["--content-layer", "relu9_9"], "out.nii.gz", ["relu9_9"]),
}


@pytest.mark.parametrize("case", list(VOLUME_BAD))
def test_volume_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, box_mask, no_optimisation):
    which, make, extra, out_name, needles = VOLUME_BAD[case]
    inputs, outdir = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outdir.mkdir()
    c, s, mask = ANAT, EX4D, None
    if which == "content":
        c = make(inputs)
    elif which == "style":
        s = make(inputs)
    elif which == "mask":
        mask = make(inputs)
    out = str(outdir / out_name) + ("/" if out_name.endswith("/") else "")
    if not out_name.endswith("/"):
        Path(out).write_bytes(OLD_BYTES)
    (outdir / "previous.nii.gz").write_bytes(OLD_BYTES)  # a bystander result in the same folder
    (outdir / "preview.png").write_bytes(OLD_BYTES)
    if mask is not None:
        extra = [*extra, "--mask", mask]
    before = snapshot_folder(tmp_path)

    rc, stdout, err = run(["volume", c, s, "-o", out, *TINY, "--preview", outdir / "preview.png", *extra], capsys)
    assert rc == 2, err
    assert_one_error_line(err, *needles)
    assert stdout == ""
    assert snapshot_folder(tmp_path) == before  # OUT and the preview unchanged, no temporary files


def test_output_folder_missing(tmp_path, capsys, no_optimisation):
    out = tmp_path / "no_such_dir" / "out.nii.gz"
    rc, stdout, err = run(["volume", ANAT, EX4D, "-o", out, *TINY], capsys)
    assert rc == 2
    assert stdout == ""
    assert_one_error_line(err, "no_such_dir", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_preview_folder_missing(tmp_path, capsys, no_optimisation):
    out = tmp_path / "out.nii.gz"
    out.write_bytes(OLD_BYTES)
    rc, _, err = run(["volume", ANAT, EX4D, "-o", out, *TINY, "--preview", tmp_path / "nowhere" / "p.png"], capsys)
    assert rc == 2
    assert_one_error_line(err, "nowhere", "does not exist")
    assert out.read_bytes() == OLD_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


@pytest.mark.slow
def test_real_exit_status_and_stderr_in_a_subprocess(tmp_path):
    out = tmp_path / "out.nii.gz"
    out.write_bytes(OLD_BYTES)
    proc = subprocess.run(
        [sys.executable, "-m", "nstyle.cli", "volume", str(CT), str(ANAT), "-o", str(out), "--steps", "1", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, str(CT), "2D")
    assert out.read_bytes() == OLD_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


# --------------------------------------------------------------------------- success


def _assert_success(rc: int, stdout: str, err: str, *written: Path | str) -> None:
    assert rc == 0, err
    assert stdout == ""
    assert "error" not in err.lower()
    for path in written:
        assert f"wrote {path}" in err


@pytest.mark.slow
def test_nifti_run_keeps_shape_affine_dtype_and_writes_preview(tmp_path, capsys):
    out, png = tmp_path / "out.nii.gz", tmp_path / "preview.png"
    out.write_bytes(OLD_BYTES)  # a successful run does replace it
    rc, stdout, err = run(["volume", ANAT, EX4D, "-o", out, *TINY, "--preview", png], capsys)
    _assert_success(rc, stdout, err, out, png)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz", "out.toml", "preview.png"]  # no temporary files

    src, got = nib.load(ANAT), nib.load(out)
    assert got.shape == src.shape == (33, 41, 25)
    np.testing.assert_allclose(got.affine, src.affine)
    assert got.get_data_dtype() == src.get_data_dtype()
    assert got.header.get_zooms() == src.header.get_zooms()
    assert int(got.header["qform_code"]) == int(src.header["qform_code"])
    assert int(got.header["sform_code"]) == int(src.header["sform_code"])
    g, c = got.get_fdata(), src.get_fdata()
    assert np.isfinite(g).all()
    assert not np.array_equal(g, c)  # restyled, not a copy

    with Image.open(png) as im:
        assert im.format == "PNG"
        assert im.size == (3 * PREVIEW_CELL, 3 * (PREVIEW_CELL + PREVIEW_LABEL_H))  # C, S and G rows
        im.verify()


@pytest.mark.slow
@pytest.mark.parametrize("net", ["triplanar", "inflated", "random"])
def test_each_net_runs_on_anatomical(net, tmp_path, capsys, style_crop):
    out = tmp_path / "out.nii"
    rc, stdout, err = run(["volume", ANAT, style_crop, "-o", out, *TINY, "--net", net], capsys)
    _assert_success(rc, stdout, err, out)
    src, got = nib.load(ANAT), nib.load(out)
    assert got.shape == src.shape and got.get_data_dtype() == src.get_data_dtype()
    np.testing.assert_allclose(got.affine, src.affine)
    g = got.get_fdata()
    assert np.isfinite(g).all() and g.std() > 0
    assert not np.array_equal(g, src.get_fdata())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii", "out.toml"]


@pytest.mark.slow
def test_mask_keeps_the_content_outside_the_box(tmp_path, capsys, box_mask):
    out = tmp_path / "out.nii"
    rc, stdout, err = run(["volume", ANAT, EX4D, "-o", out, *TINY, "--net", "random", "--mask", box_mask], capsys)
    _assert_success(rc, stdout, err, out)
    c = nib.load(ANAT).get_fdata()
    g = nib.load(out).get_fdata()
    assert g.shape == c.shape
    outside = np.ones(c.shape, dtype=bool)
    outside[BOX] = False
    step = _int16_step(ANAT)
    # the content's own values, also those beyond the 1st-99th percentile window
    np.testing.assert_allclose(g[outside], c[outside], atol=step)
    assert (c[outside] > c.max() * 0.9).any()  # the check covers voxels a window would have clipped
    changed = np.abs(g[BOX] - c[BOX]) > step
    assert changed.mean() > 0.5  # inside the box, restyled


@pytest.mark.slow
def test_style_index_picks_the_second_volume_of_a_4d_style(tmp_path, capsys, monkeypatch):
    loaded = {}
    real = nstyle.kinds.volume.load_volume

    def spy(path, index=None, **kwargs):
        sig = real(path, index=index, **kwargs)
        loaded[Path(path).name] = (index, sig)
        return sig

    monkeypatch.setattr(nstyle.kinds.volume, "load_volume", spy)
    out = tmp_path / "out.nii.gz"
    rc, stdout, err = run(["volume", ANAT, EX4D, "-o", out, *TINY, "--style-index", "1"], capsys)
    _assert_success(rc, stdout, err, out)

    index, style = loaded["example4d.nii.gz"]
    assert index == 1
    assert style.tensor.shape == (1, 1, 128, 96, 24)
    vol = nib.load(EX4D).get_fdata()
    assert not np.array_equal(vol[..., 0], vol[..., 1])
    for i in (0, 1):
        lo, hi = np.percentile(vol[..., i], [1, 99])
        want = np.clip((vol[..., i] - lo) / (hi - lo), 0, 1)
        same = np.allclose(style.tensor[0, 0].numpy(), want, atol=1e-6)
        assert same == (i == 1), i
    got = nib.load(out)
    assert got.shape == (33, 41, 25)  # the content's geometry, not the style's
    np.testing.assert_allclose(got.affine, nib.load(ANAT).affine)


@pytest.mark.slow
def test_index_picks_the_content_volume_of_a_4d_file(tmp_path, capsys):
    """--index 1: G has the second volume's geometry; outside a mask it is that volume."""
    img = nib.load(EX4D)
    vol = img.get_fdata()
    m = np.zeros(img.shape[:3], dtype=np.uint8)
    m[60:68, 44:52, 8:16] = 1
    mask = tmp_path / "m.npy"
    np.save(mask, m)
    out = tmp_path / "out.nii.gz"
    rc, stdout, err = run(
        ["volume", EX4D, ANAT, "-o", out, *TINY, "--index", "1", "--net", "random", "--branches", "3:8",
         "--mask", mask],
        capsys,
    )
    _assert_success(rc, stdout, err, out)
    got = nib.load(out)
    assert got.shape == (128, 96, 24)
    np.testing.assert_allclose(got.affine, img.affine)
    assert got.get_data_dtype() == img.get_data_dtype()
    g = got.get_fdata()
    outside = m == 0
    np.testing.assert_array_equal(g[outside], vol[..., 1][outside])
    assert not np.array_equal(g[outside], vol[..., 0][outside])


def test_multiframe_dicom_in_dicom_out(tmp_path, capsys):
    out = tmp_path / "dose.dcm"
    rc, stdout, err = run(["volume", RTDOSE, ANAT, "-o", out, *TINY, "--net", "random", "--branches", "3:8"], capsys)
    _assert_success(rc, stdout, err, out)
    src, ds = pydicom.dcmread(RTDOSE), pydicom.dcmread(out)
    assert int(ds.NumberOfFrames) == 15 and (ds.Rows, ds.Columns) == (10, 10)
    assert ds.pixel_array.shape == src.pixel_array.shape == (15, 10, 10)
    assert ds.pixel_array.dtype == src.pixel_array.dtype
    assert ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.ImagePositionPatient == src.ImagePositionPatient
    assert not np.array_equal(ds.pixel_array, src.pixel_array)


def test_ct_series_with_window_to_a_folder_of_slices(tmp_path, capsys):
    """A DICOM series folder (8 copies of CT_small, shifted) with --window, written as slices."""
    series = tmp_path / "series"
    series.mkdir()
    base = pydicom.dcmread(CT)
    z0 = [float(c) for c in base.ImagePositionPatient]
    for k in range(8):
        ds = pydicom.dcmread(CT)
        ds.ImagePositionPatient = [z0[0], z0[1], 2.5 * k]
        ds.PixelData = (base.pixel_array + 10 * k).astype(np.int16).tobytes()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(series / f"img{7 - k:02d}.dcm")  # files in reverse order of position
    out = str(tmp_path / "styled") + "/"
    rc, stdout, err = run(
        ["volume", series, RTDOSE, "-o", out, *TINY, "--window=-1000,1000", "--net", "random", "--branches", "3:8"],
        capsys,
    )
    _assert_success(rc, stdout, err, out)
    files = sorted(f for f in (tmp_path / "styled").iterdir() if f.suffix == ".dcm")
    assert [f.name for f in files] == [f"slice_{k:04d}.dcm" for k in range(8)]
    assert (tmp_path / "styled" / OUTPUT_MARKER).is_file()  # only such a folder may be replaced later
    slices = [pydicom.dcmread(f) for f in files]
    assert [float(ds.ImagePositionPatient[2]) for ds in slices] == [2.5 * k for k in range(8)]
    assert all(ds.pixel_array.shape == (128, 128) for ds in slices)
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    assert hu.min() >= -1000 and hu.max() <= 1000  # the window's range
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series", "styled", "styled.toml"]


def test_help_lists_the_volume_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps help at the terminal width, also at hyphens
    rc, out, _ = run(["volume", "--help"], capsys)
    assert rc == 0
    for opt in ("--net", "--index", "--style-index", "--window", "--mask", "--preview", "triplanar", "inflated"):
        assert opt in out, opt
    assert "--window=-1000,1000" in out  # the spelling argparse accepts for a negative LO
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "volume" in out
