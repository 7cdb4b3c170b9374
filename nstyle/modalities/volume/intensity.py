"""Volume intensities to [0, 1] and back: pure functions on arrays, no files.

The raw values ``low``..``high`` map to 0..1 (clipped): a ``window`` when given (CT in
Hounsfield units, e.g. (-1000, 1000)), else the given percentiles of the voxels (robust,
for MR). ``from_unit`` is the inverse: v = low + x * (high - low), x clipped to [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import NStyleError


def intensity_range(
    v: np.ndarray,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    source: object = "",
) -> tuple[float, float]:
    """(low, high): the raw values that map to 0 and 1.

    ``window=(lo, hi)`` is checked and returned as floats; without it, the ``percentiles``
    of ``v`` are lo and hi. ``source`` (a path) prefixes the error messages.
    """
    path = source
    if window is not None:
        try:
            lo, hi = (float(w) for w in window)
        except (TypeError, ValueError):
            raise NStyleError(f"{path}: window must be two numbers (low, high), got {window!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise NStyleError(f"{path}: window low {lo:g} must be below high {hi:g}")
    else:
        try:
            p_lo, p_hi = (float(p) for p in percentiles)
        except (TypeError, ValueError):
            raise NStyleError(f"{path}: percentiles must be two numbers, got {percentiles!r}") from None
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise NStyleError(f"{path}: percentiles must satisfy 0 <= low < high <= 100, got ({p_lo:g}, {p_hi:g})")
        lo, hi = (float(q) for q in np.percentile(v, [p_lo, p_hi]))
        if hi <= lo:
            raise NStyleError(
                f"{path}: flat volume (the {p_lo:g}th and {p_hi:g}th percentiles are both {lo:g}); "
                "give a window or other percentiles"
            )
    return lo, hi


def to_unit(v: np.ndarray, low: float, high: float) -> np.ndarray:
    """Raw values -> float32 in [0, 1]: (v - low) / (high - low), clipped."""
    return np.clip((v - low) / (high - low), 0.0, 1.0).astype(np.float32)


def from_unit(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """[0, 1] -> raw values: low + x * (high - low), x clipped to [0, 1] first."""
    return low + np.clip(x, 0.0, 1.0) * (high - low)
