"""nstyle.tiling: tiled J and dJ/dG against the whole-image StyleObjective.

Layers stop at relu3_1 (stride 4, receptive field 24 px, exact margin 12 px) so that
images of a few dozen pixels already hold several tiles with exact margins.
"""

from __future__ import annotations

import copy

import pytest
import torch

from nstyle.core.engine import optimize
from nstyle.core.functional import gram_matrix, scaled_gram
from nstyle.core.objective import StyleObjective
from nstyle.core.tiling import (
    Geometry,
    TiledObjective,
    available_bytes,
    needs_tiling,
    tiled_eval_bytes,
    untiled_eval_bytes,
)
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.nets.volume import Inflated, Triplanar
from nstyle.samples import sample_path

STYLE = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
CONTENT = ["relu2_2", "relu3_1"]
ALPHA, BETA, TV = 0.5, 1e3, 0.1


def image(name: str, size: int, dtype=torch.float32) -> torch.Tensor:
    return load_image(sample_path(name), size=size).tensor.to(dtype)


@pytest.fixture(scope="module")
def vgg64(vgg16_norm):
    """The default net in float64: tiled and whole-image results then agree to ~1e-15."""
    return copy.deepcopy(vgg16_norm).double()


@pytest.fixture(scope="module")
def images64():
    c = image("astronaut.png", 44, torch.float64)  # 44 x 44: 2x2 tiles at tile 24, 4x4 at 12
    s = image("ihc.png", 52, torch.float64)[..., :37, :]  # another size, not a stride multiple
    g0 = (0.8 * c + 0.2 * torch.rand(c.shape, generator=torch.Generator().manual_seed(0), dtype=c.dtype))
    return c, s, g0


def evaluate(objective, g0: torch.Tensor) -> tuple[list[float], torch.Tensor]:
    """[J, J_content, J_style, TV] and dJ/dG at g0, through ``total.backward()`` as the engine does."""
    g = g0.clone().requires_grad_(True)
    terms = objective(g)
    terms.total.backward()
    return [float(t.detach()) for t in (terms.total, terms.content, terms.style, terms.tv)], g.grad


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_geometry_of_vgg16(vgg16_norm):
    """Strides, receptive fields and exact margins, checked by hand (module docstring)."""
    for layers, stride, rf, margin in (
        (["relu3_1"], 4, 24, 12),
        (["relu4_2", "relu1_1"], 8, 76, 40),
        (["relu5_1"], 16, 132, 64),
    ):
        geo = Geometry(vgg16_norm, layers)
        assert (geo.stride, geo.receptive_field, geo.exact_margin) == (stride, rf, margin)
    geo = Geometry(vgg16_norm, ["relu5_1"])
    assert [geo.feature_size(100, n) for n in ("relu1_1", "pool1", "relu4_2", "relu5_1")] == [100, 50, 12, 6]


def test_one_tile_equals_style_objective(vgg16_norm):
    c, s = image("astronaut.png", 40), image("ihc.png", 36)
    g0 = torch.rand(c.shape, generator=torch.Generator().manual_seed(1))
    args = (vgg16_norm, c, s, "relu2_2", STYLE, ALPHA, BETA, TV)
    ref, ref_grad = evaluate(StyleObjective(*args), g0)
    tiled = TiledObjective(*args, tile=64)
    assert len(tiled.tiles(c.shape[2:])) == 1
    got, grad = evaluate(tiled, g0)
    assert got == pytest.approx(ref, rel=1e-5)
    assert rel(grad, ref_grad) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("tile", [8, 12, 24])
def test_exact_margin_gives_whole_image_j_and_gradient(vgg64, images64, tile):
    c, s, g0 = images64
    args = (vgg64, c, s, CONTENT, STYLE, ALPHA, BETA, TV)
    ref, ref_grad = evaluate(StyleObjective(*args), g0)
    tiled = TiledObjective(*args, tile=tile)
    assert tiled.margin == 12
    assert len(tiled.tiles(c.shape[2:])) > 1 and len(tiled.tiles(s.shape[2:])) > 1
    got, grad = evaluate(tiled, g0)
    assert got == pytest.approx(ref, rel=1e-12)
    assert rel(grad, ref_grad) < 1e-12
    # The style targets (S at its own size) and G's global Grams are the untiled ones.
    acts_s, acts_g = vgg64(s, list(STYLE)), vgg64(g0, list(STYLE))
    grams = tiled.gram_matrices(g0)
    for n in STYLE:
        assert rel(tiled.style_targets[n], scaled_gram(acts_s[n])) < 1e-12
        assert rel(grams[n], gram_matrix(acts_g[n])) < 1e-12


@pytest.mark.slow
def test_no_grad_evaluation_gives_the_same_j(vgg64, images64):
    c, s, g0 = images64
    tiled = TiledObjective(vgg64, c, s, CONTENT, STYLE, ALPHA, BETA, TV, tile=12)
    with_grad, _ = evaluate(tiled, g0)
    with torch.no_grad():
        plain = tiled(g0.clone().requires_grad_(True))
    assert not plain.total.requires_grad
    assert float(plain.total) == pytest.approx(with_grad[0], rel=1e-14)


@pytest.mark.slow
def test_short_margin_errs_a_little(vgg64, images64):
    """Below the exact margin the cores' edge features see zeros instead of context.

    Measured on these images (tile 12, float64): J off by 0.061 % and dJ/dG by 0.46 %
    (max over pixels) with an 8 px margin, 1.7 % and 13 % with 4 px, 3.5 % and 106 %
    with none; 0 and 4e-16 at the exact 12 px. The bounds are 3x the 8 px errors.
    """
    c, s, g0 = images64
    args = (vgg64, c, s, CONTENT, STYLE, ALPHA, BETA)
    ref, ref_grad = evaluate(StyleObjective(*args), g0)
    errors = []
    for margin in (8, 0):
        got, grad = evaluate(TiledObjective(*args, tile=12, margin=margin), g0)
        errors.append((abs(got[0] / ref[0] - 1), rel(grad, ref_grad)))
    (j8, g8), (j0, gz) = errors
    assert 1e-6 < j8 < 0.002 and 1e-4 < g8 < 0.015
    assert j8 < j0 and g8 < gz


@pytest.mark.slow
def test_optimize_lowers_j_and_moves_grams_towards_style(vgg16_norm):
    c, s = image("astronaut.png", 40), image("ihc.png", 48)
    tiled = TiledObjective(vgg16_norm, c, s, "relu2_2", STYLE, 1.0, 1e4, tile=16)
    assert len(tiled.tiles(c.shape[2:])) == 9
    result = optimize(tiled, c, steps=5)
    assert result.history[-1].total < 0.5 * result.history[0].total
    assert result.best.style < result.history[0].style

    def style_distance(x: torch.Tensor) -> float:
        grams = tiled.gram_matrices(x)
        m = {n: vgg16_norm(x, [n])[n].shape[2:].numel() for n in STYLE}
        return sum(float((tiled.style_targets[n] - grams[n] / (2 * m[n] * grams[n].shape[-1])).norm()) for n in STYLE)

    assert style_distance(result.g) < style_distance(c)


@pytest.mark.slow
def test_style_only_and_bf16(vgg16_norm):
    """No content (texture synthesis), and a precision passed through to the features."""
    s = image("ihc.png", 40)
    g0 = torch.rand(1, 3, 32, 28, generator=torch.Generator().manual_seed(2))
    for precision, tol in (("fp32", 1e-5), ("bf16", 1e-2)):
        args = (vgg16_norm, None, s, "relu2_2", STYLE, ALPHA, BETA)
        ref, ref_grad = evaluate(StyleObjective(*args, precision=precision), g0)
        got, grad = evaluate(TiledObjective(*args, precision=precision, tile=12), g0)
        assert got[1] == 0.0
        assert got[0] == pytest.approx(ref[0], rel=tol)
        assert float((grad - ref_grad).norm() / ref_grad.norm()) < 10 * tol


@pytest.mark.slow
def test_volumes_tile_along_three_axes(vgg16_norm):
    net = Inflated(vgg16_norm).double()
    gen = torch.Generator().manual_seed(3)
    c, s = (torch.rand(shape, generator=gen, dtype=torch.float64) for shape in ((1, 1, 12, 14, 10), (1, 1, 9, 8, 12)))
    g0 = torch.rand(c.shape, generator=gen, dtype=torch.float64)
    args = (net, c, s, "relu2_1", {"relu1_2": 1.0, "relu2_1": 1.0}, ALPHA, BETA)
    ref, ref_grad = evaluate(StyleObjective(*args), g0)
    tiled = TiledObjective(*args, tile=6)
    assert tiled.margin == 4 and len(tiled.tiles(c.shape[2:])) == 2 * 3 * 2
    got, grad = evaluate(tiled, g0)
    assert got[0] == pytest.approx(ref[0], rel=1e-12)
    assert rel(grad, ref_grad) < 1e-12


@pytest.mark.parametrize("tile", [0, -16, 10, 2.5, True, "512"])
def test_bad_tile_sizes_raise(vgg16_norm, tile):
    c = torch.rand(1, 3, 16, 16)
    with pytest.raises(NStyleError, match="tile"):
        TiledObjective(vgg16_norm, c, c, "relu2_2", STYLE, 1.0, 1.0, tile=tile)


@pytest.mark.parametrize("margin", [-4, 6, 1.5])
def test_bad_margins_raise(vgg16_norm, margin):
    c = torch.rand(1, 3, 16, 16)
    with pytest.raises(NStyleError, match="margin"):
        TiledObjective(vgg16_norm, c, c, "relu2_2", STYLE, 1.0, 1.0, tile=8, margin=margin)


def test_untileable_inputs_raise(vgg16_norm):
    c = torch.rand(1, 3, 16, 16)
    with pytest.raises(NStyleError, match="spatial axes"):
        TiledObjective(vgg16_norm, c, torch.rand(1, 3, 4, 4, 4), "relu2_2", STYLE, 1.0, 1.0)
    with pytest.raises(NStyleError, match="samples its input"):
        vol = torch.rand(1, 1, 8, 8, 8)
        TiledObjective(Triplanar(vgg16_norm), None, vol, "relu2_2", {"axial:relu1_1": 1.0}, 1.0, 1.0)
    with pytest.raises(NStyleError, match="VGG-like"):
        TiledObjective(lambda x, layers: {}, c, c, "relu2_2", STYLE, 1.0, 1.0)
    tiled = TiledObjective(vgg16_norm, c, c, "relu2_2", STYLE, 1.0, 1.0, tile=8)
    with pytest.raises(NStyleError, match="spatial size"):
        tiled(torch.rand(1, 3, 16, 20))


def test_memory_estimates():
    assert needs_tiling((100_000, 100_000), "cpu")
    assert not needs_tiling((64, 64), "cpu")
    assert available_bytes("cpu") > 0
    assert untiled_eval_bytes((1024, 1024), "bf16") < untiled_eval_bytes((1024, 1024), "fp32")
    # At 4096²: tens of GiB untiled, about one GiB in 512 px tiles.
    assert untiled_eval_bytes((4096, 4096)) > 32 * 2**30
    assert tiled_eval_bytes((4096, 4096)) < 3 * 2**30
    with pytest.raises(NStyleError):
        untiled_eval_bytes((8, 8, 8))
