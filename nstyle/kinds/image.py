"""The image adapter: RGB pictures measured by a pretrained VGG (the seed's own setting)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from ..core.engine import initial_signal
from ..core.multiscale import DEFAULT_START
from ..core.tiling import Geometry
from ..errors import NStyleError
from ..modalities.image import SAVE_FORMATS, ImageSignal, load_image, resize_to, save_image, to_pil
from ..nets import build_net
from ..options import IMAGE_CONTENT_LAYER, IMAGE_STYLE_LAYERS, ImageSettings
from ..outputs.atomic import check_writable
from ..steering.colors import finish as finish_colors
from ..steering.colors import prepare as prepare_colors
from ..steering.masks import DEFAULT_FEATHER, load_mask, parse_mask_styles
from ..validators import check_extension, check_tile_stride, layer_weights, parse_blend, parse_tile
from .base import Network, Result, Signals, declared_style_weight, init_source

# J_content is a *sum* over positions, so it grows with the pixel count while J_style
# (Grams divided by M) does not: the default α is therefore 1 at 256 x 256 pixels and
# scaled by 256²/(H·W), which keeps the balance of a default run the same at any size.
CONTENT_WEIGHT_PIXELS = 256 * 256
MIN_SIDE = 16  # the smallest image worth a network pass (pixels on the long side)


class ImageResult(Result):
    """A run's result for a picture: also ``image`` (PIL) and the content's ``alpha`` channel."""

    @property
    def alpha(self) -> torch.Tensor | None:
        return self.meta

    @property
    def image(self) -> Image.Image:
        return to_pil(self.tensor, self.alpha)


class ImageModality:
    """Pictures: C at ``size`` on its long side, S at ``style_scale`` times that (by default at
    that size or its own, whichever is smaller), VGG features."""

    kind: ClassVar[str] = "image"
    settings_type: ClassVar[type[ImageSettings]] = ImageSettings
    result_type: ClassVar[type[Result]] = ImageResult
    coarsest: ClassVar[int] = DEFAULT_START
    memory_hint: ClassVar[str] = "lower --size (or give --tile)"
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    feather: ClassVar[int] = DEFAULT_FEATHER

    def load(self, content: Any, styles: Sequence[Any], settings: ImageSettings, device: torch.device) -> Signals:
        c_sig = load_image(content, size=settings.size)
        h, w = c_sig.tensor.shape[-2:]
        if max(h, w) < MIN_SIDE:
            raise NStyleError(
                f"{c_sig.source}: image is too small ({w}x{h}; at least {MIN_SIDE} pixels on the long side)"
            )
        original = c_sig.tensor.to(device)
        s_sigs = [self.load_style(s, max(h, w), settings.style_scale) for s in styles]
        style_list = [s.tensor.to(device) for s in s_sigs]
        parse_blend(settings.style_blend, len(style_list))
        mask = assign = None
        if settings.mask is not None:
            mask = load_mask(settings.mask, (h, w))
            assign = parse_mask_styles(settings.mask_styles, mask.n_regions, len(style_list))
        # Colour control works on the inputs (and, for keep-luminance, on the result).
        c, s = prepare_colors(settings.colors, original, style_list)
        start = init_source(settings)  # an image file or array, resized to C
        init = None if start is None else resize_to(load_image(start).tensor, (h, w)).to(device)
        return Signals(c, list(s), c_sig.alpha, original, mask, assign, c_sig.source, [x.source for x in s_sigs],
                       init=init)

    @staticmethod
    def load_style(src: Any, content_side: int, style_scale: float | None) -> ImageSignal:
        """A style image with its long side at ``style_scale`` times the content's.

        By default (``style_scale`` None) at the content's size, but never magnified: a
        texture patch smaller than the result keeps its own pixels, so its strokes keep the
        size they were painted at instead of being blurred into a coarser texture (the Gram
        statistics of a patch do not need more pixels than the patch has).
        """
        side = content_side if style_scale is None else round(style_scale * content_side)
        if side < MIN_SIDE:
            raise NStyleError(f"style scale makes the style image {side} px; at least {MIN_SIDE} px are needed")
        sig = load_image(src, size=side, enlarge=style_scale is not None)
        h, w = sig.tensor.shape[-2:]
        if max(h, w) < MIN_SIDE:
            raise NStyleError(
                f"{sig.source}: style image is too small ({w}x{h}; at least {MIN_SIDE} pixels on the long side)"
            )
        return sig

    def network(self, signals: Signals, settings: ImageSettings, device: torch.device) -> Network:
        model = build_net(settings.net, weights=settings.weights, pooling=settings.pooling, device=device)
        content_layer = settings.content_layer or IMAGE_CONTENT_LAYER
        layers = layer_weights(settings.style_layers, IMAGE_STYLE_LAYERS)
        model.check_layers([content_layer, *layers])
        geometry = Geometry(model, [content_layer, *layers])
        tile = check_tile_stride(parse_tile(settings.tile), geometry.stride)
        plain = settings.style_loss == "gram" and len(signals.styles) == 1 and signals.mask is None
        if not plain and tile not in (None, "auto"):
            raise NStyleError("tiling works with the gram style loss, one style image and no mask")
        return Network(model, [content_layer], layers, min_side=geometry.stride, tile=tile if plain else None)

    def style_weight(self, settings: ImageSettings) -> float:
        return declared_style_weight(settings)

    def content_weight(self, network: Network, content: torch.Tensor) -> float:
        """α = 256² / M for a content image with M pixels: 1 at 256 x 256."""
        return CONTENT_WEIGHT_PIXELS / math.prod(content.shape[2:])

    def start(self, content: torch.Tensor, style: torch.Tensor, settings: ImageSettings) -> torch.Tensor:
        """A named start: noise, content or style (an image file is read by ``load``)."""
        return initial_signal(settings.init, content, style, seed=settings.seed)

    def resize(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return resize_to(x, shape)  # antialiased bicubic, kept in [0, 1]

    def finish(self, g: torch.Tensor, signals: Signals, settings: ImageSettings) -> torch.Tensor:
        assert signals.original is not None
        return finish_colors(settings.colors, g.clamp(0, 1), signals.original).clamp(0, 1)

    def save(self, g: torch.Tensor, path: Path, meta: Any) -> Path:
        return save_image(g, path, meta)

    def check_output(self, path: str, content: Any, settings: ImageSettings) -> Path:
        return check_extension(check_writable(path), tuple(SAVE_FORMATS), "image")
