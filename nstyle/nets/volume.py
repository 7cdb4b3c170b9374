"""Pretrained 2D VGG kernels measuring 3D volumes: three slice orientations, or inflated to 3D.

* ``Triplanar``: the 2D network applied to slices along each axis (axial, coronal,
  sagittal), as in solid-texture synthesis from 2D exemplars (Gutierrez et al. 2020) and
  MONAI's "fake 3D" perceptual loss. Layer names carry the orientation
  (``axial:relu1_1``); a slice stack becomes an extra spatial axis of the activations,
  so one Gram pools over every slice seen. Each evaluation may see only a random share
  of the slices (``resample``), which bounds memory and time for large volumes.
* ``Inflated``: each 3x3 kernel repeated along a new axis and divided by 3 (as in I3D,
  Carreira & Zisserman 2017), run as true 3D convolutions with 2x2x2 pooling. On a volume
  that is constant along the new axis it computes exactly what the 2D net computes on
  one slice, so the 2D net's activation normalisation carries over.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import NStyleError
from .vgg import VGG, layer_names

ORIENTATIONS = {"axial": 2, "coronal": 3, "sagittal": 4}  # the axis of (N, C, D, H, W) sliced along


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey volumes feed the RGB networks as three equal channels."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] != 1:
        raise NStyleError(f"volumes need 1 or 3 channels, got {x.shape[1]}")
    return x.expand(-1, 3, *x.shape[2:])


class Triplanar(nn.Module):
    """The 2D ``vgg`` over slices of a (1, C, D, H, W) volume along three axes."""

    def __init__(self, vgg: VGG, slices_per_axis: int | None = None, seed: int = 0, chunk: int = 16) -> None:
        super().__init__()
        self.vgg = vgg
        self.slices_per_axis = slices_per_axis  # None: every slice, every evaluation
        self.chunk = chunk
        self.gen = torch.Generator().manual_seed(int(seed))
        self.indices: dict[str, torch.Tensor] | None = None
        self.names = [f"{o}:{n}" for o in ORIENTATIONS for n in vgg.names]

    # The objective's side of sampling (nets.protocol.SampledNet): targets are made
    # from every slice (``use_all_slices``), each evaluation draws new slices
    # (``resample``), and the content target is cut to the slices drawn (``select``).
    sampled = True

    @property
    def stochastic(self) -> bool:
        """True when each evaluation sees a random subset of the slices."""
        return self.slices_per_axis is not None

    def use_all_slices(self) -> None:
        self.indices = None

    @staticmethod
    def expand_layers(layers: Iterable[str]) -> list[str]:
        """Plain VGG names to every orientation: relu1_1 -> axial:relu1_1, coronal:..., sagittal:..."""
        return [
            name if ":" in name else f"{o}:{name}"
            for name in layers
            for o in ([None] if ":" in name else ORIENTATIONS)
        ]

    def check_layers(self, layers: Iterable[str]) -> None:
        for name in layers:
            o, _, layer = name.rpartition(":")
            if o not in ORIENTATIONS:
                raise NStyleError(
                    f"unknown layer {name!r}; use a VGG layer name, optionally as axial:, coronal: or sagittal:NAME"
                )
            self.vgg.check_layers([layer])

    def resample(self, shape: tuple[int, ...]) -> None:
        """Draw this evaluation's slices: ``slices_per_axis`` random ones per orientation."""
        if self.slices_per_axis is None:
            return
        self.indices = {}
        for o, axis in ORIENTATIONS.items():
            n = shape[axis]
            k = min(n, self.slices_per_axis)
            self.indices[o] = torch.randperm(n, generator=self.gen)[:k].sort().values

    def sampled_share(self, shape: tuple[int, ...]) -> float:
        """Share of the activations of all slices that one evaluation computes: each axis's
        slices together cover the whole volume, so the mean over axes of min(n, k) / n."""
        if self.slices_per_axis is None:
            return 1.0
        k = self.slices_per_axis
        return sum(min(shape[axis], k) / shape[axis] for axis in ORIENTATIONS.values()) / len(ORIENTATIONS)

    def select(self, name: str, target: torch.Tensor) -> torch.Tensor:
        """The part of an all-slices activation ``target`` that the current sample saw."""
        if self.indices is None:
            return target
        o = name.rpartition(":")[0]
        return target.index_select(2, self.indices[o].to(target.device))

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        layers = list(layers)
        self.check_layers(layers)
        out: dict[str, torch.Tensor] = {}
        for o, axis in ORIENTATIONS.items():
            wanted = [n.rpartition(":")[2] for n in layers if n.rpartition(":")[0] == o]
            if not wanted:
                continue
            stack = _rgb(x).movedim(axis, 2)[0]  # (3, S, a, b)
            if self.indices is not None:
                stack = stack.index_select(1, self.indices[o].to(x.device))
            images = stack.permute(1, 0, 2, 3)  # (S, 3, a, b): slices as a batch
            # Without gradients (targets), go in chunks of slices to bound memory.
            step = images.shape[0] if torch.is_grad_enabled() else self.chunk
            parts = [self.vgg(images[i : i + step], wanted) for i in range(0, images.shape[0], step)]
            for name in wanted:
                acts = torch.cat([p[name] for p in parts]) if len(parts) > 1 else parts[0][name]
                out[f"{o}:{name}"] = acts.permute(1, 0, 2, 3).unsqueeze(0)  # (1, C_l, S, h, w)
        return out


class Inflated(nn.Module):
    """``vgg`` with 3x3 kernels inflated to 3x3x3 (repeat, divide by 3) and 2x2x2 pooling."""

    # Buffers (registered in __init__), declared for the type checker.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, vgg: VGG) -> None:
        super().__init__()
        self.vgg_names = vgg.names
        self.names = list(vgg.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        modules: list[nn.Module] = []
        for layer in vgg.layers:
            if isinstance(layer, nn.Conv2d):
                conv = nn.Conv3d(layer.in_channels, layer.out_channels, 3, padding=1)
                assert conv.bias is not None and layer.bias is not None  # VGG's convolutions all have a bias
                with torch.no_grad():
                    conv.weight.copy_(layer.weight.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3.0)
                    conv.bias.copy_(layer.bias)
                modules.append(conv)
            elif isinstance(layer, nn.ReLU):
                modules.append(nn.ReLU())
            else:
                modules.append(nn.MaxPool3d(2) if isinstance(layer, nn.MaxPool2d) else nn.AvgPool3d(2))
        self.layers = nn.ModuleList(modules)
        shape = (1, 3, 1, 1, 1)
        self.register_buffer("mean", vgg.input_mean.view(shape).clone())
        self.register_buffer("std", vgg.input_std.view(shape).clone())
        self.scale, self.bgr = vgg.input_scale, vgg.bgr
        self.requires_grad_(False)
        self.eval()

    def check_layers(self, layers: Iterable[str]) -> None:
        for name in layers:
            if name not in self.index:
                raise NStyleError(f"unknown layer {name!r}; layers are named like conv1_1, relu1_1, pool1 ...")

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        self.check_layers(wanted)
        h = _rgb(x) * self.scale
        h = (h.flip(1) if self.bgr else h)
        h = (h - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i in range(max(self.index[n] for n in wanted) + 1):
            h = self.layers[i](h)
            if self.names[i] in wanted:
                out[self.names[i]] = h
        return out


def inflated_bytes(shape: tuple[int, int, int], deepest: str) -> int:
    """Rough float32 bytes the forward + backward of ``Inflated`` keep for a (D, H, W) volume.

    Σ over layers up to ``deepest`` of C_l · D·H·W / 8^pools · 4 bytes, times 2 (the
    activations kept for the backward, and their gradients). Used to refuse, up front
    and with a clear message, a volume that cannot fit.
    """
    vox = shape[0] * shape[1] * shape[2]
    total, channels, pools = 0, 3, 0
    for name in layer_names("vgg16"):
        if name.startswith("conv"):
            channels = (64, 128, 256, 512, 512)[int(name[4]) - 1]
        if name.startswith("pool"):
            pools += 1
        total += channels * vox // (8**pools) * 4
        if name == deepest:
            break
    return 2 * total
