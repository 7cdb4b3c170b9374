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
from nstyle.kinds.image import ImageModality
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


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_bounds_keep_every_measured_g_in_the_box_and_reach_the_box_optimum(method):
    """A quadratic whose minimum lies partly outside [0, 1]: projected steps end at the
    minimum clipped to the box (separable J), and every G measured lies in the box."""
    shape, cfg = SHAPES["3d"], SETTINGS[method]
    q = Quadratic(shape)
    q.target = q.target * 1.6 - 0.3  # about a third of the optimum outside [0, 1]
    seen = []
    # twice the free run's steps: the start is noise up to 1 away, and no bounded step moves
    # a sample by more than engine.STEP_LIMIT
    res = optimize(q, g_start(shape), steps=2 * cfg["steps"], optimizer=method, lr=cfg["lr"], bounds=(0.0, 1.0),
                   callback=lambda info, g: seen.append(g.clone()))
    assert all(float(g.min()) >= 0.0 and float(g.max()) <= 1.0 for g in seen)
    boxed = q.target.clamp(0, 1)
    free = optimize(q, g_start(shape), steps=cfg["steps"], optimizer=method, lr=cfg["lr"]).g.clamp(0, 1)
    # Clipping the unconstrained optimum is this J's box optimum too (it is separable), but
    # the projected run gets there by itself, to well within the start's distance from it.
    assert q.j(res.g) == pytest.approx(q.j(boxed), rel=2e-3) and q.j(free) == pytest.approx(q.j(boxed), rel=1e-3)
    assert float((res.g - boxed).abs().max()) < 0.05 * float((g_start(shape) - boxed).abs().max())


def test_plateau_ends_a_run_once_j_flattens_and_keeps_j_within_its_bound():
    """J(G) = ½Σ w(G − t)² + 1 flattens at 1: L-BFGS's run stops long before its 500 steps,
    at the first step where the best J fell by less than tol over the window, with J close
    to where the full run ends."""
    shape = SHAPES["1d"]
    q = Quadratic(shape)

    def j(g):
        terms = q(g)
        return Terms(terms.total + 1.0, terms.content, terms.style, terms.tv)

    rule = engine.Plateau(1e-3, window=5)
    full = optimize(j, g_start(shape), steps=500)
    early = optimize(j, g_start(shape), steps=500, plateau=rule)
    assert early.plateaued and not full.plateaued
    assert len(early.history) < 0.5 * len(full.history)
    best = [min(h.total for h in early.history[: k + 1]) for k in range(len(early.history))]
    assert best[-1 - rule.window] - best[-1] < rule.tol * best[-1]  # the rule held where it stopped
    assert best[-2 - rule.window] - best[-2] >= rule.tol * best[-2]  # and not one step before
    assert full.best.total <= early.best.total <= full.best.total * (1 + 10 * rule.tol)


@pytest.mark.parametrize("tol, window", [(-0.1, 10), (float("nan"), 10), (0.01, 0)])
def test_plateau_rejects_bad_values(tol, window):
    with pytest.raises(NStyleError, match="plateau"):
        engine.Plateau(tol, window)


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


@pytest.mark.parametrize("boxed", [False, True])
@pytest.mark.parametrize("overshoot", [math.inf, engine.OVERSHOOT])
def test_lbfgs_restarts_after_an_overshoot(monkeypatch, overshoot, boxed):
    """scikit-image's rocket in the Hubble deep field, with style on the shallow layers: L-BFGS
    without line search, G unbounded, jumps to J ~ 1e28 at its second step and, left alone,
    stays stuck near the start; going back to the best G with a fresh memory and half the
    step lets it descend. Kept in the image's box [0, 1] (the default) the step cannot fly
    off, and the run descends with or without the restart."""
    monkeypatch.setattr(engine, "OVERSHOOT", overshoot)
    monkeypatch.setattr(ImageModality, "bounds", (0.0, 1.0) if boxed else None)
    r = stylize(
        str(sample_path("rocket.jpg")), str(sample_path("hubble_deep_field.jpg")), size=64, scales="none",
        steps=20, style_layers="relu1_1:1,relu2_1:1,relu3_1:0.1,relu4_1:0.01", style_weight=1e8, precision="fp32",
    )
    ratio = r.best.total / r.history[0].total
    if math.isinf(overshoot) and not boxed:
        assert ratio > 0.8  # the failure the restart exists for
    else:
        assert ratio < 0.5


def test_a_limited_step_keeps_its_direction_and_lbfgs_records_the_step_taken():
    """lr = 1000 makes L-BFGS's first step move samples by ~100: ``_step`` shortens it to
    STEP_LIMIT of the box's width along the same direction, and L-BFGS's stored step
    (t · d, from which its next curvature pair is built) is the step G actually took."""
    gen = torch.Generator().manual_seed(3)
    slope = torch.randn(SHAPES["3d"], generator=gen)
    g = torch.full(SHAPES["3d"], 0.5, requires_grad=True)
    opt = torch.optim.LBFGS([g], lr=1000.0, max_iter=1, tolerance_grad=0.0, tolerance_change=0.0)

    def closure():
        opt.zero_grad()
        j = (slope * g).sum()
        j.backward()
        return float(j)

    before = g.detach().clone()
    engine._step(opt, closure, g, (0.0, 1.0))
    taken = g.detach() - before
    assert float(taken.abs().max()) == pytest.approx(engine.STEP_LIMIT, rel=1e-5)
    cosine = float(torch.nn.functional.cosine_similarity(taken.flatten(), -slope.flatten(), dim=0))
    assert cosine == pytest.approx(1.0, abs=1e-5)  # along -dJ/dG: L-BFGS's first step
    state = opt.state[g]
    torch.testing.assert_close(state["t"] * state["d"], taken.flatten())


@pytest.mark.parametrize("limit", [math.inf, None])
def test_the_step_limit_keeps_lbfgs_from_overshooting_on_a_real_pair(monkeypatch, limit):
    """scikit-image's rocket in the Hubble deep field at 96 px, in the image's box: without
    a limit L-BFGS's second step sends pixels to the walls, J jumps, and the restarts halve
    the step four times, leaving J where it started after 20 steps. With STEP_LIMIT (the
    default) no step overshoots, L-BFGS is never restarted, and J falls by 10x and more."""
    if limit is not None:
        monkeypatch.setattr(engine, "STEP_LIMIT", limit)
    made = []
    make = engine._make_optimizer
    monkeypatch.setattr(engine, "_make_optimizer", lambda *a: made.append(a[2]) or make(*a))
    r = stylize(str(sample_path("rocket.jpg")), str(sample_path("hubble_deep_field.jpg")), size=96,
                scales="none", steps=20, precision="fp32")
    ratio = r.best.total / r.history[0].total
    if limit is None:
        assert made == [1.0] and ratio < 0.1
    else:
        assert len(made) >= 3 and ratio > 0.5
