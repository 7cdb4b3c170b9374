"""The checks every entry point (Python API, CLI, ``--config`` files) runs on settings.

Each function takes a value as a user may give it (a number, or the text of a command
line), raises ``NStyleError`` with one line naming the option and what was wrong, and
returns the value in the form the run uses. ``nstyle.options`` calls them when a
settings object is built, so the CLI and the API share every rule and every message.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .errors import NStyleError, NStyleTypeError

#: Names of the starts every kind knows (an image may also start from an image file).
NAMED_INITS = ("noise", "content", "style")


def check_weight(what: str, value: float) -> float:
    """A weight: a finite number >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NStyleError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise NStyleError(f"{what} must be a finite number >= 0, got {value}")
    return v


def check_count(what: str, value: int, low: int = 0, high: int | None = None) -> int:
    """A whole number in [``low``, ``high``] (steps, seeds, sizes); booleans and fractions refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NStyleTypeError(f"{what} must be a whole number, got {value!r}")
    if not math.isfinite(value) or int(value) != value:
        raise NStyleError(f"{what} must be a whole number, got {value!r}")
    if value < low:
        raise NStyleError(f"{what} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise NStyleError(f"{what} must be <= {high:,}, got {value}")
    return int(value)


def check_choice(what: str, value: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise NStyleError(f"unknown {what} {value!r}; choose {', '.join(choices)}")
    return value


def check_init(init: object, allow_file: bool = True) -> object:
    """``noise``, ``content``, ``style`` or (where ``allow_file``) a start to read like the
    content: a path (e.g. an earlier result) or an array."""
    if isinstance(init, str) and init in NAMED_INITS:
        return init
    if allow_file and isinstance(init, str) and _looks_like_path(init):
        return init
    if allow_file and (isinstance(init, (os.PathLike, torch.Tensor)) or type(init).__module__.split(".")[0] in (
        "numpy", "PIL"
    )):
        return init
    what = f"{', '.join(NAMED_INITS)} or a file to start from" if allow_file else ", ".join(NAMED_INITS)
    raise NStyleError(f"unknown --init {init!r}; choose {what}")


def _looks_like_path(text: str) -> bool:
    return Path(text).exists() or "/" in text or "." in text


def parse_layer_weights(spec: str | Mapping[str, float]) -> dict[str, float]:
    """``"relu1_1:1,relu2_1:0.5"`` (or a mapping) to {layer: λ}; a bare name means λ = 1."""
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        items = []
        for part in filter(None, (p.strip() for p in str(spec).split(","))):
            name, _, value = part.partition(":")
            try:
                items.append((name.strip(), float(value) if value else 1.0))
            except ValueError:
                raise NStyleError(f"style layer weight {value!r} for {name} is not a number") from None
    if not items:
        raise NStyleError("no style layers given")
    for name, lam in items:
        check_weight(f"style layer weight for {name}", lam)
    return {name: float(lam) for name, lam in items}


def layer_weights(spec: str | Mapping[str, float] | None, default: Sequence[str] | str) -> dict[str, float]:
    """Style layers with their λ from the settings, or every ``default`` layer with λ = 1."""
    if spec is not None:
        return parse_layer_weights(spec)
    return parse_layer_weights(default) if isinstance(default, str) else dict.fromkeys(default, 1.0)


def parse_blend(spec: str | Sequence[float] | None, count: int | None = None) -> list[float] | None:
    """Style blend weights, one per style (None: equal weights); ``count`` styles if known."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            values = [float(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            raise NStyleError(f"style blend {spec!r}: give one number per style, e.g. 0.7,0.3") from None
    else:
        values = [check_weight("style blend weight", v) for v in spec]
    for v in values:
        check_weight("style blend weight", v)
    if not values or sum(values) <= 0:
        raise NStyleError("style blend weights must not all be 0")
    if count is not None and len(values) != count:
        raise NStyleError(f"style blend has {len(values)} weight(s) for {count} style(s)")
    return values


def parse_tile(tile: int | str | None) -> int | str | None:
    """``--tile``: ``auto``, None / ``none``, or a side in pixels (checked against the net later)."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, str):
        text = tile.strip().lower()
        if text in ("auto", "none"):
            return None if text == "none" else "auto"
        try:
            return int(text)
        except ValueError:
            raise NStyleError(f"--tile {tile!r}: give auto, none or a side in pixels (e.g. 512)") from None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise NStyleError(f"tile {tile!r} must be auto, None or a positive number of pixels")
    return tile


def check_tile_stride(tile: int | str | None, stride: int) -> int | str | None:
    """An explicit tile side must be a positive multiple of the network's stride."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0 or tile % stride:
        raise NStyleError(
            f"tile {tile!r} must be auto, None or a positive multiple of {stride} pixels (the network's stride)"
        )
    return tile


def check_scales(spec: object) -> object:
    """``scales``: ``auto``, ``none`` (or ``1``), or increasing long sides (text or a list)."""
    if spec is None:
        return spec
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("auto", "none", "off", "1"):
            return spec
        parts = [p.strip() for p in text.split(",")]
        if not text or any(not p.isdigit() for p in parts):
            raise NStyleError(f"scales {spec!r}: give auto, none or long sides like 128,256,512")
        return spec
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, int) and not isinstance(s, bool) for s in spec):
        return spec
    raise NStyleError(f"scales {spec!r}: give auto, none or a list of long sides like [128, 256, 512]")


def parse_window(text: str | Sequence[float] | None) -> tuple[float, float] | None:
    """A CT window ``LO,HI`` in HU (text or a pair), LO below HI."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise NStyleError(f"--window {text!r} is not LO,HI (e.g. --window=-1000,1000)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise NStyleError(f"--window {text!r}: LO must be a number below HI (e.g. --window=-1000,1000)")
    return lo, hi


def parse_names(spec: str | Sequence[str] | None) -> list[str] | None:
    """A comma-separated list of names (columns, leads), or a list of them."""
    if spec is None:
        return None
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    if not names or any(not n for n in names):
        raise NStyleError(f"column list {spec!r} has an empty name")
    return names


def check_range(what: str, value: float, low: float, high: float, low_open: bool = False) -> float:
    """A number in [low, high] (or (low, high] with ``low_open``)."""
    v = check_weight(what, value) if low >= 0 else float(value)
    if (v <= low if low_open else v < low) or v > high:
        raise NStyleError(f"{what} must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value}")
    return v


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch device; CUDA only where torch sees a GPU."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise NStyleError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise NStyleError(f"device {name!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NStyleError("device cuda asked for, but torch sees no CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise NStyleError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def check_input_file(path: str | Path, what: str = "file", folder_ok: bool = False) -> Path:
    """An input that exists and can be read without hanging: a regular file (or a folder
    where ``folder_ok``), after following symlinks.

    A FIFO, a socket or a device (``/dev/zero``, a terminal) would block a reader or
    feed it without end, so they are refused before anything opens them.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise NStyleError(f"{path}: no such file" + (" or folder" if folder_ok else "")) from None
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except (OSError, ValueError) as e:  # a name too long, a symlink loop, a NUL byte
        raise NStyleError(f"{path}: cannot open it ({getattr(e, 'strerror', None) or e})") from None
    if stat.S_ISDIR(info.st_mode):
        if folder_ok:
            return path
        raise NStyleError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise NStyleError(f"{path}: is not a regular file (a pipe, socket or device); nstyle reads only files")
    if not os.access(path, os.R_OK):
        raise NStyleError(f"{path}: cannot read it (permission denied)")
    return path


def check_extension(path: str | Path, extensions: Sequence[str], what: str = "output") -> Path:
    """``path``'s extension must be one of ``extensions`` (case-insensitive)."""
    path = Path(path)
    if path.suffix.lower() not in extensions:
        raise NStyleError(f"{path}: unknown {what} extension; use one of {', '.join(extensions)}")
    return path
