"""`nstyle video` / ``nstyle.stylize_video``: real clips from Debian's opencv-doc package
(``examples/data/vtest.avi``, pedestrians, 768x576 at 10 fps; ``Megamind.avi``, with an AC-3 audio
track), a few frames at tiny sizes; style: scikit-image's immunohistochemistry slide.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nstyle
import nstyle.pipeline
from nstyle.core.temporal import certainty, warp
from nstyle.modalities.image import load_image
from nstyle.modalities.video import grey, open_video, optical_flow
from nstyle.outputs.guard import OUTPUT_MARKER
from nstyle.samples import sample_path
from tests.cli.test_cli import assert_one_error_line, run, snapshot_folder

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
TREE, MEGAMIND = DATA / "vtest.avi", DATA / "Megamind.avi"
STYLE = str(sample_path("ihc.png"))
needs_clips = pytest.mark.skipif(not TREE.is_file(), reason="needs Debian's opencv-doc (CI installs it)")


@pytest.fixture
def no_optimisation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the optimisation started although the input was bad")

    monkeypatch.setattr(nstyle.pipeline, "optimize", refuse)


def _frames_folder(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    folder.mkdir()
    photo = Image.open(sample_path("astronaut.png"))
    for k, size in enumerate(sizes):
        photo.resize(size).save(folder / f"f{k:03d}.png")
    return folder


@pytest.mark.parametrize("case, needle", [
    ("text.mp4", "not a video ffmpeg can read"),
    ("empty/", "holds no frames"),
    ("mixed/", "every frame must have one size"),
    ("style-video", "a style is one image, not a video"),
    ("out.txt", "unknown video output extension"),
])
def test_bad_video_input_is_one_line_exit_2_and_nothing_written(case, needle, tmp_path, capsys, no_optimisation):
    content, style, out = tmp_path / "clip", STYLE, tmp_path / "out.gif"
    if case == "text.mp4":
        content = tmp_path / "text.mp4"
        content.write_text("not a video")
    elif case == "empty/":
        content.mkdir()
    elif case == "mixed/":
        content = _frames_folder(content, [(40, 30), (40, 30), (30, 40)])
    elif case == "style-video":
        content = _frames_folder(content, [(40, 30)] * 2)
        frames = [Image.open(p) for p in sorted(content.iterdir())]
        frames[0].save(tmp_path / "style.gif", save_all=True, append_images=frames[1:])
        style = str(tmp_path / "style.gif")
    else:
        content = _frames_folder(content, [(40, 30)] * 2)
        out = tmp_path / "out.txt"
    before = snapshot_folder(tmp_path)
    rc, _, err = run(["video", content, style, "-o", out, "--size", "32", "--steps", "1", "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, needle)
    assert snapshot_folder(tmp_path) == before


@needs_clips
def test_reading_streams_frames_at_the_working_size():
    info, frames = open_video(TREE, size=64)
    first = next(frames)
    assert info.fps == 10.0 and not info.has_audio and first.shape == (1, 3, 48, 64)
    assert open_video(MEGAMIND, size=64)[0].has_audio


def _warping_error(frames: list[torch.Tensor], results: list[torch.Tensor]) -> float:
    """Mean certainty-weighted squared difference of warp(G_{t−1}) and G_t, flow on the inputs."""
    errors = []
    for t in range(1, len(frames)):
        back = optical_flow(grey(frames[t]), grey(frames[t - 1]))
        forward = optical_flow(grey(frames[t - 1]), grey(frames[t]))
        errors.append(float((certainty(back, forward) * (warp(results[t - 1], back) - results[t]).pow(2)).mean()))
    return sum(errors) / len(errors)


@pytest.mark.slow
@needs_clips
def test_the_temporal_term_removes_most_of_the_flicker(tmp_path):
    n, size, steps = 4, 48, 16
    _, stream = open_video(TREE, size=size)
    frames = [f for _, f in zip(range(n), stream)]
    independent = [nstyle.stylize(f[0], STYLE, size=None, steps=steps).tensor for f in frames]
    result = nstyle.stylize_video(TREE, STYLE, tmp_path / "out/", size=size, steps=steps, max_frames=n)
    assert result.frames == n and not result.interrupted
    files = sorted(p for p in (tmp_path / "out").iterdir() if p.suffix == ".png")
    assert (tmp_path / "out" / OUTPUT_MARKER).is_file() and len(files) == n
    video = [load_image(p).tensor for p in files]
    assert _warping_error(frames, video) < 0.5 * _warping_error(frames, independent)
    assert not result.work.exists()  # the work folder goes once the video is complete


@pytest.mark.slow
@needs_clips
def test_ctrl_c_writes_the_frames_done_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "tree.gif"
    done: list[int] = []

    def ctrl_c_in_frame_2(t, info, g):
        if t == 1:
            raise KeyboardInterrupt

    kw = dict(size=32, steps=4, max_frames=3, on_frame=lambda t, j: done.append(t))
    first = nstyle.stylize_video(TREE, STYLE, out, callback=ctrl_c_in_frame_2, **kw)
    assert first.interrupted and first.frames == 2 and Image.open(out).n_frames == 2
    assert first.work.is_dir()
    done.clear()
    second = nstyle.stylize_video(TREE, STYLE, out, **kw)
    assert done == [2] and second.frames == 3 and Image.open(out).n_frames == 3  # frames 1-2 from the first run


@pytest.mark.slow
@needs_clips
def test_the_command_writes_a_video_with_the_inputs_audio(tmp_path, capsys):
    import imageio_ffmpeg

    out = tmp_path / "mega.mp4"
    rc, _, err = run(["video", MEGAMIND, STYLE, "-o", out, "--size", "32", "--steps", "2", "--max-frames", "3",
                      "--quiet"], capsys)
    assert rc == 0, err
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert "audio_codec" in meta and abs(meta["fps"] - 23.98) < 0.05
    assert sum(1 for _ in reader) == 3
    assert (tmp_path / "mega.toml").is_file() and not [p for p in os.listdir(tmp_path) if p.startswith(".")]
    assert np.asarray(Image.open(sample_path("ihc.png"))).shape[2] == 3  # the style untouched


@pytest.mark.parametrize("option, needle", [
    (["--temporal-weight", "-1"], "temporal weight"), (["--max-frames", "0"], "max frames"),
    (["--flow", "magic"], "invalid choice"), (["--fps", "0"], "fps"),
])
def test_bad_video_options_are_one_line(option, needle, tmp_path, capsys, no_optimisation):
    clip = _frames_folder(tmp_path / "clip", [(40, 30)] * 2)
    before = snapshot_folder(tmp_path)
    rc, _, err = run(["video", clip, STYLE, "-o", tmp_path / "o.gif", *option, "--quiet"], capsys)
    assert rc == 2
    assert err.strip().splitlines()[-1].startswith("nstyle: error:") and needle in err
    assert snapshot_folder(tmp_path) == before


@pytest.mark.slow
def test_long_term_farneback_from_a_folder_with_a_film_of_the_first_frame(tmp_path, capsys):
    """Frames as files (the astronaut, panned by 2 px per frame), tied to t-1, t-2 and t-4."""
    clip = tmp_path / "clip"
    clip.mkdir()
    photo = Image.open(sample_path("astronaut.png")).resize((64, 64))
    for k in range(5):
        photo.crop((2 * k, 0, 2 * k + 48, 48)).save(clip / f"f{k}.png")
    rc, _, err = run(["video", clip, STYLE, "-o", f"{tmp_path / 'out'}/", "--size", "48", "--steps", "4",
                      "--long-term", "--flow", "farneback", "--film", tmp_path / "first.gif", "--quiet"], capsys)
    assert rc == 0, err
    assert len([p for p in (tmp_path / "out").iterdir() if p.suffix == ".png"]) == 5
    assert Image.open(tmp_path / "first.gif").n_frames >= 2
