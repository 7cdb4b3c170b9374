"""nstyle.objective against independent float64 NumPy references, in 1D, 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nstyle.core import functional as obj
from nstyle.core.objective import StyleObjective

# (N, C, *spatial) for each dimensionality; "other" has different spatial sizes.
SHAPES = {
    "1d": {"same": (2, 3, 7), "other": (2, 3, 10)},
    "2d": {"same": (2, 3, 5, 4), "other": (2, 3, 3, 6)},
    "3d": {"same": (2, 3, 3, 4, 2), "other": (2, 3, 2, 2, 5)},
}
DIMS = list(SHAPES)


def rand(shape, seed, dtype=torch.float32):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal(shape)).to(dtype)


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


# ---- NumPy references, written from the seed's formulas -------------------------------


def ref_content(ac, ag):
    return 0.5 * np.sum((ac - ag) ** 2)


def ref_gram(a):
    """G[n, k, k'] = sum over every spatial position of a[n, k, p] * a[n, k', p] (loops)."""
    n, c = a.shape[:2]
    flat = a.reshape(n, c, -1)
    g = np.zeros((n, c, c))
    for i in range(n):
        for k in range(c):
            for kk in range(c):
                g[i, k, kk] = sum(flat[i, k, p] * flat[i, kk, p] for p in range(flat.shape[2]))
    return g


def ref_spatial(a):
    return int(np.prod(a.shape[2:]))


def ref_layer_style(a_s, a_g):
    """Seed formula 1/(2 M n_C)^2 ||G(S) - G(G)||_F^2 (same size), summed over the batch."""
    assert a_s.shape == a_g.shape
    m, n_c = ref_spatial(a_s), a_s.shape[1]
    return np.sum((ref_gram(a_s) - ref_gram(a_g)) ** 2) / (2.0 * m * n_c) ** 2


def ref_layer_style_sized(a_s, a_g):
    """||G(S)/(2 M_S n_C) - G(G)/(2 M_G n_C)||_F^2: each Gram scaled by its own M."""
    n, n_c = a_s.shape[:2]
    fs, fg = a_s.reshape(n, n_c, -1), a_g.reshape(n, n_c, -1)
    gs = np.einsum("nkp,njp->nkj", fs, fs) / (2.0 * ref_spatial(a_s) * n_c)
    gg = np.einsum("nkp,njp->nkj", fg, fg) / (2.0 * ref_spatial(a_g) * n_c)
    return np.sum((gs - gg) ** 2)


def ref_tv(x):
    total = 0.0
    for axis in range(2, x.ndim):
        n = x.shape[axis]
        hi = np.take(x, np.arange(1, n), axis=axis)
        lo = np.take(x, np.arange(0, n - 1), axis=axis)
        total += np.sum((hi - lo) ** 2)
    return total


def assert_close(value: torch.Tensor, expected: float, rtol=2e-5):
    assert value.dim() == 0
    np.testing.assert_allclose(float(value), expected, rtol=rtol, atol=0)


# ---- the cost functions ----------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
def test_content_cost(dim):
    shape = SHAPES[dim]["same"]
    a_c, a_g = rand(shape, 1), rand(shape, 2)
    assert_close(obj.content_cost(a_c, a_g), ref_content(np64(a_c), np64(a_g)))
    assert float(obj.content_cost(a_c, a_c)) == 0.0


def test_content_cost_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        obj.content_cost(rand((1, 3, 4), 0), rand((1, 3, 5), 1))


@pytest.mark.parametrize("dim", DIMS)
def test_gram_matrix(dim):
    a = rand(SHAPES[dim]["same"], 3)
    g = obj.gram_matrix(a)
    assert g.shape == (a.shape[0], a.shape[1], a.shape[1])
    np.testing.assert_allclose(g.numpy(), ref_gram(np64(a)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_cost_value_and_closed_form_gradient(dim, channels_last):
    """gram_cost = ||G(a)/(2 M n_C) - T||^2 (NumPy, float64) and its hand-written backward
    passes gradcheck, in channels-last memory too (the layout VGG's activations come in)."""
    if channels_last and dim != "2d":
        pytest.skip("channels-last is a 4D layout")
    shape = SHAPES[dim]["same"]
    a, t_src = rand(shape, 11, torch.float64), rand(shape, 12, torch.float64)
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
    target = obj.scaled_gram(t_src)
    m, n_c = ref_spatial(np64(a)), shape[1]
    expected = np.sum((ref_gram(np64(a)) / (2.0 * m * n_c) - np64(target)) ** 2)
    assert_close(obj.gram_cost(a, target), expected, rtol=1e-10)
    assert torch.autograd.gradcheck(lambda x: obj.gram_cost(x, target), (a.clone().requires_grad_(True),))
    one = target[:1]  # a (1, n_C, n_C) target is compared with every batch item
    assert torch.autograd.gradcheck(lambda x: obj.gram_cost(x, one), (a.clone().requires_grad_(True),))


def test_gram_cost_bfloat16_activations_get_a_bfloat16_gradient_of_the_float32_cost():
    """bf16 activations (autocast's): the cost is the float32 cost of those values up to the
    bf16 rounding of the Gram (``_rows_gram``), and the gradient, in bf16 and in the
    activations' layout, is that cost's gradient rounded."""
    a = rand((1, 8, 6, 5), 13).bfloat16().contiguous(memory_format=torch.channels_last)
    target = obj.scaled_gram(rand((1, 8, 6, 5), 14))
    x = a.clone().requires_grad_(True)
    obj.gram_cost(x, target).backward()
    ref = a.float().requires_grad_(True)
    j = obj.layer_style_cost_from_grams(target, obj.scaled_gram(ref))
    j.backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.is_contiguous(memory_format=torch.channels_last)
    # The Gram's entries rounded to bf16 once (relative 2^-9 of |a|ᵀ|a|): with D = Ĝ − T and
    # E that rounding, |J' − J| = |2<D, E> + ‖E‖²| <= 2‖D‖‖E‖ + ‖E‖².
    rows = a.float().flatten(2)
    e = 2.0**-9 * float((rows.abs() @ rows.abs().transpose(1, 2)).norm()) / (2 * 30 * 8)
    bound = 2 * float(j.detach()) ** 0.5 * e + e**2
    assert abs(float(obj.gram_cost(a, target)) - float(j.detach())) <= bound
    np.testing.assert_allclose(x.grad.float().numpy(), ref.grad.numpy(), rtol=2e-2, atol=1e-2 * ref.grad.abs().max())


def test_gram_cost_rejects_a_target_of_the_wrong_size():
    with pytest.raises(ValueError, match="target"):
        obj.gram_cost(rand((2, 3, 4), 0), torch.zeros(2, 4, 4))


@pytest.mark.parametrize("dim", DIMS)
def test_spatial_size_is_product_of_spatial_axes(dim):
    a = rand(SHAPES[dim]["other"], 0)
    assert obj.spatial_size(a) == ref_spatial(np64(a))


@pytest.mark.parametrize("dim", DIMS)
def test_layer_style_cost_same_size(dim):
    shape = SHAPES[dim]["same"]
    a_s, a_g = rand(shape, 4), rand(shape, 5)
    assert_close(obj.layer_style_cost(a_s, a_g), ref_layer_style(np64(a_s), np64(a_g)))
    assert float(obj.layer_style_cost(a_s, a_s)) == 0.0


@pytest.mark.parametrize("dim", DIMS)
def test_layer_style_cost_different_sizes(dim):
    a_s, a_g = rand(SHAPES[dim]["other"], 6), rand(SHAPES[dim]["same"], 7)
    assert_close(obj.layer_style_cost(a_s, a_g), ref_layer_style_sized(np64(a_s), np64(a_g)))


@pytest.mark.parametrize("dim", DIMS)
def test_layer_style_cost_is_size_invariant_for_tiled_signals(dim):
    """A signal and the same signal tiled twice along the first spatial axis have equal
    Grams per position, so their style distance is 0 only if each Gram uses its own M."""
    a = rand(SHAPES[dim]["same"], 8)
    tiled = torch.cat([a, a], dim=2)
    assert float(obj.layer_style_cost(a, tiled)) < 1e-10
    # while the raw Grams do differ by the factor 2
    np.testing.assert_allclose(obj.gram_matrix(tiled).numpy(), 2 * obj.gram_matrix(a).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", DIMS)
def test_style_cost_weighted_sum_over_layers(dim):
    # two layers with different channel counts and spatial sizes
    shape_1, shape_2 = SHAPES[dim]["same"], SHAPES[dim]["other"]
    shape_2 = (shape_2[0], 5) + shape_2[2:]
    acts_s = {"l1": rand(shape_1, 10), "l2": rand(shape_2, 11)}
    acts_g = {"l1": rand(shape_1, 12), "l2": rand(shape_2, 13)}
    weights = {"l1": 0.3, "l2": 1.7}
    targets = {}
    for name, a in acts_s.items():
        a64 = np64(a)
        targets[name] = torch.from_numpy(ref_gram(a64) / (2.0 * ref_spatial(a64) * a64.shape[1])).float()
    expected = sum(w * ref_layer_style(np64(acts_s[n]), np64(acts_g[n])) for n, w in weights.items())
    assert_close(obj.style_cost(targets, acts_g, weights), expected)
    # a layer missing from the weights does not count
    only_l2 = 1.7 * ref_layer_style(np64(acts_s["l2"]), np64(acts_g["l2"]))
    assert_close(obj.style_cost(targets, acts_g, {"l2": 1.7}), only_l2)


def test_scaled_gram_matches_seed_normalisation():
    a = rand((1, 4, 3, 5), 14)
    expected = ref_gram(np64(a)) / (2.0 * 15 * 4)
    np.testing.assert_allclose(obj.scaled_gram(a).numpy(), expected, rtol=1e-5, atol=1e-7)


def test_total_cost():
    j_c, j_s = torch.tensor(3.5), torch.tensor(0.25)
    assert_close(obj.total_cost(j_c, j_s, alpha=2.0, beta=10.0), 2.0 * 3.5 + 10.0 * 0.25, rtol=1e-7)
    assert_close(obj.total_cost(j_c, j_s, alpha=0.0, beta=1.0), 0.25, rtol=1e-7)


@pytest.mark.parametrize("dim", DIMS)
def test_total_variation(dim):
    x = rand(SHAPES[dim]["other"], 15)
    assert_close(obj.total_variation(x), ref_tv(np64(x)))
    # a constant signal has no variation; a ramp along the last axis has exactly
    # (number of differences) * step^2
    assert float(obj.total_variation(torch.ones(SHAPES[dim]["other"]))) == 0.0
    shape = SHAPES[dim]["other"]
    ramp = torch.arange(shape[-1], dtype=torch.float32).expand(shape) * 0.5
    n_diffs = int(np.prod(shape[:-1])) * (shape[-1] - 1)
    assert_close(obj.total_variation(ramp), n_diffs * 0.25, rtol=1e-6)


@pytest.mark.parametrize("fn", ["content_cost", "total_variation"])
def test_costs_keep_float64(fn):
    a, b = rand((1, 2, 5, 5), 0, torch.float64), rand((1, 2, 5, 5), 1, torch.float64)
    out = obj.content_cost(a, b) if fn == "content_cost" else obj.total_variation(a)
    assert out.dtype == torch.float64


# ---- StyleObjective with a tiny fake network ------------------------------------------


class FakeNet:
    """Two fixed random convolutions in 1D/2D/3D: a = relu(conv(x)), b = relu(conv_s2(a))."""

    def __init__(self, n_spatial: int, c_in: int = 2, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        k = (3,) * n_spatial
        self.conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n_spatial]
        self.w1 = torch.randn((4, c_in) + k, generator=gen, dtype=torch.float64) * 0.5
        self.b1 = torch.randn(4, generator=gen, dtype=torch.float64) * 0.1
        self.w2 = torch.randn((3, 4) + k, generator=gen, dtype=torch.float64) * 0.3
        self.b2 = torch.randn(3, generator=gen, dtype=torch.float64) * 0.1
        self.calls: list[list[str]] = []

    def __call__(self, x, layers):
        self.calls.append(list(layers))
        a = torch.relu(self.conv(x, self.w1.to(x.dtype), self.b1.to(x.dtype), padding=1))
        b = torch.relu(self.conv(a, self.w2.to(x.dtype), self.b2.to(x.dtype), padding=1, stride=2))
        acts = {"a": a, "b": b}
        return {name: acts[name] for name in layers}


OBJ_SHAPES = {  # G / C shape, S shape (different spatial size)
    "1d": ((1, 2, 11), (1, 2, 15)),
    "2d": ((1, 2, 7, 6), (1, 2, 9, 8)),
    "3d": ((1, 2, 4, 5, 6), (1, 2, 5, 5, 5)),
}
GRAD_SHAPES = {"1d": (1, 2, 9), "2d": (1, 2, 5, 5), "3d": (1, 2, 3, 3, 4)}


def reference_j(net, c, s, g, content_layer, style_weights, alpha, beta, tv):
    """J and its parts from the fake net's activations, costs computed in NumPy."""
    acts_s = {k: np64(v) for k, v in net(s, list(style_weights)).items()}
    acts_g = {k: np64(v) for k, v in net(g, ["a", "b"]).items()}
    j_c = ref_content(np64(net(c, [content_layer])[content_layer]), acts_g[content_layer]) if c is not None else 0.0
    j_s = sum(lam * ref_layer_style_sized(acts_s[n], acts_g[n]) for n, lam in style_weights.items())
    t = ref_tv(np64(g))
    return alpha * j_c + beta * j_s + tv * t, j_c, j_s, t


@pytest.mark.parametrize("dim", DIMS)
def test_style_objective_matches_numpy(dim):
    g_shape, s_shape = OBJ_SHAPES[dim]
    net = FakeNet(len(g_shape) - 2)
    c, s, g = rand(g_shape, 20), rand(s_shape, 21), rand(g_shape, 22)
    weights = {"a": 0.7, "b": 2.0}
    alpha, beta, tv = 0.5, 30.0, 0.05
    j = StyleObjective(net, c, s, "b", weights, alpha, beta, tv_weight=tv)
    terms = j(g)
    total, j_c, j_s, t = reference_j(net, c, s, g, "b", weights, alpha, beta, tv)
    assert_close(terms.content, j_c)
    assert_close(terms.style, j_s)
    assert_close(terms.tv, t)
    assert_close(terms.total, total)
    # each term really contributes (so the check above is not trivially passing)
    assert j_c > 0 and j_s > 0 and t > 0


@pytest.mark.parametrize("dim", DIMS)
def test_style_objective_without_content_or_tv(dim):
    g_shape, s_shape = OBJ_SHAPES[dim]
    net = FakeNet(len(g_shape) - 2, seed=1)
    s, g = rand(s_shape, 23), rand(g_shape, 24)
    j = StyleObjective(net, None, s, "a", {"b": 1.0}, alpha=5.0, beta=2.0)
    terms = j(g)
    # G calls only ask for the style layer (no content layer without content)
    assert net.calls[-1] == ["b"]
    total, _, j_s, _ = reference_j(net, None, s, g, "a", {"b": 1.0}, 5.0, 2.0, 0.0)
    assert float(terms.content) == 0.0 and float(terms.tv) == 0.0
    assert_close(terms.style, j_s)
    assert_close(terms.total, total)


@pytest.mark.parametrize("dim", DIMS)
def test_style_objective_is_zero_at_the_targets(dim):
    """G = C = S gives J = 0 (TV off), and J > 0 once G moves."""
    g_shape, _ = OBJ_SHAPES[dim]
    net = FakeNet(len(g_shape) - 2, seed=2)
    x = rand(g_shape, 25)
    j = StyleObjective(net, x, x, "a", {"a": 1.0, "b": 1.0}, alpha=1.0, beta=1.0)
    assert float(j(x).total) == 0.0
    assert float(j(x + 0.1 * rand(g_shape, 26)).total) > 0.0


def make_objective64(dim, seed):
    g_shape = GRAD_SHAPES[dim]
    net = FakeNet(len(g_shape) - 2, seed=seed)
    c = rand(g_shape, seed + 1, torch.float64)
    s = rand(g_shape[:2] + tuple(n + 1 for n in g_shape[2:]), seed + 2, torch.float64)
    g = rand(g_shape, seed + 3, torch.float64)
    return net, c, s, g


@pytest.mark.parametrize("dim", DIMS)
def test_style_gradient_gradcheck_float64(dim):
    """Style part of J in float64: autograd against central differences (gradcheck)."""
    net, c, s, g = make_objective64(dim, 30)
    j = StyleObjective(net, c, s, "b", {"a": 1.0, "b": 3.0}, alpha=0.0, beta=50.0)
    assert float(j(g).style) > 0
    assert torch.autograd.gradcheck(
        lambda x: j(x).total, (g.clone().requires_grad_(True),), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True
    )


def test_full_gradient_gradcheck_float64():
    """Full J in float64 (one dimensionality is enough to show the float32 downcast)."""
    net, c, s, g = make_objective64("1d", 40)
    j = StyleObjective(net, c, s, "b", {"a": 1.0, "b": 3.0}, alpha=0.7, beta=50.0, tv_weight=0.2)
    assert torch.autograd.gradcheck(
        lambda x: j(x).total, (g.clone().requires_grad_(True),), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True
    )


@pytest.mark.parametrize("dim", DIMS)
def test_full_gradient_central_differences(dim):
    """Full J = a*Jc + b*Js + tv*TV: directional derivatives by central differences vs autograd.

    Tolerances allow the float32 arithmetic content_cost and total_variation use today,
    but still catch any wrong factor or missing term.
    """
    net, c, s, g = make_objective64(dim, 50)
    j = StyleObjective(net, c, s, "b", {"a": 1.0, "b": 3.0}, alpha=0.7, beta=50.0, tv_weight=0.2)
    x = g.clone().requires_grad_(True)
    terms = j(x)
    terms.total.backward()
    grad = x.grad.double()
    assert all(float(v.detach()) > 0 for v in (terms.content, terms.style, terms.tv))
    gen = torch.Generator().manual_seed(0)
    eps = 1e-3
    for _ in range(4):
        d = torch.randn(g.shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            num = (float(j(g + eps * d).total) - float(j(g - eps * d).total)) / (2 * eps)
        ana = float((grad * d).sum())
        assert abs(num - ana) <= 2e-3 * max(abs(ana), 1.0), (num, ana)


def test_bf16_grams_are_summed_in_blocks_each_rounded_once():
    """bf16 rows (N, M, n_C) over whole blocks and a tail: within one bf16 rounding per
    block of the float64 Gram (each block's |R|ᵀ|R| bounds its sum)."""
    from nstyle.core.functional import GRAM_BLOCK_ROWS, GRAM_MIN_BLOCKS, _rows_gram

    m = GRAM_MIN_BLOCKS * GRAM_BLOCK_ROWS + 276
    rows = torch.randn(2, m, 8, generator=torch.Generator().manual_seed(3)).bfloat16()
    got = _rows_gram(rows, torch.float32)
    assert got.dtype == torch.float32 and got.shape == (2, 8, 8)
    r = rows.double()
    ref = r.transpose(1, 2) @ r
    blocks = [r[:, i : i + GRAM_BLOCK_ROWS].abs() for i in range(0, m, GRAM_BLOCK_ROWS)]
    bound = sum(b.transpose(1, 2) @ b for b in blocks) * 2.0**-8 + 1e-6
    assert ((got.double() - ref).abs() <= bound).all()
    torch.testing.assert_close(got, got.transpose(1, 2))
    assert not torch.equal(got, (r.transpose(1, 2) @ r).float()), "bf16 blocks must have run"
    # fp32 rows, and bf16 rows too short for enough blocks: the plain fp32 product
    f = rows.float()
    torch.testing.assert_close(_rows_gram(f, torch.float32), f.transpose(1, 2) @ f, rtol=0, atol=0)
    short = rows[:, : GRAM_MIN_BLOCKS * GRAM_BLOCK_ROWS - 1]
    s32 = short.float()
    torch.testing.assert_close(_rows_gram(short, torch.float32), s32.transpose(1, 2) @ s32, rtol=0, atol=0)
