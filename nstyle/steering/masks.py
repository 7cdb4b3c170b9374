"""Spatial masks, for images and volumes alike: regions of the content mapped to different
styles or left untouched.

A mask is a grey or colour image of the content's shape (or, for a volume, a volume of
its shape, ``RegionMask.binary``); each distinct grey value or colour is one region.
``load_mask`` reads it into labels 0..R-1 at the output's size,
``region_weights`` gives every region's share of each position of a layer's grid (the
position weights of per-region style statistics), ``parse_mask_styles`` says which style
image each region gets (or None: the region keeps the content) and ``composite`` makes
the final image: G where styled, C exactly where untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import NStyleError
from ..modalities.image import ImageLike, hwc_array, open_image

MaskLike = ImageLike  # a path, PIL image, array or tensor, as for images
Value = int | float | tuple  # a region's grey value, or its colour (R, G, B)

# Anti-aliased or slightly blurred edges put a few pixels of every in-between value along
# each border; a region someone painted covers far more. Values under this share of the
# pixels are therefore edge pixels and join a region they border (an edge pixel is a
# blend of the two sides, not a region of its own: see _assign_edges). 0.5% of a
# 512 x 512 mask is 1311 pixels: over two full rows, more than any one value of a
# feathered straight edge holds; and a region that small (a 36 x 36 square) covers only
# about 2 x 2 positions of relu5_1's grid (16 pixels each): too few for a style of its own.
RARE_FRACTION = 0.005
# A straight anti-aliased border in a small mask can hold over 0.5% of the pixels in one
# in-between value (one column of a 100-pixel-wide mask is 1%). Such a value is a line
# one or two pixels wide: it has no pixel whose 3 x 3 neighbourhood is all that value.
# Values that thin and under this share are edges too; a painted region has an interior.
THIN_FRACTION = 0.05
# The edge values of a mask are its borders: even a disc blurred with sigma = 2.3% of
# the image side leaves 45% of its pixels in between. A photo has no flat regions: in
# scikit-image's samples 89% to 100% of the pixels are in colours under 0.5% each. More
# than this share of edge pixels is no mask, and merging them would invent regions.
MAX_EDGE_FRACTION = 0.5
# Each region costs its own style statistics at every style layer. A hand-painted mask
# needs a few regions; more than 8 means a photo or a blurred mask was given by mistake.
MAX_REGIONS = 8
# The mask may differ from the content's shape by rounding, not by its aspect ratio:
# a mask stretched to another aspect is almost surely the wrong file.
ASPECT_SLACK = 0.02
# Width in pixels of the blend from C (at the border of an untouched region) to G inside
# the styled region. A hard edge between stylised and raw pixels shows as a seam;
# a ramp of 4 pixels (steps of 20%) is wider than the finest textures the style layers
# match (relu1_1 sees 3 x 3 pixels, relu1_2 5 x 5), so the step is no longer a line, and
# narrow enough that the styled region keeps its style up to 4 pixels from the border.
DEFAULT_FEATHER = 4


@dataclass
class RegionMask:
    """Regions of a signal: ``labels`` (*spatial), e.g. (H, W), int64 in 0..R-1, region r being ``values[r]``.

    ``values`` are the source's grey values (ints, or floats for float arrays) or colours
    ((R, G, B) tuples), sorted by value / by (R, G, B): region 0 is the darkest grey, or
    the colour first in that order. ``source`` names the file or object, for messages.
    """

    labels: torch.Tensor
    values: list[Value]
    source: str = "<array>"

    @property
    def n_regions(self) -> int:
        return len(self.values)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.labels.shape)

    @classmethod
    def binary(cls, inside: np.ndarray | torch.Tensor, source: str = "<array>") -> RegionMask:
        """Two regions of any number of axes: 0 where ``inside`` is false, 1 where it is true
        (with one style, ``parse_mask_styles`` styles region 1 and leaves region 0 alone)."""
        labels = torch.as_tensor(np.asarray(inside, dtype=bool)).long()
        return cls(labels, [0, 1], source)

    def describe(self, region: int) -> str:
        """``"value 255"`` or ``"colour (255, 0, 0)"``: region ``region`` as the user painted it."""
        v = self.values[region]
        return f"colour {v}" if isinstance(v, tuple) else f"value {v}"

    def fractions(self) -> list[float]:
        """Share of the mask's pixels in each region (at the mask's loaded size)."""
        counts = torch.bincount(self.labels.flatten().cpu(), minlength=self.n_regions)
        return (counts.double() / self.labels.numel()).tolist()


def load_mask(src: MaskLike, shape: tuple[int, int], name: str | None = None) -> RegionMask:
    """Read a grey or colour mask and resize it to ``shape`` = (H, W) (nearest neighbour).

    ``src``: a file Pillow reads, a PIL image, an array (H, W) or (H, W, 3) (any integer,
    bool or float dtype, used as is: integer labels work) or a tensor (H, W), (C, H, W)
    or (1, C, H, W) with C = 1 or 3. Colour masks whose three channels are equal are grey
    masks. An alpha channel is composited onto black (transparent = black). 16-bit and
    float images keep their own values.

    Regions are the distinct values or colours, found at the mask's own resolution (so
    the regions, and what ``parse_mask_styles`` maps, are the same at every output size)
    after merging edge values: those covering under ``RARE_FRACTION`` of the pixels, or
    under ``THIN_FRACTION`` and only a line one or two pixels wide. Each edge pixel joins
    the nearest region it borders (grown outwards from the regions; where two reach it
    at once, the one nearest in value, Euclidean in RGB). The labels are then resized
    with NEAREST, which makes no in-between values; a small region may vanish at a
    small ``shape``.

    Raises ``NStyleError`` naming the source for: a missing or unreadable file, an
    aspect ratio other than ``shape``'s, over ``MAX_EDGE_FRACTION`` of the pixels in
    edge values (a photo), more than ``MAX_REGIONS`` regions, and a single
    region (nothing to separate: with one region an all-black and an all-white mask would
    both be stylised whole, contrary to the binary convention that black is untouched,
    and no mask is the plain way to stylise everything).
    """
    label = name or (str(src) if isinstance(src, (str, Path)) else f"<{type(src).__name__}>")
    hw = _check_shape(shape)
    if isinstance(src, (str, Path)):
        keys = _pil_keys(open_image(Path(src)), label)
    elif isinstance(src, Image.Image):
        keys = _pil_keys(ImageOps.exif_transpose(src), label)
    elif isinstance(src, (np.ndarray, torch.Tensor)):
        keys = _array_keys(src, label)
    else:
        raise NStyleError(f"{label}: cannot use a {type(src).__name__} as a mask")
    _check_aspect(keys.shape[:2], hw, label)
    values, labels = _regions(keys, label)
    return RegionMask(torch.from_numpy(_resize_nearest(labels, hw)).long(), values, label)


def region_weights(
    mask: RegionMask,
    spatial: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(R, 1, *spatial): the share of each region in each position of a layer's grid.

    w_r(q) = (1/|P(q)|) · Σ_{p ∈ P(q)} [label(p) = r], with P(q) the mask samples of grid
    cell q: adaptive average pooling of the one-hot labels, whose cells are
    [floor(i·H/h), ceil((i+1)·H/h)) along each axis (exact area fractions when h divides
    H). Σ_r w_r(q) = 1 at every position. ``weights[r:r+1]`` broadcasts against a layer's
    activations (N, C, *grid). Any number of axes (2 for an image, 3 for a volume).
    """
    size = tuple(int(s) for s in spatial)
    if len(size) != mask.labels.dim() or min(size) < 1:
        raise ValueError(f"region_weights: the mask has {mask.labels.dim()} axes, got spatial size {tuple(spatial)}")
    pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[len(size)]
    labels = mask.labels if device is None else mask.labels.to(device)
    # Pool in float32 at least: half-precision sums of many 0/1 pixels lose the fractions.
    work = torch.promote_types(dtype, torch.float32)
    out = torch.empty((mask.n_regions, 1, *size), dtype=dtype, device=labels.device)
    for r in range(mask.n_regions):  # one region at a time: R one-hot maps at 4096² would be 0.5 GB
        one_hot = (labels == r).to(work)[None, None]
        out[r] = pool(one_hot, size)[0].to(dtype)
    return out


def layer_region_weights(mask: RegionMask, acts: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``region_weights`` at the grid of every layer in ``acts`` ({name: (N, C, h, w)}), on its device."""
    cache: dict[tuple[int, ...], torch.Tensor] = {}
    out = {}
    for name, a in acts.items():
        key = tuple(a.shape[2:])
        if key not in cache:
            cache[key] = region_weights(mask, key, device=a.device)
        out[name] = cache[key]
    return out


def parse_mask_styles(
    spec: str | Sequence[int | None] | None, n_regions: int, n_styles: int
) -> list[int | None]:
    """Which style image (0-based) each region gets; None leaves the region untouched.

    ``spec`` None: region i gets style i when there are as many regions as styles; with
    one style and two regions (a binary mask) the darker/first region is untouched and
    the other stylised (white = stylise). A string is the CLI form ``"1,2,-"``: one entry
    per region in ``load_mask``'s order, style numbers from 1, ``-`` for untouched. A
    sequence holds 0-based indices or None. At least one region must be stylised and
    every style image must be used (an unused one is almost surely a miscounted list).
    """
    if n_styles < 1:
        raise NStyleError("a mask needs at least one style image")
    if spec is None:
        if n_regions == n_styles:
            return list(range(n_regions))
        if n_styles == 1 and n_regions == 2:
            return [None, 0]
        if n_styles > n_regions:
            raise NStyleError(
                f"the mask has {n_regions} regions but there are {n_styles} style images: "
                "each style image needs a region of its own"
            )
        example = ",".join([str(i + 1) for i in range(n_styles)] + ["-"] * (n_regions - n_styles))
        raise NStyleError(
            f"the mask has {n_regions} regions and there are {n_styles} style images: say which style each "
            f"region gets with --mask-styles, one entry per region in the mask's order (darkest grey first, "
            f"colours by R, G, B), e.g. {example} ('-' leaves a region untouched)"
        )
    if isinstance(spec, str):
        styles = [_parse_entry(part.strip(), i, n_styles) for i, part in enumerate(spec.split(","))]
    else:
        styles = [_check_index(v, i, n_styles) for i, v in enumerate(spec)]
    if len(styles) != n_regions:
        raise NStyleError(
            f"--mask-styles {_show(spec)} has {len(styles)} entries but the mask has {n_regions} regions"
        )
    if all(s is None for s in styles):
        raise NStyleError(f"--mask-styles {_show(spec)} leaves every region untouched: nothing to stylise")
    unused = sorted(set(range(n_styles)) - {s for s in styles if s is not None})
    if unused:
        raise NStyleError(
            f"--mask-styles {_show(spec)} gives no region to style image "
            f"{', '.join(str(u + 1) for u in unused)} (of {n_styles})"
        )
    return styles


def blend_weight(mask: RegionMask, untouched: Sequence[bool], feather: int = DEFAULT_FEATHER) -> torch.Tensor:
    """(1, 1, *spatial) float32: how much of G each sample of the final signal takes.

    w(p) = min(d(p), feather + 1) / (feather + 1), d(p) the chessboard distance from p to
    the nearest untouched pixel (0 on untouched pixels, ∞ when no region is untouched):
    exactly 0 on every untouched pixel, exactly 1 more than ``feather`` pixels inside a
    styled region, a linear ramp in between. The ramp lies inside the styled regions so
    that untouched regions keep the content everywhere, up to their border.
    """
    if len(untouched) != mask.n_regions:
        raise ValueError(f"untouched has {len(untouched)} entries for {mask.n_regions} regions")
    if isinstance(feather, bool) or not isinstance(feather, (int, np.integer)) or feather < 0:
        raise NStyleError(f"mask feather must be a whole number of pixels >= 0, got {feather!r}")
    keep = torch.tensor([bool(u) for u in untouched], device=mask.labels.device)
    max_pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[mask.labels.dim()]
    near = keep[mask.labels].float()[None, None]  # 1 on untouched pixels
    w = 1.0 - near
    if feather == 0 or not keep.any():
        return w
    total = w.clone()
    for _ in range(int(feather)):
        # After k dilations ``near`` is 1 within chessboard distance k of an untouched pixel.
        near = max_pool(near, 3, stride=1, padding=1)
        total += 1.0 - near
    return total / (feather + 1)


def composite(
    g: torch.Tensor,
    content: torch.Tensor,
    mask: RegionMask,
    untouched: Sequence[bool],
    feather: int = DEFAULT_FEATHER,
) -> torch.Tensor:
    """The final signal w·G + (1 − w)·C, w = ``blend_weight``; G, C (N, C, *spatial), mask (*spatial).

    Untouched pixels are C bit for bit (0·G + 1·C), styled pixels more than ``feather``
    from an untouched region are G bit for bit. A few pixels of blend hide the seam a
    hard edge between stylised and raw pixels shows.
    """
    if g.shape != content.shape:
        raise ValueError(f"composite: G {tuple(g.shape)} and content {tuple(content.shape)} differ in shape")
    if tuple(g.shape[2:]) != mask.shape:
        raise ValueError(f"composite: mask {mask.shape} does not match the signal {tuple(g.shape[2:])}")
    w = blend_weight(mask, untouched, feather).to(device=g.device, dtype=g.dtype)
    return w * g + (1 - w) * content.to(device=g.device, dtype=g.dtype)


# --------------------------------------------------------------------------- helpers


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    hw = tuple(int(s) for s in shape)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"load_mask: shape must be (H, W) with H, W >= 1, got {tuple(shape)}")
    return hw  # type: ignore[return-value]


def _pil_keys(im: Image.Image, label: str) -> np.ndarray:
    """(H, W, 1) grey or (H, W, 3) colour values of a PIL image, as stored."""
    w, h = im.size
    if w == 0 or h == 0:
        raise NStyleError(f"{label}: mask is empty ({w}x{h})")
    try:
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im)
            return arr.astype(arr.dtype.newbyteorder("=")).reshape(h, w, 1)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
            rgba = np.asarray(im.convert("RGBA")).astype(np.uint16)
            rgb = ((rgba[..., :3] * rgba[..., 3:] + 127) // 255).astype(np.uint8)  # onto black
        elif im.mode in ("1", "L"):
            rgb = np.asarray(im.convert("L"))[..., None]
        else:
            rgb = np.asarray(im.convert("RGB"))
    except (ValueError, OSError) as e:
        raise NStyleError(f"{label}: cannot read a {im.mode} image as a mask ({e})") from None
    return _grey_if_equal(rgb)


def _array_keys(src: np.ndarray | torch.Tensor, label: str) -> np.ndarray:
    arr = hwc_array(src)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise NStyleError(f"{label}: expected a mask array (H, W) or (H, W, 3), got shape {tuple(src.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise NStyleError(f"{label}: mask is empty ({arr.shape[1]}x{arr.shape[0]})")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise NStyleError(f"{label}: mask holds NaN or infinite values")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise NStyleError(f"{label}: unsupported mask dtype {arr.dtype}")
    return _grey_if_equal(arr)


def _grey_if_equal(arr: np.ndarray) -> np.ndarray:
    """A colour array whose channels are all equal is a grey one."""
    if arr.shape[2] == 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
        return arr[..., :1]
    return arr


def _check_aspect(mask_hw: tuple[int, int], hw: tuple[int, int], label: str) -> None:
    (mh, mw), (h, w) = mask_hw, hw
    # Either side, scaled from the other, may be off by rounding (one pixel or ASPECT_SLACK).
    if abs(mh * w / mw - h) <= max(1.0, ASPECT_SLACK * h) or abs(mw * h / mh - w) <= max(1.0, ASPECT_SLACK * w):
        return
    raise NStyleError(
        f"{label}: the mask is {mw}x{mh} but the content is {w}x{h}: their aspect ratios differ; "
        "make the mask from the content image"
    )


def _unique_rows(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct rows of (P, C), the index of each row's value, and the counts."""
    c = flat.shape[1]
    small_ints = np.issubdtype(flat.dtype, np.integer) and flat.min() >= 0
    if small_ints and flat.max() < 256 ** (3 // c):  # 8-bit colour or up to 24-bit grey
        # One key per row in (R, G, B) order and a histogram of keys: linear time, where
        # np.unique's sort took 9 s for a 4096 x 4096 colour mask (this path: under 1 s).
        key = flat[:, 0].astype(np.int32)
        for ch in range(1, c):
            key = (key << 8) | flat[:, ch]
        counts = np.bincount(key)
        present = np.flatnonzero(counts)
        rank = np.zeros(len(counts), np.int32)
        rank[present] = np.arange(len(present))
        values = present[:, None] if c == 1 else (present[:, None] >> np.array([16, 8, 0])) & 255
        return values, rank[key], counts[present]
    u, inv, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    return u, inv.reshape(-1), counts


def _has_interior(index: np.ndarray, k: int) -> np.ndarray:
    """For each of the k values of ``index`` (H, W): has it a pixel whose 3 x 3 neighbourhood is all it?"""
    h, w = index.shape
    padded = np.pad(index, 1, mode="edge")  # the image border does not thin a region
    inside = np.ones((h, w), dtype=bool)
    for dy in range(3):
        for dx in range(3):
            if (dy, dx) != (1, 1):
                inside &= padded[dy : dy + h, dx : dx + w] == index
    return np.bincount(index[inside], minlength=k) > 0


def _regions(keys: np.ndarray, label: str) -> tuple[list[Value], np.ndarray]:
    """Find the regions and merge edge pixels into them: (sorted region values, labels (H, W) uint8)."""
    h, w, c = keys.shape
    uniq, inv, counts = _unique_rows(keys.reshape(-1, c))
    what = "grey values" if c == 1 else "colours"
    total = h * w
    index = inv.reshape(h, w)
    edge = (counts < RARE_FRACTION * total) | ((counts < THIN_FRACTION * total) & ~_has_interior(index, len(uniq)))
    kept = np.flatnonzero(~edge)
    edge_share = counts[edge].sum() / total
    if edge_share > MAX_EDGE_FRACTION:
        raise NStyleError(
            f"{label}: {edge_share:.0%} of the pixels are in {what} under {RARE_FRACTION:.1%} each: "
            "not a mask of flat regions (is this a photo, or blurred?)"
        )
    values = [_py(uniq[i]) for i in kept]
    if len(kept) > MAX_REGIONS:
        raise NStyleError(
            f"{label}: {len(kept)} regions ({what} covering {RARE_FRACTION:.1%} of the pixels or more); "
            f"a mask has at most {MAX_REGIONS}: paint flat regions, without blur (is this a photo?)"
        )
    if len(kept) == 1:
        v = values[0]
        raise NStyleError(
            f"{label}: mask has one region ({'colour' if isinstance(v, tuple) else 'value'} {v}): "
            "nothing to separate; paint at least two regions, or give no mask"
        )
    u = uniq.astype(np.float64)
    cost = np.stack([((u - u[j]) ** 2).sum(axis=1) for j in kept], axis=1)  # (K, R) squared distances
    region = np.full(len(uniq), -1, np.int16)
    region[kept] = np.arange(len(kept))
    return values, _assign_edges(region[index], index, cost).astype(np.uint8)


def _assign_edges(labels: np.ndarray, index: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Give each edge pixel (label -1) the region it borders, grown outwards from the regions.

    Edge pixels take a label from their 8 neighbours as soon as one has one; where
    several regions reach a pixel in the same step, the one whose value is nearest
    the pixel's (``cost[value index, region]``) wins. A blurred border is thus split
    where the two fronts meet, near its middle, and its in-between values never become
    a third region that does not touch it (the grey of a black / grey / white mask
    would otherwise line every black-white border, being nearest the mid-greys).
    """
    h, w = labels.shape
    labels = labels.copy()
    ys, xs = np.nonzero(labels < 0)
    for _ in range(max(h, w)):  # the fronts cross the whole image in at most this many steps
        if len(ys) == 0:
            break
        near = np.stack(
            [labels[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
            axis=1,
        )  # (n, 9), read before any of this step's updates
        c = np.where(near >= 0, cost[index[ys, xs][:, None], np.maximum(near, 0)], np.inf)
        best = np.argmin(c, axis=1)
        rows = np.arange(len(ys))
        found = np.isfinite(c[rows, best])
        labels[ys[found], xs[found]] = near[rows, best][found]
        ys, xs = ys[~found], xs[~found]
    return labels


def _resize_nearest(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if labels.shape == hw:
        return labels
    im = Image.fromarray(labels).resize((hw[1], hw[0]), Image.Resampling.NEAREST)
    return np.array(im)  # a writable copy: torch.from_numpy warns on read-only arrays


def _py(v: np.ndarray) -> Value:
    """A region's value as plain Python: an int/float for grey, an (R, G, B) tuple for colour."""
    items = [x.item() for x in v]
    return items[0] if len(items) == 1 else tuple(items)


def _parse_entry(text: str, i: int, n_styles: int) -> int | None:
    if text == "-":
        return None
    try:
        number = int(text)
    except ValueError:
        raise NStyleError(
            f"--mask-styles entry {i + 1} is {text!r}: give a style number 1 to {n_styles} or '-' (untouched)"
        ) from None
    if not 1 <= number <= n_styles:
        raise NStyleError(f"--mask-styles entry {i + 1} is {number}: style numbers go from 1 to {n_styles}")
    return number - 1


def _check_index(v: object, i: int, n_styles: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n_styles:
        raise NStyleError(f"mask styles entry {i} is {v!r}: give a style index 0 to {n_styles - 1} or None")
    return int(v)


def _show(spec: str | Sequence[int | None]) -> str:
    return spec if isinstance(spec, str) else repr(list(spec))
