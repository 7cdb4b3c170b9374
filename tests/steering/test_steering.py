"""The steering controls through ``stylize`` and the CLI: each moves the result the intended way.

Tiny runs (48 px, a few L-BFGS steps, one scale); every assertion compares two runs that
differ only in the control, on scikit-image's sample images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import nstyle
from nstyle import NStyleError
from nstyle.cli import main
from nstyle.core.functional import scaled_gram, total_variation
from nstyle.modalities.image import load_image
from nstyle.nets import build_net
from nstyle.samples import sample_path
from nstyle.steering.colors import rgb_to_yiq

SIZE = 48
KW = dict(size=SIZE, steps=8, scales=None)
LAYERS = ["relu1_1", "relu2_1", "relu3_1"]


@pytest.fixture(scope="module")
def paths():
    return {k: str(sample_path(k)) for k in ("astronaut.png", "ihc.png", "coffee.png", "chelsea.png")}


def gram_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ over relu1_1..relu3_1 of ‖Ĝ(x) − Ĝ(y)‖², measured with the bundled net."""
    net = build_net("vgg16")
    with torch.no_grad():
        ax, ay = net(x, LAYERS), net(y, LAYERS)
    return sum(float((scaled_gram(ax[n]) - scaled_gram(ay[n])).pow(2).sum()) for n in LAYERS)


def img(path: str, size: int = SIZE) -> torch.Tensor:
    return load_image(path, size=size).tensor


@pytest.mark.slow
def test_blend_weights_move_the_result_between_the_two_styles(paths):
    c, s1, s2 = paths["astronaut.png"], paths["ihc.png"], paths["coffee.png"]
    ratio = {}
    for w in ("1,0", "0.5,0.5", "0,1"):
        g = nstyle.stylize(c, [s1, s2], style_blend=w, **KW).tensor
        ratio[w] = gram_distance(g, img(s1)) / gram_distance(g, img(s2))
    # more weight on S1: closer to S1 relative to S2 (measured 0.031 / 0.47 / 2.9)
    assert ratio["1,0"] < ratio["0.5,0.5"] < ratio["0,1"]


@pytest.mark.slow
def test_blend_of_one_style_equals_that_style(paths):
    c, s1, s2 = paths["astronaut.png"], paths["ihc.png"], paths["coffee.png"]
    one = nstyle.stylize(c, s1, **KW)
    blended = nstyle.stylize(c, [s1, s2], style_blend=[1, 0], **KW)
    assert one.history[-1].total == pytest.approx(blended.history[-1].total, rel=1e-5)


@pytest.mark.parametrize("blend, needle", [("1", "1 weight"), ("a,b", "one number"), ("0,0", "all be 0"),
                                           ("1,-1", "blend weight")])
def test_bad_blend(paths, blend, needle):
    with pytest.raises(NStyleError, match=needle):
        nstyle.stylize(paths["astronaut.png"], [paths["ihc.png"], paths["coffee.png"]], style_blend=blend, **KW)


def high_frequency(x: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels: how fine the texture is."""
    return float(total_variation(x)) / x.numel()


@pytest.mark.slow
def test_style_scale_makes_texture_coarser(paths):
    c, s = paths["astronaut.png"], paths["chelsea.png"]
    fine = nstyle.stylize(c, s, style_scale=0.5, **KW).tensor
    coarse = nstyle.stylize(c, s, style_scale=2.0, **KW).tensor
    assert high_frequency(coarse) < high_frequency(fine)


def patch(name: str, side: int) -> np.ndarray:
    """The top-left ``side`` x ``side`` pixels of a scikit-image sample: a texture patch."""
    return np.asarray(Image.open(sample_path(name)).convert("RGB"))[:side, :side]


def test_small_style_keeps_its_own_pixels_by_default(paths):
    from nstyle.kinds.image import ImageModality
    from nstyle.options import ImageSettings

    load = ImageModality().load
    big, small = patch("gravel.png", 200), patch("gravel.png", 24)
    for style, scale, side in ((small, None, 24), (big, None, SIZE), (small, 1.0, SIZE), (small, 0.5, SIZE // 2)):
        sig = load(paths["astronaut.png"], [style], ImageSettings(size=SIZE, style_scale=scale), torch.device("cpu"))
        assert max(sig.styles[0].shape[-2:]) == side, (scale, style.shape)


@pytest.mark.slow
def test_texture_patch_at_its_own_scale_is_not_blurred(paths):
    """A 24 px patch of scikit-image's gravel texture, used as it is, gives a finer texture
    than the same patch magnified to the result's 48 px (``style_scale=1``)."""
    c, s = paths["astronaut.png"], patch("gravel.png", 24)
    native = nstyle.stylize(c, s, **KW).tensor
    magnified = nstyle.stylize(c, s, style_scale=1.0, **KW).tensor
    assert high_frequency(native) > 1.2 * high_frequency(magnified)


def test_style_too_small_for_the_net(paths):
    with pytest.raises(NStyleError, match="style image is too small"):
        nstyle.stylize(paths["astronaut.png"], patch("gravel.png", 10), **KW)


@pytest.mark.parametrize("scale", [0, -1, 5, float("nan")])
def test_bad_style_scale(paths, scale):
    with pytest.raises(NStyleError, match="style scale"):
        nstyle.stylize(paths["astronaut.png"], paths["ihc.png"], style_scale=scale, **KW)


@pytest.mark.slow
def test_tv_weight_smooths_the_result(paths):
    c, s = paths["astronaut.png"], paths["ihc.png"]
    plain = nstyle.stylize(c, s, **KW).tensor
    smooth = nstyle.stylize(c, s, tv_weight=1e6, **KW).tensor
    assert high_frequency(smooth) < 0.8 * high_frequency(plain)


def chroma_distance(x: torch.Tensor, c: torch.Tensor) -> float:
    return float((rgb_to_yiq(x)[:, 1:] - rgb_to_yiq(c)[:, 1:]).abs().mean())


@pytest.mark.slow
def test_colors_keep_the_content_colours(paths):
    c, s = paths["astronaut.png"], paths["ihc.png"]
    ct = img(c)
    plain = nstyle.stylize(c, s, **KW).tensor
    lum = nstyle.stylize(c, s, colors="keep-luminance", **KW).tensor
    hist = nstyle.stylize(c, s, colors="match-histogram", **KW).tensor

    def mean_gap(x):
        return float((x.mean((2, 3)) - ct.mean((2, 3))).norm())

    assert chroma_distance(lum, ct) < 0.1 * chroma_distance(plain, ct)
    assert mean_gap(hist) < 0.5 * mean_gap(plain)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["gram", "mean-std", "wasserstein", "sliced"])
def test_every_style_loss_lowers_j_and_moves_towards_s(paths, loss):
    c, s = paths["astronaut.png"], paths["coffee.png"]
    r = nstyle.stylize(c, s, style_loss=loss, **KW)
    assert r.best.total < 0.5 * r.history[0].total
    assert r.best.style < r.history[0].style
    assert gram_distance(r.tensor, img(s)) < gram_distance(img(c), img(s))


def test_unknown_style_loss(paths):
    with pytest.raises(NStyleError, match="unknown style loss"):
        nstyle.stylize(paths["astronaut.png"], paths["ihc.png"], style_loss="w3", **KW)


def binary_mask() -> np.ndarray:
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[:, SIZE // 2 :] = 255  # right half styled, left half untouched
    return m


@pytest.mark.slow
def test_mask_leaves_the_black_region_untouched(paths):
    c, s = paths["astronaut.png"], paths["ihc.png"]
    r = nstyle.stylize(c, s, mask=binary_mask(), **KW)
    ct = img(c)
    left, right = slice(0, SIZE // 2), slice(SIZE // 2 + 8, SIZE)
    assert torch.equal(r.tensor[..., left], ct[..., left])  # exactly the content
    assert float((r.tensor[..., right] - ct[..., right]).abs().mean()) > 0.02


@pytest.mark.slow
def test_mask_gives_each_region_its_style(paths):
    """Left half in coffee's style, right half in ihc's: each half's colours move to its own style."""
    c, s1, s2 = paths["astronaut.png"], paths["coffee.png"], paths["ihc.png"]
    r = nstyle.stylize(c, [s1, s2], mask=binary_mask(), **KW)
    ct = img(c)
    halves = {"left": (slice(0, SIZE // 2), img(s1)), "right": (slice(SIZE // 2, SIZE), img(s2))}
    for side, (cols, s) in halves.items():
        own = float((r.tensor[..., cols].mean((2, 3)) - s.mean((2, 3))).norm())
        before = float((ct[..., cols].mean((2, 3)) - s.mean((2, 3))).norm())
        assert own < before, side


def test_mask_and_blend_exclude_each_other(paths):
    with pytest.raises(NStyleError, match="exclude"):
        nstyle.stylize(paths["astronaut.png"], [paths["ihc.png"], paths["coffee.png"]], mask=binary_mask(),
                       style_blend="0.5,0.5", **KW)


# --------------------------------------------------------------------------- CLI: film, plot, config


@pytest.mark.slow
def test_cli_film_plot_and_config_repeat_the_run_exactly(tmp_path, paths, capsys):
    out = tmp_path / "out.png"
    argv = ["image", paths["astronaut.png"], paths["ihc.png"], paths["coffee.png"], "-o", str(out),
            "--size", "48", "--steps", "4", "--scales", "32", "--scale-steps", "2", "--style-blend", "0.6,0.4",
            "--film", str(tmp_path / "run.gif"), "--film-frames", "5", "--plot", str(tmp_path / "losses.png"),
            "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png", "out.png", "out.toml", "run.gif"]
    with Image.open(tmp_path / "run.gif") as gif:
        assert gif.n_frames >= 3 and gif.size == (48, 48)
    with Image.open(tmp_path / "losses.png") as plot:
        assert plot.size[0] > 300
    first = np.asarray(Image.open(out))
    # The same run again from its settings file alone, to another output.
    again = tmp_path / "again.png"
    assert main(["--config", str(tmp_path / "out.toml"), "-o", str(again)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), first)
    text = (tmp_path / "out.toml").read_text()
    assert 'style_blend = "0.6,0.4"' in text and "steps = 4" in text


@pytest.mark.parametrize("extra, needle", [
    (["--film", "x.avi"], "avi"), (["--plot", "x.txt"], "plots"), (["--film-frames", "1"], "film-frames"),
    (["--colors", "sepia"], "sepia"), (["--style-loss", "w3"], "w3"), (["--mask-styles", "1"], "without a mask"),
])
def test_cli_bad_steering_options(tmp_path, paths, capsys, extra, needle):
    out = tmp_path / "out.png"
    try:
        rc = main(["image", paths["astronaut.png"], paths["ihc.png"], "-o", str(out), "--size", "32", "--steps", "1",
                   "--quiet", *[e if "." not in e else str(tmp_path / e) for e in extra]])
    except SystemExit as e:  # argparse's own errors (choices) exit from the parser
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_scale_too_small_for_the_network_is_a_clear_error(paths):
    with pytest.raises(NStyleError, match="too small"):
        # coffee.png is 12 px high at the 16 px scale; relu5_1 needs 16 (its stride)
        nstyle.stylize(paths["astronaut.png"], paths["coffee.png"], size=48, steps=1, scales="16",
                       style_layers="relu1_1:1,relu5_1:1")
