"""The volume adapter: CT and MR volumes as (1, 1, D, H, W) signals in [0, 1].

Intensities are mapped to [0, 1] by a CT window or robust MR percentiles
(``nstyle.modalities.volume``). The networks measuring them are selectable:
``triplanar`` (pretrained 2D VGG over slices along the three axes, the default),
``inflated`` (the same kernels as true 3D convolutions) or ``random`` (untrained
multi-branch 3D convolutions). A mask volume restyles only its non-zero voxels; the
result keeps the content's own values (unclipped) everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..core.engine import initial_signal
from ..core.multiscale import shrink
from ..core.tiling import available_bytes
from ..errors import NStyleError
from ..modalities.volume import VolumeSignal, check_output, load_mask, load_volume, save_volume
from ..nets import build_net
from ..nets.random import RandomBranches, parse_branches
from ..nets.volume import Inflated, Triplanar, inflated_bytes
from ..options import VOLUME_STYLE_WEIGHTS, VolumeSettings
from ..outputs.atomic import check_writable
from ..steering.masks import RegionMask, parse_mask_styles
from ..validators import layer_weights, parse_blend, parse_window
from .base import Network, Result, Signals, init_source, per_element_alpha

# Volumes are small next to photos (a 128³ MR has 128 px a side): blocks 1-3 of VGG
# already span most of a slice, so style is taken from relu1_1, relu2_1, relu3_1 and
# content from relu3_1.
VGG_STYLE_LAYERS = "relu1_1:1,relu2_1:1,relu3_1:1"
VGG_CONTENT_LAYER = "relu3_1"
VGG_MIN_SIDE = 8  # voxels a side VGG needs (relu3_1 has stride 4: a 2 x 2 grid at least)
# Coarse-to-fine over all axes starts at 32 voxels on the long side: relu3_1 still has
# an 8-position grid along it.
COARSEST_VOXELS = 32


@dataclass
class VolumeMeta:
    """The content volume as read (geometry, header, raw values) and the restyled voxels."""

    like: VolumeSignal
    keep: torch.Tensor | None  # (1, 1, D, H, W): 1 where G was restyled, None without a mask


class VolumeResult(Result):
    """A run's result for a volume: also the content it was made ``like`` and the mask ``keep``."""

    @property
    def like(self) -> VolumeSignal:
        return self.meta.like

    @property
    def keep(self) -> torch.Tensor | None:
        return self.meta.keep


def volume_vgg(
    net: str, shape: tuple[int, ...], layers: list[str], pooling: str, slices: int | None, seed: int,
    device: torch.device,
) -> Triplanar | Inflated:
    """The bundled VGG16 for a volume of ``shape``: over ``slices`` random slices per axis
    (``triplanar``; all of them when None or more than the volume has), or inflated to 3D
    after checking that its activations up to the deepest of ``layers`` fit in memory."""
    vgg = build_net("vgg16", pooling=pooling, device=device)
    if net == "triplanar":
        return Triplanar(vgg, slices_per_axis=None if slices is None or slices >= max(shape) else slices, seed=seed)
    deepest = max(layers, key=lambda n: vgg.index[n])
    need, have = inflated_bytes(shape, deepest), available_bytes(device)
    if need > 0.7 * have:
        raise NStyleError(
            f"the inflated net needs about {need / 2**30:.1f} GiB for a {shape} volume up to {deepest}, "
            f"{have / 2**30:.1f} GiB are free; use --net triplanar (it works in slices) or shallower layers"
        )
    return Inflated(vgg).to(device)


class VolumeModality:
    """CT/MR volumes: NIfTI, DICOM series, .npy."""

    kind: ClassVar[str] = "volume"
    settings_type: ClassVar[type[VolumeSettings]] = VolumeSettings
    result_type: ClassVar[type[Result]] = VolumeResult
    coarsest: ClassVar[int] = COARSEST_VOXELS
    memory_hint: ClassVar[str] = "use --net random, fewer --slices or a smaller volume"
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    feather: ClassVar[int] = 0  # a hard edge: the mask says exactly which voxels may change

    def load(self, content: Any, styles: Sequence[Any], settings: VolumeSettings, device: torch.device) -> Signals:
        window = parse_window(settings.window)
        c_sig = load_volume(content, index=settings.index, window=window, keep_raw=settings.mask is not None)
        s_sigs = [load_volume(s, index=settings.style_index, window=window) for s in styles]
        parse_blend(settings.style_blend, len(styles))
        mask = assign = keep = None
        if settings.mask is not None:
            keep = load_mask(settings.mask, like=c_sig)
            mask = RegionMask.binary(keep[0, 0] > 0.5, str(settings.mask))
            assign = parse_mask_styles(settings.mask_styles, mask.n_regions, len(styles))
        c = c_sig.tensor.to(device)
        init = None
        if (start := init_source(settings)) is not None:  # e.g. an earlier result, windowed as C is
            i = load_volume(start, window=(c_sig.low, c_sig.high)).tensor
            if i.shape != c.shape:
                i = torch.nn.functional.interpolate(i, size=tuple(c.shape[2:]), mode="trilinear", align_corners=False)
            init = i.to(device)
        return Signals(
            c, [s.tensor.to(device) for s in s_sigs], VolumeMeta(c_sig, keep), None, mask, assign, c_sig.source,
            [s.source for s in s_sigs], init=init,
        )

    def network(self, signals: Signals, settings: VolumeSettings, device: torch.device) -> Network:
        shape = tuple(signals.content.shape[2:])
        if settings.net == "random":
            net = RandomBranches(1, parse_branches(settings.branches), dims=3, seed=settings.net_seed).to(device)
            content_layers = [settings.content_layer or net.default_layers()[0]]
            layers = layer_weights(settings.style_layers, net.default_layers())
            min_side, what = net.max_span, f"smaller than the widest branch ({net.max_span})"
            model: Any = net
        else:
            content_layers = [settings.content_layer or VGG_CONTENT_LAYER]
            layers = layer_weights(settings.style_layers, VGG_STYLE_LAYERS)
            slices = settings.slices
            model = volume_vgg(
                settings.net, shape, [*content_layers, *layers], settings.pooling, slices, settings.net_seed, device
            )
            min_side, what = VGG_MIN_SIDE, f"too thin for VGG ({VGG_MIN_SIDE} voxels a side at least)"
            if settings.net == "triplanar":  # each layer read along the three axes
                layers = {name: w for layer, w in layers.items() for name in Triplanar.expand_layers([layer])}
                content_layers = Triplanar.expand_layers(content_layers)
        for source, x in signals.named():
            if min(x.shape[2:]) < min_side:
                raise NStyleError(f"{source}: a {tuple(x.shape[2:])} volume is {what}")
        model.check_layers([*layers, *content_layers])
        return Network(model, content_layers, layers, min_side=min_side)

    def style_weight(self, settings: VolumeSettings) -> float:
        if settings.style_weight is not None:
            return float(settings.style_weight)
        return VOLUME_STYLE_WEIGHTS[settings.balance][settings.net]

    def content_weight(self, network: Network, content: torch.Tensor) -> float:
        return per_element_alpha(network, content)

    def start(self, content: torch.Tensor, style: torch.Tensor, settings: VolumeSettings) -> torch.Tensor:
        return initial_signal(settings.init, content, style, seed=settings.seed)

    def resize(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return shrink(x, shape)

    def finish(self, g: torch.Tensor, signals: Signals, settings: VolumeSettings) -> torch.Tensor:
        return g.clamp(0, 1)

    def save(self, g: torch.Tensor, path: Path, meta: VolumeMeta) -> Path:
        """G with the content's geometry (affine, header, dtype) and intensity range; outside
        the mask, the content's own values (not clipped to the window)."""
        return save_volume(g, path, like=meta.like, keep=meta.keep)

    def check_output(self, path: str, content: Any, settings: VolumeSettings) -> Path:
        """An unknown extension, or a DICOM output (a .dcm file, a folder) the content cannot be
        written as; a file's or a slice folder's parent must be writable."""
        output = Path(path)
        kind = check_output(path)
        check_writable(output.with_name(output.name + ".dcm") if kind == "folder" else output)
        if kind in ("dicom", "folder"):
            window = parse_window(settings.window)
            check_output(path, load_volume(content, index=settings.index, window=window))
        return output
