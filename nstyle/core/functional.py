"""The seed's cost function as small pure functions on tensors of shape (N, C, *spatial).

Nothing here knows whether the spatial axes hold a picture (H, W), a sound (T) or a
volume (D, H, W): every spatial size enters only through M, the product of the spatial
sizes (n_H · n_W for an image). This module imports nothing of nstyle but its error type:
it is the bottom layer. Wrong arguments raise ``NStyleError`` (a ValueError) or
``NStyleTypeError`` (also a TypeError) with one sentence.
``nstyle.core.objective.StyleObjective`` binds the functions to a network and to the
targets computed once from C and S.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import NStyleError, NStyleTypeError

Activations = Mapping[str, torch.Tensor]
FeatureNet = Callable[[torch.Tensor, list[str]], dict[str, torch.Tensor]]


def check_activations(what: str, a: object) -> torch.Tensor:
    """``a`` must be a tensor (N, C, *spatial) with at least one spatial axis."""
    if not isinstance(a, torch.Tensor):
        raise NStyleTypeError(f"{what} must be a torch.Tensor (N, C, *spatial), got {type(a).__name__}")
    if a.dim() < 3:
        raise NStyleError(f"{what} must have shape (N, C, *spatial) with a spatial axis, got {tuple(a.shape)}")
    return a


def content_cost(a_c: torch.Tensor, a_g: torch.Tensor) -> torch.Tensor:
    """J_content(C, G) = 1/2 · ‖a[l](C) − a[l](G)‖²  (sum of squares over every element)."""
    for what, a in (("content activations", a_c), ("G's activations", a_g)):
        if not isinstance(a, torch.Tensor):
            raise NStyleTypeError(f"{what} must be a torch.Tensor, got {type(a).__name__}")
    if a_c.shape != a_g.shape:
        raise NStyleError(f"content activations differ in shape: {tuple(a_c.shape)} vs {tuple(a_g.shape)}")
    dt = torch.promote_types(a_g.dtype, torch.float32)  # float64 stays float64
    return 0.5 * (a_c.to(dt) - a_g.to(dt)).pow(2).sum()


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """G[l]_kk' = Σ over all spatial positions p of a_{p,k} · a_{p,k'}; shape (N, n_C, n_C).

    Always computed in float32 (or float64 if given): half-precision Grams overflow.
    """
    check_activations("gram_matrix's input", a)
    a = a if a.dtype == torch.float64 else a.float()
    # Channels-last activations (what the convolutions produce fastest on CPU) are
    # (N, M, n_C) in memory: multiply that view rather than copying to (N, n_C, M).
    rows = _positions_by_channels(a)
    return rows.transpose(1, 2) @ rows


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


def _positions_by_channels(a: torch.Tensor) -> torch.Tensor:
    """Activations (N, n_C, *spatial) as an (N, M, n_C) view: no copy for channels-last 4D
    activations (their memory order), a strided view otherwise."""
    if a.dim() == 4 and not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last):
        return a.permute(0, 2, 3, 1).reshape(a.shape[0], -1, a.shape[1])
    return a.flatten(2).transpose(1, 2)


# Rows per block of a bf16 Gram (see ``_rows_gram``): the most blocks that keep the product
# fast. Measured on 2 AMX cores: 512 rows is as fast as 4096 from relu1_1 at 512 px (2.7 vs
# 2.3 ms) to relu5_1 at 256 px, and rounds the least (each block's sum is rounded to bf16).
GRAM_BLOCK_ROWS = 512
# Fewer positions than this many blocks: the Gram in fp32 as before. Each block's rounding
# is 2^-9 of that block's sum and they average out over many blocks, not over one or two; a
# short sound's spectrogram (a few hundred frames) rounded once in bf16 kept less of its
# words under a tonal style (envelope correlation 0.60 against 0.63). Small Grams are cheap
# in fp32 anyway.
GRAM_MIN_BLOCKS = 4


def _rows_gram(rows: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
    """Rᵀ R in ``dt`` for rows R (N, M, n_C).

    bf16 rows on the CPU: the sum over M is split into blocks of ``GRAM_BLOCK_ROWS``
    positions, each block's Rᵀ R a bf16 product (exact bf16 inputs, fp32 accumulation, the
    block's sum rounded to bf16 once), and the blocks summed in fp32. oneDNN's bf16
    product of a single (n_C × M)·(M × n_C) runs slower than fp32 (its M-long reduction is
    not split across cores), while the blocks run as one batched product: the five style
    Grams of a 512 px bf16 evaluation take ~6 ms instead of ~45 ms for casting to fp32 and
    multiplying there (relu1_1: 2.7 vs 23 ms). The rounding costs 2e-4 (relu1_1 at 512 px)
    to 2e-3 (relu4_1 at 512 px) of the Gram's largest entry, below bf16's own error in the
    activations (the gradient of a bf16 evaluation is ~4 % from fp32's). Fewer positions
    than ``GRAM_MIN_BLOCKS`` blocks: fp32, as for every other dtype and device.
    """
    n, m, c = rows.shape
    if rows.dtype != torch.bfloat16 or rows.device.type != "cpu" or m < GRAM_MIN_BLOCKS * GRAM_BLOCK_ROWS:
        r = rows.to(dt)
        return r.transpose(1, 2) @ r
    k = m // GRAM_BLOCK_ROWS
    blocks = rows[:, : k * GRAM_BLOCK_ROWS].reshape(n * k, GRAM_BLOCK_ROWS, c)
    gram = (blocks.transpose(1, 2) @ blocks).view(n, k, c, c).to(dt).sum(1)
    if k * GRAM_BLOCK_ROWS < m:
        tail = rows[:, k * GRAM_BLOCK_ROWS :]
        gram += (tail.transpose(1, 2) @ tail).to(dt)
    return gram


class _GramCost(torch.autograd.Function):
    """‖Ĝ(a) − T‖_F² with its gradient in closed form (see ``gram_cost``)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dt = torch.promote_types(a.dtype, torch.float32)
        rows = _positions_by_channels(a)  # (N, M, n_C); a view for channels-last activations
        norm = 2.0 * spatial_size(a) * a.shape[1]
        # In place after the product: for a sound's 4096 x 4096 Grams every pass over the
        # matrix costs as much as a tenth of the product itself.
        diff = _rows_gram(rows, dt).div_(norm).sub_(target.to(dt))  # Ĝ rounded as scaled_gram rounds it (fp32)
        ctx.save_for_backward(a, diff)
        ctx.scale = 1.0 / norm  # type: ignore[attr-defined]
        flat = diff.reshape(-1)
        return torch.dot(flat, flat)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        a, diff = ctx.saved_tensors  # type: ignore[attr-defined]
        rows = _positions_by_channels(a)
        # dJ/dR = 2·s·R·(D + Dᵀ) for J = ‖s·RᵀR − T‖², D = s·RᵀR − T: one product the size of
        # the forward's, instead of autograd's two (R enters twice) and the sum of their results.
        # It runs in the activations' own precision: with bf16 activations the gradient is
        # bf16 anyway, and an (M × n_C)·(n_C × n_C) product in bf16 took 13 ms at relu1_1 of a
        # 512 px image against 45 ms in fp32 plus the cast back (the forward's Gram, a sum
        # over M, is summed in fp32 over bf16 blocks: see ``_rows_gram``).
        # D is symmetric (Ĝ is, and so is a target made of Grams), so D + Dᵀ = 2D.
        factor = 4.0 * ctx.scale * grad  # type: ignore[attr-defined]
        n_c, m = a.shape[1], rows.shape[1]
        if n_c <= m:  # scale whichever factor is smaller: D (n_C²) or the product (M·n_C)
            g_rows = rows @ (diff * factor).to(a.dtype)
        else:
            g_rows = (rows @ diff.to(a.dtype)).mul_(factor.to(a.dtype))
        n, c = a.shape[0], a.shape[1]
        if rows.is_contiguous() and a.dim() == 4:  # channels-last activations: keep their layout
            return g_rows.view(n, a.shape[2], a.shape[3], c).permute(0, 3, 1, 2), None
        return g_rows.transpose(1, 2).reshape(a.shape), None


def gram_cost(a_g: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖Ĝ(S) − Ĝ(G)‖_F², Ĝ = G[l]/(2·M·n_C), with ``target`` = Ĝ(S) (a symmetric (N, n_C, n_C)).

    The same value as ``layer_style_cost_from_grams(target, scaled_gram(a_g))``; its
    gradient is computed in closed form, dJ/da = 4·s·(Ĝ(G) − Ĝ(S))·a with s = 1/(2·M·n_C)
    (the target must be symmetric, as Grams and their blends are), one matrix product in the
    backward pass where autograd takes two plus their sum (in a 512 px
    bf16 evaluation the Gram work was 48 % of the time). Grams in float32 (float64 if given).
    """
    check_activations("gram_cost's input", a_g)
    n, c = a_g.shape[0], a_g.shape[1]
    if target.dim() != 3 or target.shape[1:] != (c, c) or target.shape[0] not in (1, n):
        raise NStyleError(f"gram_cost: target of shape {tuple(target.shape)} for activations {tuple(a_g.shape)}")
    return _GramCost.apply(a_g, target)


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
    if not weights:
        raise NStyleError("style_cost needs at least one style layer in weights")
    missing = [n for n in weights if n not in targets or n not in acts_g]
    if missing:
        raise NStyleError(f"style_cost: layer {missing[0]!r} is missing from the targets or from G's activations")
    total = torch.zeros((), device=acts_g[next(iter(weights))].device)
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
    check_activations("total_variation's input", x)
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
