"""What the page shows of a signal: a picture (image, spectrogram, mid-slices) or traces.

``view(kind, x, settings)`` turns a G (live, in the domain it is optimised in) or a result
(in the output's units) into a ``View``: JPEG/PNG bytes for pictures, or a few hundred
points per lead for series, which the page draws itself. Everything here is cheap next to
one network evaluation (a 512 px JPEG is a few milliseconds), and runs only when a page is
watching.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

# Series: points per lead sent to the page (enough for a 1000 px wide trace).
TRACE_POINTS = 800
# Spectrograms and mid-slices are drawn this many pixels high.
PICTURE_HEIGHT = 256
SPECTROGRAM_WIDTH = 768


@dataclass
class View:
    mime: str  # image/jpeg, image/png, or application/json (traces)
    data: bytes | list[list[float]]


def view(kind: str, x: torch.Tensor, settings: Any, live: bool = True) -> View:
    """The page's view of ``x`` (1, channels, *grid) for a run of ``kind``."""
    x = x.detach().to("cpu", torch.float32)
    if kind == "series":
        return View("application/json", traces(x))
    if kind == "image":
        picture = rgb(x)
    elif kind == "audio":
        waveform = not (live and getattr(settings, "mode", "waveform") == "magnitude")
        picture = spectrogram(x, getattr(settings, "n_fft", 1024), getattr(settings, "hop", 256), waveform)
    else:
        picture = mid_slices(x, already_unit=live)
    return View(*encode(picture, "JPEG" if live and kind == "image" else "PNG"))


def encode(picture: np.ndarray, fmt: str) -> tuple[str, bytes]:
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {"compress_level": 1}))
    return f"image/{fmt.lower()}", buf.getvalue()


def rgb(x: torch.Tensor) -> np.ndarray:
    """(1, 3 or 1, H, W) in [0, 1] to (H, W, 3) uint8."""
    a = x[0].clamp(0, 1)
    if a.shape[0] != 3:
        a = a[:1].expand(3, *a.shape[1:])
    return (a.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def spectrogram(x: torch.Tensor, n_fft: int, hop: int, waveform: bool = True) -> np.ndarray:
    """log(1 + |STFT|) of the first channel of a waveform (or the first channel's rows of a
    stacked log-magnitude), low frequencies at the bottom, magma colours."""
    if waveform:
        window = torch.hann_window(n_fft)
        signal = x[0, 0]
        if signal.numel() < n_fft:
            signal = torch.nn.functional.pad(signal, (0, n_fft - signal.numel()))
        mag = torch.log1p(torch.stft(signal, n_fft, hop, window=window, return_complex=True).abs())
    else:
        mag = x[0, : n_fft // 2 + 1].abs()
    a = mag.numpy()
    a = a / max(float(a.max()), 1e-8)
    picture = colour(np.flipud(a))
    width = min(SPECTROGRAM_WIDTH, max(picture.shape[1], 64))
    return np.asarray(Image.fromarray(picture).resize((width, PICTURE_HEIGHT), Image.Resampling.BILINEAR))


def colour(a: np.ndarray) -> np.ndarray:
    """[0, 1] values to magma RGB uint8."""
    from matplotlib import colormaps

    return (colormaps["magma"](np.clip(a, 0, 1))[..., :3] * 255 + 0.5).astype(np.uint8)


def mid_slices(x: torch.Tensor, already_unit: bool = True) -> np.ndarray:
    """The three orthogonal mid-slices of a volume side by side, grey; values outside [0, 1]
    (a result in the scanner's units) are first mapped by their 1st-99th percentiles."""
    v = x.reshape(x.shape[-3:])
    if not already_unit:
        v = unit(v)
    d, h, w = v.shape
    cells = [slice_picture(s) for s in (v[d // 2], v[:, h // 2], v[:, :, w // 2])]
    return np.concatenate(cells, axis=1)


def unit(v: torch.Tensor) -> torch.Tensor:
    """Values mapped to [0, 1] by their 1st and 99th percentiles."""
    flat = v.flatten()
    if flat.numel() > 1_000_000:
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    lo, hi = torch.quantile(flat, torch.tensor([0.01, 0.99])).tolist()
    return ((v - lo) / max(hi - lo, 1e-8)).clamp(0, 1)


def slice_picture(s: torch.Tensor) -> np.ndarray:
    """One slice in [0, 1] as a PICTURE_HEIGHT square grey cell (RGB), aspect kept."""
    g = (s.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    h, w = g.shape
    scale = PICTURE_HEIGHT / max(h, w)
    im = Image.fromarray(g).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    cell = Image.new("L", (PICTURE_HEIGHT, PICTURE_HEIGHT), 0)
    cell.paste(im, ((PICTURE_HEIGHT - im.width) // 2, (PICTURE_HEIGHT - im.height) // 2))
    return np.asarray(cell.convert("RGB"))


def volume_slice(x: torch.Tensor, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` along ``axis`` (0, 1, 2) of a result volume, mapped to [0, 1]."""
    v = unit(x.reshape(x.shape[-3:]).float())
    index = max(0, min(int(index), v.shape[axis] - 1))
    return slice_picture(v.select(axis, index))


def traces(x: torch.Tensor) -> list[list[float]]:
    """Each lead of (1, leads, T) at most TRACE_POINTS points (every k-th sample)."""
    a = x[0]
    step = max(1, -(-a.shape[-1] // TRACE_POINTS))
    return [[round(float(v), 4) for v in lead[::step]] for lead in a]
