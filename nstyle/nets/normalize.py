"""Activation normalisation: every ReLU layer's mean output rescaled to 1.

Why: the raw bundled VGG16 answers a photo with rms about 35 at relu1_1 and about 5 at
relu5_1, and the seed's Gram cost grows with the fourth power of activation size, so the
deep layers barely count and a run from noise never gathers large structure (a grey
wash). Gatys et al. (2016) rescaled each *filter* to mean activation 1 over images and
positions. On these HED-fine-tuned weights that per-filter rule misbehaves: many filters
are nearly silent on the calibration photos (about 10 % of conv5_1's have mean < 1e-3 of
the median), get multiplied by thousands, and explode on other images (relu5_1 rms 99 on
The Starry Night against 5 for the astronaut). Scaling each *layer* by one number, so
that the mean over its filters, the images and the positions is 1, keeps the network's
own balance between filters and gives every layer mean ≈ 1 on unseen images too
(measured on Starry Night: 1.55, 1.32, 1.26, 1.13, 1.08 at relu1_1 ... relu5_1).

ReLU and both kinds of pooling commute with positive scaling, so this changes only the
scale of each feature map, never which features the net sees; the seed's costs stay
exact on the rescaled net.
"""

from __future__ import annotations

import torch
from torch import nn

from .vgg import VGG


@torch.no_grad()
def normalize_activations(net: VGG, images: list[torch.Tensor]) -> dict[str, float]:
    """Rescale ``net``'s convolutions in place so each ReLU layer's mean output on ``images`` is 1.

    ``images`` are RGB tensors (1, 3, H, W) in [0, 1], of any sizes. One pass over the
    original net: with m_l the mean of relu_l, layer l's output becomes a_l / m_l by
    multiplying conv l's weights by m_(l-1) / m_l (its input is already divided by
    m_(l-1)) and its bias by 1 / m_l. Returns m_l per convolution name.
    """
    hs = [net.preprocess(x) for x in images]
    means: dict[str, float] = {}
    prev = 1.0
    for name, layer in zip(net.names, net.layers):
        hs = [layer(h) for h in hs]  # the original net's activations
        if name.startswith("relu"):
            mean = sum(float(h.sum()) for h in hs) / sum(h.numel() for h in hs)
            mean = mean if mean > 0 else 1.0
            conv = net.layers[net.index["conv" + name[4:]]]
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None  # every relu follows a conv with a bias
            conv.weight.mul_(prev / mean)
            conv.bias.mul_(1.0 / mean)
            means["conv" + name[4:]] = prev = mean
    return means
