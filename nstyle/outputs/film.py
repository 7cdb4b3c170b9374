"""A film of the optimisation: G at chosen steps, from the start to the result.

``FilmRecorder`` is an engine callback (``callback(info, g)``) that keeps a few frames of
G as small 8-bit images, then ``write()`` labels each with its step and J and writes a
GIF (Pillow) or an MP4 (imageio + imageio-ffmpeg, when installed), atomically.

Which J goes on which frame: the engine calls back after step k with J measured at the G
it started from (``info.step == k``) and with G *after* the update, i.e. the G whose J
the next call reports. A frame taken at step k is therefore G at step k + 1, and its J is
filled in from the next call (or from the run's history, for the last step of a scale,
whose J is measured without a callback). So every frame shows G next to J(G).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..core.engine import StepInfo
from ..errors import NStyleError
from .atomic import check_writable, write_atomic

FILM_EXTENSIONS = (".gif", ".mp4")
# Frames are kept at most this many pixels on the long side (unless ``size`` asks for
# more): 60 RGB frames of 512 x 512 are 47 MB in memory and a GIF of ~10-20 MB; at the
# output's full 2048 px they would be 750 MB and a GIF nobody can open.
MAX_FILM_SIDE = 512
# 10 frames a second shows 60 frames in 6 s, fast enough to see the motion, slow enough
# to read the labels; the result is held for 2 s so the film does not loop straight back.
FRAME_MS = 100
HOLD_MS = 2000
# Text colour and the box behind it: near-white on near-black reads on any image.
TEXT_RGB = (255, 255, 255)
BOX_RGB = (16, 16, 16)
TEXT_PAD = 3  # pixels of box around the text


FrameRenderer = Callable[[torch.Tensor], Image.Image]


def _default_renderer(g: torch.Tensor) -> Image.Image:
    from ..modalities.image import to_pil

    return to_pil(g)


@dataclass
class Frame:
    """One frame: G as 8-bit RGB (H, W, 3), the step it shows, J there (None: not known yet)."""

    pixels: np.ndarray
    step: int
    j: float | None = None
    note: str = ""

    @property
    def text(self) -> str:
        """The label drawn on the frame, e.g. ``step 40  J=1.234e+04`` (the note first, e.g.
        ``result  step 200  J=...``, so that a narrow frame that clips the line still shows it)."""
        text = f"step {self.step}" + (f"  J={self.j:.4g}" if self.j is not None else "")
        return f"{self.note}  {text}" if self.note else text


def mp4_encoder_available() -> bool:
    """True when imageio and its ffmpeg binary package (imageio-ffmpeg) are importable."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def check_film_path(path: str | Path) -> Path:
    """Refuse, before a long run, a film path with an unknown extension, an .mp4 without
    an encoder, or a folder that is missing or not writable."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILM_EXTENSIONS:
        raise NStyleError(f"{path}: unknown film extension; use {' or '.join(FILM_EXTENSIONS)}")
    if suffix == ".mp4" and not mp4_encoder_available():
        raise NStyleError(f"{path}: writing .mp4 needs imageio-ffmpeg (pip install imageio imageio-ffmpeg); use .gif")
    return check_writable(path)


def frame_font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at about 1/24 of the frame height (10 to 32 px): readable on
    a 256 px frame without covering much of a 512 px one."""
    size = min(32, max(10, height // 24))
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def label_frame(image: Image.Image, text: str) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """``image`` (a copy, RGB) with ``text`` in its top-left corner on a dark box, and the
    box (left, top, right, bottom; right/bottom exclusive) — nothing outside it changes."""
    out = image.convert("RGB")  # convert copies, so the caller's image is left alone
    draw = ImageDraw.Draw(out)
    font = frame_font(out.height)
    _, _, right, bottom = draw.textbbox((TEXT_PAD, TEXT_PAD), text, font=font)
    box = (0, 0, min(out.width, right + TEXT_PAD), min(out.height, bottom + TEXT_PAD))
    draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=BOX_RGB)  # rectangle's corners are inclusive
    draw.text((TEXT_PAD, TEXT_PAD), text, fill=TEXT_RGB, font=font)
    return out, box


class FilmRecorder:
    """Engine callback that keeps G every ``every`` steps and writes them as a film.

    ``every`` None spaces the frames so that a run of ``total_steps`` callbacks (all
    scales together) gives at most ``max_frames`` frames, the added start and result
    included (a few fewer when ``total_steps`` divides unevenly); without it, it keeps
    every step and, whenever ``max_frames`` is exceeded, drops every second frame and
    doubles the spacing. The first step's G is always kept (one step from the start: an
    L-BFGS first step moves G by at most lr in L1 norm, so it looks like the start), and
    the last step's when ``total_steps`` is given; for the exact start and the result
    (the best G, which need not be the last) call ``add`` before and after the run.

    ``size``: long side of the film's frames; None is the largest G seen, at most
    ``MAX_FILM_SIDE``. Frames are stored at that side at most, and coarse scales are
    upsampled (bilinear) to the film's size when written. ``to_frame`` turns G into a
    picture (default: G as an RGB image; give a spectrogram or mid-slice renderer for
    1D signals and volumes).
    """

    def __init__(
        self,
        path: str | Path,
        every: int | None = None,
        max_frames: int = 60,
        size: int | None = None,
        *,
        total_steps: int | None = None,
        to_frame: FrameRenderer | None = None,
        frame_ms: int = FRAME_MS,
        hold_ms: int = HOLD_MS,
    ) -> None:
        self.path = check_film_path(path)
        if max_frames < 2:
            raise NStyleError(f"{self.path}: a film needs max_frames >= 2, got {max_frames}")
        if every is not None and every < 1:
            raise NStyleError(f"{self.path}: frame spacing must be >= 1 step, got {every}")
        if size is not None and size < 16:
            raise NStyleError(f"{self.path}: film size {size} is too small (at least 16 pixels)")
        self.max_frames, self.size = int(max_frames), size
        # Four frames come on top of the spaced ones: the first and last steps' G and the
        # start and result that the caller adds.
        self.adaptive = every is None and total_steps is None
        self.total_steps = total_steps
        if every is None:
            every = 1 if total_steps is None else max(1, math.ceil(total_steps / max(1, max_frames - 4)))
        self.every = int(every)
        self.to_frame = to_frame or _default_renderer
        self.frame_ms, self.hold_ms = int(frame_ms), int(hold_ms)
        self.frames: list[Frame] = []
        self._calls = 0
        self._spaced: list[tuple[int, Frame]] = []  # (call number, frame) of the spaced frames
        self._largest = (0, 0)  # (width, height) of the largest G seen

    def __call__(self, info: StepInfo, g: torch.Tensor) -> None:
        self._fill(info.step, info.total)
        self._calls += 1
        if self._calls in (1, self.total_steps) or self._calls % self.every == 0:
            frame = self._capture(g, info.step + 1)  # g is G after step info.step's update
            if self._calls > 1:
                self._spaced.append((self._calls, frame))
                if self.adaptive and len(self._spaced) > max(1, self.max_frames - 4):
                    self._thin()

    def add(self, image: torch.Tensor, step: int, j: float | None = None, note: str = "") -> Frame:
        """Append G (a tensor ``to_frame`` accepts) as a frame, e.g. the start before the run
        (J filled in by the engine's first call) and the result after it."""
        return self._capture(image, step, j, note)

    def fill(self, history: Sequence[StepInfo]) -> None:
        """Fill in J of frames that have none from a run's history (matched by step)."""
        totals = {h.step: h.total for h in history}
        for frame in self.frames:
            if frame.j is None and frame.step in totals:
                frame.j = totals[frame.step]

    def render(self) -> list[Image.Image]:
        """The labelled frames, all resized to the film's size."""
        if not self.frames:
            raise NStyleError(f"{self.path}: no frames to write (the run took no steps)")
        width, height = self.film_size()
        images = []
        for frame in self.frames:
            im = Image.fromarray(frame.pixels, "RGB")
            if im.size != (width, height):
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            images.append(label_frame(im, frame.text)[0])
        return images

    def film_size(self) -> tuple[int, int]:
        """(width, height) of the film: the largest G's aspect, ``size`` or at most MAX_FILM_SIDE long."""
        w, h = self._largest
        side = self.size or min(max(w, h), MAX_FILM_SIDE)
        scale = side / max(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))

    def write(self, history: Sequence[StepInfo] | None = None) -> Path:
        """Write the film atomically (GIF or MP4 by extension), after filling missing J
        from ``history`` if given; the last frame is held ``hold_ms``."""
        if history is not None:
            self.fill(history)
        images = self.render()
        if self.path.suffix.lower() == ".gif":
            return write_atomic(self.path, lambda tmp: _write_gif(tmp, images, self.frame_ms, self.hold_ms))
        if not mp4_encoder_available():  # uninstalled since check_film_path?
            raise NStyleError(
                f"{self.path}: writing .mp4 needs imageio-ffmpeg (pip install imageio imageio-ffmpeg); use .gif"
            )
        return write_atomic(self.path, lambda tmp: _write_mp4(tmp, images, self.frame_ms, self.hold_ms))

    def _fill(self, step: int, j: float) -> None:
        """J of the frames showing ``step`` (the latest ones: the frame taken one call ago, or
        an added start), measured now by the engine."""
        for frame in reversed(self.frames[-2:]):
            if frame.j is None and frame.step == step:
                frame.j = j

    def _capture(self, g: torch.Tensor, step: int, j: float | None = None, note: str = "") -> Frame:
        im = self.to_frame(g.detach()).convert("RGB")
        if max(im.size) > max(self.size or 0, MAX_FILM_SIDE):
            im.thumbnail((max(self.size or 0, MAX_FILM_SIDE),) * 2, Image.Resampling.LANCZOS)
        if im.width * im.height > self._largest[0] * self._largest[1]:
            self._largest = im.size
        frame = Frame(np.asarray(im, dtype=np.uint8).copy(), int(step), None if j is None else float(j), note)
        self.frames.append(frame)
        return frame

    def _thin(self) -> None:
        """Keep every second spaced frame (those on the doubled spacing) and double the spacing."""
        self.every *= 2
        dropped = {id(f) for n, f in self._spaced if n % self.every}
        self._spaced = [(n, f) for n, f in self._spaced if id(f) not in dropped]
        self.frames = [f for f in self.frames if id(f) not in dropped]


def _write_gif(tmp: Path, images: list[Image.Image], frame_ms: int, hold_ms: int) -> None:
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
    )


def _write_mp4(tmp: Path, images: list[Image.Image], frame_ms: int, hold_ms: int) -> None:
    import imageio.v2 as imageio

    fps = 1000.0 / frame_ms
    hold = max(1, round(hold_ms / frame_ms))  # MP4 frames have one duration: repeat the last
    writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=1)
    try:
        for i, im in enumerate(images):
            arr = _even(np.asarray(im))
            for _ in range(hold if i == len(images) - 1 else 1):
                writer.append_data(arr)
    finally:
        writer.close()


def _even(arr: np.ndarray) -> np.ndarray:
    """Pad (edge) to even height and width: H.264 in yuv420p halves both for the colour planes."""
    h, w = arr.shape[:2]
    return np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h % 2 or w % 2) else arr
