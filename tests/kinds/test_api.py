"""`nstyle.stylize` end to end: every kind of input, the result object, inits, errors.

All runs are 32 px on the long side with at most 5 steps; the network is built once per
process (lru_cache), so each run costs well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nstyle
from nstyle import NStyleError, StylizeResult
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path

SIZE = 32
STEPS = 5


@pytest.fixture(scope="module")
def style_path() -> Path:
    return sample_path("ihc.png")


@pytest.fixture(scope="module")
def astro_small() -> Image.Image:
    """The astronaut at 96 x 64 (non-square, so the aspect ratio is checked too)."""
    with Image.open(sample_path("astronaut.png")) as im:
        return im.convert("RGB").resize((96, 64), Image.LANCZOS)


def check_result(r: StylizeResult, hw: tuple[int, int], mode: str = "RGB") -> None:
    h, w = hw
    assert isinstance(r, StylizeResult)
    assert r.tensor.shape == (1, 3, h, w)
    assert r.tensor.dtype == torch.float32
    assert float(r.tensor.min()) >= 0.0 and float(r.tensor.max()) <= 1.0
    assert torch.isfinite(r.tensor).all()
    im = r.image
    assert isinstance(im, Image.Image)
    assert im.size == (w, h) and max(im.size) == SIZE
    assert im.mode == mode
    rgb8 = np.round(r.tensor[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(im)[..., :3], rgb8)
    assert not r.interrupted
    assert len(r.history) >= 2
    assert all(math.isfinite(h.total) for h in r.history)
    assert r.best is not None and r.best.total < r.history[0].total  # J went down


# --------------------------------------------------------------------------- input kinds


def _as_str(im, p):
    im.save(p / "c.png")
    return str(p / "c.png")


def _as_path(im, p):
    im.save(p / "c.jpg", quality=95)
    return p / "c.jpg"


CONTENT_KINDS = {
    "str-path": _as_str,
    "Path-jpg": _as_path,
    "PIL": lambda im, p: im,
    "numpy-uint8": lambda im, p: np.asarray(im),
    "numpy-float": lambda im, p: np.asarray(im).astype(np.float64) / 255.0,
    "tensor-chw": lambda im, p: torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0,
    "tensor-nchw": lambda im, p: torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255.0,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CONTENT_KINDS))
def test_content_kinds(kind, tmp_path, astro_small, style_path):
    content = CONTENT_KINDS[kind](astro_small, tmp_path)
    r = nstyle.stylize(content, style_path, size=SIZE, steps=STEPS)
    check_result(r, (21, 32))
    assert r.alpha is None
    saved = r.save(tmp_path / "out.png")
    assert saved == tmp_path / "out.png"
    with Image.open(saved) as im:
        assert im.size == (32, 21) and im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), np.asarray(r.image))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_style_as_array_and_tensor(astro_small, style_path):
    with Image.open(style_path) as s:
        s_arr = np.asarray(s.convert("RGB").resize((48, 48)))
    r = nstyle.stylize(astro_small, torch.from_numpy(s_arr.copy()).permute(2, 0, 1), size=SIZE, steps=3)
    check_result(r, (21, 32))
    r = nstyle.stylize(astro_small, s_arr, size=SIZE, steps=3)
    check_result(r, (21, 32))


@pytest.mark.slow
def test_history_goes_down_from_content_start(astro_small, style_path):
    r = nstyle.stylize(astro_small, style_path, size=SIZE, steps=STEPS, init="content")
    check_result(r, (21, 32))
    assert r.history[0].step == 0
    assert r.history[0].content == 0.0  # G starts exactly at the content
    assert r.history[-1].total < r.history[0].total
    assert r.history[0].style > 0


# --------------------------------------------------------------------------- image modes


def _grey(im):
    return im.convert("L")


def _rgba(im):
    rgba = im.convert("RGBA")
    a = np.tile(np.linspace(0, 255, im.width).astype(np.uint8), (im.height, 1))
    rgba.putalpha(Image.fromarray(a, "L"))
    return rgba


def _palette(im):
    return im.convert("P", palette=Image.ADAPTIVE, colors=16)


def _palette_transparent(im):
    p = im.convert("P", palette=Image.ADAPTIVE, colors=16)
    p.info["transparency"] = 0
    return p


def _sixteen_bit(im):
    grey16 = (np.asarray(im.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
    return Image.fromarray(grey16)  # I;16


MODES = {
    "L": (_grey, "png", "L", "RGB"),
    "RGBA": (_rgba, "png", "RGBA", "RGBA"),
    "P": (_palette, "png", "P", "RGB"),
    "P-transparency": (_palette_transparent, "png", "P", "RGBA"),
    "I;16": (_sixteen_bit, "png", "I;16", "RGB"),
    "CMYK": (lambda im: im.convert("CMYK"), "jpg", "CMYK", "RGB"),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_image_modes_end_to_end(mode, tmp_path, astro_small, style_path):
    make, ext, file_mode, out_mode = MODES[mode]
    path = tmp_path / f"content.{ext}"
    make(astro_small).save(path)
    with Image.open(path) as im:
        assert im.mode == file_mode
    r = nstyle.stylize(path, style_path, size=SIZE, steps=STEPS)
    check_result(r, (21, 32), mode=out_mode)
    # the loaded content is a real picture, not all black or white (scale bugs)
    c = load_image(path, size=SIZE).tensor
    assert 0.1 < float(c.mean()) < 0.9
    out = r.save(tmp_path / "out.png")
    with Image.open(out) as im:
        assert im.mode == out_mode and im.size == (32, 21)
        if out_mode == "RGBA":
            expected = np.round(load_image(path, size=SIZE).alpha[0, 0].numpy() * 255).astype(np.uint8)
            np.testing.assert_array_equal(np.asarray(im)[..., 3], expected)


def test_rgba_result_saved_as_jpeg_drops_alpha(tmp_path, astro_small, style_path):
    r = nstyle.stylize(_rgba(astro_small), style_path, size=SIZE, steps=2)
    assert r.alpha is not None and r.image.mode == "RGBA"
    r.save(tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.mode == "RGB" and im.size == (32, 21)


def test_grey_style_with_rgb_content(astro_small):
    r = nstyle.stylize(astro_small, np.asarray(astro_small.convert("L")), size=SIZE, steps=3)
    check_result(r, (21, 32))


# --------------------------------------------------------------------------- init


@pytest.mark.slow
def test_init_from_image_file(tmp_path, astro_small, style_path):
    init = tmp_path / "start.png"
    Image.fromarray(np.full((10, 20, 3), 128, dtype=np.uint8)).save(init)  # another size
    r = nstyle.stylize(astro_small, style_path, size=SIZE, steps=STEPS, init=str(init))
    check_result(r, (21, 32))
    assert r.history[0].content > 0  # it did not start at the content


def test_init_from_array(astro_small, style_path):
    r = nstyle.stylize(astro_small, style_path, size=SIZE, steps=3, init=np.full((8, 8, 3), 0.5))
    check_result(r, (21, 32))
    assert r.history[0].content > 0


@pytest.mark.slow
def test_noise_init_is_seeded(astro_small, style_path):
    a = nstyle.stylize(astro_small, style_path, size=SIZE, steps=1, init="noise", seed=3)
    b = nstyle.stylize(astro_small, style_path, size=SIZE, steps=1, init="noise", seed=3)
    assert a.history[0] == b.history[0]
    assert a.history[0].content > 0


# --------------------------------------------------------------------------- errors


def _one_line(e: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(e.value)
    assert "\n" not in msg.strip(), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_empty_array_content(style_path):
    with pytest.raises(NStyleError) as e:
        nstyle.stylize(np.zeros((0, 5, 3), dtype=np.uint8), style_path, size=SIZE, steps=1)
    _one_line(e, "empty", "5x0")


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        ({"content_weight": -1.0}, ["content weight", "-1"]),
        ({"style_weight": float("nan")}, ["style weight", "nan"]),
        ({"tv_weight": -0.5}, ["tv weight", "-0.5"]),
        ({"style_layers": {"relu1_1": -1.0}}, ["relu1_1", "-1"]),
        ({"style_layers": "relu1_1,relu9_9"}, ["relu9_9"]),
        ({"content_layer": "relu4_9"}, ["relu4_9"]),
        ({"style_layers": ""}, ["no style layers"]),
        ({"size": 8}, ["size", "8"]),
        ({"init": "noize"}, ["noize"]),
        ({"init": "/no/such/start.png"}, ["/no/such/start.png", "no such file"]),
        ({"steps": -1}, ["steps", "-1"]),
    ],
    ids=["content-neg", "style-nan", "tv-neg", "layer-neg", "layer-unknown", "content-layer-unknown",
         "no-layers", "size-small", "init-unknown", "init-missing", "steps-neg"],
)
def test_bad_options(kwargs, needles, astro_small, style_path):
    opts = {"size": SIZE, "steps": 1, **kwargs}
    with pytest.raises(NStyleError) as e:
        nstyle.stylize(astro_small, style_path, **opts)
    _one_line(e, *needles)


def test_missing_content_file(tmp_path, style_path):
    with pytest.raises(NStyleError) as e:
        nstyle.stylize(tmp_path / "absent.png", style_path, size=SIZE, steps=1)
    _one_line(e, str(tmp_path / "absent.png"), "no such file")


def test_save_unknown_extension_writes_nothing(tmp_path, astro_small, style_path):
    r = nstyle.stylize(astro_small, style_path, size=SIZE, steps=1)
    (tmp_path / "out.xyz").write_bytes(b"old")
    with pytest.raises(NStyleError) as e:
        r.save(tmp_path / "out.xyz")
    _one_line(e, "out.xyz", "extension")
    assert (tmp_path / "out.xyz").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xyz"]
