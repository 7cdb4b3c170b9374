"""Volume files in and out: NIfTI (``.nii``, ``.nii.gz``), DICOM (a folder holding a
series of single-frame slices, or one multi-frame file) and ``.npy`` arrays.

Every input becomes a float32 tensor (1, 1, D, H, W) in [0, 1], axes as stored (NIfTI
i, j, k -> D, H, W; DICOM slice, row, column); the mapping of the raw values to [0, 1]
and back (a ``window``, or percentiles of the voxels) is in ``intensity``. ``meta``
keeps what ``save_volume`` needs to write the same format back:

* NIfTI (nibabel): the image (affine, header with qform/sform codes, zooms, descrip)
  and its on-disk dtype; scl_slope/scl_inter are applied on reading as nibabel does.
  A 4D input gives the volume ``index`` picks (default 0); the output is 3D.
* DICOM: the datasets, sorted along the slice normal (the cross product of
  ImageOrientationPatient's direction cosines) by ImagePositionPatient; values are
  RescaleSlope * stored + RescaleIntercept (Hounsfield units for CT; DoseGridScaling
  for RT dose). Saved as NIfTI with an affine built from the DICOM geometry (LPS ->
  RAS), as a folder of slices (series content) or as one file (multi-frame content).
* ``.npy``: a 3D array, written back with its dtype.

The output format follows the output path: ``.nii``/``.nii.gz``, ``.npy``, ``.dcm``
(multi-frame DICOM content), or a folder (a path ending in ``/`` or without a suffix;
DICOM series content). Every write is atomic.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import NStyleError
from ...outputs.atomic import write_atomic, write_folder_atomic
from ...outputs.guard import OUTPUT_MARKER, check_replaceable_folder
from ...resources import check_elements
from ...validators import check_input_file
from ..dicom import pydicom_for, read_dataset
from ..npyfile import read_npy
from .intensity import from_unit, intensity_range, to_unit

NIFTI_EXTS = (".nii", ".nii.gz")
NPY_EXTS = (".npy",)
DICOM_EXTS = (".dcm", ".dicom")
ALL_EXTS = NIFTI_EXTS + NPY_EXTS + DICOM_EXTS


@dataclass
class VolumeSignal:
    """A 3D volume as the engine sees it, plus what is needed to write it back."""

    tensor: torch.Tensor  # (1, 1, D, H, W) float32 in [0, 1]
    low: float  # the value mapped to 0
    high: float  # the value mapped to 1
    source: str  # path, for error messages
    meta: dict = field(default_factory=dict)  # format-specific: see the loaders


# =========================================================================== helpers


def _ext(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def _nibabel(path: Path):
    try:
        import nibabel
    except ImportError:
        raise NStyleError(f"{path}: reading and writing NIfTI needs nibabel (pip install nibabel)") from None
    return nibabel


def _shape_str(shape) -> str:
    return "x".join(str(int(n)) for n in shape)


def _check_ndim(path: Path, arr: np.ndarray, what: str = "") -> None:
    if arr.ndim < 3:
        raise NStyleError(
            f"{path}: {what}is {arr.ndim}D ({_shape_str(arr.shape) or 'a scalar'}); a volume needs 3 axes"
        )
    if arr.ndim > 3:
        raise NStyleError(f"{path}: {what}is {arr.ndim}D ({_shape_str(arr.shape)}); a volume needs 3 axes")


def _check_finite(path: Path, v: np.ndarray) -> None:
    bad = ~np.isfinite(v)
    if bad.any():
        n_nan = int(np.isnan(v).sum())
        n_inf = int(bad.sum()) - n_nan
        parts = [f"{n_nan} NaN"] if n_nan else []
        parts += [f"{n_inf} Inf"] if n_inf else []
        raise NStyleError(f"{path}: {' and '.join(parts)} voxels (of {v.size})")


# =========================================================================== loading


def load_volume(
    path: str | Path,
    index: int | None = None,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    keep_raw: bool = False,
) -> VolumeSignal:
    """Read a volume and map its intensities to [0, 1].

    ``index`` picks the volume of a 4D NIfTI (default 0). ``window=(lo, hi)`` maps lo..hi
    to 0..1; without it, the ``percentiles`` of the voxels are lo and hi. ``keep_raw``
    also keeps the voxels in the file's units (``meta["raw"]``, float64), which
    ``save_volume(..., keep=)`` writes back unchanged outside a mask.
    """
    path = Path(path)
    v, meta = read_raw(path, index)
    lo, hi = intensity_range(v, window, percentiles, source=path)
    x = to_unit(v, lo, hi)
    tensor = torch.from_numpy(np.ascontiguousarray(x))[None, None]
    if keep_raw:
        meta = {**meta, "raw": v}
    return VolumeSignal(tensor, lo, hi, str(path), meta)


def load_mask(path: str | Path, like: VolumeSignal) -> torch.Tensor:
    """Read a mask volume: (1, 1, D, H, W) float, 1 where the file's value > 0.5, else 0.

    Its shape must equal ``like``'s.
    """
    path = Path(path)
    v, meta = read_raw(path, None)
    want = tuple(like.tensor.shape[2:])
    if v.shape != want:
        raise NStyleError(
            f"{path}: mask shape {_shape_str(v.shape)} differs from the volume's {_shape_str(want)} ({like.source})"
        )
    a, b = meta.get("affine"), like.meta.get("affine")
    if a is not None and b is not None and not np.allclose(a, b, atol=1e-3):
        warnings.warn(
            f"{path}: mask affine differs from the volume's ({like.source}); voxels are matched by index", stacklevel=2
        )
    return torch.from_numpy((v > 0.5).astype(np.float32))[None, None]


def read_raw(path: Path, index: int | None) -> tuple[np.ndarray, dict]:
    """(D, H, W) float64 values in the file's units, and meta."""
    check_input_file(path, "volume file or DICOM folder", folder_ok=True)
    if path.is_dir():
        v, meta = _load_dicom_folder(path)
    else:
        ext = _ext(path)
        if ext not in ALL_EXTS:
            raise NStyleError(
                f"{path}: unknown volume extension {ext or '(none)'!r}; use one of {', '.join(ALL_EXTS)} "
                "or a folder of DICOM slices"
            )
        if ext in NIFTI_EXTS:
            v, meta = _load_nifti(path, index)
        elif ext in NPY_EXTS:
            v, meta = _load_npy(path)
        else:
            v, meta = _load_dicom_file(path)
    if index not in (None, 0) and meta.get("index") is None:  # only a 4D NIfTI takes an index
        raise NStyleError(f"{path}: holds a single volume; index {index} does not apply")
    _check_finite(path, v)
    return v, meta


# --------------------------------------------------------------------------- NIfTI


def _check_header_size(path: Path) -> None:
    """The first field of a NIfTI header is its size, 348 (NIfTI-1) or 540 (NIfTI-2), in
    either byte order. nibabel "fixes" any other value and reads on, which gives garbage
    for a damaged file; it is refused here instead."""
    try:
        with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as f:
            head = f.read(4)
    except (OSError, EOFError):
        return  # nibabel's own reading says what is wrong
    if len(head) == 4 and not {int.from_bytes(head, "little"), int.from_bytes(head, "big")} & {348, 540}:
        raise NStyleError(f"{path}: damaged NIfTI header (its size field is not 348 or 540)")


def _load_nifti(path: Path, index: int | None) -> tuple[np.ndarray, dict]:
    nib = _nibabel(path)
    _check_header_size(path)
    try:
        img = nib.load(path)
        shape = tuple(img.shape)
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except Exception as e:  # noqa: BLE001 -- nibabel raises many kinds on corrupt files
        raise NStyleError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})") from None
    if not np.isfinite(img.affine).all():
        raise NStyleError(f"{path}: its affine (voxel-to-world matrix) holds NaN or infinite values")
    if any(n == 0 for n in shape):
        raise NStyleError(f"{path}: volume of shape {_shape_str(shape)} is empty")
    check_elements(f"{path}: its {_shape_str(shape[:3])} volume", shape[:3], "use a smaller volume", 8, 2)
    if len(shape) > 4:
        raise NStyleError(
            f"{path}: is {len(shape)}D ({_shape_str(shape)}); only 3D volumes or 4D series of them are read"
        )
    try:
        if len(shape) == 4:
            n = shape[3]
            i = 0 if index is None else int(index)
            if not 0 <= i < n:
                raise NStyleError(f"{path}: index {index} is out of range; the file holds {n} volumes (0..{n - 1})")
            v = np.asarray(img.dataobj[..., i], dtype=np.float64)
        else:
            if len(shape) < 3:
                _check_ndim(path, np.empty(shape))
            v = np.asarray(img.get_fdata(dtype=np.float64))
    except NStyleError:
        raise
    except Exception as e:  # noqa: BLE001 -- truncated data etc.
        raise NStyleError(f"{path}: cannot read its voxels ({type(e).__name__}: {e})") from None
    meta = {
        "format": "nifti",
        "image": img,
        "affine": img.affine.copy(),
        "header": img.header.copy(),
        "dtype": np.dtype(img.get_data_dtype()),
        "shape": shape,
        "index": (0 if index is None else int(index)) if len(shape) == 4 else None,
    }
    return v, meta


# --------------------------------------------------------------------------- .npy


def _load_npy(path: Path) -> tuple[np.ndarray, dict]:
    arr = read_npy(path, "use a smaller volume")
    _check_ndim(path, arr)
    return arr.astype(np.float64), {"format": "npy", "dtype": arr.dtype, "shape": arr.shape}


# --------------------------------------------------------------------------- DICOM


def _pixels(path: Path, ds) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as e:  # noqa: BLE001 -- missing decoders, corrupt data
        raise NStyleError(f"{path}: cannot decode its pixel data ({type(e).__name__}: {e})") from None


def _slope_intercept(ds) -> tuple[float, float]:
    slope = ds.get("RescaleSlope")
    if slope is None:
        slope = ds.get("DoseGridScaling")  # RT dose: stored * scaling = Gy
    slope = float(slope) if slope not in (None, "") else 1.0
    if slope == 0.0:
        slope = 1.0
    inter = ds.get("RescaleIntercept")
    return slope, float(inter) if inter not in (None, "") else 0.0


def _orientation(ds) -> tuple[np.ndarray, np.ndarray] | None:
    iop = ds.get("ImageOrientationPatient")
    if iop is None or len(iop) != 6:
        return None
    f = np.array([float(c) for c in iop])
    return f[:3], f[3:]


def _affine(ipp0, f_row, f_col, pixel_spacing, slice_step) -> np.ndarray:
    """RAS affine of the (slice, row, column) voxel grid."""
    lps = np.eye(4)
    lps[:3, 0] = slice_step
    lps[:3, 1] = f_col * float(pixel_spacing[0])  # down the rows
    lps[:3, 2] = f_row * float(pixel_spacing[1])  # along a row
    lps[:3, 3] = ipp0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _physical_dtype(arrays: list[np.ndarray], scalings: list[tuple[float, float]], v: np.ndarray) -> np.dtype:
    """int16 when the stored values are integers with integer rescaling that fit, else float32."""
    integral = all(a.dtype.kind in "iu" for a in arrays) and all(
        float(s).is_integer() and float(i).is_integer() for s, i in scalings
    )
    info = np.iinfo(np.int16)
    if integral and v.size and info.min <= v.min() and v.max() <= info.max:
        return np.dtype(np.int16)
    return np.dtype(np.float32)


def _load_dicom_file(path: Path) -> tuple[np.ndarray, dict]:
    ds = read_dataset(path)
    if "PixelData" not in ds:
        raise NStyleError(f"{path}: DICOM file has no pixel data")
    arr = _pixels(path, ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        raise NStyleError(f"{path}: colour DICOM ({_shape_str(arr.shape)}); a volume needs one grey value per voxel")
    if frames <= 1 or arr.ndim != 3:
        raise NStyleError(
            f"{path}: is 2D (one {_shape_str(arr.shape[-2:])} slice); a volume needs 3 axes: "
            "give the folder holding the whole series"
        )
    slope, inter = _slope_intercept(ds)
    v = arr.astype(np.float64) * slope + inter
    affine = None
    orient = _orientation(ds)
    ipp = ds.get("ImagePositionPatient")
    spacing = ds.get("PixelSpacing")
    if orient is not None and ipp is not None and spacing is not None:
        f_row, f_col = orient
        normal = np.cross(f_row, f_col)
        offsets = ds.get("GridFrameOffsetVector")
        if offsets is not None and len(offsets) >= 2:
            step = float(offsets[1]) - float(offsets[0])
        else:
            step = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0)
        affine = _affine(np.array([float(c) for c in ipp]), f_row, f_col, spacing, normal * step)
    meta = {
        "format": "dicom",
        "multiframe": True,
        "datasets": [ds],
        "files": [path],
        "scalings": [(slope, inter)],
        "pixel_dtype": arr.dtype,
        "affine": affine,
        "dtype": _physical_dtype([arr], [(slope, inter)], v),
        "shape": arr.shape,
    }
    return v, meta


def _read_dicom_slices(path: Path) -> list[tuple[Path, Any]]:
    """(file, dataset) of every readable DICOM file with pixel data in the folder ``path``, by name."""
    pydicom = pydicom_for(path)
    slices = []  # (file, dataset)
    try:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError as e:
        raise NStyleError(f"{path}: cannot list the folder ({e.strerror or e})") from None
    for f in files:
        if f.suffix.lower() not in DICOM_EXTS + ("",) or f.name.upper() == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(f)
        except Exception:  # noqa: BLE001, S112 -- not DICOM, or corrupt: not a slice of the series
            continue
        if "PixelData" in ds:
            slices.append((f, ds))
    return slices


def _load_dicom_folder(path: Path) -> tuple[np.ndarray, dict]:
    slices = _read_dicom_slices(path)
    if not slices:
        raise NStyleError(f"{path}: no readable DICOM slices (no .dcm files with pixel data) in the folder")
    if len(slices) == 1:
        f, ds = slices[0]
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            return _load_dicom_file(f)
        raise NStyleError(
            f"{path}: holds one DICOM slice ({f.name}), which is 2D; a volume needs 3 axes (a series of slices)"
        )
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise NStyleError(f"{path}: mixes {len(series)} DICOM series; put one series per folder")
    multi = [f.name for f, ds in slices if int(ds.get("NumberOfFrames", 1) or 1) > 1]
    if multi:
        raise NStyleError(
            f"{path}: mixes multi-frame files ({multi[0]}) with other slices; give one file or one series"
        )
    orient = _orientation(slices[0][1])
    missing = [f.name for f, ds in slices if ds.get("ImagePositionPatient") is None]
    if orient is None or missing:
        raise NStyleError(
            f"{path}: cannot order the slices: "
            + (f"{missing[0]} has no ImagePositionPatient" if missing else "no ImageOrientationPatient")
        )
    f_row, f_col = orient
    normal = np.cross(f_row, f_col)
    for f, ds in slices[1:]:
        o = _orientation(ds)
        if o is None or not (np.allclose(o[0], f_row, atol=1e-4) and np.allclose(o[1], f_col, atol=1e-4)):
            raise NStyleError(f"{path}: slice {f.name} is oriented unlike {slices[0][0].name}; not one volume")
    ipps = [np.array([float(c) for c in ds.ImagePositionPatient]) for _, ds in slices]
    dist = [float(p @ normal) for p in ipps]
    order = np.argsort(dist, kind="stable")
    slices = [slices[i] for i in order]
    ipps = [ipps[i] for i in order]
    dist = sorted(dist)
    gaps = np.diff(dist)
    if (np.abs(gaps) < 1e-4).any():
        i = int(np.argmin(np.abs(gaps)))
        raise NStyleError(
            f"{path}: slices {slices[i][0].name} and {slices[i + 1][0].name} lie at the same position; not one volume"
        )
    if gaps.max() - gaps.min() > 0.01 * max(abs(gaps.mean()), 1e-6) + 1e-3:
        warnings.warn(
            f"{path}: uneven slice spacing ({gaps.min():g} to {gaps.max():g} mm); the affine uses the mean",
            stacklevel=2,
        )
    arrays, scalings = [], []
    for f, ds in slices:
        a = _pixels(f, ds)
        if a.ndim != 2:
            raise NStyleError(f"{f}: pixel data of shape {_shape_str(a.shape)}; expected one grey 2D slice")
        if arrays and a.shape != arrays[0].shape:
            raise NStyleError(
                f"{path}: slice {f.name} is {_shape_str(a.shape)}, {slices[0][0].name} is {_shape_str(arrays[0].shape)}"
            )
        arrays.append(a)
        scalings.append(_slope_intercept(ds))
    v = np.stack([a.astype(np.float64) * s + i for a, (s, i) in zip(arrays, scalings)])
    affine = None
    spacing = slices[0][1].get("PixelSpacing")
    if spacing is not None:
        step = (ipps[-1] - ipps[0]) / (len(ipps) - 1)
        affine = _affine(ipps[0], f_row, f_col, spacing, step)
    meta = {
        "format": "dicom",
        "multiframe": False,
        "datasets": [ds for _, ds in slices],
        "files": [f for f, _ in slices],
        "scalings": scalings,
        "pixel_dtype": arrays[0].dtype,
        "affine": affine,
        "dtype": _physical_dtype(arrays, scalings, v),
        "shape": v.shape,
    }
    return v, meta


# =========================================================================== saving


def _to_dtype(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast values to ``dtype``: rounded and clipped for integer types."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(v), info.min, info.max).astype(dtype)
    if dtype.kind == "b":
        return v > 0.5
    return v.astype(dtype)


def check_output(path: str | Path, like: VolumeSignal | None = None) -> str:
    """The format ``save_volume`` writes to ``path``: "nifti", "npy", "dicom" (one
    multi-frame file) or "folder" (DICOM slices); an NStyleError for an unknown extension
    or, given the content ``like``, a DICOM output that content cannot be written as.
    Cheap: callers use it to refuse a bad output before any optimisation.
    """
    as_folder = str(path).endswith(("/", os.sep))
    path = Path(path)
    ext = _ext(path)
    if as_folder or (ext == "" and not path.is_file()):
        kind = "folder"
    elif ext in NIFTI_EXTS:
        kind = "nifti"
    elif ext in NPY_EXTS:
        kind = "npy"
    elif ext in DICOM_EXTS:
        kind = "dicom"
    else:
        raise NStyleError(
            f"{path}: unknown volume extension {ext!r}; use one of {', '.join(NIFTI_EXTS + NPY_EXTS + DICOM_EXTS)} "
            "or a folder"
        )
    if like is not None:
        fmt, multi = like.meta.get("format"), like.meta.get("multiframe")
        if kind == "dicom" and (fmt != "dicom" or not multi):
            raise NStyleError(
                f"{path}: a .dcm file is written only for multi-frame DICOM content ({like.source} is not); "
                "give a folder for a DICOM series, or .nii/.nii.gz/.npy"
            )
        if kind == "folder" and (fmt != "dicom" or multi):
            raise NStyleError(
                f"{path}: a folder of DICOM slices is written only for DICOM series content ({like.source} is not); "
                "give a .nii, .nii.gz or .npy file name"
            )
    if kind == "folder":
        check_replaceable_folder(path, DICOM_EXTS)
    return kind


def save_volume(
    x: torch.Tensor, path: str | Path, like: VolumeSignal, keep: torch.Tensor | np.ndarray | None = None
) -> Path:
    """Write ``x`` (1, 1, D, H, W) in [0, 1] in ``like``'s units: v = low + x * (high - low).

    The format follows ``path``: ``.nii``/``.nii.gz``, ``.npy``, ``.dcm`` (multi-frame
    DICOM content) or a folder (DICOM series content: one ``.dcm`` per slice). ``keep``
    (a mask of ``like``'s shape; ``like`` loaded with ``keep_raw=True``): where it is 0 the
    content's own values are written, not clipped to [low, high].
    """
    kind = check_output(path, like)
    path = Path(path)
    if not isinstance(x, torch.Tensor) or x.dim() != 5 or tuple(x.shape[:2]) != (1, 1):
        raise NStyleError(f"{path}: expected a (1, 1, D, H, W) volume tensor, got {tuple(getattr(x, 'shape', ()))}")
    arr = x.detach().to("cpu", torch.float64).numpy()[0, 0]
    _check_finite(path, arr)
    v = from_unit(arr, like.low, like.high)
    meta = like.meta
    if keep is not None:
        raw = meta.get("raw")
        k = keep.detach().to("cpu").numpy() if isinstance(keep, torch.Tensor) else np.asarray(keep)
        k = k.reshape(k.shape[-3:]) if k.ndim >= 3 else k
        if raw is None or raw.shape != v.shape or k.shape != v.shape:
            raise NStyleError(
                f"{path}: a mask needs the content's own voxels (load it with keep_raw=True) and its shape "
                f"{_shape_str(v.shape)}"
            )
        v = np.where(k > 0.5, v, raw)
    if kind == "folder":
        return _save_dicom_series(v, path, like)
    if kind == "nifti":
        return _save_nifti(v, path, like)
    if kind == "npy":
        out = _to_dtype(v, meta.get("dtype", np.float32))
        buf = io.BytesIO()
        np.save(buf, out)
        payload = buf.getvalue()
        return write_atomic(path, lambda tmp: tmp.write_bytes(payload))
    # kind == "dicom": check_output made sure the content is one multi-frame file
    _check_same_shape(path, v, like)
    ds = _with_pixels(meta["datasets"][0], v, meta["scalings"][0], meta["pixel_dtype"], path)
    pydicom = pydicom_for(path)
    payload = _dicom_bytes(ds, pydicom)
    return write_atomic(path, lambda tmp: tmp.write_bytes(payload))


def _check_same_shape(path: Path, v: np.ndarray, like: VolumeSignal) -> None:
    want = tuple(like.tensor.shape[2:])
    if v.shape != want:
        raise NStyleError(f"{path}: volume shape {_shape_str(v.shape)} differs from the content's {_shape_str(want)}")


def _save_nifti(v: np.ndarray, path: Path, like: VolumeSignal) -> Path:
    nib = _nibabel(path)
    meta = like.meta
    if meta.get("format") == "nifti":
        img0 = meta["image"]
        header = meta["header"].copy()
        dtype = meta["dtype"]
        # nibabel moves scl_slope/scl_inter from the loaded header to the data proxy
        slope, inter = getattr(img0.dataobj, "slope", None), getattr(img0.dataobj, "inter", None)
        scaled = dtype.kind in "iu" and not (slope in (None, 1.0) and inter in (None, 0.0))
        if scaled:  # stored integers with the content's scl_slope/scl_inter
            slope, inter = float(slope), float(inter or 0.0)
            data = _to_dtype((v - inter) / slope, dtype)
        else:  # integers rounded and clipped, or floats
            data = _to_dtype(v, dtype)
        header.set_data_dtype(dtype)
        img = type(img0)(data.astype(dtype.newbyteorder("=")), meta["affine"], header=header)
    else:
        affine = meta.get("affine")
        if affine is None:
            affine = np.eye(4)
            if meta.get("format") == "dicom":
                warnings.warn(f"{path}: the DICOM content has no geometry; writing an identity affine", stacklevel=2)
        dtype = np.dtype(meta.get("dtype", np.float32))
        if dtype.kind not in "iuf" or dtype.itemsize > 8:
            dtype = np.dtype(np.float32)
        img = nib.Nifti1Image(_to_dtype(v, dtype), affine)
        img.header.set_data_dtype(dtype)
        code = 1 if meta.get("format") == "dicom" else 0  # 1: scanner coordinates
        img.set_qform(affine, code=code)
        img.set_sform(affine, code=code)
    try:
        payload = img.to_bytes()
        if meta.get("format") == "nifti" and scaled:
            # nibabel writes integers unscaled; put the content's scaling back in the header
            hdr = type(img).from_bytes(payload).header
            hdr.set_slope_inter(slope, inter)
            buf = io.BytesIO()
            hdr.write_to(buf)
            head = buf.getvalue()
            payload = head + payload[len(head):]
    except Exception as e:  # noqa: BLE001
        raise NStyleError(f"{path}: cannot encode the NIfTI image ({type(e).__name__}: {e})") from None
    if _ext(path) == ".nii.gz":
        payload = gzip.compress(payload, mtime=0)
    return write_atomic(path, lambda tmp: tmp.write_bytes(payload))


def _with_pixels(ds, v: np.ndarray, scaling: tuple[float, float], pixel_dtype: np.dtype, path: Path):
    """A copy of ``ds`` holding ``v`` (file units) as stored values, with a new SOP Instance UID."""
    pydicom = pydicom_for(path)
    slope, inter = scaling
    stored = _to_dtype((v - inter) / slope, pixel_dtype)
    ds = copy.deepcopy(ds)
    fm = getattr(ds, "file_meta", None)
    if fm is not None and "TransferSyntaxUID" in fm:
        ts = fm.TransferSyntaxUID
        if ts.is_compressed or not ts.is_little_endian:
            fm.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    stored = stored.astype(stored.dtype.newbyteorder("<"))
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated <= 8 else "OW"
    for kw in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        if kw in ds:
            del ds[kw]
    uid = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = uid
    if fm is not None and "MediaStorageSOPInstanceUID" in fm:
        fm.MediaStorageSOPInstanceUID = uid
    return ds


def _dicom_bytes(ds, pydicom) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds)
    return buf.getvalue()


def _save_dicom_series(v: np.ndarray, path: Path, like: VolumeSignal) -> Path:
    meta = like.meta  # check_output made sure it is a DICOM series
    _check_same_shape(path, v, like)
    pydicom = pydicom_for(path)
    check_replaceable_folder(path, DICOM_EXTS)
    if not path.parent.is_dir():
        raise NStyleError(f"{path}: output folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise NStyleError(f"{path}: output folder {path.parent} is not writable")
    payloads = []
    for k, (ds, scaling) in enumerate(zip(meta["datasets"], meta["scalings"])):
        out = _with_pixels(ds, v[k], scaling, meta["pixel_dtype"], path)
        payloads.append((f"slice_{k:04d}.dcm", _dicom_bytes(out, pydicom)))
    payloads.append((OUTPUT_MARKER, b"DICOM slices written by nstyle; nstyle may replace this folder\n"))
    return write_folder_atomic(path, dict(payloads))
