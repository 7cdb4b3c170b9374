"""``stylize_video``: a clip restyled frame by frame without flicker (Ruder et al. 2016).

Frame 1 is an image run (the image defaults, coarse-to-fine). Every later frame t starts
from G_{t−1} carried along the backward optical flow of the *input* frames, and its J
gains γ·J_temporal (``nstyle.core.temporal``): the mean, over pixels whose flow passes
the forward–backward check, of the squared difference to that warped G_{t−1} (with
``long_term``, also to G_{t−2} and G_{t−4}, each pixel tied to the closest frame where its
flow is certain). Later frames take half the steps: they start close to their answer.

Frames stream through (memory does not grow with the clip's length). Each finished frame
is written to a work folder beside the output (``.OUT.frames/``); a run stopped by Ctrl-C
writes the video of the frames done so far, and the same command resumes from the last
finished frame. The work folder goes once the video is complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from .core.engine import StepInfo
from .core.temporal import certainty, long_term_weights, temporal_cost, warp
from .errors import NStyleError
from .kinds import MODALITIES
from .modalities.image import load_image, save_image
from .modalities.video import check_video_output, grey, is_video, open_video, optical_flow, write_video
from .options import ImageSettings, VideoSettings
from .pipeline import run
from .validators import check_input_file

#: Earlier frames each frame is tied to: t−1, and with ``long_term`` also t−2 and t−4.
LONG_TERM = (1, 2, 4)


@dataclass
class VideoResult:
    """What ``stylize_video`` wrote: the output, the frames done, each frame's best J."""

    output: Path
    frames: int
    j: list[float]
    interrupted: bool
    work: Path


def work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name.rstrip('/') or 'video'}.frames")


def _run_hash(content: Path, styles: Sequence[Path], settings: VideoSettings) -> str:
    h = hashlib.sha256()
    for p in [content, *styles]:
        h.update(str(p.resolve()).encode() + str(p.stat().st_mtime_ns).encode() + str(p.stat().st_size).encode())
    h.update(json.dumps({k: repr(v) for k, v in sorted(settings.as_dict().items()) if k != "max_frames"}).encode())
    return h.hexdigest()[:16]


def _frame_settings(settings: VideoSettings, **changes: Any) -> ImageSettings:
    """The image settings of one frame (frames arrive at their size already)."""
    image = ImageSettings(**{f.name: getattr(settings, f.name) for f in fields(ImageSettings)})
    return replace(image, size=None, **changes)


def stylize_video(
    content: str | Path, style: str | Path | Sequence[str | Path], output: str | Path, *,
    callback: Callable[[int, StepInfo, torch.Tensor], None] | None = None,
    on_frame: Callable[[int, float], None] | None = None, **options: Any,
) -> VideoResult:
    """Restyle the clip ``content`` (a video file, a GIF or a folder of frames) in the
    style of ``style`` and write ``output`` (a video file, a GIF or a folder/); options as
    in ``nstyle.options.VideoSettings`` (every image option, plus temporal_weight, flow,
    long_term, later_steps, max_frames, fps). ``callback(frame, info, g)`` after every
    step, ``on_frame(frame, j)`` after every frame."""
    settings = VideoSettings.from_options(options).validate()
    styles = [Path(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    for s in styles:
        if is_video(s):
            raise NStyleError(f"{s}: a style is one image, not a video")
        check_input_file(s, "style image")
    check_video_output(output)
    out = Path(output)
    info, frames = open_video(content, size=settings.size, fps=settings.fps)
    work = work_folder(out)
    key = _run_hash(Path(content), styles, settings)
    done = _resume(work, key)
    later_steps = int(settings.resolved(settings.device).steps or 0) // 2 if settings.later_steps is None \
        else settings.later_steps
    history: list[tuple[torch.Tensor, Any]] = []  # (G, grey input) of the last frames, newest last
    written: list[Path] = []
    js: list[float] = []
    interrupted = False
    try:
        for t, frame in enumerate(frames):
            if settings.max_frames is not None and t >= settings.max_frames:
                break
            path = work / f"frame_{t + 1:05d}.png"
            grey_t = grey(frame)
            if t < done:  # finished by an earlier run of the same command
                g = load_image(path).tensor
            else:
                step_cb = None if callback is None else (lambda info, g, t=t: callback(t, info, g))
                g, j, interrupted = _frame(t, frame, history, grey_t, styles, settings, later_steps, step_cb)
                save_image(g, path)
                js.append(j)
                if on_frame is not None:
                    on_frame(t, j)
            written.append(path)
            history = [*history, (g, grey_t)][-max(LONG_TERM):]
            if interrupted:
                break
    except KeyboardInterrupt:  # between two frames' optimisations (flow, saving): the frames done stay
        interrupted = True
    if not written:
        raise NStyleError(f"{content}: no frame was finished")
    write_video(written, out, info.fps, audio_from=info.source if info.has_audio and not interrupted else None)
    if not interrupted:
        shutil.rmtree(work, ignore_errors=True)
    return VideoResult(out, len(written), js, interrupted, work)


def _frame(
    t: int, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, Any]], grey_t: Any, styles: Sequence[Path],
    settings: VideoSettings, later_steps: int, callback: Any,
) -> tuple[torch.Tensor, float, bool]:
    """One frame's run: (G, its best J, whether Ctrl-C stopped it). Frame 1 as an image;
    later frames from the warped previous result, with the temporal term."""
    modality, style_paths = MODALITIES["image"], [str(s) for s in styles]
    if t == 0:
        result = run(modality, frame[0], style_paths, _frame_settings(settings), callback)
    else:
        targets = _targets(history, grey_t, settings)
        frame_settings = _frame_settings(settings, init=targets[0][0][0], steps=later_steps, scales="none")
        result = run(modality, frame[0], style_paths, frame_settings, callback,
                     extra_cost=_temporal(settings.temporal_weight, targets))
    best = result.best
    return result.tensor, best.total if best else float("nan"), result.interrupted


def _temporal(gamma: float, targets: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """γ·J_temporal for one frame, bound to that frame's warped earlier results."""
    return lambda g: gamma * temporal_cost(g, targets)


def _resume(work: Path, key: str) -> int:
    """Frames already finished in the work folder by a run of the same settings (else 0,
    and the folder is made afresh)."""
    stamp = work / "run.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("hash") == key:
        n = 0
        while (work / f"frame_{n + 1:05d}.png").is_file():
            n += 1
        return n
    if work.exists():
        if not stamp.is_file():
            raise NStyleError(f"{work}: exists and nstyle did not make it; move it away")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    stamp.write_text(json.dumps({"hash": key}))
    return 0


def _targets(history: Sequence[tuple[torch.Tensor, Any]], grey_t: Any, settings: VideoSettings,
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(earlier G warped onto frame t, its certainty weights), closest frame first."""
    out = []
    for j in LONG_TERM if settings.long_term else LONG_TERM[:1]:
        if j > len(history):
            break
        g_prev, grey_prev = history[-j]
        back = optical_flow(grey_t, grey_prev, settings.flow)  # frame t -> t-j
        forward = optical_flow(grey_prev, grey_t, settings.flow)
        out.append((warp(g_prev, back), certainty(back, forward)))
    weights = long_term_weights([c for _, c in out])
    return [(w, c) for (w, _), c in zip(out, weights)]
