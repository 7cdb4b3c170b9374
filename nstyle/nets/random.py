"""Untrained multi-branch convolutions: the feature networks for sound and time series.

No pretrained 1D network is available offline, and the published practice for audio
style transfer (Ulyanov & Lebedev 2016; Antognini et al. 2019) measures style with
*random* convolutions: a single layer of many filters, He-initialised from a fixed seed,
ReLU, no bias. Several such single-layer branches of different spans (here: widths and
dilations) see structure at different time scales, the way deeper VGG layers do for
images. The same module works for 1, 2 or 3 spatial axes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NStyleError
from ..resources import check_bytes


@dataclass(frozen=True)
class Branch:
    """One single-layer branch: ``filters`` kernels of ``width`` taps spaced ``dilation`` apart."""

    width: int
    filters: int
    dilation: int = 1

    @property
    def span(self) -> int:
        """Samples one output of this branch sees: (width − 1)·dilation + 1."""
        return (self.width - 1) * self.dilation + 1

    @property
    def name(self) -> str:
        return f"w{self.width}" + (f"d{self.dilation}" if self.dilation > 1 else "")


EDGES = ("valid", "reflect")


def mirror(h: torch.Tensor, span: int, dims: int) -> torch.Tensor:
    """``h`` with (span − 1) // 2 samples mirrored before and span // 2 after each of its last
    ``dims`` axes, so that a valid convolution of that span keeps every axis's length."""
    before, after = (span - 1) // 2, span - 1 - (span - 1) // 2
    if before == after == 0:
        return h
    return F.pad(h, [before, after] * dims, mode="reflect")  # the same pads on each of the last dims axes


def parse_branches(spec: str | Sequence[Branch]) -> list[Branch]:
    """``"11:4096,11x4:1024"`` (width[xdilation]:filters, comma-separated) to Branches."""
    if not isinstance(spec, str):
        return list(spec)
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = re.fullmatch(r"(\d+)(?:x(\d+))?:(\d+)", part)
        if not m:
            raise NStyleError(f"branch {part!r} is not width[xdilation]:filters, e.g. 11:4096 or 11x4:1024")
        width, dilation, filters = int(m[1]), int(m[2] or 1), int(m[3])
        if width < 1 or filters < 1 or dilation < 1:
            raise NStyleError(f"branch {part!r}: width, dilation and filters must be >= 1")
        out.append(Branch(width, filters, dilation))
    if not out:
        raise NStyleError("no branches given")
    return out


class RandomBranches(nn.Module):
    """Parallel single-layer random convolutions over one input, with named layers.

    Layers are ``conv_<branch>`` and ``relu_<branch>`` (e.g. ``relu_w11``,
    ``relu_w11d4``). Weights are drawn from N(0, 2/fan_in) (He et al. 2015, so ReLU
    outputs keep the input's scale) with a generator seeded by ``seed``: the same seed
    gives the same network on every machine. No border of zeros ever leaks into the Gram
    matrices: ``edges="valid"`` leaves the convolutions unpadded, so an output exists only
    where a branch fits whole and the first and last samples are seen by one output where
    the middle ones are seen by ``width``; ``edges="reflect"`` first mirrors (span − 1) / 2
    samples at each end of every axis, so the end samples are seen by ``width − 1`` outputs
    (the mirror does not repeat the end sample itself) and G's ends are held by J like its
    middle (without it, G's first and last 50 ms of sound kept the start's noise: broadband
    hiss that neither C nor S has). ``preprocess`` maps the signal G to the network's input
    (e.g. waveform -> log-magnitude spectrogram).
    """

    def __init__(
        self,
        in_channels: int,
        branches: Sequence[Branch],
        dims: int = 1,
        seed: int = 0,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        edges: str = "valid",
    ) -> None:
        super().__init__()
        if dims not in (1, 2, 3):
            raise NStyleError(f"random networks take 1, 2 or 3 spatial axes, not {dims}")
        if edges not in EDGES:
            raise NStyleError(f"edges must be one of {', '.join(EDGES)}, got {edges!r}")
        self.dims, self.branches, self.seed, self.edges = dims, list(branches), seed, edges
        self.preprocess_fn = preprocess
        weights = sum(in_channels * b.filters * b.width**dims for b in self.branches)
        check_bytes("the random network's weights", 4 * weights, "use fewer or narrower --branches")
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        gen = torch.Generator().manual_seed(int(seed))
        self.convs = nn.ModuleDict()
        for b in self.branches:
            layer = conv(in_channels, b.filters, b.width, dilation=b.dilation, bias=False)
            fan_in = in_channels * b.width**dims
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
            self.convs[b.name] = layer
        self.names = [f"{kind}_{b.name}" for b in self.branches for kind in ("conv", "relu")]
        self.requires_grad_(False)
        self.eval()

    @property
    def max_span(self) -> int:
        return max(b.span for b in self.branches)

    def default_layers(self) -> list[str]:
        return [f"relu_{b.name}" for b in self.branches]

    def check_layers(self, layers: Iterable[str]) -> None:
        for name in layers:
            if name not in self.names:
                raise NStyleError(f"unknown layer {name!r}; this network has {', '.join(self.names)}")

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        self.check_layers(wanted)
        h = self.preprocess_fn(x) if self.preprocess_fn is not None else x
        short = [s for s, k in zip(h.shape[2:], [self.max_span] * self.dims) if s < k]
        if short:
            raise NStyleError(
                f"signal is too short for the network: {tuple(h.shape[2:])} samples/frames, "
                f"the widest branch spans {self.max_span}"
            )
        out: dict[str, torch.Tensor] = {}
        for b in self.branches:
            conv_name, relu_name = f"conv_{b.name}", f"relu_{b.name}"
            if conv_name in wanted or relu_name in wanted:
                a = _convolve(self.convs[b.name], mirror(h, b.span, self.dims) if self.edges == "reflect" else h)
                if conv_name in wanted:
                    out[conv_name] = a
                if relu_name in wanted:
                    out[relu_name] = torch.relu(a)
        return out


# A 1D branch with this many filters (and no dilation) runs as one matrix product over the
# unfolded input: for a sound's 4096 filters of 11 frames over 513 bins, forward and backward
# took 111 ms that way against 222 ms through conv1d (oneDNN's 1D convolution is far from
# its 2D speed); a dilated branch unfolds into a strided copy and is faster as conv1d.
MATMUL_FILTERS = 1024


def _convolve(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``: as ``unfold`` + one matrix product for a wide undilated 1D branch, else as is."""
    if not (isinstance(conv, nn.Conv1d) and conv.dilation == (1,) and conv.out_channels >= MATMUL_FILTERS
            and conv.bias is None and conv.padding == (0,) and conv.stride == (1,)):
        return conv(x)
    width = conv.kernel_size[0]
    n, c, t = x.shape
    cols = x.unfold(2, width, 1).permute(0, 2, 1, 3).reshape(n, t - width + 1, c * width)  # (N, T', C·width)
    return (cols @ conv.weight.reshape(conv.out_channels, -1).t()).transpose(1, 2)  # (N, filters, T')
