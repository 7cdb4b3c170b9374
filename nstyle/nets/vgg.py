"""VGG16 / VGG19 feature stacks in plain torch, with the usual layer names.

The layers are kept in the same order as torchvision's ``vgg.features`` so that a
torchvision state dict (``features.N.weight``) maps onto them by index, and so that the
bundled Keras weights can be poured in block by block.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..errors import NStyleError
from .winograd import Conv3x3Chooser, conv3x3, transposed_filters, winograd_filters

# Channels per convolution in each of the five blocks; a pooling layer closes each block.
VGG_BLOCKS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def layer_names(arch: str) -> list[str]:
    """Names of every layer of ``arch`` in forward order: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    for b, convs in enumerate(_blocks(arch), start=1):
        for i in range(1, len(convs) + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def _blocks(arch: str) -> tuple[tuple[int, ...], ...]:
    try:
        return VGG_BLOCKS[arch]
    except KeyError:
        raise NStyleError(f"unknown network {arch!r}; choose one of {', '.join(VGG_BLOCKS)}") from None


class VGG(nn.Module):
    """A VGG convolution stack whose forward returns named activations.

    ``forward(x, layers)`` runs only as deep as the deepest requested layer, so a style
    loss that stops at relu5_1 never pays for conv5_2 onwards. Parameters are frozen:
    gradients flow to the input only.

    Preprocessing belongs to the weights, not to the caller: ``preprocess`` maps an RGB
    signal in [0, 1] to whatever the weights were trained on (set by the loader).
    """

    # Buffers (registered in __init__), declared for the type checker.
    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(self, arch: str = "vgg19", pooling: str = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise NStyleError(f"unknown pooling {pooling!r}; choose max or avg")
        self.arch = arch
        self.pooling = pooling
        self.names = layer_names(arch)
        modules: list[nn.Module] = []
        c_in = 3
        for convs in _blocks(arch):
            for c_out in convs:
                modules += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = c_out
            # Average pooling is the variant Gatys et al. (2016) found to give smoother
            # images; a normalised net (nets.normalize) keeps activations at the same
            # scale for either kind, so no extra rescale factor is needed here.
            modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.layers = nn.ModuleList(modules)
        self.index = {name: i for i, name in enumerate(self.names)}
        # Identity preprocessing until a weights loader sets the real one.
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_std", torch.ones(1, 3, 1, 1))
        self.input_scale = 1.0
        self.bgr = False
        self.requires_grad_(False)
        self.eval()
        # fp32 CPU convolutions by Winograd where they pay (nets.winograd): by a fixed rule on
        # the shape; NSTYLE_WINOGRAD=timed times each shape instead, =never turns it off.
        self.winograd = Conv3x3Chooser(os.environ.get("NSTYLE_WINOGRAD", "auto"))
        self._filters: dict[int, tuple[tuple[int, int, torch.dtype], torch.Tensor, torch.Tensor]] = {}

    def set_preprocessing(self, mean: Sequence[float], std: Sequence[float], scale: float, bgr: bool) -> None:
        """Input transform: ``x -> (scale * x[, channels reversed] - mean) / std``."""
        self.input_mean.copy_(torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_std.copy_(torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_scale = float(scale)
        self.bgr = bool(bgr)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB in [0, 1], shape (N, 3, H, W), to the network's input domain."""
        if x.shape[1] != 3:
            raise NStyleError(f"VGG needs 3 colour channels, got {x.shape[1]}")
        x = x * self.input_scale
        if self.bgr:
            x = x.flip(1)
        return (x - self.input_mean) / self.input_std

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise a clear error for any name that is not a layer of this network."""
        for name in layers:
            if name not in self.index:
                raise NStyleError(
                    f"unknown layer {name!r} for {self.arch}; layers are named like "
                    f"conv1_1, relu1_1, pool1 ... up to {self.names[-1]}"
                )

    def convs(self) -> list[tuple[str, nn.Conv2d]]:
        """(name, module) of every convolution, in order."""
        return [(n, m) for n, m in zip(self.names, self.layers) if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor, layers: Iterable[str], preprocess: bool = True) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for the RGB input ``x``; stops after the deepest one."""
        wanted = set(layers)
        self.check_layers(wanted)
        if not wanted:
            return {}
        last = max(self.index[n] for n in wanted)
        h = self.preprocess(x) if preprocess else x
        # Channels-last (N, H, W, C in memory) is the layout oneDNN's and cuDNN's fastest
        # convolutions use: one 512 px evaluation (forward + input gradient) on a 2-core
        # CPU took 1.64 s contiguous vs 1.31 s channels-last in fp32, 1.16 vs 0.64 s in
        # bf16 (benchmarks/bench_speed.py). Activations come out channels-last too.
        if h.dim() == 4:
            h = h.contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            layer = self.layers[i]
            h = self._conv(i, layer, h) if isinstance(layer, nn.Conv2d) else layer(h)
            name = self.names[i]
            if name in wanted:
                out[name] = h
        return out

    def _conv(self, i: int, conv: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
        """Layer i's convolution, by Winograd where the chooser takes it for this shape."""
        if not self.winograd.use_winograd(h, conv, lambda: self._winograd_filters(i, conv)):
            return conv(h)
        return conv3x3(h, *self._winograd_filters(i, conv), conv.bias)

    def _winograd_filters(self, i: int, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer i's transformed filters (4x its weights, twice), made for the layers that use
        them only. Keyed on the weight's storage and version: loading or normalising weights
        in place after a first forward must not leave stale transformed filters behind."""
        w = conv.weight
        key = (w.data_ptr(), w._version, w.dtype)
        cached = self._filters.get(i)
        if cached is None or cached[0] != key:
            cached = (key, winograd_filters(w), winograd_filters(transposed_filters(w)))
            self._filters[i] = cached
        return cached[1], cached[2]
