"""2D images in and out with Pillow.

Any input Pillow reads (8- or 16-bit, grey, palette, RGB, RGBA, CMYK; EXIF orientation
applied) becomes an RGB tensor (1, 3, H, W) in [0, 1]. The alpha channel of the content,
if any, is kept and written back with the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import NStyleError
from ..outputs.atomic import write_atomic
from ..resources import current as current_limits
from ..validators import check_input_file

ImageLike = Union[str, Path, Image.Image, np.ndarray, torch.Tensor]

# Float inputs may overshoot [0, 1] by this much (bicubic ringing) and are then clipped.
FLOAT_SLACK = 0.25
SAVE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP"
}


@dataclass
class ImageSignal:
    """An image as the engine sees it, plus what is needed to write it back."""

    tensor: torch.Tensor  # (1, 3, H, W), float32, RGB in [0, 1]
    alpha: torch.Tensor | None = None  # (1, 1, H, W) in [0, 1], if the source had one
    source: str = "<array>"


def load_image(
    src: ImageLike, size: int | None = None, name: str | None = None, enlarge: bool = True
) -> ImageSignal:
    """Read ``src`` (path, PIL image, array (H, W[, C]) or tensor) as RGB in [0, 1].

    ``size`` resizes so the long side is ``size`` pixels (Lanczos), keeping the aspect;
    with ``enlarge=False`` an image already smaller than that keeps its own size.
    """
    label = name or (str(src) if isinstance(src, (str, Path)) else f"<{type(src).__name__}>")
    if isinstance(src, (str, Path)):
        pil = open_image(Path(src), size)
        rgb, alpha = _pil_to_float(pil, label)
    elif isinstance(src, Image.Image):
        rgb, alpha = _pil_to_float(ImageOps.exif_transpose(src), label)
    elif isinstance(src, (np.ndarray, torch.Tensor)):
        rgb, alpha = _array_to_float(src, label)
    else:
        raise NStyleError(f"{label}: cannot use a {type(src).__name__} as an image")
    if size is not None and (enlarge or max(rgb.shape[-2:]) > size):
        rgb = resize_long_side(rgb, size, label)
        if alpha is not None:
            alpha = resize_to(alpha, rgb.shape[-2:])
    return ImageSignal(rgb, alpha, label)


def open_image(path: Path, size: int | None = None) -> Image.Image:
    """Decode ``path`` (refused from its header above the run's pixel limit); given the
    working ``size``, a large image is decoded at a reduced scale where the format allows
    (JPEG's DCT scaling) and box-reduced to at most twice ``size`` before it becomes
    floats, so memory stays near the working size, not the file's."""
    check_input_file(path, "image file")
    limit = current_limits().pixels
    # nstyle's own limit (--max-pixels) replaces Pillow's decompression-bomb guard, whose
    # warning would print before our message and whose error would misname the problem.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > limit:
                raise NStyleError(
                    f"{path}: {w}x{h} is {w * h / 1e6:,.0f} MP, over the limit of {limit / 1e6:,.0f} MP "
                    "(--max-pixels)"
                )
            if size is not None and max(w, h) > 2 * size:
                k = 2 * size / max(w, h)
                im.draft(im.mode if im.mode in ("RGB", "L") else None, (math.ceil(w * k), math.ceil(h * k)))
            im.load()  # decode now so truncated files fail here, not later
            out = ImageOps.exif_transpose(im)
            if size is not None and max(out.size) > 2 * size:
                out = out.reduce(max(out.size) // (2 * size))  # integer box filter, before any float copy
            return out
    except NStyleError:
        raise
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except UnidentifiedImageError:
        raise NStyleError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise NStyleError(f"{path}: corrupt or truncated image ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _pil_to_float(im: Image.Image, label: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    w, h = im.size
    if w == 0 or h == 0:
        raise NStyleError(f"{label}: image is empty ({w}x{h})")
    if im.mode == "F" and not np.isfinite(np.asarray(im)).all():
        raise NStyleError(f"{label}: holds NaN or infinite pixel values")
    try:
        return _pil_to_float_unchecked(im, w, h)
    except (ValueError, OSError) as e:  # e.g. a mode Pillow cannot convert to RGB
        raise NStyleError(f"{label}: cannot read a {im.mode} image as RGB ({e})") from None


def _pil_to_float_unchecked(im: Image.Image, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    alpha = None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if im.mode.startswith("I;16"):
            peak = 65535.0
        elif im.mode == "F" and top <= 1.0:
            peak = 1.0  # float images are taken as [0, 1] when they fit it
        else:
            peak = 255.0 if top <= 255 else 65535.0
        grey = torch.from_numpy(np.clip(arr / peak, 0, 1)).float()
        return grey.expand(3, h, w).unsqueeze(0).contiguous(), None
    if im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        a = np.asarray(im, dtype=np.float32) / 255.0
        alpha = torch.from_numpy(a[..., 3].copy())[None, None]
        arr = a[..., :3]
    else:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].contiguous(), alpha


def hwc_array(src: np.ndarray | torch.Tensor) -> np.ndarray:
    """An array or tensor as a NumPy array (H, W, C): tensors (C, H, W) or (1, C, H, W) are
    moved channels-last (half floats widened: NumPy has no bfloat16), (H, W) gets C = 1."""
    if isinstance(src, torch.Tensor):
        t = src.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 3:
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(src)
    return arr[..., None] if arr.ndim == 2 else arr

def _array_to_float(src: np.ndarray | torch.Tensor, label: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Arrays: (H, W), (H, W, C) with C in 1..4, or tensors (C, H, W) / (1, C, H, W).

    Unsigned integer arrays are scaled by their dtype's maximum (uint8 by 255, uint16 by
    65535); signed integer arrays must hold 0..255 and are scaled by 255. Floats (and
    bools) are taken as [0, 1]: small overshoots, as bicubic resampling makes, are
    clipped, but values far outside (0-255 data, mean/std-normalised tensors) are refused.
    """
    arr = hwc_array(src)
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise NStyleError(f"{label}: expected an image array (H, W), (H, W, C) or (C, H, W), got shape {src.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise NStyleError(f"{label}: image is empty ({arr.shape[1]}x{arr.shape[0]})")
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        x = arr.astype(np.float32) / np.iinfo(arr.dtype).max
    elif np.issubdtype(arr.dtype, np.signedinteger):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise NStyleError(
                f"{label}: {arr.dtype} values {lo}..{hi} are outside 0..255; "
                "pass uint8, uint16 or floats in [0, 1]"
            )
        x = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    else:
        raise NStyleError(f"{label}: unsupported array dtype {arr.dtype}")
    if not np.isfinite(x).all():
        raise NStyleError(f"{label}: image holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
        raise NStyleError(
            f"{label}: float values {lo:g}..{hi:g} are not in [0, 1]"
            + ("; divide 8-bit data by 255" if hi > 2 else "")
        )
    x = np.clip(x, 0.0, 1.0)
    alpha = None
    if x.shape[2] in (2, 4):
        alpha = torch.from_numpy(x[..., -1].copy())[None, None]
        x = x[..., :-1]
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    rgb = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].contiguous()
    return rgb, alpha


def resize_long_side(x: torch.Tensor, size: int, label: str = "image") -> torch.Tensor:
    """Resize (N, C, H, W) so that max(H, W) == size, keeping the aspect ratio."""
    if size < 16:
        raise NStyleError(f"{label}: size {size} is too small (at least 16 pixels)")
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    return resize_to(x, (max(1, round(h * scale)), max(1, round(w * scale))))


def resize_to(x: torch.Tensor, hw: Any) -> torch.Tensor:
    """Antialiased bicubic resize of (N, C, H, W) to ``hw``, clamped to [0, 1]."""
    hw = tuple(int(v) for v in hw)
    if tuple(x.shape[-2:]) == hw:
        return x
    y = torch.nn.functional.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=True)
    return y.clamp(0, 1)


def to_pil(x: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """(1, 3, H, W) float in [0, 1] (clamped) to an 8-bit PIL image, RGBA if ``alpha``."""
    rgb = x.detach().float().cpu().clamp(0, 1)[0].permute(1, 2, 0).numpy()
    arr = np.round(rgb * 255).astype(np.uint8)
    if alpha is None:
        return Image.fromarray(arr, "RGB")
    a = resize_to(alpha.detach().float().cpu(), x.shape[-2:])[0, 0].numpy()
    a8 = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(np.dstack([arr, a8]), "RGBA")


def save_image(x: torch.Tensor, path: str | Path, alpha: torch.Tensor | None = None) -> Path:
    """Write ``x`` atomically; the format follows the extension (PNG, JPEG, TIFF, ...)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise NStyleError(f"{path}: unknown image extension; use one of {', '.join(SAVE_FORMATS)}")
    im = to_pil(x, alpha)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")  # JPEG has no alpha
    options = {"quality": 95} if fmt == "JPEG" else {}

    def write(tmp: Path) -> None:
        try:
            im.save(tmp, format=fmt, **options)
        except (KeyError, ValueError) as e:  # no encoder for the format, or bad mode
            raise NStyleError(f"{path}: cannot write a {im.mode} image as {fmt} ({e})") from None

    return write_atomic(path, write)
