"""The seed's cost function as small pure functions on tensors of shape (N, C, *spatial).

Nothing here knows whether the spatial axes hold a picture (H, W), a sound (T) or a
volume (D, H, W): every spatial size enters only through M, the product of the spatial
sizes (n_H · n_W for an image). ``StyleObjective`` binds the functions to a network and
to the targets computed once from C and S.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .precision import autocast, check_precision

Activations = Mapping[str, torch.Tensor]
FeatureNet = Callable[[torch.Tensor, list[str]], dict[str, torch.Tensor]]


def content_cost(a_c: torch.Tensor, a_g: torch.Tensor) -> torch.Tensor:
    """J_content(C, G) = 1/2 · ‖a[l](C) − a[l](G)‖²  (sum of squares over every element)."""
    if a_c.shape != a_g.shape:
        raise ValueError(f"content activations differ in shape: {tuple(a_c.shape)} vs {tuple(a_g.shape)}")
    dt = torch.promote_types(a_g.dtype, torch.float32)  # float64 stays float64
    return 0.5 * (a_c.to(dt) - a_g.to(dt)).pow(2).sum()


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """G[l]_kk' = Σ over all spatial positions p of a_{p,k} · a_{p,k'}; shape (N, n_C, n_C).

    Always computed in float32 (or float64 if given): half-precision Grams overflow.
    """
    a = a if a.dtype == torch.float64 else a.float()
    if a.dim() == 4 and not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last):
        # Channels-last activations (what the convolutions produce fastest on CPU) are
        # (N, M, n_C) in memory: multiply that view rather than copying to (N, n_C, M).
        rows = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1, a.shape[1])  # (N, M, n_C), no copy
        return rows.transpose(1, 2) @ rows
    flat = a.flatten(2)  # (N, n_C, M)
    return flat @ flat.transpose(1, 2)


def spatial_size(a: torch.Tensor) -> int:
    """M: the product of the spatial sizes of activations (N, n_C, *spatial)."""
    return math.prod(a.shape[2:])


def scaled_gram(a: torch.Tensor) -> torch.Tensor:
    """G[l] / (2 · M · n_C): the Gram matrix with the seed's normalisation folded in.

    ‖scaled_gram(a_S) − scaled_gram(a_G)‖_F² is exactly the seed's layer style cost
    1/(2·n_H·n_W·n_C)² · ‖G(S) − G(G)‖_F² when S and G have the same size, and stays
    meaningful when they do not (each Gram is divided by its own M).
    """
    return gram_matrix(a) / (2.0 * spatial_size(a) * a.shape[1])


def layer_style_cost_from_grams(gs_scaled: torch.Tensor, gg_scaled: torch.Tensor) -> torch.Tensor:
    """‖Ĝ(S) − Ĝ(G)‖_F² for scaled Grams Ĝ = G/(2·M·n_C), summed over the batch."""
    return (gs_scaled - gg_scaled).pow(2).sum()


def layer_style_cost(a_s: torch.Tensor, a_g: torch.Tensor) -> torch.Tensor:
    """J_style[l](S, G) = 1/(2·M·n_C)² · Σ_k Σ_k' (G(S)_kk' − G(G)_kk')².

    M is the product of the layer's spatial sizes (n_H · n_W in 2D). If S and G differ in
    size each Gram is divided by its own 2·M·n_C (see ``scaled_gram``).
    """
    return layer_style_cost_from_grams(scaled_gram(a_s), scaled_gram(a_g))


def style_cost(
    targets: Mapping[str, torch.Tensor], acts_g: Activations, weights: Mapping[str, float]
) -> torch.Tensor:
    """J_style(S, G) = Σ_l λ[l] · J_style[l](S, G), with ``targets`` the scaled Grams of S."""
    total = torch.zeros((), device=next(iter(acts_g.values())).device)
    for name, lam in weights.items():
        total = total + lam * layer_style_cost_from_grams(targets[name], scaled_gram(acts_g[name]))
    return total


def total_cost(j_content: torch.Tensor, j_style: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """J(G) = α · J_content(C, G) + β · J_style(S, G)."""
    return alpha * j_content + beta * j_style


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """TV(G) = Σ over every spatial axis d of Σ (G_{p+e_d} − G_p)²: squared neighbour differences.

    Not in the seed; an optional smoothness prior (weight 0 by default).
    """
    dt = torch.promote_types(x.dtype, torch.float32)
    total = torch.zeros((), dtype=dt, device=x.device)
    for dim in range(2, x.dim()):
        total = total + torch.diff(x.to(dt), dim=dim).pow(2).sum()
    return total


@dataclass(frozen=True)
class Terms:
    """One evaluation of J and its parts (tensors, so J can be differentiated)."""

    total: torch.Tensor
    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor


class StyleObjective:
    """J(G) = α·J_content(C,G) + β·J_style(S,G) [+ tv·TV(G)] for one network and one C, S.

    The content activations and style Grams are computed once, here; each call then
    costs one forward of G through the network as deep as the deepest layer used.
    ``net(x, layers)`` returns a dict of activations for the signal ``x``.
    """

    def __init__(
        self,
        net: FeatureNet,
        content: torch.Tensor | None,
        style: torch.Tensor,
        content_layer: str | Sequence[str],
        style_weights: Mapping[str, float],
        alpha: float,
        beta: float,
        tv_weight: float = 0.0,
        precision: str = "fp32",
        *,
        style_blend: Sequence[float] | None = None,
        style_loss: str = "gram",
        regions: Sequence[tuple[torch.Tensor, int]] | None = None,
    ) -> None:
        from .style_losses import (
            get_style_loss,  # style_losses builds on this module's functions
        )

        self.net = net
        styles = [style] if isinstance(style, torch.Tensor) else list(style)
        if not styles:
            raise ValueError("at least one style signal is needed")
        style = styles[0]
        self.style_loss = get_style_loss(style_loss)
        ref = content if content is not None else style
        self.device = ref.device
        self.precision = check_precision(precision, self.device)
        # Several content layers (e.g. one per slice orientation of a volume) add up:
        # J_content = Σ_l ½‖a[l](C) − a[l](G)‖².
        self.content_layers = [content_layer] if isinstance(content_layer, str) else list(content_layer)
        self.content_layer = self.content_layers[0]
        self.style_weights = dict(style_weights)
        self.alpha, self.beta, self.tv_weight = float(alpha), float(beta), float(tv_weight)
        self.layers = sorted(set(self.style_weights) | (set(self.content_layers) if content is not None else set()))
        # A net that sees a random share of its input per call (nets.volume.Triplanar)
        # makes its targets from all of it, then draws anew at each evaluation.
        self.sampled = bool(getattr(net, "sampled", False))
        if self.sampled:
            net.use_all_slices()  # type: ignore[attr-defined]
        # Targets in the same precision as G's features, so that G = C gives J_content = 0.
        # Style targets: the statistics of S (or the blend of several S's statistics, e.g.
        # Σ_i w_i Ĝ(S_i) for Gram matrices); with ``regions``, one target per region from the
        # style image that region is given.
        self.regions = list(regions) if regions is not None else None
        self._region_cache: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}
        with torch.no_grad():
            acts = [self.features(s, list(self.style_weights)) for s in styles]
            if self.regions is None:
                self.style_targets = {
                    n: self._target([a[n] for a in acts], style_blend) for n in self.style_weights
                }
            else:
                self.region_targets = [
                    {n: self._target([acts[k][n]], None) for n in self.style_weights} for _, k in self.regions
                ]
                self.region_shares = [float(w.float().mean()) for w, _ in self.regions]
            self.content_targets = (
                {n: a.detach() for n, a in self.features(content, self.content_layers).items()}
                if content is not None
                else {}
            )

    def _target(self, acts: list[torch.Tensor], blend: Sequence[float] | None) -> dict[str, torch.Tensor]:
        from .style_losses import target_stats

        return target_stats(self.style_loss, acts, blend)

    def _region_weights(self, index: int, spatial: tuple[int, ...]) -> torch.Tensor:
        """Region ``index``'s share of each position of a layer grid of size ``spatial``
        (the area average of its full-resolution weights), cached per grid."""
        key = (index, spatial)
        if key not in self._region_cache:
            w = self.regions[index][0].float()  # type: ignore[index]
            pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[len(spatial)]
            self._region_cache[key] = pool(w, spatial)
        return self._region_cache[key]

    def style_term(self, acts: Activations) -> torch.Tensor:
        """J_style = Σ_l λ_l · d(target_l, stats(a_l(G))), d the selected style loss (Gram: the
        seed's cost). With regions: Σ_r share_r Σ_l λ_l · d(target_r,l, stats_r(a_l(G))), the
        statistics of G taken over region r only and share_r its fraction of the image."""
        loss = self.style_loss
        if self.regions is None:
            total = torch.zeros((), device=self.device)
            for name, lam in self.style_weights.items():
                total = total + lam * loss.distance(self.style_targets[name], loss.stats(acts[name]))
            return total
        total = torch.zeros((), device=self.device)
        for r, (targets, share) in enumerate(zip(self.region_targets, self.region_shares)):
            for name, lam in self.style_weights.items():
                w = self._region_weights(r, tuple(acts[name].shape[2:]))
                total = total + share * lam * loss.distance(targets[name], loss.stats(acts[name], w))
        return total

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """The net's activations of ``layers`` for ``x``, computed in this objective's precision."""
        with autocast(self.device, self.precision):
            return self.net(x, list(layers))

    def __call__(self, g: torch.Tensor) -> Terms:
        if self.sampled:
            self.net.resample(tuple(g.shape))  # type: ignore[attr-defined]
        acts = self.features(g, self.layers)
        j_c = torch.zeros((), device=g.device)
        for name, target in self.content_targets.items():
            if self.sampled:
                target = self.net.select(name, target)  # type: ignore[attr-defined]
            j_c = j_c + content_cost(target, acts[name])
        j_s = self.style_term(acts)
        tv = total_variation(g) if self.tv_weight else torch.zeros((), device=g.device)
        total = total_cost(j_c, j_s, self.alpha, self.beta) + self.tv_weight * tv
        return Terms(total, j_c, j_s, tv)
