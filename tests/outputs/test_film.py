"""Seeing a run: the film of G (nstyle.film) and the loss plot (nstyle.plots.plot_losses).

The engine is simulated with StepInfo calls whose G encodes the step it is at, so each
frame can be checked against the step and J drawn on it; the pictures are real
(scikit-image samples) where the text must be seen on them.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nstyle.core.engine import StepInfo
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image, to_pil
from nstyle.outputs import film as film_mod
from nstyle.outputs.film import BOX_RGB, HOLD_MS, FilmRecorder, check_film_path, label_frame, mp4_encoder_available
from nstyle.outputs.plots import loss_terms, plot_losses
from nstyle.samples import sample_path


def j_at(step: int) -> float:
    """The J the simulated engine reports for the G at ``step``."""
    return 1000.0 / (step + 1)


def g_at(step: int, hw: tuple[int, int] = (8, 12)) -> torch.Tensor:
    """A G whose every pixel is step/255: the frame's pixels say which step it shows."""
    return torch.full((1, 3, *hw), step / 255.0)


def simulate(
    rec: FilmRecorder, steps: int, hw: tuple[int, int] = (8, 12), offset: int = 0, scale: int = 0
) -> list[StepInfo]:
    """What ``optimize`` does: after step k, J measured at G_k, and G_{k+1} (after the update)."""
    history = []
    for k in range(offset, offset + steps):
        info = StepInfo(k, j_at(k), 1.0, 1.0, 0.0, scale)
        history.append(info)
        rec(info, g_at(k + 1, hw))
    history.append(StepInfo(offset + steps, j_at(offset + steps), 1.0, 1.0, 0.0, scale))  # measured, no callback
    return history


def shown_step(frame) -> int:
    values = np.unique(frame.pixels)
    assert len(values) == 1, "a constant G gives a constant frame"
    return int(values[0])


# ------------------------------------------------------------------------------ frames


def test_frames_about_max_frames_with_first_and_last_and_their_own_j(tmp_path):
    rec = FilmRecorder(tmp_path / "f.gif", max_frames=30, total_steps=200)
    rec.add(g_at(0), step=0)  # the start, before the run: J comes with the first call
    history = simulate(rec, 200)
    rec.fill(history)
    steps = [f.step for f in rec.frames]
    assert steps[0] == 0 and steps[1] == 1  # the start and the first step's G
    assert steps[-1] == 200  # the last step's G (total_steps given)
    assert 24 <= len(rec.frames) <= 30
    assert steps[2:-1] == list(range(rec.every, 200, rec.every))  # evenly spaced in between
    for frame in rec.frames:  # each frame shows the G of its step, labelled with J of that G
        assert shown_step(frame) == frame.step
        assert frame.j == j_at(frame.step)


def test_spacing_without_total_steps_thins_to_max_frames(tmp_path):
    rec = FilmRecorder(tmp_path / "f.gif", max_frames=10)
    simulate(rec, 100)
    assert 4 <= len(rec.frames) <= 10
    spaced = [f.step for f in rec.frames[1:]]  # all but the first step's, on the final spacing
    assert rec.every > 1 and spaced == list(range(rec.every, 101, rec.every))  # frame step = call number
    assert spaced[-1] > 100 - rec.every  # kept up to the end of the run
    for frame in rec.frames:
        assert shown_step(frame) == frame.step


def test_fixed_every(tmp_path):
    rec = FilmRecorder(tmp_path / "f.gif", every=7)
    simulate(rec, 30)
    assert [f.step for f in rec.frames] == [1, 7, 14, 21, 28]


def test_coarse_scales_upsampled_to_the_largest_and_last_scale_j_from_history(tmp_path):
    rec = FilmRecorder(tmp_path / "f.gif", every=5, total_steps=20)
    history = simulate(rec, 10, hw=(32, 48)) + simulate(rec, 10, hw=(64, 96), offset=11, scale=1)
    assert [f.step for f in rec.frames] == [1, 5, 10, 16, 21]
    assert rec.frames[2].j is None  # G after scale 0's last step: its J is measured without a callback
    rec.fill(history)
    assert [f.j for f in rec.frames] == [j_at(s) for s in (1, 5, 10, 16, 21)]
    assert rec.film_size() == (96, 64)
    frames = rec.render()
    assert {im.size for im in frames} == {(96, 64)}
    # A constant coarse G stays constant when upsampled (below the label box).
    arr = np.asarray(frames[0])
    assert (arr[-16:, :] == 1).all()  # step 1 -> value 1


def test_size_sets_the_long_side(tmp_path):
    rec = FilmRecorder(tmp_path / "f.gif", every=1, size=60)
    simulate(rec, 2, hw=(20, 30))
    assert rec.film_size() == (60, 40)
    assert {im.size for im in rec.render()} == {(60, 40)}


def test_custom_renderer_for_1d_signals(tmp_path):
    def trace(g: torch.Tensor) -> Image.Image:  # a 1D G as a strip of grey levels
        row = (g[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return Image.fromarray(np.tile(row, (10, 1)), "L")

    rec = FilmRecorder(tmp_path / "f.gif", every=1, to_frame=trace)
    sig = torch.linspace(0, 1, 50)[None, None]
    rec(StepInfo(0, 1.0, 0.5, 0.5, 0.0), sig)
    assert rec.frames[0].pixels.shape == (10, 50, 3)
    assert np.abs(rec.frames[0].pixels[5, :, 0] - np.linspace(0, 255, 50)).max() <= 0.5 + 1e-4


# ------------------------------------------------------------------------------ labels


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return load_image(sample_path("astronaut.png"), size=128).tensor


def test_label_drawn_in_its_box_only(astronaut):
    raw = to_pil(astronaut)
    a = np.asarray(raw).astype(int)  # a copy
    labelled, (x0, y0, x1, y1) = label_frame(raw, "step 40  J=1.234e+04")
    b = np.asarray(labelled).astype(int)
    inside = np.zeros(a.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    assert 30 < x1 < 128 and 5 < y1 < 40  # a line of text in the corner, not the whole frame
    assert (a[~inside] == b[~inside]).all()  # the picture is untouched outside the box
    box = b[inside]
    assert (box == BOX_RGB).all(axis=1).mean() > 0.5  # mostly the dark box...
    assert (box.min(axis=1) > 200).sum() > 30  # ...with white text on it
    assert np.abs(a[inside] - box).mean() > 50
    assert (np.asarray(raw).astype(int) == a).all()  # the caller's image is not drawn on


def test_rendered_frames_carry_step_and_j(tmp_path, astronaut):
    rec = FilmRecorder(tmp_path / "f.gif", every=1)
    rec.add(astronaut, step=3, j=12.5)
    rec.add(astronaut, step=4, j=None)
    a, b = (np.asarray(im) for im in rec.render())
    assert rec.frames[0].text == "step 3  J=12.5" and rec.frames[1].text == "step 4"
    assert (a != np.asarray(to_pil(astronaut))).any() and (a != b).any()  # the texts differ, so do the frames


# --------------------------------------------------------------------------- writing


def test_gif_read_back(tmp_path, astronaut):
    path = tmp_path / "film.gif"
    rec = FilmRecorder(path, total_steps=12, max_frames=6)  # every 6 steps
    x = astronaut[..., :96]  # 96 wide, 128 high: the film keeps the aspect
    rec.add(x * 0.2, step=0)
    for k in range(12):
        rec(StepInfo(k, j_at(k), 1.0, 1.0, 0.0), x * (0.2 + 0.8 * (k + 1) / 12))
    rec.add(x, step=12, j=0.5, note="result")
    assert rec.write() == path
    assert os.listdir(tmp_path) == ["film.gif"]  # no temporary file left
    expected = rec.render()
    with Image.open(path) as im:
        assert [f.step for f in rec.frames] == [0, 1, 6, 12, 12]
        assert im.n_frames == len(rec.frames) and im.size == (96, 128)
        assert im.info["loop"] == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            # GIF has 256 colours a frame: close to the rendered frame, not equal
            diff = np.abs(np.asarray(im.convert("RGB")).astype(int) - np.asarray(expected[i]).astype(int))
            assert diff.mean() < 6, i
    assert durations[-1] == HOLD_MS and set(durations[:-1]) == {film_mod.FRAME_MS}


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "film.gif"
    path.write_bytes(b"the previous film")
    rec = FilmRecorder(path, every=1)
    simulate(rec, 3)

    def disk_full(tmp: Path, *args) -> None:
        tmp.write_bytes(b"GIF89a half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(film_mod, "_write_gif", disk_full)
    with pytest.raises(NStyleError, match="film.gif.*No space left"):
        rec.write()
    assert path.read_bytes() == b"the previous film"
    assert os.listdir(tmp_path) == ["film.gif"]


def test_bad_paths_refused_up_front(tmp_path, monkeypatch):
    with pytest.raises(NStyleError, match=r"out\.avi: unknown film extension; use \.gif or \.mp4"):
        FilmRecorder(tmp_path / "out.avi")
    with pytest.raises(NStyleError, match="does not exist"):
        check_film_path(tmp_path / "missing" / "out.gif")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails: no encoder
    assert not mp4_encoder_available()
    with pytest.raises(NStyleError, match=r"out\.mp4: .*needs imageio-ffmpeg.*use \.gif"):
        check_film_path(tmp_path / "out.mp4")
    assert check_film_path(tmp_path / "OUT.GIF") == tmp_path / "OUT.GIF"
    with pytest.raises(NStyleError, match="no frames"):
        FilmRecorder(tmp_path / "f.gif").write()
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not mp4_encoder_available(), reason="imageio-ffmpeg is not installed")
def test_mp4_read_back(tmp_path):
    import imageio.v2 as imageio

    rec = FilmRecorder(tmp_path / "f.mp4", every=1, frame_ms=100, hold_ms=300)
    simulate(rec, 4, hw=(31, 45))  # odd sizes: padded to even for H.264
    rec.write()
    reader = imageio.get_reader(tmp_path / "f.mp4", format="FFMPEG")
    assert reader.get_meta_data()["fps"] == 10
    frames = list(reader.iter_data())  # not list(reader): its len() is inf
    assert len(frames) == 4 - 1 + 3  # the last frame held 300 ms at 100 ms a frame
    assert frames[0].shape == (32, 46, 3)
    # H.264 is lossy, but a constant frame (step 1 -> value 1) stays near its value
    assert abs(float(frames[0][-8:].mean()) - 1) < 3


# ------------------------------------------------------------------------- the plot


def two_scale_history(alpha=(2.0, 0.5), beta=1e3, tv_weight=0.0) -> tuple[list[StepInfo], list[float]]:
    """A coarse-to-fine history whose α changes between scales; J computed in float32."""
    history, content = [], []
    for step in range(30):
        scale = 0 if step < 12 else 1
        c = 0.0 if step == 0 else 50.0 / step  # J_content = 0 at a content start
        s, tv = 1e-2 * math.exp(-step / 10), 3.0 + step
        total = float(
            np.float32(alpha[scale]) * np.float32(c)
            + np.float32(beta) * np.float32(s)
            + np.float32(tv_weight) * np.float32(tv)
        )
        history.append(StepInfo(step, total, c, s, tv, scale))
        content.append(alpha[scale] * c)
    return history, content


def test_loss_terms_recover_alpha_content_across_scales():
    history, content = two_scale_history(tv_weight=0.1)
    t = loss_terms(history, beta=1e3, tv_weight=0.1)
    assert math.isnan(t["content"][0])  # 0 is not drawn on a log axis
    np.testing.assert_allclose(t["content"][1:], content[1:], rtol=1e-5)
    np.testing.assert_allclose(t["style"], [1e3 * h.style for h in history])
    np.testing.assert_allclose(t["tv"], [0.1 * h.tv for h in history])
    assert t["scale"].tolist() == [0] * 12 + [1] * 18


def colour_pixels(path: Path, rgb: tuple[int, int, int]) -> int:
    arr = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(arr - rgb).max(axis=2) < 30).sum())


TAB_RED, TAB_GREEN = (214, 39, 40), (44, 160, 44)


@pytest.mark.slow
def test_plot_losses_png(tmp_path):
    history, _ = two_scale_history()
    path = plot_losses(history, tmp_path / "losses.png", beta=1e3)
    assert os.listdir(tmp_path) == ["losses.png"]
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1100, 440)  # 10 x 4 inches at 110 dpi
    assert colour_pixels(path, TAB_RED) > 300  # β·J_style drawn
    assert colour_pixels(path, TAB_GREEN) == 0  # no TV curve when its weight is 0
    with_tv = plot_losses(two_scale_history(tv_weight=0.1)[0], tmp_path / "tv.png", beta=1e3, tv_weight=0.1)
    assert colour_pixels(with_tv, TAB_GREEN) > 300


def test_plot_losses_refuses_bad_extension_and_empty_history(tmp_path):
    history, _ = two_scale_history()
    with pytest.raises(NStyleError, match=r"losses\.jpg: plots are written as \.png, \.pdf, \.svg"):
        plot_losses(history, tmp_path / "losses.jpg", beta=1.0)
    with pytest.raises(NStyleError, match="no steps"):
        plot_losses([], tmp_path / "losses.png", beta=1.0)
    assert os.listdir(tmp_path) == []


def test_frame_j_is_j_of_the_frame_g_with_the_real_engine(tmp_path):
    """The engine's own callback order: each frame's J is J evaluated at that frame's G."""
    from nstyle.core.engine import optimize
    from nstyle.core.functional import Terms

    target = torch.linspace(0, 1, 3 * 8 * 8).reshape(1, 3, 8, 8)

    def objective(g: torch.Tensor) -> Terms:
        j = (g - target).pow(2).sum()
        return Terms(j, j, torch.zeros(()), torch.zeros(()))

    shown: list[torch.Tensor] = []

    def keep(g: torch.Tensor) -> Image.Image:
        shown.append(g.clone())
        return to_pil(g)

    rec = FilmRecorder(tmp_path / "f.gif", every=3, total_steps=10, to_frame=keep)
    g0 = torch.zeros(1, 3, 8, 8)
    rec.add(g0, step=0)
    result = optimize(objective, g0, 10, optimizer="adam", lr=0.05, callback=rec)
    rec.add(result.g, step=result.best_step, j=result.best.total, note="result")
    rec.fill(result.history)
    assert [f.step for f in rec.frames] == [0, 1, 3, 6, 9, 10, 10]
    for frame, g in zip(rec.frames, shown):
        assert frame.j == pytest.approx(float(objective(g).total), rel=1e-6), frame.step
    assert rec.frames[-1].j < rec.frames[0].j / 2  # the film runs from the start down to the result
