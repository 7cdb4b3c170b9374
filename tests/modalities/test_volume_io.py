"""3D volume I/O: NIfTI, DICOM (series and multi-frame), .npy, masks, previews."""

from __future__ import annotations

import os
import pathlib
import random

import nibabel as nib
import numpy as np
import pydicom
import pydicom.data
import pytest
import torch
from PIL import Image

from nstyle.errors import NStyleError
from nstyle.modalities import volume as vol
from nstyle.modalities.volume import load_mask, load_volume, preview, save_volume
from nstyle.modalities.volume.intensity import from_unit, intensity_range, to_unit

NIB_DATA = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
ANAT = os.path.join(NIB_DATA, "anatomical.nii")
EX4D = os.path.join(NIB_DATA, "example4d.nii.gz")
RTDOSE = pydicom.data.get_testdata_file("rtdose.dcm")
CT = pydicom.data.get_testdata_file("CT_small.dcm")


def _ct_series(folder: pathlib.Path, n: int = 6, shuffle_seed: int = 3):
    """n copies of CT_small at z = 0, 2.5, ... with pixel_array + 10*k, written in shuffled order."""
    folder.mkdir(exist_ok=True)
    base = pydicom.dcmread(CT)
    order = list(range(n))
    random.Random(shuffle_seed).shuffle(order)
    assert order != sorted(order)
    for file_no, k in enumerate(order):
        ds = pydicom.dcmread(CT)
        ipp = [float(c) for c in base.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1], 2.5 * k]
        ds.PixelData = (base.pixel_array + 10 * k).astype(np.int16).tobytes()
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"img{file_no:02d}.dcm")
    return base


# --------------------------------------------------------------------------- NIfTI


def test_nifti_round_trip_keeps_geometry_dtype_and_values(tmp_path):
    img = nib.load(ANAT)
    data = img.get_fdata()
    sig = load_volume(ANAT, window=(data.min(), data.max()))
    assert sig.tensor.shape == (1, 1, 33, 41, 25) and sig.tensor.dtype == torch.float32
    assert sig.meta["format"] == "nifti"
    for name in ("out.nii", "out.nii.gz"):
        out = save_volume(sig.tensor, tmp_path / name, sig)
        back = nib.load(out)
        assert back.shape == img.shape
        np.testing.assert_allclose(back.affine, img.affine)
        assert back.get_data_dtype() == img.get_data_dtype()
        assert back.header.get_zooms() == img.header.get_zooms()
        assert int(back.header["qform_code"]) == int(img.header["qform_code"])
        assert int(back.header["sform_code"]) == int(img.header["sform_code"])
        assert back.header["descrip"] == img.header["descrip"]
        np.testing.assert_array_equal(back.get_fdata(), data)  # window spans the range: exact


def test_nifti_percentile_round_trip_within_one_step(tmp_path):
    data = nib.load(ANAT).get_fdata()
    sig = load_volume(ANAT)
    back = nib.load(save_volume(sig.tensor, tmp_path / "p.nii", sig)).get_fdata()
    inside = (data >= sig.low) & (data <= sig.high)
    assert inside.mean() > 0.9
    assert np.abs(back[inside] - data[inside]).max() <= 1.0  # one int16 step
    np.testing.assert_array_equal(back[data < sig.low], np.rint(sig.low))
    np.testing.assert_array_equal(back[data > sig.high], np.rint(sig.high))


def test_percentile_mapping_matches_numpy():
    data = nib.load(ANAT).get_fdata()
    lo, hi = np.percentile(data, [2.0, 98.0])
    sig = load_volume(ANAT, percentiles=(2.0, 98.0))
    assert (sig.low, sig.high) == pytest.approx((lo, hi))
    want = np.clip((data - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(sig.tensor[0, 0].numpy(), want, atol=1e-6)
    assert sig.tensor.min() == 0.0 and sig.tensor.max() == 1.0


def test_4d_index_picks_the_volume(tmp_path):
    img = nib.load(EX4D)
    full = img.get_fdata()
    assert full.shape == (128, 96, 24, 2)
    for i in (0, 1):
        sig = load_volume(EX4D, index=i, window=(full.min(), full.max()))
        want = (full[..., i] - full.min()) / (full.max() - full.min())
        np.testing.assert_allclose(sig.tensor[0, 0].numpy(), want, atol=1e-6)
    default = load_volume(EX4D, window=(0, 1000))
    assert torch.equal(default.tensor, load_volume(EX4D, index=0, window=(0, 1000)).tensor)
    sig = load_volume(EX4D, index=1, window=(full.min(), full.max()))
    back = nib.load(save_volume(sig.tensor, tmp_path / "v1.nii.gz", sig))
    assert back.shape == (128, 96, 24)
    np.testing.assert_allclose(back.affine, img.affine)
    np.testing.assert_array_equal(back.get_fdata(), full[..., 1])
    with pytest.raises(NStyleError, match=r"example4d.*index 2.*2 volumes"):
        load_volume(EX4D, index=2)


def test_ct_window_mapping(tmp_path):
    folder = tmp_path / "ct"
    _ct_series(folder)
    sig = load_volume(folder, window=(-1000, 1000))
    hu = sig.meta["datasets"][0].pixel_array * 1.0 - 1024.0
    want = np.clip((hu + 1000.0) / 2000.0, 0, 1)
    np.testing.assert_allclose(sig.tensor[0, 0, 0].numpy(), want, atol=1e-6)
    assert (sig.low, sig.high) == (-1000.0, 1000.0)


def test_intensity_functions_without_files():
    v = np.array([[[-2000.0, -1000.0, 0.0, 1000.0, 3000.0]]])
    assert intensity_range(v, window=(-1000, 1000)) == (-1000.0, 1000.0)
    x = to_unit(v, -1000.0, 1000.0)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [[[0.0, 0.0, 0.5, 1.0, 1.0]]])
    np.testing.assert_array_equal(from_unit(x, -1000.0, 1000.0), [[[-1000.0, -1000.0, 0.0, 1000.0, 1000.0]]])
    r = np.arange(101.0)
    assert intensity_range(r, percentiles=(10, 90)) == (10.0, 90.0)
    with pytest.raises(NStyleError, match=r"^src: window low 5 must be below high 5"):
        intensity_range(r, window=(5, 5), source="src")
    with pytest.raises(NStyleError, match="0 <= low < high <= 100"):
        intensity_range(r, percentiles=(50, 20))
    with pytest.raises(NStyleError, match="flat volume"):
        intensity_range(np.zeros(8))


# --------------------------------------------------------------------------- DICOM


def test_dicom_series_sorted_by_position_with_hu(tmp_path):
    folder = tmp_path / "series"
    base = _ct_series(folder)
    sig = load_volume(folder, window=(-2000, 3000))
    dss = sig.meta["datasets"]
    assert [float(ds.ImagePositionPatient[2]) for ds in dss] == [0, 2.5, 5, 7.5, 10, 12.5]
    assert sig.tensor.shape == (1, 1, 6, 128, 128)
    slope, inter = float(base.RescaleSlope), float(base.RescaleIntercept)
    for k in range(6):
        hu = slope * (base.pixel_array.astype(np.float64) + 10 * k) + inter
        got = sig.low + sig.tensor[0, 0, k].double().numpy() * (sig.high - sig.low)
        np.testing.assert_allclose(got, hu, atol=1e-3)
    assert sig.meta["dtype"] == np.int16


def test_dicom_to_nifti_affine_and_back_to_series(tmp_path):
    folder = tmp_path / "series"
    base = _ct_series(folder)
    sig = load_volume(folder, window=(-2000, 3000))
    img = nib.load(save_volume(sig.tensor, tmp_path / "ct.nii.gz", sig))
    assert img.shape == (6, 128, 128) and img.get_data_dtype() == np.int16
    x, y, _z = (float(c) for c in base.ImagePositionPatient)
    np.testing.assert_allclose(img.affine @ [0, 0, 0, 1], [-x, -y, 0.0, 1], atol=1e-4)
    ps = [float(c) for c in base.PixelSpacing]
    np.testing.assert_allclose(img.affine @ [1, 2, 3, 1], [-(x + 3 * ps[1]), -(y + 2 * ps[0]), 2.5, 1], atol=1e-4)
    np.testing.assert_allclose(img.header.get_zooms(), [2.5, ps[0], ps[1]], atol=1e-4)
    hu = base.pixel_array.astype(np.float64) - 1024.0
    np.testing.assert_array_equal(img.get_fdata()[3], hu + 30)

    out = save_volume(sig.tensor, str(tmp_path / "out") + "/", sig)
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 6
    written = [pydicom.dcmread(f) for f in files]
    assert len({ds.SOPInstanceUID for ds in written} | {ds.SOPInstanceUID for ds in sig.meta["datasets"]}) == 12
    again = load_volume(out, window=(-2000, 3000))
    assert torch.allclose(again.tensor, sig.tensor, atol=1e-6)
    np.testing.assert_array_equal(written[2].pixel_array, base.pixel_array + 20)


def test_rtdose_multiframe(tmp_path):
    sig = load_volume(RTDOSE)
    ds = pydicom.dcmread(RTDOSE)
    assert sig.tensor.shape == (1, 1, 15, 10, 10)
    dose = ds.pixel_array * float(ds.DoseGridScaling)
    lo, hi = np.percentile(dose, [1, 99])
    np.testing.assert_allclose([sig.low, sig.high], [lo, hi])
    img = nib.load(save_volume(sig.tensor, tmp_path / "dose.nii", sig))
    x, y, z = (float(c) for c in ds.ImagePositionPatient)
    np.testing.assert_allclose(img.affine @ [1, 0, 0, 1], [-x, -y, z + 5.0, 1], atol=1e-4)
    assert img.get_data_dtype() == np.float32
    out = save_volume(sig.tensor, tmp_path / "dose.dcm", sig)
    again = load_volume(out)
    inside = (dose >= lo) & (dose <= hi)
    got = pydicom.dcmread(out).pixel_array * float(ds.DoseGridScaling)
    np.testing.assert_allclose(got[inside], dose[inside], atol=2e-6)
    assert again.tensor.shape == sig.tensor.shape


# --------------------------------------------------------------------------- .npy, masks


def test_npy_round_trip_and_mask(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 500, size=(4, 5, 6)).astype(np.uint16)
    np.save(tmp_path / "v.npy", arr)
    sig = load_volume(tmp_path / "v.npy", window=(0, 499))
    back = np.load(save_volume(sig.tensor, tmp_path / "o.npy", sig))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, arr)

    m = (arr > 250).astype(np.uint8)
    np.save(tmp_path / "m.npy", m)
    mask = load_mask(tmp_path / "m.npy", sig)
    assert mask.shape == (1, 1, 4, 5, 6) and mask.dtype == torch.float32
    np.testing.assert_array_equal(mask[0, 0].numpy(), m)
    np.save(tmp_path / "bad.npy", np.ones((4, 5, 7)))
    with pytest.raises(NStyleError, match=r"bad\.npy.*4x5x7.*4x5x6"):
        load_mask(tmp_path / "bad.npy", sig)


# --------------------------------------------------------------------------- errors


def test_errors(tmp_path):
    with pytest.raises(NStyleError, match=r"nope\.nii.*no such"):
        load_volume(tmp_path / "nope.nii")
    with pytest.raises(NStyleError, match=r"missing.*no such"):
        load_volume(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "junk.dcm").write_bytes(b"not dicom")
    with pytest.raises(NStyleError, match=r"empty.*no readable DICOM slices"):
        load_volume(tmp_path / "empty")
    with pytest.raises(NStyleError, match=r"CT_small\.dcm.*2D.*3 axes"):
        load_volume(CT)
    np.save(tmp_path / "flat2d.npy", np.zeros((8, 8)))
    with pytest.raises(NStyleError, match=r"flat2d\.npy.*2D.*3 axes"):
        load_volume(tmp_path / "flat2d.npy")
    nan = np.ones((3, 4, 5))
    nan[0, 0, :2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(NStyleError, match=r"nan\.npy.*2 NaN voxels"):
        load_volume(tmp_path / "nan.npy")
    with pytest.raises(NStyleError, match=r"anatomical.*window low 10 must be below high 10"):
        load_volume(ANAT, window=(10, 10))
    np.save(tmp_path / "flat.npy", np.full((3, 4, 5), 7.0))
    with pytest.raises(NStyleError, match=r"flat\.npy.*flat volume"):
        load_volume(tmp_path / "flat.npy")
    (tmp_path / "v.mha").write_bytes(b"x")
    with pytest.raises(NStyleError, match=r"v\.mha.*unknown volume extension"):
        load_volume(tmp_path / "v.mha")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2, 2), np.float32), np.eye(4)), tmp_path / "5d.nii")
    with pytest.raises(NStyleError, match=r"5d\.nii.*5D"):
        load_volume(tmp_path / "5d.nii")
    with pytest.raises(NStyleError, match=r"anatomical.*single volume"):
        load_volume(ANAT, index=1)
    sig = load_volume(ANAT)
    with pytest.raises(NStyleError, match=r"o\.png.*unknown volume extension"):
        save_volume(sig.tensor, tmp_path / "o.png", sig)
    with pytest.raises(NStyleError, match=r"outdir.*DICOM series content"):
        save_volume(sig.tensor, str(tmp_path / "outdir") + "/", sig)


def test_atomic_save_keeps_existing_output(tmp_path, monkeypatch):
    sig = load_volume(ANAT)
    target = tmp_path / "out.nii"
    target.write_bytes(b"old contents")

    def half_write(self, data):
        with open(self, "wb") as f:
            f.write(data[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", half_write)
    with pytest.raises(NStyleError, match=r"out\.nii.*No space left"):
        save_volume(sig.tensor, target, sig)
    monkeypatch.undo()
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii"]
    bad = sig.tensor.clone()
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(NStyleError, match=r"out\.nii.*1 NaN"):
        save_volume(bad, target, sig)
    assert target.read_bytes() == b"old contents"


# --------------------------------------------------------------------------- preview


def test_preview_grid(tmp_path):
    a = load_volume(ANAT).tensor
    b = torch.zeros(1, 1, 10, 20, 40)
    b[0, 0, 5] = 1.0  # only the mid slice along D is white
    out = preview([a, b], ["content", "result"], tmp_path / "p.png")
    im = Image.open(out)
    cell, band = vol.PREVIEW_CELL, vol.PREVIEW_LABEL_H
    assert im.size == (3 * cell, 2 * (cell + band))
    assert im.mode == "L"
    g = np.asarray(im)
    top = cell + band  # second row
    # column 0 of row 2: the D mid-slice (20x40 -> 128x256), all white in its box
    assert g[top + band + cell // 2, cell // 2] == 255
    assert g[top + band + 10, cell // 2] == 0  # letterbox above the 128-high slice
    # column 1: (D, W) slice: only row D=5 is white
    col1 = g[top + band:top + 2 * cell, cell:2 * cell]
    assert 0 < (col1 == 255).mean() < 0.2
    assert g[:band].max() > 200  # a label was drawn (anti-aliased text)
    with pytest.raises(NStyleError, match="2 volumes but 1 labels"):
        preview([a, b], ["x"], tmp_path / "q.png")


def test_nifti_scaled_integers_keep_slope_and_intercept(tmp_path):
    a = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(a, np.diag([2.0, 3.0, 4.0, 1.0]))
    img.header.set_slope_inter(0.5, 10.0)
    nib.save(img, tmp_path / "s.nii")
    src = nib.load(tmp_path / "s.nii").get_fdata()
    assert src[0, 0, 1] == 10.5
    sig = load_volume(tmp_path / "s.nii", window=(src.min(), src.max()))
    back = nib.load(save_volume(sig.tensor, tmp_path / "o.nii.gz", sig))
    assert (back.dataobj.slope, back.dataobj.inter) == (0.5, 10.0)
    np.testing.assert_array_equal(np.asarray(back.dataobj.get_unscaled()), a)
    np.testing.assert_array_equal(back.get_fdata(), src)
