"""nstyle.engine: convergence, best-G bookkeeping, interruption, divergence, and one
end-to-end run with the bundled VGG16."""

from __future__ import annotations

import math

import pytest
import torch

from nstyle import stylize
from nstyle.core import engine
from nstyle.core.engine import initial_signal, optimize
from nstyle.core.functional import Terms, scaled_gram
from nstyle.core.objective import StyleObjective
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path

SHAPES = {"1d": (1, 2, 8), "3d": (1, 2, 3, 3, 3)}
SETTINGS = {"lbfgs": dict(steps=30, lr=None, tol=1e-4), "adam": dict(steps=300, lr=0.05, tol=1e-3)}


class Quadratic:
    """J(G) = 1/2 · Σ w (G − t)², minimised at t; w in [0.5, 2] so L-BFGS has curvature to learn."""

    def __init__(self, shape, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.target = torch.rand(shape, generator=gen)
        self.w = 0.5 + 1.5 * torch.rand(shape, generator=gen)
        self.calls = 0

    def __call__(self, g):
        self.calls += 1
        total = 0.5 * (self.w * (g - self.target) ** 2).sum()
        zero = torch.zeros(())
        return Terms(total, total, zero, zero)

    def j(self, g) -> float:
        return float(0.5 * (self.w * (g - self.target) ** 2).sum())


def g_start(shape, seed=1):
    return initial_signal("noise", torch.zeros(shape), seed=seed)


@pytest.mark.parametrize("dim", list(SHAPES))
@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optimize_converges_on_quadratic(method, dim):
    shape, cfg = SHAPES[dim], SETTINGS[method]
    q = Quadratic(shape)
    g0 = g_start(shape)
    g0_copy = g0.clone()
    res = optimize(q, g0, steps=cfg["steps"], optimizer=method, lr=cfg["lr"])
    assert torch.equal(g0, g0_copy)  # the start is not modified in place
    assert not res.interrupted and not res.diverged
    assert q.calls == cfg["steps"] + 1  # one evaluation per step, plus the final measurement
    totals = [h.total for h in res.history]
    assert [h.step for h in res.history] == list(range(cfg["steps"] + 1))
    assert totals[0] == pytest.approx(q.j(g0), rel=1e-6)  # step 0 is measured at g0
    assert totals[-1] < 1e-6 * totals[0]
    assert float((res.g - q.target).abs().max()) < cfg["tol"]
    # the returned G is the best one recorded
    assert q.j(res.g) == pytest.approx(min(totals), rel=1e-5)
    assert res.best is not None and res.best.total == min(totals) and res.best.step == res.best_step


def test_optimize_zero_steps_returns_start():
    q = Quadratic(SHAPES["1d"])
    g0 = g_start(SHAPES["1d"])
    res = optimize(q, g0, steps=0)
    assert torch.equal(res.g, g0) and res.history == [] and res.best is None


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_keyboard_interrupt_keeps_best_so_far(method):
    shape = SHAPES["3d"]
    q = Quadratic(shape, seed=2)
    g0 = g_start(shape, seed=3)
    seen = []

    def callback(info, g):
        seen.append(info.step)
        if info.step == 3:
            raise KeyboardInterrupt

    res = optimize(q, g0, steps=50, optimizer=method, lr=SETTINGS[method]["lr"], callback=callback)
    assert res.interrupted and not res.diverged
    assert seen == [0, 1, 2, 3]
    totals = [h.total for h in res.history]
    assert len(totals) == 4
    assert min(totals) < totals[0]  # J went down, so the best G is not the start
    assert not torch.equal(res.g, g0)
    assert q.j(res.g) == pytest.approx(min(totals), rel=1e-5)


class NaNAfter(Quadratic):
    """The quadratic, until evaluation number ``n`` onwards returns NaN."""

    def __init__(self, shape, n):
        super().__init__(shape, seed=4)
        self.n = n

    def __call__(self, g):
        terms = super().__call__(g)
        if self.calls > self.n:
            nan = terms.total * float("nan")
            return Terms(nan, nan, terms.style, terms.tv)
        return terms


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_nan_objective_sets_diverged_and_returns_finite_best(method):
    shape = SHAPES["1d"]
    q = NaNAfter(shape, n=5)
    g0 = g_start(shape, seed=5)
    res = optimize(q, g0, steps=40, optimizer=method, lr=SETTINGS[method]["lr"])
    assert res.diverged and not res.interrupted
    totals = [h.total for h in res.history]
    assert len(totals) == 5 and all(math.isfinite(t) for t in totals)
    assert torch.isfinite(res.g).all()
    assert min(totals) < totals[0]
    assert q.j(res.g) == pytest.approx(min(totals), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(optimizer="sgd"), "sgd"),
        (dict(steps=-1), "-1"),
        (dict(lr=0.0), "0"),
        (dict(lr=-0.1), "-0.1"),
        (dict(lr=float("nan")), "nan"),
    ],
)
def test_optimize_rejects_bad_arguments(kwargs, needle):
    q = Quadratic(SHAPES["1d"])
    args = dict(steps=3) | kwargs
    with pytest.raises(NStyleError, match=needle):
        optimize(q, g_start(SHAPES["1d"]), **args)
    assert q.calls == 0


# ---- initial signals --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 2, 16), (1, 3, 6, 5), (1, 1, 3, 4, 5)])
def test_noise_init_is_seeded(shape):
    content = torch.zeros(shape)
    a = initial_signal("noise", content, seed=7)
    b = initial_signal("noise", content, seed=7)
    c = initial_signal("noise", content, seed=8)
    assert a.shape == shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 and float(a.std()) > 0.1


def test_content_and_style_init():
    content = torch.rand(1, 3, 6, 8)
    style = torch.rand(1, 3, 12, 4)
    g = initial_signal("content", content)
    assert torch.equal(g, content) and g.data_ptr() != content.data_ptr()
    s = initial_signal("style", content, style)
    assert s.shape == content.shape
    flat = torch.full((1, 2, 9), 0.25)
    assert torch.allclose(initial_signal("style", torch.zeros(1, 2, 4), flat), torch.full((1, 2, 4), 0.25))
    with pytest.raises(NStyleError):
        initial_signal("zeros", content)
    with pytest.raises(NStyleError):
        initial_signal("content", None, style)


# ---- end to end with the bundled VGG16 -------------------------------------------------


def test_end_to_end_bundled_vgg16(vgg16_norm):
    content = load_image(sample_path("astronaut.png"), size=32).tensor
    style = load_image(sample_path("coffee.png"), size=32).tensor
    assert content.shape == (1, 3, 32, 32)
    style_layers = {"relu1_1": 0.5, "relu2_1": 0.5}
    j = StyleObjective(vgg16_norm, content, style, "relu2_1", style_layers, alpha=1.0, beta=1e4)
    g0 = initial_signal("noise", content, seed=0)
    res = optimize(j, g0, steps=15, optimizer="lbfgs")
    assert not res.diverged and not res.interrupted
    totals = [h.total for h in res.history]
    assert res.history[-1].total < 0.25 * totals[0]
    with torch.no_grad():
        assert float(j(res.g).total) == pytest.approx(min(totals), rel=1e-4)
        targets = {n: scaled_gram(a) for n, a in vgg16_norm(style, list(style_layers)).items()}
        start, end = vgg16_norm(g0, list(style_layers)), vgg16_norm(res.g, list(style_layers))
        for name in style_layers:
            d0 = float((scaled_gram(start[name]) - targets[name]).norm())
            d1 = float((scaled_gram(end[name]) - targets[name]).norm())
            assert d1 < 0.8 * d0, (name, d0, d1)


@pytest.mark.parametrize("overshoot", [math.inf, engine.OVERSHOOT])
def test_lbfgs_restarts_after_an_overshoot(monkeypatch, overshoot):
    """scikit-image's rocket in the Hubble deep field, with style on the shallow layers: L-BFGS
    without line search jumps to J ~ 1e28 at its second step and, left alone, stays stuck
    near the start; going back to the best G with a fresh memory and half the step lets it
    descend (the restart is what makes the difference: without it J stalls)."""
    monkeypatch.setattr(engine, "OVERSHOOT", overshoot)
    r = stylize(
        str(sample_path("rocket.jpg")), str(sample_path("hubble_deep_field.jpg")), size=64, scales="none",
        steps=20, style_layers="relu1_1:1,relu2_1:1,relu3_1:0.1,relu4_1:0.01", style_weight=1e8,
    )
    ratio = r.best.total / r.history[0].total
    if math.isinf(overshoot):
        assert ratio > 0.8  # the failure the restart exists for
    else:
        assert ratio < 0.5
