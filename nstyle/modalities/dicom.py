"""DICOM access shared by the series (ECG waveforms) and volume (slices) modalities."""

from __future__ import annotations

from pathlib import Path

from ..errors import NStyleError


def pydicom_for(path: Path):
    """The pydicom module, or a one-line error naming the file that needed it."""
    try:
        import pydicom
    except ImportError:
        raise NStyleError(f"{path}: reading and writing DICOM needs pydicom (pip install pydicom)") from None
    return pydicom


def read_dataset(path: Path):
    """``pydicom.dcmread(path)`` with every failure turned into one line naming the file."""
    pydicom = pydicom_for(path)
    try:
        return pydicom.dcmread(path)
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except pydicom.errors.InvalidDicomError as e:
        raise NStyleError(f"{path}: not a DICOM file ({e})") from None
    except Exception as e:  # noqa: BLE001 -- pydicom raises many kinds on corrupt files
        raise NStyleError(f"{path}: corrupt DICOM file ({type(e).__name__}: {e})") from None
