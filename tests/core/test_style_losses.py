"""nstyle.style_losses against float64 NumPy/SciPy references, in 1D, 2D and 3D; gradients
by finite differences; and each loss lowered by a few Adam steps through the bundled VGG16."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from nstyle.core import functional as obj
from nstyle.core import style_losses as sl
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path

# (N, C, *spatial); "other" has different spatial sizes (S and G need not match in size).
SHAPES = {
    "1d": {"same": (2, 3, 7), "other": (2, 3, 10)},
    "2d": {"same": (2, 3, 5, 4), "other": (2, 3, 3, 6)},
    "3d": {"same": (2, 3, 3, 4, 2), "other": (2, 3, 2, 2, 5)},
}
DIMS = list(SHAPES)
NAMES = list(sl.STYLE_LOSSES)


def rand(shape, seed, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal(shape)).to(dtype)


def rand_weights(a: torch.Tensor, seed: int) -> torch.Tensor:
    """Position weights in (0.1, 1.1), shape (N, 1, *spatial)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(0.1 + rng.random((a.shape[0], 1, *a.shape[2:])))


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


# ---- NumPy references, written from the docstrings' formulas --------------------------


def flat(a: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, C, M)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def flat_w(a: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Weights broadcast to (N, M); ones when None."""
    if w is None:
        return np.ones((a.shape[0], flat(a).shape[2]))
    return np.broadcast_to(w, (a.shape[0], 1, *a.shape[2:])).reshape(a.shape[0], -1)


def ref_gram(a, w=None):
    """Ĝ = sum_p w_p a_p a_p^T / (2 sum_p w_p C), loops over positions."""
    f, ww = flat(a), flat_w(a, w)
    n, c, m = f.shape
    out = np.zeros((n, c, c))
    for i in range(n):
        for p in range(m):
            out[i] += ww[i, p] * np.outer(f[i, :, p], f[i, :, p])
        out[i] /= 2.0 * ww[i].sum() * c
    return out


def ref_moments(a, w=None):
    """Weighted mean (N, C) and population covariance (N, C, C)."""
    f, ww = flat(a), flat_w(a, w)
    n, c, m = f.shape
    mean = np.stack([(f[i] * ww[i]).sum(1) / ww[i].sum() for i in range(n)])
    cov = np.zeros((n, c, c))
    for i in range(n):
        for p in range(m):
            d = f[i, :, p] - mean[i]
            cov[i] += ww[i, p] * np.outer(d, d)
        cov[i] /= ww[i].sum()
    return mean, cov


def ref_mean_std(a, w=None, eps=sl.MEAN_STD_EPS):
    mean, cov = ref_moments(a, w)
    return mean, np.sqrt(np.diagonal(cov, axis1=1, axis2=2) + eps)


def ref_mean_std_distance(a_s, a_g):
    (ms, ss), (mg, sg) = ref_mean_std(a_s), ref_mean_std(a_g)
    return (np.sum((ms - mg) ** 2) + np.sum((ss - sg) ** 2)) / a_s.shape[1]


def ref_w2(a_s, a_g, ridge=sl.W2_RIDGE):
    """Sum over the batch of W^2/C between the ridged Gaussians, with scipy's sqrtm."""
    (ms, cs), (mg, cg) = ref_moments(a_s), ref_moments(a_g)
    c = a_s.shape[1]
    total = 0.0
    for i in range(a_s.shape[0]):
        eps = ridge * max(np.trace(cs[i]) / c, sl.W2_MIN_VARIANCE)
        s, g = cs[i] + eps * np.eye(c), cg[i] + eps * np.eye(c)
        root = np.real(scipy.linalg.sqrtm(s))
        cross = np.trace(np.real(scipy.linalg.sqrtm(root @ g @ root)))
        total += (np.sum((ms[i] - mg[i]) ** 2) + np.trace(s) + np.trace(g) - 2 * cross) / c
    return total


def ref_quantiles(a, directions, keep=None):
    """Sorted projections (N, K, n) of the kept positions (N = 1 when keep is given)."""
    f, d = flat(a), np64(directions)
    out = []
    for i in range(f.shape[0]):
        x = f[i] if keep is None else f[i][:, keep[i]]
        out.append(np.sort(d.T @ x, axis=1))
    return np.stack(out)


def ref_resample(q, n):
    """The quantile function (sample i at level (i + 1/2)/m, linear, flat outside) at (j + 1/2)/n."""
    m = q.shape[-1]
    levels_in, levels_out = (np.arange(m) + 0.5) / m, (np.arange(n) + 0.5) / n
    return np.apply_along_axis(lambda row: np.interp(levels_out, levels_in, row), -1, q)


def ref_sliced(a_s, a_g, directions):
    qs, qg = ref_quantiles(a_s, directions), ref_quantiles(a_g, directions)
    return np.sum(np.mean((ref_resample(qs, qg.shape[-1]) - qg) ** 2, axis=(1, 2)))


def ref_stats(name: str, a: np.ndarray, w: np.ndarray | None = None) -> dict[str, np.ndarray]:
    if name == "gram":
        return {"gram": ref_gram(a, w)}
    if name == "mean-std":
        mean, std = ref_mean_std(a, w)
        return {"mean": mean, "std": std}
    if name == "wasserstein":
        mean, cov = ref_moments(a, w)
        return {"mean": mean, "cov": cov}
    raise AssertionError(name)


def ref_distance(name, a_s, a_g):
    if name == "gram":
        return np.sum((ref_gram(a_s) - ref_gram(a_g)) ** 2)
    if name == "mean-std":
        return ref_mean_std_distance(a_s, a_g)
    if name == "wasserstein":
        return ref_w2(a_s, a_g)
    return ref_sliced(a_s, a_g, sl.STYLE_LOSSES["sliced"].directions(a_s.shape[1], torch.float64))


def assert_stats_close(x: dict, y: dict, **tol) -> None:
    for k in ("gram", "mean", "std", "cov", "quantiles"):
        if k in x or k in y:
            np.testing.assert_allclose(np64(x[k]), y[k] if isinstance(y[k], np.ndarray) else np64(y[k]), **tol)


# ---- the seed's cost stays exact ---------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
def test_gram_unweighted_is_the_seeds_cost_bit_for_bit(dim):
    loss = sl.get_style_loss("gram")
    assert sl.DEFAULT_STYLE_LOSS == "gram"
    a_s, a_g = rand(SHAPES[dim]["same"], 1, torch.float32), rand(SHAPES[dim]["other"], 2, torch.float32)
    ts, tg = loss.stats(a_s), loss.stats(a_g)
    assert torch.equal(ts["gram"], obj.scaled_gram(a_s))
    assert torch.equal(
        loss.distance(ts, tg), obj.layer_style_cost_from_grams(obj.scaled_gram(a_s), obj.scaled_gram(a_g))
    )


def test_gram_channels_last_is_scaled_gram():
    a = rand((1, 4, 5, 6), 3, torch.float32).contiguous(memory_format=torch.channels_last)
    assert torch.equal(sl.get_style_loss("gram").stats(a)["gram"], obj.scaled_gram(a))


# ---- statistics and distances against NumPy ------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", ["gram", "mean-std", "wasserstein"])
@pytest.mark.parametrize("weighted", [False, True])
def test_stats_match_numpy(name, dim, weighted):
    a = rand(SHAPES[dim]["same"], 4)
    w = rand_weights(a, 5) if weighted else None
    got = sl.get_style_loss(name).stats(a, w)
    assert_stats_close(got, ref_stats(name, np64(a), None if w is None else np64(w)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
def test_sliced_quantiles_match_numpy(dim):
    loss = sl.get_style_loss("sliced")
    a = rand(SHAPES[dim]["same"], 6)
    got = loss.stats(a)
    d = got["directions"]
    assert d.shape == (3, 3)  # K = n_C by default
    np.testing.assert_allclose(np64(d.norm(dim=0)), 1.0, rtol=1e-12)  # unit directions
    np.testing.assert_allclose(np64(got["quantiles"]), ref_quantiles(np64(a), d), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_distance_matches_numpy_for_different_sizes(name, dim):
    loss = sl.get_style_loss(name)
    a_s, a_g = rand(SHAPES[dim]["same"], 7), rand(SHAPES[dim]["other"], 8)
    got = loss.distance(sl.target_stats(loss, [a_s]), loss.stats(a_g))
    assert got.dtype == torch.float64 and got.dim() == 0
    np.testing.assert_allclose(got.item(), ref_distance(name, np64(a_s), np64(a_g)), rtol=1e-9)


def test_wasserstein_tends_to_the_exact_w2_as_the_ridge_vanishes():
    """Full-rank covariances: with a negligible ridge, the closed form of W2 between the
    Gaussians (scipy's sqrtm), independently of the ridge the default adds."""
    a_s, a_g = rand((1, 3, 20), 9) * torch.tensor([[[1.0], [2.0], [0.5]]]), rand((1, 3, 25), 10) + 0.3
    loss = sl.WassersteinLoss(ridge=1e-12)
    got = loss.distance(loss.prepare(loss.stats(a_s)), loss.stats(a_g)).item()
    (ms, cs), (mg, cg) = ref_moments(np64(a_s)), ref_moments(np64(a_g))
    root = np.real(scipy.linalg.sqrtm(cs[0]))
    exact = (
        np.sum((ms - mg) ** 2)
        + np.trace(cs[0] + cg[0])
        - 2 * np.trace(np.real(scipy.linalg.sqrtm(root @ cg[0] @ root)))
    )
    np.testing.assert_allclose(got, exact / 3, rtol=1e-8)
    # The default ridge moves W2 by about ε per channel only.
    default = sl.get_style_loss("wasserstein")
    near = default.distance(default.prepare(default.stats(a_s)), default.stats(a_g)).item()
    assert abs(near - got) < 1e-3 * got


def test_resample_quantiles_matches_numpy_interp():
    q = torch.sort(rand((2, 3, 7), 11), dim=-1).values
    for n in (1, 4, 7, 15):
        np.testing.assert_allclose(np64(sl.resample_quantiles(q, n)), ref_resample(np64(q), n), rtol=1e-12)
    assert sl.resample_quantiles(q, 7) is q


# ---- weights (regions) ---------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_unit_weights_equal_unweighted(name, dim):
    loss = sl.get_style_loss(name)
    a = rand(SHAPES[dim]["same"], 12, torch.float32)
    ones = torch.ones(1, 1, *a.shape[2:])  # broadcast over the batch
    assert_stats_close(loss.stats(a, ones), loss.stats(a), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_mask_gives_the_statistics_of_the_selected_positions_only(name, dim):
    loss = sl.get_style_loss(name)
    a = rand((1, *SHAPES[dim]["other"][1:]), 13)
    rng = np.random.default_rng(14)
    keep = rng.random(a.shape[2:]) < 0.5
    keep.flat[:2] = True  # at least two positions
    mask = torch.from_numpy(keep.astype(np.float64))[None, None]
    selected = a.flatten(2)[:, :, torch.from_numpy(keep.ravel())]  # (1, C, m): a 1D "signal"
    assert_stats_close(loss.stats(a, mask), loss.stats(selected), rtol=1e-12, atol=1e-12)
    # Scaling the mask changes nothing: statistics do not depend on the region's "area".
    if name != "sliced":
        assert_stats_close(loss.stats(a, 0.25 * mask), loss.stats(selected), rtol=1e-12, atol=1e-12)


def test_sliced_region_is_the_positions_above_one_half():
    loss = sl.get_style_loss("sliced")
    a = rand((1, 3, 4, 5), 15)
    soft = torch.from_numpy(np.random.default_rng(16).random((1, 1, 4, 5)))
    hard = (soft > 0.5).double()
    assert torch.equal(loss.stats(a, soft)["quantiles"], loss.stats(a, hard)["quantiles"])


def test_sliced_batch_items_with_different_region_sizes_are_resampled_to_the_longest():
    loss = sl.get_style_loss("sliced")
    a = rand((2, 3, 6), 17)
    keep = np.array([[True] * 6, [True, False, True, False, True, False]])
    mask = torch.from_numpy(keep.astype(np.float64))[:, None]
    q = loss.stats(a, mask)["quantiles"]
    d = loss.directions(3, torch.float64)
    assert q.shape == (2, 3, 6)
    np.testing.assert_allclose(np64(q[0]), ref_quantiles(np64(a[:1]), d)[0], rtol=1e-12)
    np.testing.assert_allclose(np64(q[1]), ref_resample(ref_quantiles(np64(a[1:, :, keep[1]]), d)[0], 6), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_bad_region_weights_are_clear_errors(name):
    loss = sl.get_style_loss(name)
    a = rand((1, 3, 4, 4), 18)
    with pytest.raises(NStyleError, match="do not fit"):
        loss.stats(a, torch.ones(1, 1, 3, 4))
    with pytest.raises(NStyleError, match=">= 0"):
        loss.stats(a, -torch.ones(1, 1, 4, 4))
    with pytest.raises(NStyleError, match="empty"):
        loss.stats(a, torch.zeros(1, 1, 4, 4))
    with pytest.raises(NStyleError, match="empty"):
        loss.stats(torch.cat([a, a]), torch.cat([torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)]))


# ---- distances: zero on equal statistics, gradients ------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", NAMES)
def test_distance_is_zero_for_the_same_input_and_positive_otherwise(name, dim):
    loss = sl.get_style_loss(name)
    a, b = rand(SHAPES[dim]["same"], 19, torch.float32), rand(SHAPES[dim]["same"], 20, torch.float32)
    target = sl.target_stats(loss, [a])
    same = loss.distance(target, loss.stats(a)).item()
    other = loss.distance(target, loss.stats(b)).item()
    assert other > 1e-3
    if name == "wasserstein":
        assert abs(same) < 1e-6 * other  # eigenvalues: equal up to rounding
    else:
        assert same == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_distance_gradient_matches_finite_differences(name):
    loss = sl.get_style_loss(name)
    a_s = rand((1, 3, 3, 4), 21)
    target = sl.target_stats(loss, [a_s])
    a_g = rand((1, 3, 2, 5), 22).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: loss.distance(target, loss.stats(x)), (a_g,), eps=1e-6, atol=1e-7)


def test_wasserstein_gradient_is_finite_for_singular_covariances():
    """Fewer positions than channels and a dead (all-zero) channel: Σ_S and Σ_G are
    singular and M has repeated zero eigenvalues, where the ridge keeps dW/da finite."""
    loss = sl.get_style_loss("wasserstein")
    a_s, a_g = rand((1, 6, 3), 23).relu(), rand((1, 6, 4), 24).relu()
    a_s[:, 0], a_g[:, 0] = 0.0, 0.0
    target = sl.target_stats(loss, [a_s])
    for a in (a_g, a_s):
        x = a.clone().requires_grad_()
        loss.distance(target, loss.stats(x)).backward()
        assert torch.isfinite(x.grad).all()
    # At G = S the distance is at its minimum 0: the gradient vanishes.
    x = a_s.clone().requires_grad_()
    loss.distance(target, loss.stats(x)).backward()
    assert x.grad.abs().max() < 1e-6


def test_mean_std_gradient_is_zero_not_nan_at_zero_variance():
    loss = sl.get_style_loss("mean-std")
    target = loss.stats(rand((1, 2, 5), 25))
    x = torch.zeros(1, 2, 5, dtype=torch.float64, requires_grad=True)  # σ = 0 in every channel
    loss.distance(target, loss.stats(x)).backward()
    assert torch.isfinite(x.grad).all()
    # σ's share is 0 there; μ's gradient, 2(μ_G − μ_S)/(n_C · M) per position, remains.
    want = (2 * (0 - target["mean"]) / (2 * 5)).unsqueeze(-1).expand(1, 2, 5)
    np.testing.assert_allclose(np64(x.grad), np64(want), rtol=1e-12)


# ---- blending ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_blend_of_a_style_with_itself_and_one_hot_weights(name):
    loss = sl.get_style_loss(name)
    a, b = rand((1, 3, 4, 5), 26), rand((1, 3, 3, 3), 27)
    sa, sb = loss.stats(a), loss.stats(b)
    assert_stats_close(loss.blend([sa, sa], [0.3, 0.7]), sa, rtol=1e-12, atol=1e-14)
    assert_stats_close(loss.blend([sa, sb], [1.0, 0.0]), sa, rtol=0, atol=0)
    only_b = loss.blend([sb], [1.0])
    if name == "sliced":  # blends live on the longest sample grid: b's quantile function on a's 20 levels
        only_b = {"quantiles": sl.resample_quantiles(sb["quantiles"], 20)}
    assert_stats_close(loss.blend([sa, sb], [0.0, 2.0]), only_b, rtol=0, atol=0)


def test_blends_against_numpy():
    a, b = np64(rand((1, 3, 4, 5), 28)), np64(rand((1, 3, 3, 3), 29))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for name in ("gram", "mean-std", "wasserstein"):
        got = sl.get_style_loss(name).blend([sl.get_style_loss(name).stats(x) for x in (ta, tb)], [1.0, 3.0])
        ra, rb = ref_stats(name, a), ref_stats(name, b)
        assert_stats_close(got, {k: 0.25 * ra[k] + 0.75 * rb[k] for k in ra}, rtol=1e-12)
    loss = sl.get_style_loss("sliced")
    got = loss.blend([loss.stats(ta), loss.stats(tb)], [1.0, 3.0])["quantiles"]
    d = loss.directions(3, torch.float64)
    want = 0.25 * ref_quantiles(a, d) + 0.75 * ref_resample(ref_quantiles(b, d), 20)  # longest: 20 samples
    np.testing.assert_allclose(np64(got), want, rtol=1e-12)


def test_target_stats_blends_and_prepares():
    loss = sl.get_style_loss("wasserstein")
    a, b = rand((1, 3, 9), 30), rand((1, 3, 5), 31)
    t = sl.target_stats(loss, [a, b], [2.0, 1.0])
    assert not any(v.requires_grad for v in t.values())
    (ma, ca), (mb, cb) = ref_moments(np64(a)), ref_moments(np64(b))
    cov = (2 * ca + cb) / 3
    np.testing.assert_allclose(np64(t["mean"]), (2 * ma + mb) / 3, rtol=1e-12)
    np.testing.assert_allclose(np64(t["cov"]), cov, rtol=1e-12)
    eps = sl.W2_RIDGE * np.trace(cov[0]) / 3
    root = np.real(scipy.linalg.sqrtm(cov[0] + eps * np.eye(3)))
    np.testing.assert_allclose(np64(t["cov_sqrt"][0]), root, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [float("nan"), 1.0]])
def test_bad_blend_weights_are_clear_errors(weights):
    loss = sl.get_style_loss("gram")
    s = loss.stats(rand((1, 2, 3), 32))
    with pytest.raises(NStyleError, match="blend weights"):
        loss.blend([s, s], weights)


# ---- the rest of the interface ------------------------------------------------------------


def test_registry_and_unknown_name():
    assert NAMES == ["gram", "mean-std", "wasserstein", "sliced"]
    for name, loss in sl.STYLE_LOSSES.items():
        assert isinstance(loss, sl.StyleLoss) and loss.name == name and loss.summary
    with pytest.raises(NStyleError, match="unknown style loss 'w2'; choose one of gram, mean-std, wasserstein, sliced"):
        sl.get_style_loss("w2")


def test_sliced_directions_are_deterministic_and_shared():
    loss = sl.get_style_loss("sliced")
    a = rand((1, 5, 4, 4), 33, torch.float32)
    s1, s2 = loss.stats(a), sl.SlicedWassersteinLoss().stats(a)  # another instance, same seed
    assert torch.equal(s1["directions"], s2["directions"]) and torch.equal(s1["quantiles"], s2["quantiles"])
    assert loss.distance(s1, s2).item() == 0.0
    g = rand((1, 5, 3, 3), 34, torch.float32)
    assert loss.distance(s1, loss.stats(g)).item() == loss.distance(s1, loss.stats(g)).item()
    other_seed = sl.SlicedWassersteinLoss(seed=1).stats(g)
    assert not torch.equal(other_seed["directions"], s1["directions"])
    with pytest.raises(ValueError, match="different directions"):
        loss.distance(s1, other_seed)


@pytest.mark.parametrize("name", NAMES)
def test_low_precision_and_autocast_inputs_give_float32_statistics(name):
    loss = sl.get_style_loss(name)
    a = rand((1, 8, 6, 5), 35, torch.bfloat16).contiguous(memory_format=torch.channels_last)
    want = loss.stats(a.float().contiguous())  # the same values, float32, standard layout
    got = loss.stats(a)
    assert all(v.dtype == torch.float32 for v in got.values())
    assert_stats_close(got, want, rtol=1e-6, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as inside the network's region
        in_autocast = loss.stats(a.float())
        d = loss.distance(sl.target_stats(loss, [a.float()]), in_autocast)
    assert_stats_close(in_autocast, want, rtol=1e-6, atol=1e-6)
    assert d.dtype == torch.float32 and abs(d.item()) < 1e-6


# ---- end to end: the direction that matters ----------------------------------------------

LAYERS = ["relu1_1", "relu2_1"]


@pytest.fixture(scope="module")
def pair(vgg16_norm):
    g0 = load_image(sample_path("astronaut.png"), size=32).tensor
    s = load_image(sample_path("chelsea.png"), size=32).tensor
    with torch.no_grad():
        acts_s = vgg16_norm(s, LAYERS)
    return g0, acts_s


@pytest.mark.parametrize("name", NAMES)
def test_adam_steps_through_vgg16_lower_each_loss(name, vgg16_norm, pair):
    loss = sl.get_style_loss(name)
    g0, acts_s = pair
    targets = {n: sl.target_stats(loss, [acts_s[n]]) for n in LAYERS}

    def j(g: torch.Tensor) -> torch.Tensor:
        acts = vgg16_norm(g, LAYERS)
        return sum(loss.distance(targets[n], loss.stats(acts[n])) for n in LAYERS)

    g = g0.clone().requires_grad_()
    opt = torch.optim.Adam([g], lr=0.02)
    start = j(g0).item()
    for _ in range(15):
        opt.zero_grad()
        j(g).backward()
        opt.step()
        with torch.no_grad():
            g.clamp_(0, 1)
    end = j(g.detach()).item()
    # Measured: end/start is 0.02 to 0.06 for the four losses; 0.2 leaves a wide margin.
    assert start > 0 and end < 0.2 * start, (start, end)
