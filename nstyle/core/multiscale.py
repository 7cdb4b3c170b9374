"""Coarse-to-fine: optimise G at small scales first, then upsample it to the next.

At a coarse scale one evaluation is cheap (cost ∝ pixels) and the network's deep layers
see the whole picture, so the large structures of the style settle in a few cheap steps;
each finer scale then only has to add detail. crowsonkb's style-transfer-pytorch starts
at 128 px and grows by √2 per scale; nstyle does the same by default. The schedule is in
units of the signal's long side and works for any number of spatial axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import NStyleError

# 128 px is where VGG's relu5_1 (stride 16) still has an 8 x 8 grid to compute a Gram
# over; √2 per scale halves the pixel count between scales, so every coarse scale
# together costs less than one step at the final scale per step taken.
DEFAULT_START = 128
DEFAULT_FACTOR = math.sqrt(2)

ScaleSpec = str | Sequence[int] | None


def scale_schedule(size: int, start: int = DEFAULT_START, factor: float = DEFAULT_FACTOR) -> list[int]:
    """Long sides ``start, start·factor, …`` below ``size``, then ``size`` itself."""
    if factor <= 1:
        raise NStyleError(f"scale factor must be > 1, got {factor}")
    sides: list[int] = []
    side = float(start)
    # A scale within 20% of the target adds a step for almost no new detail: skip it.
    while side * 1.2 <= size:
        sides.append(round(side))
        side *= factor
    return [*sides, int(size)]


def parse_scales(spec: ScaleSpec, size: int, start: int = DEFAULT_START) -> list[int]:
    """The long side of every scale, ending at ``size``.

    ``"auto"``: ``scale_schedule(size, start)``; ``None``, ``"none"`` or ``"1"``: one scale;
    ``"128,256,512"`` or a list: those sides (increasing; ``size`` is appended if missing).
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", "off", "1", "")):
        return [int(size)]
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        return scale_schedule(size, start)
    if isinstance(spec, str):
        try:
            sides = [int(p) for p in spec.split(",") if p.strip()]
        except ValueError:
            raise NStyleError(f"scales {spec!r}: give 'auto', 'none' or long sides like 128,256,512") from None
    else:
        sides = [int(p) for p in spec]
    if any(s < 16 for s in sides):
        raise NStyleError(f"scales {spec!r}: every scale needs at least 16 pixels on the long side")
    if any(b <= a for a, b in zip(sides, sides[1:])):
        raise NStyleError(f"scales {spec!r}: long sides must increase")
    if sides and sides[-1] > size:
        raise NStyleError(f"scales {spec!r}: the last scale is larger than the output ({size} px)")
    return [s for s in sides if s < size] + [int(size)]


def scaled_shape(shape: Sequence[int], long_side: int) -> tuple[int, ...]:
    """Spatial ``shape`` resized so its longest axis is ``long_side``, aspect kept."""
    k = long_side / max(shape)
    return tuple(max(1, round(n * k)) for n in shape)


def resize(x: torch.Tensor, shape: Sequence[int], smooth: bool = True) -> torch.Tensor:
    """Resize (N, C, *spatial) to ``shape``: bicubic in 2D (``smooth``), else (bi/tri)linear.

    Linear interpolation keeps non-negative values non-negative, which optimiser state
    such as Adam's second moments needs; bicubic is sharper for G itself.
    """
    dims = x.dim() - 2
    mode = "bicubic" if smooth and dims == 2 else {1: "linear", 2: "bilinear", 3: "trilinear"}[dims]
    if tuple(x.shape[2:]) == tuple(shape):
        return x
    y = F.interpolate(x.float(), size=tuple(shape), mode=mode, align_corners=False)
    return y.to(x.dtype)


def upscale(
    g: torch.Tensor, shape: Sequence[int], detail: torch.Tensor | None = None,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    """G from a coarser scale on the grid ``shape``, plus (if given) the band of ``detail``
    (this scale's initial signal) that the coarser grid could not hold; clamped to ``bounds``.

    Upsampling alone gives a blurred G whose finest layers (relu1_1, relu2_1) are far from
    both C and S; adding back detail − up(down(detail)) — the content's fine detail for a
    content start — begins each scale where a single-scale run would begin at that band.
    """
    up = resize(g, shape)
    if detail is not None:
        up = up + detail - resize(resize(detail, g.shape[2:]), shape)
    return up.clamp(*bounds) if bounds is not None else up


def shrink(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``x`` (N, C, *spatial) on a coarser grid, antialiased: bicubic with antialiasing in 2D,
    the mean over each cell (area) in 1D and 3D, where torch has no antialiased
    interpolation; plain (bi/tri)linear where a grid grows."""
    shape = tuple(int(n) for n in shape)
    if tuple(x.shape[2:]) == shape:
        return x
    if x.dim() == 4:
        return F.interpolate(x, size=shape, mode="bicubic", align_corners=False, antialias=True)
    if all(n <= m for n, m in zip(shape, x.shape[2:])):
        return F.interpolate(x, size=shape, mode="area")
    return resize(x, shape)
