"""``StyleObjective``: the seed's J(G) bound to one network and the targets of C and S.

The targets (content activations, style statistics) are computed once, here; each call
then costs one forward of G through the network (``nstyle.core.functional`` has the
formulas, ``nstyle.core.style_losses`` the style statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..nets.protocol import SampledNet
from .balance import check_balance, content_norm, norm_or_one
from .functional import Activations, FeatureNet, Terms, content_cost, total_cost, total_variation
from .precision import autocast, check_precision
from .style_losses import get_style_loss, layer_distance, target_stats


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
        balance: str = "absolute",
    ) -> None:
        self.net = net
        self.balance = check_balance(balance)
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
        self.sampler: SampledNet | None = net if isinstance(net, SampledNet) and net.sampled else None
        self.sampled = self.sampler is not None
        if self.sampler is not None:
            self.sampler.use_all_slices()
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
            # One forward of C: the content layers, and under the relative balance the style
            # layers too (their distance from S is the divisor, see below).
            relative = self.balance == "relative"
            c_layers = sorted(set(self.content_layers) | (set(self.style_weights) if relative else set()))
            c_acts = self.features(content, c_layers) if content is not None else None
            self.content_targets = {n: c_acts[n].detach() for n in self.content_layers} if c_acts is not None else {}
            # Relative balance (nstyle.core.balance): J_content divided by ‖a(C)‖², each style
            # layer's distance by the distance C itself has from the target (G = C costs Σλ).
            self.content_norm, self.style_norms = 1.0, dict.fromkeys(self.style_weights, 1.0)
            if relative:
                self.content_norm = content_norm(self.content_targets.values())
                self.style_norms = {
                    n: self._start_distance(n, c_acts[n] if c_acts is not None else torch.zeros_like(acts[0][n]))
                    for n in self.style_weights
                }

    def _start_distance(self, name: str, a: torch.Tensor) -> float:
        """d(target, stats(a)) for layer ``name`` and C's activations ``a`` (all-zero ones
        without a content): how far the content starts from the style; with regions, the
        share-weighted mean of each region's distance over its own positions."""
        loss = self.style_loss
        if self.regions is None:
            return norm_or_one(float(layer_distance(loss, self.style_targets[name], a)))
        parts = [
            share * float(loss.distance(t[name], loss.stats(a, self._region_weights(r, tuple(a.shape[2:])))))
            for r, (t, share) in enumerate(zip(self.region_targets, self.region_shares))
        ]
        return norm_or_one(sum(parts) / max(sum(self.region_shares), 1e-12))

    def _target(self, acts: list[torch.Tensor], blend: Sequence[float] | None) -> dict[str, torch.Tensor]:
        return target_stats(self.style_loss, acts, blend)

    def _region_weights(self, index: int, spatial: tuple[int, ...]) -> torch.Tensor:
        """Region ``index``'s share of each position of a layer grid of size ``spatial``
        (the area average of its full-resolution weights), cached per grid."""
        key = (index, spatial)
        if key not in self._region_cache:
            w = self.regions[index][0].float()  # type: ignore[index]
            pools = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
            pool: Callable[..., torch.Tensor] = pools[len(spatial)]  # each takes its own size tuple
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
                d = layer_distance(loss, self.style_targets[name], acts[name])
                total = total + (lam / self.style_norms[name]) * d
            return total
        total = torch.zeros((), device=self.device)
        for r, (targets, share) in enumerate(zip(self.region_targets, self.region_shares)):
            for name, lam in self.style_weights.items():
                w = self._region_weights(r, tuple(acts[name].shape[2:]))
                d = layer_distance(loss, targets[name], acts[name], w)
                total = total + share * (lam / self.style_norms[name]) * d
        return total

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """The net's activations of ``layers`` for ``x``, computed in this objective's precision."""
        with autocast(self.device, self.precision):
            return self.net(x, list(layers))

    def __call__(self, g: torch.Tensor) -> Terms:
        if self.sampler is not None:
            self.sampler.resample(tuple(g.shape))
        acts = self.features(g, self.layers)
        j_c = torch.zeros((), device=g.device)
        for name, target in self.content_targets.items():
            if self.sampler is not None:
                target = self.sampler.select(name, target)
            j_c = j_c + content_cost(target, acts[name])
        j_c = j_c / self.content_norm
        j_s = self.style_term(acts)
        tv = total_variation(g) if self.tv_weight else torch.zeros((), device=g.device)
        total = total_cost(j_c, j_s, self.alpha, self.beta) + self.tv_weight * tv
        return Terms(total, j_c, j_s, tv)


class PlusCost:
    """J(G) + extra(G): an objective with one more term (video's temporal cost), reported
    in J's total only (its parts stay the content, style and TV terms)."""

    def __init__(self, objective: Callable[[torch.Tensor], Terms], extra: Callable[[torch.Tensor], torch.Tensor]):
        self.objective, self.extra = objective, extra

    def __call__(self, g: torch.Tensor) -> Terms:
        terms = self.objective(g)
        return Terms(terms.total + self.extra(g), terms.content, terms.style, terms.tv)
