"""Selectable style losses: what statistics of a layer's features count as "style".

Every loss is used the same way, through four methods on a thin class over pure functions:

* ``stats(a, weights=None)``: the statistics of one layer's activations ``a`` of shape
  (N, n_C, *spatial), with any number of spatial axes (a sound, a picture, a volume).
  ``weights`` (optional) are non-negative position weights broadcastable to
  (N, 1, *spatial), e.g. a region mask resized to this layer: every statistic is then a
  weighted average (or a weighted sum divided by Σ_p w_p), so the statistics of a region
  do not depend on its area. Statistics are computed in float32 (float64 if ``a`` is
  float64) whatever the activations' dtype or memory format, with autocast disabled.
* ``blend(stats, weights)``: the target for a weighted blend of several style images
  (the weights are normalised to sum to 1).
* ``prepare(stats)``: the target with whatever ``distance`` can precompute added (Σ_S^½
  for ``wasserstein``); call it once per target. ``blend`` returns prepared statistics.
* ``distance(target, current)``: a scalar, differentiable w.r.t. ``current``; summed
  over the batch, like the seed's Gram cost.

Typical use (once per style layer)::

    loss = get_style_loss("wasserstein")
    target = target_stats(loss, [a_s1, a_s2], [0.7, 0.3])   # once, without a graph
    j_l = loss.distance(target, loss.stats(a_g))             # every evaluation

``gram`` (the default) is the seed's cost, bit for bit.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ..errors import NStyleError
from .functional import gram_cost, gram_matrix, layer_style_cost_from_grams, scaled_gram

__all__ = [
    "DEFAULT_STYLE_LOSS",
    "STYLE_LOSSES",
    "GramLoss",
    "MeanStdLoss",
    "SlicedWassersteinLoss",
    "StyleLoss",
    "WassersteinLoss",
    "blend_weights",
    "gaussian_w2",
    "get_style_loss",
    "layer_distance",
    "position_weights",
    "resample_quantiles",
    "sorted_projections",
    "target_stats",
    "weighted_covariance",
    "weighted_gram",
    "weighted_mean_std",
]

Stats = dict[str, Tensor]

DEFAULT_STYLE_LOSS = "gram"


@runtime_checkable
class StyleLoss(Protocol):
    """The interface every style loss implements (see the module docstring)."""

    name: str
    summary: str  # one line, for --help

    def stats(self, a: Tensor, weights: Tensor | None = None) -> Stats: ...

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats: ...

    def prepare(self, stats: Stats) -> Stats: ...

    def distance(self, target: Stats, current: Stats) -> Tensor: ...


# ------------------------------------------------------------------ shared helpers


def _dtype(a: Tensor) -> torch.dtype:
    """float32, or float64 if given: half-precision sums of 10⁵ products overflow or round."""
    return torch.promote_types(a.dtype, torch.float32)


@contextlib.contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
    """Statistics in full precision even when called inside the network's autocast region."""
    if device.type in ("cpu", "cuda"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:
        yield


def _spatial_dims(a: Tensor) -> tuple[int, ...]:
    return tuple(range(2, a.dim()))


def position_weights(a: Tensor, weights: Tensor | None) -> Tensor | None:
    """``weights`` checked and cast for activations ``a``: shape (N or 1, 1, *spatial), >= 0.

    Raises NStyleError for a shape that does not broadcast to (N, 1, *spatial), for
    negative weights, and for a batch item whose weights are all 0 (an empty region).
    """
    if weights is None:
        return None
    w = torch.as_tensor(weights, device=a.device).to(_dtype(a))
    want = (a.shape[0], 1, *a.shape[2:])
    try:
        fits = torch.broadcast_shapes(w.shape, want) == torch.Size(want)
    except RuntimeError:
        fits = False
    if not fits:
        raise NStyleError(
            f"style region weights of shape {tuple(w.shape)} do not fit activations of shape "
            f"{tuple(a.shape)}: expected a shape broadcastable to {want}"
        )
    while w.dim() < a.dim():
        w = w.unsqueeze(0)
    if bool((w < 0).any()):
        raise NStyleError("style region weights must be >= 0 (a mask in [0, 1])")
    if bool((_weight_sums(w, a.shape[0]) <= 0).any()):
        raise NStyleError(f"style region is empty at activations of shape {tuple(a.shape)} (all weights 0)")
    return w


def _weight_sums(w: Tensor, n: int) -> Tensor:
    """Σ_p w_p for each of the n batch items: shape (n,)."""
    return w.expand(n, *w.shape[1:]).flatten(1).sum(1)


def blend_weights(weights: Sequence[float], count: int) -> list[float]:
    """Blend weights normalised to sum to 1; NStyleError unless ``count`` finite values >= 0, not all 0."""
    ws = [float(w) for w in weights]
    if count == 0:
        raise NStyleError("no style statistics to blend")
    if len(ws) != count:
        raise NStyleError(f"{len(ws)} style blend weights for {count} style images")
    if any(not math.isfinite(w) or w < 0 for w in ws):
        raise NStyleError(f"style blend weights must be finite numbers >= 0, got {ws}")
    total = sum(ws)
    if total <= 0:
        raise NStyleError("style blend weights are all 0")
    return [w / total for w in ws]


def _weighted_sum(values: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    return sum((w * v for w, v in zip(weights, values, strict=True)), torch.zeros_like(values[0]))


def target_stats(
    loss: StyleLoss,
    activations: Sequence[Tensor],
    weights: Sequence[float] | None = None,
    regions: Sequence[Tensor | None] | None = None,
) -> Stats:
    """The prepared target of one layer for one or several style images, without a graph.

    ``activations[i]`` is style image i's activations at this layer, ``weights`` its
    blend weight (default: equal), ``regions[i]`` its position weights (or None).
    """
    regions = list(regions) if regions is not None else [None] * len(activations)
    if len(regions) != len(activations):
        raise NStyleError(f"{len(regions)} style regions for {len(activations)} style images")
    with torch.no_grad():
        stats = [loss.stats(a, w) for a, w in zip(activations, regions, strict=True)]
        blended = loss.blend(stats, [1.0] * len(stats) if weights is None else weights)
    return {k: v.detach() for k, v in blended.items()}


# ------------------------------------------------------------------ gram


def weighted_gram(a: Tensor, w: Tensor | None = None) -> Tensor:
    """Ĝ_kk' = Σ_p w_p a_{k,p} a_{k',p} / (2 · Σ_p w_p · n_C); shape (N, n_C, n_C).

    With w = None this *is* ``objective.scaled_gram(a)`` (every w_p = 1, Σ_p w_p = M).
    """
    if w is None:
        return scaled_gram(a)
    a = a.to(_dtype(a))
    # √w on both factors: the weighted Gram is the plain Gram of √w·a (reuses gram_matrix).
    sums = _weight_sums(w, a.shape[0]).view(-1, 1, 1)
    return gram_matrix(a * w.sqrt()) / (2.0 * sums * a.shape[1])


class GramLoss:
    """The seed's cost: J[l] = ‖Ĝ(S) − Ĝ(G)‖_F², Ĝ = Σ_p w_p a_p a_pᵀ / (2 · Σ_p w_p · n_C).

    Unweighted, Ĝ is ``objective.scaled_gram`` and J[l] is ``layer_style_cost_from_grams``
    exactly. Blending styles sums their Ĝ with the blend weights (jcjohnson/neural-style's
    rule; it is also the second moment of the mixture of the styles' features).
    """

    name = "gram"
    summary = "Gram matrices (Gatys et al.), the seed's cost"

    def stats(self, a: Tensor, weights: Tensor | None = None) -> Stats:
        with _no_autocast(a.device):
            return {"gram": weighted_gram(a, position_weights(a, weights))}

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        ws = blend_weights(weights, len(stats))
        return {"gram": _weighted_sum([s["gram"] for s in stats], ws)}

    def prepare(self, stats: Stats) -> Stats:
        return stats

    def distance(self, target: Stats, current: Stats) -> Tensor:
        with _no_autocast(current["gram"].device):
            return layer_style_cost_from_grams(target["gram"], current["gram"])


def layer_distance(loss: StyleLoss, target: Stats, a: Tensor, weights: Tensor | None = None) -> Tensor:
    """``loss.distance(target, loss.stats(a, weights))``, by the fastest route: the plain
    Gram cost goes through ``functional.gram_cost`` (same value, closed-form gradient)."""
    if isinstance(loss, GramLoss) and weights is None:
        with _no_autocast(a.device):
            return gram_cost(a, target["gram"])
    return loss.distance(target, loss.stats(a, weights))


# ------------------------------------------------------------------ mean-std

# Inside the square root of σ: d√v/dv = 1/(2√v) is infinite at v = 0, and channels that a
# ReLU zeroes everywhere (common in VGG, e.g. on flat regions) have v = 0, where autograd
# would give 0 · ∞ = NaN. With ε the gradient there is exactly 0, and ε changes no σ above
# 1e-3 by more than 0.5 % (σ of the normalised VGG's features are O(1)).
MEAN_STD_EPS = 1e-8


def weighted_mean_std(a: Tensor, w: Tensor | None = None, eps: float = MEAN_STD_EPS) -> tuple[Tensor, Tensor]:
    """μ_k = Σ_p w_p a_{k,p} / Σ_p w_p,  σ_k = √(Σ_p w_p (a_{k,p} − μ_k)² / Σ_p w_p + ε); each (N, n_C).

    The (population) variance is computed about the mean (two passes) for accuracy.
    """
    a = a.to(_dtype(a))
    dims = _spatial_dims(a)
    if w is None:
        mean = a.mean(dims)
        var = (a - _expand(mean, a)).pow(2).mean(dims)
    else:
        p = w / _weight_sums(w, a.shape[0]).view(-1, *[1] * (a.dim() - 1))
        mean = (a * p).sum(dims)
        var = ((a - _expand(mean, a)).pow(2) * p).sum(dims)
    return mean, (var + eps).sqrt()


def _expand(per_channel: Tensor, a: Tensor) -> Tensor:
    """(N, n_C) to (N, n_C, 1, ...) against activations ``a``."""
    return per_channel.view(*per_channel.shape, *[1] * (a.dim() - 2))


class MeanStdLoss:
    """J[l] = (‖μ_S − μ_G‖² + ‖σ_S − σ_G‖²) / n_C: per-channel mean and standard deviation.

    μ, σ as in ``weighted_mean_std`` (σ with ε = 1e-8 under the root, for a finite
    gradient at σ = 0). Divided by n_C, i.e. the mean over channels, so that a 512-channel
    layer weighs the same as a 64-channel one (as the Gram cost's 1/n_C² on n_C² entries
    does). These are the statistics AdaIN matches (Huang & Belongie 2017). Blending
    averages μ and σ with the blend weights.
    """

    name = "mean-std"
    summary = "per-channel mean and standard deviation of the features (AdaIN's statistics)"

    def stats(self, a: Tensor, weights: Tensor | None = None) -> Stats:
        with _no_autocast(a.device):
            mean, std = weighted_mean_std(a, position_weights(a, weights))
        return {"mean": mean, "std": std}

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        ws = blend_weights(weights, len(stats))
        return {k: _weighted_sum([s[k] for s in stats], ws) for k in ("mean", "std")}

    def prepare(self, stats: Stats) -> Stats:
        return stats

    def distance(self, target: Stats, current: Stats) -> Tensor:
        n_c = current["mean"].shape[-1]
        with _no_autocast(current["mean"].device):
            d = (target["mean"] - current["mean"]).pow(2).sum() + (target["std"] - current["std"]).pow(2).sum()
        return d / n_c


# ------------------------------------------------------------------ wasserstein

# The ridge ε·I added to both covariances, relative to the style's mean variance tr(Σ_S)/n_C
# (activations of different layers and nets differ in scale by orders of magnitude, so no
# absolute ε suits them all). Why a ridge: the covariances of deep layers are rank-deficient
# (a 4 x 4 relu5_1 map gives rank <= 15 of 512; dead ReLU channels give exact zeros), so
# M = Σ_S^½ Σ_G Σ_S^½ has zero (often repeated) eigenvalues, where d√λ/dλ is infinite.
# With the ridge every eigenvalue of M is >= ε², the gradient stays finite (it is ½ in a
# direction that both S and G lack), and W(x, x) is still 0. 1e-4 keeps ε² = 1e-8·v̄² some
# 2000 times above float64's eigenvalue error (~1e-16·λ_max, λ_max up to ~(150·v̄)² for
# the bundled VGG16) while moving W² by only ~ε per channel.
W2_RIDGE = 1e-4
# Floor for the mean variance in ε, so a constant (zero-variance) style still gets a ridge.
W2_MIN_VARIANCE = 1e-6


def weighted_covariance(a: Tensor, w: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """μ = Σ_p w_p a_p / Σ_p w_p (N, n_C) and Σ = Σ_p w_p (a_p − μ)(a_p − μ)ᵀ / Σ_p w_p (N, n_C, n_C)."""
    a = a.to(_dtype(a))
    dims = _spatial_dims(a)
    if w is None:
        mean = a.mean(dims)
        return mean, gram_matrix(a - _expand(mean, a)) / (math.prod(a.shape[2:]))
    p = w / _weight_sums(w, a.shape[0]).view(-1, *[1] * (a.dim() - 1))
    mean = (a * p).sum(dims)
    return mean, gram_matrix((a - _expand(mean, a)) * p.sqrt())


def _sqrtm_psd(m: Tensor) -> Tensor:
    """The symmetric PSD square root V·diag(√max(λ, 0))·Vᵀ (for targets: no gradient needed)."""
    lam, vec = torch.linalg.eigh(m)
    return (vec * lam.clamp(min=0).sqrt().unsqueeze(-2)) @ vec.mT


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


def gaussian_w2(target: Stats, current: Stats) -> Tensor:
    """W²(N(μ_S, Σ_S'), N(μ_G, Σ_G')) for each batch item (float64), Σ' = Σ + ε·I.

    W² = ‖μ_S − μ_G‖² + tr Σ_S' + tr Σ_G' − 2 · tr((Σ_S'^½ Σ_G' Σ_S'^½)^½), where the last
    trace is Σ_i √λ_i over the eigenvalues of the symmetric PSD product (``eigvalsh``: its
    gradient V·diag(∂/∂λ)·Vᵀ needs no eigenvector derivative, so repeated eigenvalues are
    fine). ``target`` must be prepared (``WassersteinLoss.prepare``). The C x C matrix work
    is float64: in float32 the eigenvalue error (~1e-7·λ_max) swamps the small eigenvalues
    whose roots make up much of the trace for the rank-deficient covariances of deep
    layers, and the three traces nearly cancel when G matches S.
    """
    eps = target["ridge"]  # (N_S,), float64
    n_c = current["mean"].shape[-1]
    cov_g = current["cov"].double() + eps.view(-1, 1, 1) * _eye(n_c, eps)
    root_s = target["cov_sqrt"]
    m = root_s @ cov_g @ root_s
    m = (m + m.mT) / 2  # symmetric to rounding, as eigvalsh assumes
    # Every exact eigenvalue is >= ε² (Σ_S' >= ε·I and Σ_G' >= ε·I); flooring at ε²/2
    # changes none of them and keeps √'s gradient finite if rounding pushes one below.
    lam = torch.maximum(torch.linalg.eigvalsh(m), (eps * eps / 2).view(-1, 1))
    cross = lam.sqrt().sum(-1)
    mean_term = (target["mean"].double() - current["mean"].double()).pow(2).sum(-1)
    return mean_term + target["trace"] + cov_g.diagonal(dim1=-2, dim2=-1).sum(-1) - 2.0 * cross


class WassersteinLoss:
    """J[l] = W²(N(μ_S, Σ_S), N(μ_G, Σ_G)) / n_C: 2-Wasserstein between fitted Gaussians.

    W² = ‖μ_S − μ_G‖² + tr(Σ_S) + tr(Σ_G) − 2·tr((Σ_S^½ Σ_G Σ_S^½)^½), with μ, Σ the
    (weighted) mean and population covariance of the features (``weighted_covariance``)
    and a ridge ε·I, ε = 1e-4 · tr(Σ_S)/n_C, added to both covariances (``W2_RIDGE``: a
    finite gradient where the covariances are singular; W(x, x) stays 0). Divided by n_C so
    that layers of different widths weigh alike (every term grows with n_C). The default
    style loss of crowsonkb's style-transfer-pytorch. ``prepare`` computes Σ_S'^½ (eigh,
    eigenvalues clamped >= 0) once. Blending averages μ and Σ with the blend weights: an
    approximation, exact where the Σ are equal; the true W2 barycenter of Gaussians solves
    the fixed point Σ = Σ_i w_i (Σ^½ Σ_i Σ^½)^½, and the mixture's covariance would add the
    spread of the means.
    """

    name = "wasserstein"
    summary = "2-Wasserstein distance between Gaussians fitted to the features (crowsonkb's default)"

    def __init__(self, ridge: float = W2_RIDGE) -> None:
        self.ridge = float(ridge)

    def stats(self, a: Tensor, weights: Tensor | None = None) -> Stats:
        with _no_autocast(a.device):
            mean, cov = weighted_covariance(a, position_weights(a, weights))
        return {"mean": mean, "cov": cov}

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        ws = blend_weights(weights, len(stats))
        return self.prepare({k: _weighted_sum([s[k] for s in stats], ws) for k in ("mean", "cov")})

    def prepare(self, stats: Stats) -> Stats:
        """Adds ridge ε (N,), cov_sqrt = (Σ_S + ε·I)^½ and trace = tr(Σ_S + ε·I), all float64."""
        if "cov_sqrt" in stats:
            return stats
        cov = stats["cov"].double()
        n_c = cov.shape[-1]
        var = cov.diagonal(dim1=-2, dim2=-1).mean(-1)
        eps = self.ridge * var.clamp(min=W2_MIN_VARIANCE)
        cov_r = cov + eps.view(-1, 1, 1) * _eye(n_c, cov)
        return {
            **stats,
            "ridge": eps,
            "cov_sqrt": _sqrtm_psd(cov_r),
            "trace": cov_r.diagonal(dim1=-2, dim2=-1).sum(-1),
        }

    def distance(self, target: Stats, current: Stats) -> Tensor:
        """Sum over the batch of W²/n_C, in current's dtype (an unprepared target is prepared here, each call)."""
        dt = current["mean"].dtype
        with _no_autocast(current["mean"].device):
            w2 = gaussian_w2(self.prepare(target), current)
        return (w2.sum() / current["mean"].shape[-1]).to(dt)


# ------------------------------------------------------------------ sliced wasserstein

# Positions whose weight exceeds this are the samples of a region (sliced Wasserstein
# compares sets of samples, so a region is hard: a resized 0/1 mask's blurred edge is cut
# at its midpoint).
SLICED_REGION_THRESHOLD = 0.5
SLICED_SEED = 0


def sorted_projections(a: Tensor, directions: Tensor, w: Tensor | None = None) -> Tensor:
    """The features projected on each direction, sorted: (N, K, n) for directions (n_C, K).

    Positions are the samples and channels the dimensions: the projection of position p on
    direction k is Σ_c a_{c,p} d_{c,k}. With ``w``, only the positions with
    w_p > 0.5 are samples; where batch items keep different numbers of them, each item's
    sorted projections are resampled (``resample_quantiles``) to the largest number.
    """
    a = a.to(_dtype(a))
    n, n_c = a.shape[:2]
    rows = a.movedim(1, -1).reshape(n, -1, n_c)  # (N, M, n_C): a view for channels-last input
    d = directions.to(a.dtype)
    if w is None:
        return (rows @ d).transpose(1, 2).sort(dim=-1).values
    keep = (w > SLICED_REGION_THRESHOLD).expand(n, 1, *a.shape[2:]).reshape(n, -1)
    if not bool(keep.any(1).all()):
        raise NStyleError(f"style region is empty at activations of shape {tuple(a.shape)} (no weight > 0.5)")
    per_item = [(rows[i][keep[i]] @ d).T.sort(dim=-1).values for i in range(n)]
    longest = max(q.shape[-1] for q in per_item)
    return torch.stack([resample_quantiles(q, longest) for q in per_item])


def resample_quantiles(q: Tensor, n: int) -> Tensor:
    """Sorted samples q (..., m) resampled to n: the quantile function at levels (j + ½)/n.

    Sample i of m sits at level (i + ½)/m; between samples the quantile function is linear,
    beyond the first/last it is constant. m == n returns q itself.
    """
    m = q.shape[-1]
    if m == n:
        return q
    pos = ((torch.arange(n, device=q.device, dtype=q.dtype) + 0.5) * (m / n) - 0.5).clamp(0, m - 1)
    lo = pos.floor().long().clamp(max=m - 1)
    hi = (lo + 1).clamp(max=m - 1)
    return torch.lerp(q[..., lo], q[..., hi], pos - lo)


class SlicedWassersteinLoss:
    """J[l] = mean over directions k and levels j of (q_G,k(j) − q_S,k(j))²: sliced W2.

    Heitz et al. (2021): the features (positions as samples, n_C dimensions) are projected
    on K unit directions, K = n_C by default; q_X,k is the sorted projections of X (its
    empirical quantile function), the target's resampled to G's number of samples
    (``resample_quantiles``), so S and G may differ in size. The mean is the squared 1D
    W2 distance averaged over directions, independent of n_C and M; summed over the batch.
    Heitz et al. draw new directions at every step; here they are fixed, drawn from a
    torch.Generator seeded by ``seed + n_C``, because L-BFGS needs a deterministic J (its
    line search compares values of the same function). The stats keep the directions
    with the target, and ``distance`` checks that G's are the same. With region weights,
    positions of weight > 0.5 are the samples (a hard region). Blending averages the
    quantile functions with the blend weights (resampled to the longest): in 1D that *is*
    the W2 barycenter of the projections' distributions.
    """

    name = "sliced"
    summary = "sliced Wasserstein distance between the feature distributions (Heitz et al. 2021)"

    def __init__(self, n_directions: int | None = None, seed: int = SLICED_SEED) -> None:
        self.n_directions = n_directions
        self.seed = int(seed)
        self._cache: dict[tuple[int, int, torch.dtype, torch.device], Tensor] = {}

    def directions(self, n_c: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """K unit directions (n_C, K) in channel space; the same for every call with n_C."""
        k = self.n_directions or n_c
        key = (n_c, k, dtype, torch.device(device))
        if key not in self._cache:
            # Drawn on the CPU in float64: the same directions on every device.
            gen = torch.Generator().manual_seed(self.seed + n_c)
            d = torch.randn(n_c, k, generator=gen, dtype=torch.float64)
            self._cache[key] = (d / d.norm(dim=0, keepdim=True)).to(dtype=dtype, device=device)
        return self._cache[key]

    def stats(self, a: Tensor, weights: Tensor | None = None) -> Stats:
        with _no_autocast(a.device):
            d = self.directions(a.shape[1], _dtype(a), a.device)
            return {"directions": d, "quantiles": sorted_projections(a, d, position_weights(a, weights))}

    def blend(self, stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
        ws = blend_weights(weights, len(stats))
        for s in stats[1:]:
            _check_same_directions(stats[0], s)
        longest = max(s["quantiles"].shape[-1] for s in stats)
        qs = [resample_quantiles(s["quantiles"], longest) for s in stats]
        return {"directions": stats[0]["directions"], "quantiles": _weighted_sum(qs, ws)}

    def prepare(self, stats: Stats) -> Stats:
        return stats

    def distance(self, target: Stats, current: Stats) -> Tensor:
        _check_same_directions(target, current)
        q_g = current["quantiles"]
        with _no_autocast(q_g.device):
            q_s = resample_quantiles(target["quantiles"].to(q_g.dtype), q_g.shape[-1])
            return (q_s - q_g).pow(2).mean((-2, -1)).sum()


def _check_same_directions(x: Stats, y: Stats) -> None:
    dx, dy = x["directions"], y["directions"]
    if dx is dy:
        return
    if dx.shape != dy.shape or not torch.equal(dx.to(dy), dy):
        raise ValueError("sliced Wasserstein statistics were projected on different directions")


# ------------------------------------------------------------------ registry

STYLE_LOSSES: dict[str, StyleLoss] = {
    loss.name: loss for loss in (GramLoss(), MeanStdLoss(), WassersteinLoss(), SlicedWassersteinLoss())
}


def get_style_loss(name: str) -> StyleLoss:
    """The style loss called ``name``; NStyleError listing the choices for an unknown one."""
    try:
        return STYLE_LOSSES[name]
    except (KeyError, TypeError):
        raise NStyleError(f"unknown style loss {name!r}; choose one of {', '.join(STYLE_LOSSES)}") from None
