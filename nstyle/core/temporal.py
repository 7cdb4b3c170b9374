"""Temporal consistency for video (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos").

Each frame's G is tied to the previous *stylised* frame carried along the optical flow:

    J_temporal(G_t) = mean over pixels and channels of c · (G_t − warp(G_{t−1}, ŵ))²

where ŵ is the backward flow (frame t → frame t−1: pixel x of frame t came from x + ŵ(x))
and c ∈ {0, 1} the certainty of that flow. J(G_t) = α·J_content + β·J_style + γ·J_temporal.
Flows are (N, 2, H, W) tensors in pixels, channel 0 the x (width) shift, channel 1 the y.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import NStyleError


def _check_flow(flow: torch.Tensor, like: torch.Tensor | None = None) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise NStyleError(f"a flow must be (N, 2, H, W), got {tuple(flow.shape)}")
    if like is not None and like.shape[-2:] != flow.shape[-2:]:
        raise NStyleError(f"flow {tuple(flow.shape[-2:])} and image {tuple(like.shape[-2:])} differ in size")


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """warp(x, w)(p) = x(p + w(p)), bilinear; positions outside the frame take the nearest
    border value. ``x`` (N, C, H, W); ``flow`` (N, 2, H, W) in pixels."""
    _check_flow(flow, x)
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=flow.dtype, device=flow.device), torch.arange(w, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    px, py = xs + flow[:, 0], ys + flow[:, 1]
    # grid_sample's coordinates: -1 and 1 are the centres of the first and last pixels
    grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def certainty(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s flow certainty c(x) ∈ {0, 1} for the backward flow ŵ (t → t−1), from
    the forward flow w (t−1 → t), shape (N, 1, H, W).

    Disocclusion: x is unreliable where |ŵ(x) + w̃(x)|² > 0.01(|ŵ(x)|² + |w̃(x)|²) + 0.5,
    w̃(x) = w(x + ŵ(x)) (the two flows should cancel). Motion boundary: where
    |∇ŵ_x|² + |∇ŵ_y|² > 0.01|ŵ|² + 0.002.
    """
    _check_flow(backward)
    _check_flow(forward, backward)
    carried = warp(forward, backward)
    sum_sq = (backward + carried).pow(2).sum(1, keepdim=True)
    occluded = sum_sq > 0.01 * (backward.pow(2).sum(1, keepdim=True) + carried.pow(2).sum(1, keepdim=True)) + 0.5
    grad = torch.zeros_like(backward[:, :1])
    for axis in (-1, -2):  # forward differences, the last row/column repeating
        d = torch.diff(backward, dim=axis, append=backward.narrow(axis, backward.shape[axis] - 1, 1))
        grad = grad + d.pow(2).sum(1, keepdim=True)
    boundary = grad > 0.01 * backward.pow(2).sum(1, keepdim=True) + 0.002
    return (~(occluded | boundary)).to(backward.dtype)


def long_term_weights(certainties: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Ruder's "closest first" weights for frames t−j (j in increasing distance): each pixel
    is tied to the closest earlier frame where its flow is certain, c_j = max(c_j − Σ_{k<j} c_k, 0)."""
    out, taken = [], None
    for c in certainties:
        out.append(c if taken is None else (c - taken).clamp(min=0))
        taken = c if taken is None else (taken + c).clamp(max=1)
    return out


def temporal_cost(g: torch.Tensor, targets: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Σ over (warped earlier frame, its weights c) of mean(c · (G − warped)²)."""
    dt = torch.promote_types(g.dtype, torch.float32)
    total = torch.zeros((), dtype=dt, device=g.device)
    for warped, c in targets:
        total = total + (c.to(dt) * (g.to(dt) - warped.to(dt)).pow(2)).mean()
    return total
