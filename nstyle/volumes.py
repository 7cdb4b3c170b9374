"""3D product on top of the engine: ``stylize_volume`` for CT and MRI volumes.

The volume is a (1, 1, D, H, W) signal in [0, 1] (after a CT window or robust MR
percentiles); the seed's costs and the engine are the image ones. The networks measuring
it are selectable: ``triplanar`` (pretrained 2D VGG over slices along the three axes,
the default), ``inflated`` (the same kernels as true 3D convolutions) or ``random``
(untrained multi-branch 3D convolutions).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .api import _device, check_weight, parse_layer_weights
from .engine import INITS, BestStep, Callback, StepInfo, initial_signal, optimize
from .errors import NStyleError
from .modalities.volume import VolumeSignal, load_mask, load_volume, save_volume
from .nets import build_net
from .nets.random import RandomBranches, parse_branches
from .nets.volume import Inflated, Triplanar, inflated_bytes
from .objective import StyleObjective, Terms

VOLUME_NETS = ("triplanar", "inflated", "random")
# Volumes are small next to photos (a 128³ MR has 128 px a side): blocks 1-3 of VGG
# already span most of a slice, so style is taken from relu1_1, relu2_1, relu3_1 and
# content from relu3_1.
DEFAULT_STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
DEFAULT_CONTENT_LAYER = "relu3_1"
DEFAULT_RANDOM_BRANCHES = "3:64,3x2:64,3x4:64"
# α defaults to 1 / (elements of the content layers), as for 1D signals; β was calibrated
# with it on nibabel's anatomical.nii in the style of example4d.nii.gz (README, Volumes):
# with the VGG nets β = 10 or 1000 wiped out the anatomy, 0.1 keeps it; the random net's
# Grams are smaller, and β = 10 takes its style (Gram distance 0.01 of C's) while keeping
# content as well as the VGG nets do.
DEFAULT_STYLE_WEIGHTS = {"triplanar": 0.1, "inflated": 0.1, "random": 10.0}
# Triplanar: at most this many random slices per axis and evaluation (all of them below).
DEFAULT_SLICES = 32


@dataclass
class VolumeResult(BestStep):
    tensor: torch.Tensor  # (1, 1, D, H, W) in [0, 1]
    history: list[StepInfo]
    best_step: int
    interrupted: bool
    like: VolumeSignal
    options: dict[str, Any] = field(default_factory=dict)
    keep: torch.Tensor | None = None  # the mask: 1 where G was restyled

    def save(self, path: str | Path) -> Path:
        """Write G with the content's geometry (affine, header, dtype) and intensity range;
        outside the mask, the content's own values (not clipped to the window)."""
        return save_volume(self.tensor, path, like=self.like, keep=self.keep)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _network(kind: str, shape: tuple[int, int, int], layers: list[str], slices: int | None, branches: str,
             net_seed: int, pooling: str, dev: torch.device):
    if kind == "random":
        return RandomBranches(1, parse_branches(branches), dims=3, seed=net_seed).to(dev)
    vgg = build_net("vgg16", pooling=pooling, device=dev)
    if kind == "triplanar":
        most = max(shape)
        return Triplanar(vgg, slices_per_axis=None if slices is None or slices >= most else slices, seed=net_seed)
    deepest = max(layers, key=lambda n: vgg.index[n])
    need, have = inflated_bytes(shape, deepest), _available_bytes()
    if need > 0.7 * have:
        raise NStyleError(
            f"the inflated net needs about {need / 2**30:.1f} GiB for a {shape} volume up to {deepest}, "
            f"{have / 2**30:.1f} GiB are free; use --net triplanar (it works in slices) or shallower layers"
        )
    return Inflated(vgg).to(dev)


def stylize_volume(
    content: str | Path,
    style: str | Path,
    *,
    net: str = "triplanar",
    index: int | None = None,
    style_index: int | None = None,
    window: tuple[float, float] | None = None,
    mask: str | Path | None = None,
    steps: int = 200,
    content_weight: float | None = None,
    style_weight: float | None = None,
    content_layer: str | None = None,
    style_layers: str | Mapping[str, float] | None = None,
    slices: int | None = DEFAULT_SLICES,
    branches: str = DEFAULT_RANDOM_BRANCHES,
    net_seed: int = 0,
    pooling: str = "max",
    init: str = "content",
    optimizer: str | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
) -> VolumeResult:
    """Re-render the volume ``content`` in the style of ``style``, keeping C's geometry.

    ``window`` maps CT Hounsfield units (lo, hi) to [0, 1]; without it each volume is
    mapped by its 1st-99th percentiles (MR). ``mask`` (same shape as C): only voxels
    where it is non-zero are restyled; elsewhere G stays C. ``optimizer`` None picks
    L-BFGS when every evaluation sees the whole volume and Adam (lr 0.02) when the
    triplanar net samples slices (a stochastic objective, which L-BFGS mishandles).
    """
    if net not in VOLUME_NETS:
        raise NStyleError(f"unknown volume net {net!r}; choose {', '.join(VOLUME_NETS)}")
    if init not in INITS:
        raise NStyleError(f"unknown init {init!r}; choose {', '.join(INITS)}")
    options = {k: v for k, v in locals().items() if k not in ("content", "style", "callback")}
    beta = check_weight("style weight", DEFAULT_STYLE_WEIGHTS[net] if style_weight is None else style_weight)
    dev = _device(device)
    c_sig = load_volume(content, index=index, window=window, keep_raw=mask is not None)
    s_sig = load_volume(style, index=style_index, window=window)
    keep = load_mask(mask, like=c_sig).to(dev) if mask is not None else None
    c, s = c_sig.tensor.to(dev), s_sig.tensor.to(dev)
    shape = tuple(c.shape[2:])

    if net == "random":
        probe = RandomBranches(1, parse_branches(branches), dims=3, seed=net_seed)
        layers = parse_layer_weights(style_layers) if style_layers else dict.fromkeys(probe.default_layers(), 1.0)
        content_layer = content_layer or probe.default_layers()[0]
    else:
        layers = parse_layer_weights(style_layers or DEFAULT_STYLE_LAYERS)
        content_layer = content_layer or DEFAULT_CONTENT_LAYER
    model = _network(net, shape, [content_layer, *layers], slices, branches, net_seed, pooling, dev)
    for sig, x in ((c_sig, c), (s_sig, s)):
        small = min(x.shape[2:])
        if net != "random" and small < 8:
            raise NStyleError(f"{sig.source}: a {tuple(x.shape[2:])} volume is too thin for VGG (8 voxels a side at least)")
        if net == "random" and small < model.max_span:
            raise NStyleError(f"{sig.source}: {tuple(x.shape[2:])} is smaller than the widest branch ({model.max_span})")
    if net == "triplanar":
        expand = Triplanar.expand_layers
        lam = {name: w for layer, w in layers.items() for name in expand([layer])}
        content_layers = expand([content_layer])
    else:
        lam, content_layers = layers, [content_layer]
    model.check_layers([*lam, *content_layers])

    if content_weight is None:
        with torch.no_grad():
            if net == "triplanar":
                model.use_all_slices()
            alpha = 1.0 / sum(model(c, [n])[n].numel() for n in content_layers)
    else:
        alpha = check_weight("content weight", content_weight)
    options["content_weight"] = alpha
    objective_ = StyleObjective(model, c, s, content_layers, lam, alpha, beta)

    def objective(g: torch.Tensor) -> Terms:
        # Outside the mask, G is the content: only the masked voxels are optimised.
        return objective_(keep * g + (1 - keep) * c if keep is not None else g)

    sampled = net == "triplanar" and model.slices_per_axis is not None
    optimizer = optimizer or ("adam" if sampled else "lbfgs")
    options["optimizer"] = optimizer
    g0 = initial_signal(init, c, s, seed=seed)
    run = optimize(objective, g0, steps, optimizer=optimizer, lr=lr, callback=callback)
    g = run.g.detach()
    if keep is not None:
        g = keep * g + (1 - keep) * c
    return VolumeResult(
        g.clamp(0, 1).cpu(), run.history, run.best_step, run.interrupted, c_sig, options,
        keep.cpu() if keep is not None else None,
    )
