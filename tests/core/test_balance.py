"""The relative balance (nstyle.core.balance): J_content over ‖a(C)‖², each style layer's
distance over C's own distance from S.

Checked against the formula in float64 NumPy, for the property it exists for (J does not
change when C, S and G are all louder, while the seed's absolute J grows with the square
and the fourth power), at G = C and G = 0, for every style loss, for C = S, and tiled.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nstyle.core.balance import check_balance, content_norm, norm_or_one
from nstyle.core.objective import StyleObjective
from nstyle.core.style_losses import STYLE_LOSSES
from nstyle.core.tiling import TiledObjective
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.nets.random import Branch, RandomBranches
from nstyle.samples import sample_path

LAYERS = {"relu_w3": 1.0, "relu_w3d2": 0.5}


def signals(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    c = torch.rand(1, 2, 40, generator=gen, dtype=torch.float64)
    s = 3.0 * torch.rand(1, 2, 33, generator=gen, dtype=torch.float64) ** 4  # louder, peakier
    g = torch.rand(1, 2, 40, generator=gen, dtype=torch.float64)
    return c, s, g


@pytest.fixture(scope="module")
def net() -> RandomBranches:
    return RandomBranches(2, [Branch(3, 8), Branch(3, 6, 2)], seed=3).double()


def numpy_relative_j(net: RandomBranches, c, s, g, alpha: float, beta: float) -> float:
    """α·½‖a(C) − a(G)‖²/‖a(C)‖² + β·Σ_l λ_l ‖Ĝ_l(S) − Ĝ_l(G)‖²/‖Ĝ_l(S) − Ĝ_l(C)‖², in float64 NumPy."""
    names = ["relu_w3", *LAYERS]
    a = {k: {n: v.numpy()[0] for n, v in net(x, names).items()} for k, x in (("c", c), ("s", s), ("g", g))}

    def gram(f: np.ndarray) -> np.ndarray:  # f: (n_C, M) -> F F^T / (2 M n_C)
        return f @ f.T / (2.0 * f.shape[1] * f.shape[0])

    j_c = 0.5 * np.sum((a["c"]["relu_w3"] - a["g"]["relu_w3"]) ** 2) / np.sum(a["c"]["relu_w3"] ** 2)
    j_s = sum(
        lam * np.sum((gram(a["s"][n]) - gram(a["g"][n])) ** 2) / np.sum((gram(a["s"][n]) - gram(a["c"][n])) ** 2)
        for n, lam in LAYERS.items()
    )
    return alpha * j_c + beta * j_s


def test_relative_j_is_the_formula(net):
    c, s, g = signals()
    obj = StyleObjective(net, c, s, "relu_w3", LAYERS, alpha=0.7, beta=3.0, balance="relative")
    got = float(obj(g).total)
    assert got == pytest.approx(numpy_relative_j(net, c, s, g, 0.7, 3.0), rel=1e-10)
    # The same J as the seed's absolute one with α / ‖a(C)‖² and λ_l / ‖Ĝ_l(S) − Ĝ_l(C)‖².
    absolute = StyleObjective(
        net, c, s, "relu_w3", {n: lam / obj.style_norms[n] for n, lam in LAYERS.items()},
        alpha=0.7 / obj.content_norm, beta=3.0,
    )
    assert float(absolute(g).total) == pytest.approx(got, rel=1e-10)


def test_relative_j_does_not_change_with_loudness(net):
    """ReLU convolutions without bias are positively homogeneous: scaling C, S and G by k
    scales the content cost by k² and the style cost by k⁴ under ``absolute``; the relative
    J stays the same, so one β means one trade-off for a loud or a quiet pair."""
    c, s, g = signals(1)
    k = 7.0
    terms = {}
    for balance in ("absolute", "relative"):
        for scale in (1.0, k):
            obj = StyleObjective(net, scale * c, scale * s, "relu_w3", LAYERS, 1.0, 1.0, balance=balance)
            t = obj(scale * g)
            terms[balance, scale] = (float(t.content), float(t.style))
    for i in (0, 1):
        assert terms["relative", k][i] == pytest.approx(terms["relative", 1.0][i], rel=1e-10)
    assert terms["absolute", k][0] == pytest.approx(k**2 * terms["absolute", 1.0][0], rel=1e-10)
    assert terms["absolute", k][1] == pytest.approx(k**4 * terms["absolute", 1.0][1], rel=1e-10)


@pytest.mark.parametrize("loss", sorted(STYLE_LOSSES))
def test_each_cost_is_one_unit_at_its_reference(net, loss):
    """G = C costs J_style = Σ_l λ_l (and no content), G = 0 costs J_content = ½, for every style loss."""
    c, s, _ = signals(2)
    obj = StyleObjective(net, c, s, "relu_w3", LAYERS, 1.0, 1.0, balance="relative", style_loss=loss)
    at_c = obj(c)
    assert float(at_c.content) == 0.0
    assert float(at_c.style) == pytest.approx(sum(LAYERS.values()), rel=1e-6)
    assert float(obj(torch.zeros_like(c)).content) == pytest.approx(0.5, rel=1e-9)
    g = torch.rand_like(c).requires_grad_(True)
    obj(g).total.backward()
    assert torch.isfinite(g.grad).all() and float(g.grad.abs().sum()) > 0


def test_a_style_equal_to_the_content_stays_absolute_not_infinite(net):
    c, _, g = signals(3)
    obj = StyleObjective(net, c, c.clone(), "relu_w3", LAYERS, 1.0, 1.0, balance="relative")
    assert obj.style_norms == dict.fromkeys(LAYERS, 1.0)  # d(S, C) = 0: nothing to be relative to
    assert np.isfinite(float(obj(g).total))
    assert norm_or_one(0.0) == 1.0 and norm_or_one(float("inf")) == 1.0 and norm_or_one(2.5) == 2.5
    assert content_norm([torch.ones(2, 3)]) == 6.0
    synthesis = StyleObjective(net, None, c, "relu_w3", LAYERS, 0.0, 1.0, balance="relative")
    gram = synthesis.style_targets["relu_w3"]["gram"]
    assert synthesis.style_norms["relu_w3"] == pytest.approx(float(gram.pow(2).sum()), rel=1e-9)


def test_regions_are_relative_to_their_own_start(net):
    """With a mask, the divisor is the share-weighted mean of each region's distance from its style."""
    c, s, g = signals(4)
    w = torch.zeros(1, 1, 40, dtype=torch.float64)
    w[..., :20] = 1
    regions = [(w, 0), (1 - w, 1)]
    obj = StyleObjective(net, c, [s, 0.1 * s], "relu_w3", LAYERS, 1.0, 1.0, balance="relative", regions=regions)
    assert np.isfinite(float(obj(g).total))
    at_c = obj(c)
    assert float(at_c.style) == pytest.approx(sum(LAYERS.values()), rel=1e-6)


def test_tiled_relative_equals_whole(vgg16_norm):
    c = load_image(sample_path("astronaut.png"), size=44).tensor
    s = load_image(sample_path("ihc.png"), size=40).tensor
    g0 = torch.rand(c.shape, generator=torch.Generator().manual_seed(0))
    style = {"relu1_1": 1.0, "relu2_1": 0.5}
    args = (vgg16_norm, c, s, "relu2_2", style, 1.0, 10.0)
    whole = StyleObjective(*args, balance="relative")
    tiled = TiledObjective(*args, tile=24, balance="relative")
    assert len(tiled.tiles(c.shape[2:])) > 1
    got = {}
    for name, obj in (("whole", whole), ("tiled", tiled)):
        g = g0.clone().requires_grad_(True)
        t = obj(g)
        t.total.backward()
        got[name] = (float(t.total.detach()), g.grad.clone())
    assert got["tiled"][0] == pytest.approx(got["whole"][0], rel=1e-4)
    assert float((got["tiled"][1] - got["whole"][1]).abs().max() / got["whole"][1].abs().max()) < 1e-3
    assert tiled.content_norm == pytest.approx(whole.content_norm, rel=1e-5)


def test_unknown_balance_is_an_error(net):
    c, s, _ = signals()
    with pytest.raises(NStyleError, match="balance"):
        StyleObjective(net, c, s, "relu_w3", LAYERS, 1.0, 1.0, balance="loudest")
    assert check_balance("relative") == "relative"
