"""The volume preview: a PNG of each volume's three orthogonal mid-slices, one row per volume."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ...errors import NStyleError
from ...outputs.atomic import write_atomic

# Preview: each mid-slice is scaled to fit a square cell of this many pixels, under a
# label band of PREVIEW_LABEL_H pixels per row.
PREVIEW_CELL = 256
PREVIEW_LABEL_H = 16


def _mid_slices(t: torch.Tensor) -> list[np.ndarray]:
    a = t.detach().to("cpu", torch.float32).numpy()
    while a.ndim > 3:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"preview needs (1, 1, D, H, W) or (D, H, W) volumes, got {tuple(t.shape)}")
    d, h, w = a.shape
    return [a[d // 2], a[:, h // 2], a[:, :, w // 2]]


def preview(volumes: list[torch.Tensor], labels: list[str], path: str | Path) -> Path:
    """A PNG: one row per volume, its three orthogonal mid-slices (D, H, W axis) side by side.

    Each slice ([0, 1] -> grey) is scaled to fit a PREVIEW_CELL square cell, keeping its
    aspect in voxels; each row has a PREVIEW_LABEL_H band above it with its label. The
    image is 3 * PREVIEW_CELL wide and len(volumes) * (PREVIEW_CELL + PREVIEW_LABEL_H) high.
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    if len(volumes) != len(labels):
        raise NStyleError(f"{path}: {len(volumes)} volumes but {len(labels)} labels")
    if not volumes:
        raise NStyleError(f"{path}: no volumes to preview")
    cell, band = PREVIEW_CELL, PREVIEW_LABEL_H
    sheet = Image.new("L", (3 * cell, len(volumes) * (cell + band)), 0)
    draw = ImageDraw.Draw(sheet)
    for r, (vol, label) in enumerate(zip(volumes, labels)):
        top = r * (cell + band)
        draw.text((4, top + 2), str(label), fill=255)
        for c, sl in enumerate(_mid_slices(vol)):
            g = (np.nan_to_num(np.clip(sl, 0.0, 1.0)) * 255.0 + 0.5).astype(np.uint8)
            im = Image.fromarray(g)
            h, w = g.shape
            s = cell / max(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            im = im.resize(size, Image.NEAREST)
            sheet.paste(im, (c * cell + (cell - size[0]) // 2, top + band + (cell - size[1]) // 2))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    payload = buf.getvalue()
    return write_atomic(path, lambda tmp: tmp.write_bytes(payload))
