"""3×3 convolutions by Winograd's minimal filtering, F(4×4, 3×3), for fp32 on the CPU.

A direct 3×3 convolution costs 9 multiplies per output and input channel; F(4×4, 3×3)
computes a 4×4 output tile from a 6×6 input tile with 36, i.e. 2.25 per output: 4× fewer
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). With
``d`` a 6×6 input tile, ``g`` a 3×3 filter and ``⊙`` the elementwise product,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,

and summing over input channels turns the 36 elementwise products into 36 matrix
products (tiles × C_in) @ (C_in × C_out), which is where the time goes. On a CPU whose
fp32 convolutions already run at the FMA peak (oneDNN on a 2-core AVX2 EPYC reaches
~140 GFLOP/s), this is the only way left to make a VGG evaluation cheaper at the same
result. It pays where channels are many and images small: the transforms are passes over
memory (the transformed input is 36/16 = 2.25× the input), so at 64 channels × 512² they
cost more than they save. Measured on that CPU (one forward, ms, direct → Winograd):
64→64 at 512² 186 → 438; 256→256 at 128² 162 → 126; 512→512 at 64² 122 → 55;
512→512 at 32² 31 → 15. ``Conv3x3Chooser`` takes Winograd by a fixed rule on the shape
(the layers that won on both an AMX Xeon and an AVX2 EPYC), so that a seeded run gives the
same bits in every process; ``timed`` mode times both once per layer shape instead and
keeps the faster (as cuDNN's benchmark mode does), at the price of choices that can differ
between processes under load.

The result equals the direct convolution up to rounding (relative error ~1e-5 in fp32,
~1e-14 in float64; the tests check float64). Weights are frozen here: the gradient flows to
the input only, and that gradient is itself a 3×3 convolution (with the filters flipped
and their in/out channels swapped), computed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import NStyleError

# F(4×4, 3×3) with interpolation points 0, ±1, ±2 and ∞ (Lavin & Gray, section 4.2).
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))  # fmt: skip
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))  # fmt: skip
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
TILE = 4  # output tile side m
MAX_ELEMENTS = 1 << 24  # largest layer input (N·C·H·W) run by Winograd
_A = TILE + 2  # input tile side m + r − 1


def _matrix(rows: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def winograd_filters(weight: torch.Tensor) -> torch.Tensor:
    """U = G g Gᵀ for every filter: (C_out, C_in, 3, 3) → (36, C_in, C_out), computed in float64."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f"Winograd F(4x4, 3x3) needs 3x3 filters, got {tuple(weight.shape)}")
    g = _matrix(_G).to(weight.device)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.double(), g)
    return u.reshape(_A * _A, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def transposed_filters(weight: torch.Tensor) -> torch.Tensor:
    """The filters whose convolution is the input gradient: flipped, in/out channels swapped."""
    return weight.flip(-1, -2).transpose(0, 1)


def _kron(rows: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    # Bᵀ d B on every tile at once: with the tile flattened row-major, (Bᵀ ⊗ Bᵀ) vec(d).
    m = _matrix(rows)
    return torch.kron(m, m).to(dtype=like.dtype, device=like.device)


def winograd_conv3x3(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """3×3 convolution, stride 1, zero padding 1, no bias, of x (N, C_in, H, W) with
    ``filters = winograd_filters(w)``; returns (N, C_out, H, W) in channels-last memory.

    Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A on each 4×4 output tile; the bottom and right edges are
    padded up to whole tiles and cropped after.
    """
    n, c, h, w = x.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    # (N, H, W, C) with a zero border of 1, plus whatever completes the last tiles.
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1 + tw * TILE - w, 1, 1 + th * TILE - h)).contiguous()
    s = xp.stride()
    # Overlapping 6×6 tiles every 4 pixels, as a view: (6, 6, N, tiles_h, tiles_w, C).
    tiles = xp.as_strided((_A, _A, n, th, tw, c), (s[1], s[2], s[0], TILE * s[1], TILE * s[2], s[3]))
    p = n * th * tw
    v = (_kron(_BT, x) @ tiles.reshape(_A * _A, p * c)).view(_A * _A, p, c)
    m = torch.bmm(v, filters)  # (36, tiles, C_out): the 36 channel-mixing matrix products
    c_out = filters.shape[2]
    y = (_kron(_AT, x) @ m.view(_A * _A, p * c_out)).view(TILE, TILE, n, th, tw, c_out)
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, th * TILE, tw * TILE, c_out)
    if th * TILE != h or tw * TILE != w:
        y = y[:, :h, :w].contiguous()
    return y.permute(0, 3, 1, 2)


class _Winograd3x3(torch.autograd.Function):
    """conv2d(x, w, padding=1) with frozen w; backward gives the input's gradient only."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, filters: torch.Tensor, filters_t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(filters_t)
        return winograd_conv3x3(x, filters)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        (filters_t,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return winograd_conv3x3(grad.contiguous(memory_format=torch.channels_last), filters_t), None, None


def conv3x3(x: torch.Tensor, filters: torch.Tensor, filters_t: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Differentiable (in x) Winograd 3×3 convolution plus bias; filters from ``winograd_filters``
    of w and of ``transposed_filters(w)``."""
    y = _Winograd3x3.apply(x, filters, filters_t)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _faster(candidate: Any, reference: Any, margin: float) -> bool:
    """Whether ``candidate`` runs in under ``margin`` times ``reference``'s time.

    Each is run once to warm up (allocations, oneDNN primitive creation) and once timed.
    A candidate whose warm-up alone takes over twice the reference is not timed again:
    the first block's 64-channel layers lose by 2-3x, and timing them twice more is most of
    what choosing costs at 512 px."""
    _seconds(reference)
    ref = _seconds(reference)
    first = _seconds(candidate)
    if first > 2 * ref:
        return False
    return min(first, _seconds(candidate)) < margin * ref


# The fixed rule: both sides at least this many channels, and at most this many positions.
# Measured forward + input gradient, direct → Winograd, ms: on an AVX2 EPYC 256→512 at 64²
# 161 → 78 and 512→512 at 64² 274 → 116, but 128→256 at 128² 125 → 154 and 256→256 at
# 128² 255 → 251; on an AMX Xeon the timed mode took every layer of 128+ channels at 64²
# and below and none at 128² and above of a 512 px image (64-channel layers always lost).
RULE_MIN_CHANNELS = 128
RULE_MAX_POSITIONS = 64 * 64


def pays_by_shape(x: torch.Tensor, conv: torch.nn.Conv2d) -> bool:
    """The fixed rule of mode ``auto``: many channels in and out, a small image."""
    return (
        min(conv.in_channels, conv.out_channels) >= RULE_MIN_CHANNELS
        and x.shape[-2] * x.shape[-1] <= RULE_MAX_POSITIONS
    )


class Conv3x3Chooser:
    """Decides, per layer shape, whether Winograd beats the direct convolution here.

    Only fp32 on the CPU is considered (oneDNN has no fp32 Winograd for most CPUs; cuDNN
    chooses its own algorithms on a GPU; F(4×4, 3×3) loses too much accuracy in bf16).
    ``mode="auto"`` decides by ``pays_by_shape`` without timing, ``"always"`` takes every
    eligible layer (tests), ``"never"`` keeps every one direct. ``"timed"``: the first call
    for a shape times a forward (and input gradient, where one is wanted) of each on random
    data and keeps the answer for the process; on a 2-core Xeon with AMX the first fp32
    evaluation of a whole VGG16 then costs 0.5-0.8 s more at 128 and 256 px, 3.1 s more at
    512 px.
    """

    MODES = ("auto", "timed", "always", "never")

    def __init__(self, mode: str = "auto") -> None:
        if mode not in self.MODES:
            raise NStyleError(f"NSTYLE_WINOGRAD: Winograd mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.mode = mode
        self.choices: dict[tuple[int, ...], bool] = {}

    def eligible(self, x: torch.Tensor, conv: torch.nn.Conv2d) -> bool:
        """Whether this convolution could run by Winograd at all (not whether it pays)."""
        return (
            self.mode != "never"
            # The transformed input and output are 2.25x the layer's input and output; above
            # this size (a 1024 px image's conv3 layers) memory, not time, is what runs out.
            and x.numel() <= MAX_ELEMENTS
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and conv.weight.dtype == torch.float32
            and x.dim() == 4
            and conv.kernel_size == (3, 3)
            and conv.stride == (1, 1)
            and conv.padding == (1, 1)
            and conv.dilation == (1, 1)
            and conv.groups == 1
            and conv.padding_mode == "zeros"
            and not conv.weight.requires_grad
            # A hooked layer runs as its module, so that its hooks see it run.
            and not conv._forward_hooks
            and not conv._forward_pre_hooks
        )

    def use_winograd(
        self, x: torch.Tensor, conv: torch.nn.Conv2d, filters: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    ) -> bool:
        """Whether to run this convolution by Winograd; ``filters()`` gives its transformed
        filters and those of the input gradient, asked for only when timing needs them."""
        if not self.eligible(x, conv):
            return False
        if self.mode == "always":
            return True
        if self.mode == "auto":
            return pays_by_shape(x, conv)
        backward = x.requires_grad and torch.is_grad_enabled()
        key = (x.shape[0], x.shape[1], conv.out_channels, x.shape[2], x.shape[3], int(backward))
        if key not in self.choices:
            # A private generator: timing must not move the global RNG (seeded runs repeat).
            gen = torch.Generator().manual_seed(0)
            probe = torch.randn(x.shape, generator=gen).contiguous(memory_format=torch.channels_last)
            probe.requires_grad_(backward)
            grad = torch.randn((x.shape[0], conv.out_channels, *x.shape[2:]), generator=gen)
            grad = grad.contiguous(memory_format=torch.channels_last)

            # Forward and, where a gradient will be asked for, the input gradient too: the
            # two directions are different shapes (C_in → C_out, then C_out → C_in), and one
            # may gain what the other loses (128 → 256 at 128²: forward faster, backward not).
            def run(y: torch.Tensor) -> None:
                if backward:
                    y.backward(grad)

            u, u_t = filters()
            self.choices[key] = _faster(  # a clear win only (0.85): timing is noisy
                lambda: run(conv3x3(probe, u, u_t, None)),
                lambda: run(F.conv2d(probe, conv.weight, None, padding=1)),
                margin=0.85,
            )
        return self.choices[key]
