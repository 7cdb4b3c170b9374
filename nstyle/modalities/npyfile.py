"""Reading ``.npy`` arrays safely, for series and volumes alike.

The header is read first: a file whose header claims more values than it holds, or more
than the run's memory limit allows (``nstyle.resources``), is refused before NumPy
allocates the array it describes. Pickled objects are never loaded; only real numbers
(bool, integers, floats) are accepted, and an axis of length 0 is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NStyleError
from ..resources import check_bytes


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from the file's header alone."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
        except ValueError:
            raise NStyleError(f"{path}: corrupt or not a .npy file (no NumPy header)") from None
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        else:
            shape, _, dtype = fmt.read_array_header_2_0(f)
        return tuple(shape), dtype, f.tell()


def read_npy(path: Path, fix: str) -> np.ndarray:
    """The array in ``path``; NStyleError naming the file for anything wrong with it.
    ``fix`` says what to change when the array would not fit the memory limit."""
    try:
        shape, dtype, offset = _header(path)
    except NStyleError:
        raise
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except Exception as e:  # noqa: BLE001 -- a damaged header raises many kinds
        raise NStyleError(f"{path}: corrupt .npy header ({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        raise NStyleError(f"{path}: holds Python objects, not numbers (refused: pickled data)")
    if dtype.kind not in "biuf":
        raise NStyleError(f"{path}: holds {dtype} data, not real numbers")
    if any(n == 0 for n in shape):
        raise NStyleError(f"{path}: array of shape {shape} is empty")
    count = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if count * dtype.itemsize > path.stat().st_size - offset:
        raise NStyleError(f"{path}: corrupt or truncated .npy file (its header claims {shape} {dtype} values)")
    check_bytes(f"{path}: its {shape} array", count * 8 * 2, fix)  # float64 working copies
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise NStyleError(f"{path}: not a readable .npy array ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):
        raise NStyleError(f"{path}: not a single .npy array")
    return arr
