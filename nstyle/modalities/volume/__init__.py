"""3D volumes: NIfTI, DICOM (series or multi-frame) and ``.npy`` in and out (``io``),
their intensities to [0, 1] and back (``intensity``), and a PNG of their mid-slices
(``preview``). The public names of those modules are re-exported here.

Note: ``preview`` here is the function; the module is ``nstyle.modalities.volume.preview``
in ``sys.modules`` (``from nstyle.modalities.volume.preview import PREVIEW_CELL`` works).
"""

from __future__ import annotations

from .intensity import from_unit, intensity_range, to_unit
from .io import (
    ALL_EXTS,
    DICOM_EXTS,
    NIFTI_EXTS,
    NPY_EXTS,
    VolumeSignal,
    check_output,
    load_mask,
    load_volume,
    read_raw,
    save_volume,
)
from .preview import PREVIEW_CELL, PREVIEW_LABEL_H, preview

__all__ = [
    "ALL_EXTS",
    "DICOM_EXTS",
    "NIFTI_EXTS",
    "NPY_EXTS",
    "PREVIEW_CELL",
    "PREVIEW_LABEL_H",
    "VolumeSignal",
    "check_output",
    "from_unit",
    "intensity_range",
    "load_mask",
    "load_volume",
    "preview",
    "read_raw",
    "save_volume",
    "to_unit",
]
