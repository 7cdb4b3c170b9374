"""J and its gradient evaluated tile by tile, with global style statistics: no seams.

One evaluation of ``StyleObjective`` keeps every activation of the whole image for the
backward pass (about 2.5 kB per pixel for VGG16 up to relu5_1, so 40 GiB at 4096²).
``TiledObjective`` computes the *same* J and dJ/dG while keeping the graph of one crop
at a time.

Why the result is exact and not a blend of per-tile style transfers
-------------------------------------------------------------------
The image is cut into *cores* whose boundaries are multiples of the net's total stride S
at the deepest layer used (16 px for relu5_1 of VGG), so every feature position p of
every layer l belongs to exactly one core. Each core is run through the net inside a
*crop*: the core plus ``margin`` context pixels on each side (clipped at the image
border, where the net's own zero padding is then the same as for the whole image). A
core feature computed in the crop equals the whole-image one when its receptive field
lies inside the crop, which ``margin >= exact_margin`` guarantees (see ``Geometry``).

* Gram matrices are sums over positions, so the whole image's Gram is the sum of the
  cores' Grams:  Gram_l(G) = Σ_t Gram(F_l,t),  F_l,t the core features of tile t.
* J_style = Σ_l λ_l ‖Ĝ_l(S) − Gram_l(G)/(2·M_l·n_C)‖²  depends on G only through the
  Grams, so  dJ_style/dG = Σ_l ⟨D_l, dGram_l/dG⟩  with the constant matrices
  D_l = ∂J_style/∂Gram_l = −λ_l·(Ĝ_l(S) − Ĝ_l(G))/(M_l·n_C).
* J_content = Σ_l ½‖a_l(C) − a_l(G)‖² is a sum over positions too.

Hence pass 1 (no graph) accumulates Gram_l(G) over the tiles and gives J and D_l; pass 2
runs each crop again with a graph and back-propagates the *surrogate*

    L_t = β·Σ_l ⟨D_l, Gram(F_l,t)⟩ + α·Σ_l ½‖a_l(C)|core_t − F_l,t‖²,

whose input gradient, added into a full-size ``grad`` at the crop's place (margins
included: a pixel feeds the cores of several crops), sums over t to exactly dJ/dG.
The returned ``Terms.total`` has the value J and, through a one-line autograd function,
the gradient ``grad``: ``engine.optimize`` calls ``total.backward()`` unchanged.

The cost is one extra forward per crop (pass 1) plus the margins' share of the crops.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType

import torch
from torch import nn

from ..errors import NStyleError
from ..nets.protocol import SampledNet
from .balance import check_balance, content_norm, norm_or_one
from .functional import (
    FeatureNet,
    Terms,
    content_cost,
    gram_matrix,
    layer_style_cost_from_grams,
    spatial_size,
    total_variation,
)
from .precision import autocast, check_precision

__all__ = [
    "Geometry",
    "TiledObjective",
    "available_bytes",
    "needs_tiling",
    "tiled_eval_bytes",
    "untiled_eval_bytes",
]

DEFAULT_TILE = 512

# ---------------------------------------------------------------------------- geometry

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Identity)


def _iso(value: object, what: str, module: nn.Module) -> int:
    """One integer for a kernel/stride/padding/dilation that is the same along every axis."""
    vals = value if isinstance(value, tuple) else (value,)
    if not vals or isinstance(vals[0], str) or any(v != vals[0] for v in vals):
        raise NStyleError(f"cannot tile through {module}: its {what} {value!r} differs between axes")
    return int(vals[0])  # type: ignore[call-overload]


@dataclass(frozen=True)
class _Op:
    kernel: int
    stride: int
    padding: int
    dilation: int

    def out_size(self, n: int) -> int:
        """PyTorch's output length (floor mode) of a convolution or pooling over n samples."""
        return max(0, (n + 2 * self.padding - self.dilation * (self.kernel - 1) - 1) // self.stride + 1)


class Geometry:
    """Strides, receptive field and the exact margin of a VGG-like net up to ``layers``.

    The net must expose ``index`` (layer name -> position) and ``layers`` (its modules in
    order), as ``nets.vgg.VGG`` and ``nets.volume.Inflated`` do; convolutions and pooling
    must have the same kernel, stride and padding along every axis.

    Walking the modules with ``jump`` the distance in input pixels between neighbouring
    outputs: each op adds (k−1)·d·jump to the receptive field and p·jump to its extent
    before the output's first pixel (``left``). A feature at stride-block p of the
    deepest layer (stride S) sees input pixels [S·p − left, S·p − left + rf − 1], i.e.
    ``left`` pixels before its block and rf − left − S after it; ``exact_margin`` is the
    larger of the two rounded up to S. For VGG16: relu3_1 rf 24, left 10, S 4 -> 12;
    relu4_2 rf 76, left 34 -> 40; relu5_1 rf 132, left 58, S 16 -> 64.
    """

    def __init__(self, net: FeatureNet, layers: Sequence[str]) -> None:
        index = getattr(net, "index", None)
        modules = getattr(net, "layers", None)
        if not isinstance(index, Mapping) or modules is None:
            raise NStyleError(
                f"tiling needs a VGG-like network (named layers of convolutions and pooling); "
                f"{type(net).__name__} has none"
            )
        check = getattr(net, "check_layers", None)
        if check is not None:
            check(layers)
        self.ops: list[_Op | None] = []  # None: a pointwise layer
        self.strides: dict[str, int] = {}
        jump, rf, left = 1, 1, 0
        self.rank = 2  # spatial axes the convolutions take: 2 for VGG, 3 for Inflated
        self.deepest = max(layers, key=lambda n: index[n])
        names = {i: n for n, i in index.items()}
        for i in range(index[self.deepest] + 1):
            m = modules[i]
            if isinstance(m, _POINTWISE):
                op = None
            elif isinstance(m, _CONVS + _POOLS):
                if isinstance(m, _CONVS):
                    self.rank = next(r for r, c in enumerate(_CONVS, start=1) if isinstance(m, c))
                if getattr(m, "ceil_mode", False):
                    raise NStyleError(f"cannot tile through {m}: ceil_mode pooling shifts the grid")
                stride = m.stride if m.stride is not None else m.kernel_size
                op = _Op(
                    _iso(m.kernel_size, "kernel", m),
                    _iso(stride, "stride", m),
                    _iso(m.padding, "padding", m),
                    _iso(getattr(m, "dilation", 1), "dilation", m),
                )
                rf += (op.kernel - 1) * op.dilation * jump
                left += op.padding * jump
                jump *= op.stride
            else:
                raise NStyleError(f"cannot tile through {type(m).__name__} (layer {names.get(i, i)})")
            self.ops.append(op)
            if i in names:
                self.strides[names[i]] = jump
        self.index = dict(index)
        self.stride = jump  # S: core boundaries are multiples of this
        self.receptive_field = rf
        self.left = left
        right = rf - left - jump
        self.exact_margin = -(-max(left, right, 0) // jump) * jump

    def feature_size(self, n: int, layer: str) -> int:
        """Length along one axis of ``layer``'s activations for an input of n pixels."""
        for op in self.ops[: self.index[layer] + 1]:
            if op is not None:
                n = op.out_size(n)
        return n


# ------------------------------------------------------------------------------- tiles


@dataclass(frozen=True)
class _Span:
    """One tile along one axis: core pixels [core0, core1) inside crop pixels [crop0, crop1)."""

    core0: int
    core1: int
    crop0: int
    crop1: int
    last: bool  # the core runs to the image's end: take the features to the end too

    def features(self, stride: int, in_crop: bool) -> slice:
        """The core's feature positions at a layer of ``stride``, in crop or image coordinates."""
        off = self.crop0 if in_crop else 0
        return slice((self.core0 - off) // stride, None if self.last else (self.core1 - off) // stride)


def _spans(n: int, tile: int, margin: int, stride: int) -> list[_Span]:
    """Cores of at most ``tile`` pixels, cut at multiples of ``stride``, covering [0, n).

    The n/stride blocks are shared out evenly, the larger shares last (where the image
    may end in a partial block): 1030 px in tiles of 512 at stride 16 gives cores of
    336, 352, 342 px rather than 512, 512, 6 (a 6 px core still pays for two margins).
    """
    blocks = -(-n // stride)
    count = -(-blocks // (tile // stride))
    shares = [blocks // count + (i >= count - blocks % count) for i in range(count)]
    cuts = [stride * sum(shares[:i]) for i in range(count)] + [n]
    return [
        _Span(a, b, max(0, a - margin), min(n, b + margin), b == n) for a, b in itertools.pairwise(cuts)
    ]


Tile = tuple[_Span, ...]


def _index(slices: Iterable[slice]) -> tuple[EllipsisType | slice, ...]:
    """The index ``(..., *slices)``: the trailing (spatial) axes cut by ``slices``, the others whole."""
    return (..., *slices)


def _dense(core: torch.Tensor) -> torch.Tensor:
    """A core cut from channels-last activations, made contiguous in that layout again.

    Why: ``gram_matrix`` multiplies channels-last activations in place but copies any
    other strided tensor to (N, C, M), a transposing copy. Restoring the layout first
    copies whole channel rows instead: the Gram of a 512² relu1_1 core cut from a 576²
    crop took 0.18 s strided, 0.03 s copy + 0.03 s Gram dense (2 CPU cores).
    """
    if core.dim() == 4 and not core.is_contiguous() and core.stride(1) == 1:
        return core.contiguous(memory_format=torch.channels_last)
    return core


class _WithGradient(torch.autograd.Function):
    """A scalar with a given value whose gradient with respect to ``g`` is ``grad``.

    Rather than ``J + ⟨g, grad⟩ − ⟨g, grad⟩.detach()``: ⟨g, grad⟩ is several times J (4x
    at 256² for the default objective), so adding then subtracting it in float32 moves J
    by a few units in the last place, and it costs full-size products. This returns J
    bit for bit and backward is one multiplication.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, g: torch.Tensor, value: torch.Tensor, grad: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(grad)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, out: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return out.to(grad.dtype) * grad, None, None


# ---------------------------------------------------------------------------- objective


class TiledObjective:
    """``StyleObjective``'s J(G) = α·J_content + β·J_style [+ tv·TV], evaluated in tiles.

    Same arguments as ``StyleObjective`` plus ``tile`` (the largest core side in pixels, a
    positive multiple of the net's stride S at the deepest layer used) and ``margin``
    (context pixels around each core, a multiple of S; None: ``Geometry.exact_margin``).
    Calling it returns ``Terms`` like ``StyleObjective``: ``total`` has the value J and
    ``total.backward()`` puts dJ/dG into ``g.grad``; content, style and tv are detached.

    With margin >= the exact margin (the default) J and dJ/dG are those of the whole
    image up to float rounding, whatever the tile size; a smaller margin trades a small
    error near the cores' edges for speed. Where one tile covers the image, one forward
    and one backward are run, exactly as ``StyleObjective`` does. Content and style
    targets are computed in tiles too (S may be as large as G); the content layers'
    activations of C are kept at full size (512 MiB for relu4_2 at 4096² in fp32).

    Works along every spatial axis of the net (2D ``VGG``, 3D ``nets.volume.Inflated``);
    nets that sample their input (``Triplanar``) or have no named conv/pool layers
    (``RandomBranches``) are refused with an NStyleError.
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
        tile: int = DEFAULT_TILE,
        margin: int | None = None,
        balance: str = "absolute",
    ) -> None:
        if isinstance(net, SampledNet) and net.sampled:
            raise NStyleError("tiling cannot be used with a network that samples its input (triplanar slices)")
        self.net = net
        ref = content if content is not None else style
        self.device = ref.device
        self.precision = check_precision(precision, self.device)
        self.content_layers = [content_layer] if isinstance(content_layer, str) else list(content_layer)
        self.style_weights = dict(style_weights)
        self.alpha, self.beta, self.tv_weight = float(alpha), float(beta), float(tv_weight)
        used = set(self.style_weights) | (set(self.content_layers) if content is not None else set())
        if not used:
            raise NStyleError("no style or content layers to evaluate")
        self.geometry = Geometry(net, sorted(used))
        s = self.geometry.stride
        if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
            raise NStyleError(f"tile must be a positive number of pixels, got {tile!r}")
        if tile % s:
            lo, hi = tile // s * s, -(-tile // s) * s
            raise NStyleError(
                f"tile {tile} is not a multiple of the network's stride {s} at {self.geometry.deepest}; "
                f"use {hi}" + (f" or {lo}" if lo else "")
            )
        # Default margin: the exact one (64 px for relu5_1), since cutting it saves little.
        # Measured on the 512² astronaut in 256 px tiles (style relu1_1..relu5_1, content
        # relu4_2, fp32), margins 0 / 16 / 32 / 48 / 64 px gave max relative core-feature
        # errors of 0.51 / 0.28 / 0.14 / 0.025 / 0 at relu5_1 and 0.96 / 0.21 / 0.0026 / 0 / 0
        # at relu4_2; J off by 4.5e-2 / 2.0e-2 / 3.4e-4 / 9.7e-4 / 6e-8 and dJ/dG (max over
        # pixels, relative to its max) by 0.46 / 0.18 / 0.046 / 0.020 / 4e-7. A 48 px
        # margin would shrink a 512 px tile's inner crop from 640² to 608² pixels: 10 %.
        margin = self.geometry.exact_margin if margin is None else margin
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0 or margin % s:
            raise NStyleError(f"margin must be a multiple of the stride {s} that is >= 0, got {margin!r}")
        self.tile, self.margin = tile, margin
        for what, x in (("content", content), ("style", style)):
            if x is not None and x.dim() - 2 != self.geometry.rank:
                raise NStyleError(
                    f"{what} has {x.dim() - 2} spatial axes; this network's convolutions take {self.geometry.rank}"
                )
        with torch.no_grad():
            grams, counts, _ = self._statistics(style, list(self.style_weights))
            self.style_targets = {n: (grams[n] / (2.0 * counts[n] * grams[n].shape[-1])) for n in grams}
            self.content_shape = tuple(content.shape[2:]) if content is not None else None
            self.content_targets = self._stitch(content, self.content_layers) if content is not None else {}
        # nstyle.core.balance: the same divisors as StyleObjective's (‖a(C)‖², ‖Ĝ_l(S) − Ĝ_l(C)‖²)
        self.content_norm, self.style_norms = 1.0, dict.fromkeys(self.style_weights, 1.0)
        if check_balance(balance) == "relative":
            self.content_norm = content_norm(self.content_targets.values())
            gap = dict(self.style_targets)  # from silence, where there is no content
            if content is not None:
                with torch.no_grad():
                    grams_c, counts_c, _ = self._statistics(content, list(self.style_weights))
                gap = {n: self.style_targets[n] - g / (2.0 * counts_c[n] * g.shape[-1]) for n, g in grams_c.items()}
            self.style_norms = {n: norm_or_one(float(d.pow(2).sum())) for n, d in gap.items()}
        self.layers = sorted(used)

    # -- tiles and crops ----------------------------------------------------------------

    def tiles(self, spatial: Sequence[int]) -> list[Tile]:
        """Every tile of a signal with spatial sizes ``spatial``: one span per axis."""
        per_axis = [_spans(int(n), self.tile, self.margin, self.geometry.stride) for n in spatial]
        return list(itertools.product(*per_axis))

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """The net's activations of ``layers`` for ``x``, in this objective's precision."""
        with autocast(self.device, self.precision):
            return self.net(x, list(layers))

    def _cores(
        self, x: torch.Tensor, layers: Sequence[str], with_graph: bool = False
    ) -> Iterator[tuple[Tile, torch.Tensor, dict[str, torch.Tensor]]]:
        """For each tile: the tile, its crop of ``x`` and the core features of ``layers``.

        With ``with_graph`` the crop is a fresh leaf requiring grad and the features
        carry the graph; the consumer back-propagates before asking for the next tile,
        so one crop's graph is alive at a time.
        """
        for tile in self.tiles(x.shape[2:]):
            crop = x.detach()[_index(slice(t.crop0, t.crop1) for t in tile)]
            if with_graph:
                crop = crop.clone().requires_grad_(True)
            with torch.set_grad_enabled(with_graph):
                acts = self.features(crop, layers)
                cut = {n: _index(t.features(self.geometry.strides[n], True) for t in tile) for n in acts}
                core = {n: _dense(a[cut[n]]) for n, a in acts.items()}
            del acts
            yield tile, crop, core
            del crop, core

    def _statistics(
        self, x: torch.Tensor, style_layers: Sequence[str], content_targets: Mapping[str, torch.Tensor] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, int], torch.Tensor]:
        """Pass 1 (no graph), for S and for G alike: the whole signal's Grams of
        ``style_layers`` (sums of the cores' Grams), the positions M_l they sum over, and
        J_content against ``content_targets`` (full-size activations of C)."""
        content_targets = content_targets or {}
        layers = sorted(set(style_layers) | set(content_targets))
        grams: dict[str, torch.Tensor] = {}
        counts = dict.fromkeys(style_layers, 0)
        j_c = torch.zeros((), dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)
        for tile, _, core in self._cores(x, layers):
            for n in style_layers:
                part = gram_matrix(core[n])
                grams[n] = part if n not in grams else grams[n].add_(part)
                counts[n] += spatial_size(core[n])
            for n, target in content_targets.items():
                j_c = j_c + content_cost(self._target(target, tile, n), core[n])
        return grams, counts, j_c

    def _target(self, target: torch.Tensor, tile: Tile, layer: str) -> torch.Tensor:
        return target[_index(t.features(self.geometry.strides[layer], False) for t in tile)]

    def _stitch(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Full-size activations of ``layers`` for ``x``, assembled from the cores."""
        out: dict[str, torch.Tensor] = {}
        for tile, _, core in self._cores(x, layers):
            for n, a in core.items():
                if n not in out:
                    shape = (*a.shape[:2], *(self.geometry.feature_size(int(m), n) for m in x.shape[2:]))
                    fmt = torch.channels_last if a.dim() == 4 else torch.contiguous_format
                    out[n] = torch.empty(shape, dtype=a.dtype, device=a.device, memory_format=fmt)
                self._target(out[n], tile, n).copy_(a)
        return out

    def _style_cost(self, grams: Mapping[str, torch.Tensor], counts: Mapping[str, int]) -> torch.Tensor:
        """J_style = Σ_l λ_l ‖Ĝ_l(S) − Gram_l/(2·M_l·n_C)‖² from whole-signal Grams."""
        total = torch.zeros((), device=self.device)
        for n, lam in self.style_weights.items():
            scaled = grams[n] / (2.0 * counts[n] * grams[n].shape[-1])
            total = total + (lam / self.style_norms[n]) * layer_style_cost_from_grams(self.style_targets[n], scaled)
        return total

    def gram_matrices(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The whole signal's Gram matrices Gram_l(x) of the style layers, summed over the cores."""
        with torch.no_grad():
            return self._statistics(x, list(self.style_weights))[0]

    # -- evaluation ---------------------------------------------------------------------

    def __call__(self, g: torch.Tensor) -> Terms:
        if self.content_shape is not None and tuple(g.shape[2:]) != self.content_shape:
            raise NStyleError(f"G has spatial size {tuple(g.shape[2:])}, the content {self.content_shape}")
        want_grad = torch.is_grad_enabled() and g.requires_grad
        tiles = self.tiles(g.shape[2:])
        grad: torch.Tensor | None
        if want_grad and len(tiles) == 1:
            j_c, j_s, grad = self._one_tile(g)
        else:
            with torch.no_grad():
                grams, counts, j_c = self._statistics(g, list(self.style_weights), self.content_targets)
                j_c = j_c / self.content_norm
            grams = {n: t.requires_grad_(True) for n, t in grams.items()}
            with torch.enable_grad():
                j_s = self._style_cost(grams, counts)
            grad = self._gradient(g, grams, j_s) if want_grad else None
            j_s = j_s.detach()
        value = self.alpha * j_c + self.beta * j_s
        tv = total_variation(g) if self.tv_weight else torch.zeros((), device=g.device)
        total = _WithGradient.apply(g, value, grad) if grad is not None else value
        total = total + self.tv_weight * tv
        return Terms(total, j_c.detach(), j_s, tv.detach())

    def _one_tile(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole image in one crop: J straight from its graph (StyleObjective's work)."""
        ((tile, crop, core),) = list(self._cores(g, self.layers, with_graph=True))
        grams = {n: gram_matrix(core[n]) for n in self.style_weights}
        j_s = self._style_cost(grams, {n: spatial_size(core[n]) for n in grams})
        j_c = torch.zeros((), device=g.device)
        for n, target in self.content_targets.items():
            j_c = j_c + content_cost(self._target(target, tile, n), core[n])
        j_c = j_c / self.content_norm
        (grad,) = torch.autograd.grad(self.alpha * j_c + self.beta * j_s, crop)
        return j_c.detach(), j_s.detach(), grad

    def _gradient(self, g: torch.Tensor, grams: Mapping[str, torch.Tensor], j_s: torch.Tensor) -> torch.Tensor:
        """Pass 2: dJ/dG as the sum over crops of the surrogates' input gradients."""
        names = list(grams)
        d = dict(zip(names, torch.autograd.grad(j_s, [grams[n] for n in names]))) if names else {}
        grad = torch.zeros_like(g, memory_format=torch.contiguous_format)
        for tile, crop, core in self._cores(g, self.layers, with_graph=True):
            loss = torch.zeros((), device=g.device)
            for n in names:  # ⟨D_l, Gram(F_l,t)⟩: its gradient is D_l's share of dJ_style/dG
                loss = loss + self.beta * (d[n] * gram_matrix(core[n])).sum()
            for n, target in self.content_targets.items():
                loss = loss + self.alpha / self.content_norm * content_cost(self._target(target, tile, n), core[n])
            if loss.requires_grad:
                (part,) = torch.autograd.grad(loss, crop)
                grad[_index(slice(t.crop0, t.crop1) for t in tile)] += part
            del loss, core
        return grad


# ------------------------------------------------------------------------------ memory

# Peak memory of one untiled evaluation (J and dJ/dG) of the default VGG16 objective
# (relu1_1..relu5_1 style, relu4_2 content) as fixed bytes + bytes per pixel of G. The rise
# of the peak resident set (VmHWM, reset through /proc/self/clear_refs after malloc_trim)
# over one evaluation on CPU, fp32: 199 MiB at 256², 721 MiB at 512², 2542 MiB at 1024²
# (2428 B/px from 512² to 1024²); bf16: 177, 510, 1830 MiB (1760 B/px). The constants
# below over-estimate all six, by 0.5 % to 29 % (the most at 256²); CUDA measured about
# 3 GiB at 1024².
FIXED_BYTES = 100 * 2**20
BYTES_PER_PIXEL = {"fp32": 2500, "bf16": 1750, "fp16": 1750}


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or any(int(n) <= 0 for n in shape):
        raise NStyleError(f"memory estimates are for 2D images (H, W), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def untiled_eval_bytes(shape: Sequence[int], precision: str = "fp32") -> int:
    """Estimated peak bytes of one untiled VGG16 evaluation (J and dJ/dG) of an (H, W) image."""
    h, w = _check_shape(shape)
    if precision not in BYTES_PER_PIXEL:
        raise NStyleError(f"unknown precision {precision!r}")
    return FIXED_BYTES + BYTES_PER_PIXEL[precision] * h * w


def tiled_eval_bytes(
    shape: Sequence[int], precision: str = "fp32", tile: int = DEFAULT_TILE, margin: int = 64
) -> int:
    """Estimated peak bytes of one ``TiledObjective`` evaluation of an (H, W) image.

    One crop's untiled evaluation plus the full-size arrays that live throughout: G and
    its gradient (3 channels, 4 bytes each) and the relu4_2 content target (512 channels
    at 1/8 resolution: 8 values per pixel, in the features' dtype).
    """
    h, w = _check_shape(shape)
    crop = (min(h, tile + 2 * margin), min(w, tile + 2 * margin))
    feature_bytes = 4 if precision == "fp32" else 2
    return untiled_eval_bytes(crop, precision) + h * w * (2 * 3 * 4 + 8 * feature_bytes)


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory a new allocation can get now: CUDA free memory, or the CPU's MemAvailable."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def needs_tiling(
    shape: Sequence[int], device: torch.device | str = "cpu", precision: str = "fp32", fraction: float = 0.5
) -> bool:
    """True where one untiled evaluation of an (H, W) image would need more than
    ``fraction`` of the memory available on ``device`` (the rest is left for the
    optimiser's state, the targets and everything else running)."""
    return untiled_eval_bytes(shape, precision) > fraction * available_bytes(device)


def auto_tile(shape: tuple[int, ...], device: torch.device, precision: str, stride: int = 16) -> int | None:
    """None where one whole-image evaluation fits in half the available memory; otherwise the
    largest tile side (a multiple of ``stride``, at least ``DEFAULT_TILE``) whose tiled
    evaluation does.

    Tiling only costs time (a second forward per tile, and the margins), so fewer, larger
    tiles are faster; both give the same J and dJ/dG.
    """
    if not needs_tiling(shape, device, precision):
        return None
    # 0.4, not 0.5: the estimate is for the net's work alone; G, S, the L-BFGS history
    # (up to 4 GiB) and the full-size content target live beside it.
    budget = 0.4 * available_bytes(device)
    side = max(DEFAULT_TILE, max(shape) // stride * stride)
    while side > DEFAULT_TILE and tiled_eval_bytes(shape, precision, tile=side) > budget:
        side -= stride
    return side
