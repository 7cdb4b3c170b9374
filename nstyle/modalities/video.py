"""Video in and out, and optical flow between frames.

Reading streams frames one at a time (memory does not grow with the clip): video files
through imageio-ffmpeg's bundled ffmpeg (MP4, AVI, MKV, WebM, MOV), GIFs through Pillow,
and folders of frames (sorted by name, all of one size). Writing: a video file with the
input's frame rate (the input's audio track copied in when it has one), a GIF, or a
folder of PNG frames, always atomically. Optical flow is OpenCV's DIS (default) or
Farnebäck, computed on the *input* frames' grey levels.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import NStyleError
from ..outputs.atomic import check_writable, write_atomic, write_folder_atomic
from ..outputs.guard import OUTPUT_MARKER, check_replaceable_folder
from ..validators import check_input_file
from .image import SAVE_FORMATS, load_image

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
GIF_EXTS = (".gif",)
FLOWS = ("dis", "farneback")
# Codecs ffmpeg writes per container: H.264 plays everywhere; WebM needs VP9; AVI's MPEG-4.
CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mkv": "libx264", ".mov": "libx264", ".webm": "libvpx-vp9",
          ".avi": "mpeg4"}
DEFAULT_FPS = 25.0


def _needs(module: str) -> Any:
    """OpenCV (flow) and imageio-ffmpeg (video files) come with ``nstyle[video]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NStyleError(f"nstyle video needs {module}: pip install 'nstyle[video]'") from None


@dataclass
class VideoInfo:
    """What the output keeps of the input: frame rate, frame count (None if unknown), audio."""

    source: str
    fps: float
    frames: int | None
    has_audio: bool


def is_video(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in VIDEO_EXTS + GIF_EXTS


def open_video(
    path: str | Path, size: int | None = None, fps: float | None = None
) -> tuple[VideoInfo, Iterator[torch.Tensor]]:
    """(info, frames): each frame (1, 3, H, W) in [0, 1], long side ``size``. The first frame
    is read here, so an unreadable or empty input fails now, naming the file."""
    path = check_input_file(path, "video file or folder of frames", folder_ok=True)
    if path.is_dir():
        info, frames = _folder(path, size, fps)
    elif path.suffix.lower() in GIF_EXTS:
        info, frames = _gif(path, size)
    elif path.suffix.lower() in VIDEO_EXTS:
        info, frames = _ffmpeg(path, size)
    else:
        raise NStyleError(f"{path}: unknown video extension; use {', '.join(VIDEO_EXTS + GIF_EXTS)} or a folder")
    try:
        first = next(frames)
    except StopIteration:
        raise NStyleError(f"{path}: holds no frames") from None

    def all_frames() -> Iterator[torch.Tensor]:
        yield first
        yield from frames

    return info, all_frames()


def _folder(path: Path, size: int | None, fps: float | None) -> tuple[VideoInfo, Iterator[torch.Tensor]]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SAVE_FORMATS and not p.name.startswith("."))
    if not files:
        raise NStyleError(f"{path}: folder holds no frames ({', '.join(SAVE_FORMATS)})")

    sizes = {}
    for f in files:  # headers only: a frame of another size is refused before any work
        try:
            with Image.open(f) as im:
                sizes[f] = im.size
        except (OSError, ValueError) as e:
            raise NStyleError(f"{f}: not an image Pillow can read ({e})") from None
    first = sizes[files[0]]
    odd = next((f for f in files if sizes[f] != first), None)
    if odd is not None:
        raise NStyleError(f"{odd}: frame is {sizes[odd][0]}x{sizes[odd][1]}, the first is {first[0]}x{first[1]}; "
                          "every frame must have one size")

    def frames() -> Iterator[torch.Tensor]:
        for f in files:
            yield load_image(f, size=size).tensor

    return VideoInfo(str(path), fps or DEFAULT_FPS, len(files), False), frames()


def _gif(path: Path, size: int | None) -> tuple[VideoInfo, Iterator[torch.Tensor]]:
    try:
        im = Image.open(path)
        duration = im.info.get("duration", 1000 / DEFAULT_FPS) or 1000 / DEFAULT_FPS
        count = getattr(im, "n_frames", 1)
    except (OSError, ValueError) as e:
        raise NStyleError(f"{path}: not a GIF Pillow can read ({e})") from None

    def frames() -> Iterator[torch.Tensor]:
        try:
            for k in range(count):
                im.seek(k)
                yield load_image(np.asarray(im.convert("RGB")), size=size, name=f"{path} frame {k}").tensor
        except (OSError, ValueError, EOFError) as e:
            raise NStyleError(f"{path}: corrupt GIF ({e})") from None
        finally:
            im.close()

    return VideoInfo(str(path), 1000.0 / float(duration), count, False), frames()


def _ffmpeg(path: Path, size: int | None) -> tuple[VideoInfo, Iterator[torch.Tensor]]:
    imageio_ffmpeg = _needs("imageio_ffmpeg")

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        raise NStyleError(f"{path}: not a video ffmpeg can read ({' '.join(str(e).split())[:160]})") from None
    w, h = meta["size"]
    fps = float(meta.get("fps") or DEFAULT_FPS)
    duration = meta.get("duration")
    info = VideoInfo(str(path), fps, round(duration * fps) if duration else None, "audio_codec" in meta)

    def frames() -> Iterator[torch.Tensor]:
        try:
            for k, raw in enumerate(reader):
                arr = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
                yield load_image(arr, size=size, name=f"{path} frame {k}").tensor
        except RuntimeError as e:
            raise NStyleError(f"{path}: cannot read its frames ({' '.join(str(e).split())[:160]})") from None
        finally:
            reader.close()

    return info, frames()


def check_video_output(path: str | Path) -> str:
    """"video", "gif" or "folder" for an output path; NStyleError for anything else."""
    text = str(path)
    p = Path(path)
    if text.endswith("/") or (p.suffix == "" and not p.is_file()):
        check_replaceable_folder(p, (".png",))
        return "folder"
    check_writable(p)
    if p.suffix.lower() in GIF_EXTS:
        return "gif"
    if p.suffix.lower() in VIDEO_EXTS:
        return "video"
    raise NStyleError(f"{p}: unknown video output extension; use {', '.join(VIDEO_EXTS + GIF_EXTS)} or a folder/")


def _uint8(frame: torch.Tensor) -> np.ndarray:
    return (frame[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def write_video(frames: Sequence[Path], path: str | Path, fps: float, audio_from: str | None = None) -> Path:
    """Write the PNG ``frames`` (all one size) to ``path``: a video file (H.264 for MP4/MKV/MOV,
    VP9 for WebM, MPEG-4 for AVI; ``audio_from``'s audio track copied in), a GIF or a folder."""
    kind = check_video_output(path)
    out = Path(path)
    if kind == "folder":
        check_replaceable_folder(out, (".png",))
        files = {f"frame_{k + 1:05d}.png": p.read_bytes() for k, p in enumerate(frames)}
        return write_folder_atomic(out, {**files, OUTPUT_MARKER: b"video frames written by nstyle\n"})
    if kind == "gif":
        def gif(tmp: Path) -> None:
            images = [Image.open(p).convert("RGB") for p in frames]
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                           duration=round(1000 / fps))

        return write_atomic(out, gif)
    return write_atomic(out, lambda tmp: _encode(frames, tmp, fps, CODECS[out.suffix.lower()], audio_from))


def _encode(frames: Sequence[Path], tmp: Path, fps: float, codec: str, audio_from: str | None) -> None:
    imageio_ffmpeg = _needs("imageio_ffmpeg")

    first = Image.open(frames[0])
    w, h = first.size
    silent = tmp.with_name(tmp.name + ".video" + tmp.suffix)
    try:
        # yuv420p needs even sides: pad by one pixel where needed (macro_block_size=2)
        writer = imageio_ffmpeg.write_frames(str(silent), (w, h), fps=fps, codec=codec, macro_block_size=2,
                                             output_params=["-f", _container(tmp.suffix)])
        writer.send(None)
        for p in frames:
            writer.send(np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB"))))
        writer.close()
        if audio_from is None:
            silent.replace(tmp)
            return
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(silent), "-i", audio_from,
               "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac" if codec != "libvpx-vp9" else "libopus",
               "-shortest", "-f", _container(tmp.suffix), str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise NStyleError(f"cannot copy the audio of {audio_from}: {' '.join(done.stderr.split())[:160]}")
    finally:
        silent.unlink(missing_ok=True)


def _container(suffix: str) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov", ".webm": "webm", ".avi": "avi"}[
        suffix.lower()]


def grey(frame: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W) uint8 luma, what the flow is computed on."""
    rgb = _uint8(frame).astype(np.float32)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2] + 0.5).astype(np.uint8)


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> torch.Tensor:
    """Flow from grey frame ``a`` to ``b`` as (1, 2, H, W) pixels: a(x) ≈ b(x + w(x))."""
    cv2 = _needs("cv2")

    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise NStyleError(f"unknown flow method {method!r}; choose {', '.join(FLOWS)}")
    return torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1)))[None].float()
