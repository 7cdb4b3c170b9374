"""stylize(): the image product on top of the engine, usable from Python in one call."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .colors import check_color_mode
from .colors import finish as finish_colors
from .colors import prepare as prepare_colors
from .engine import (
    INITS,
    BestStep,
    Callback,
    RunResult,
    StepInfo,
    initial_signal,
    optimize,
)
from .errors import NStyleError
from .masks import composite, load_mask, parse_mask_styles, region_weights
from .modalities.image import (
    ImageLike,
    load_image,
    resize_long_side,
    resize_to,
    save_image,
    to_pil,
)
from .multiscale import ScaleSpec, parse_scales, resize
from .nets import build_net
from .objective import StyleObjective
from .precision import check_precision
from .style_losses import DEFAULT_STYLE_LOSS, get_style_loss
from .tiling import (
    DEFAULT_TILE,
    Geometry,
    TiledObjective,
    available_bytes,
    needs_tiling,
    tiled_eval_bytes,
)

# The classic choice (Gatys et al. 2016): content from relu4_2 — deep enough that its
# activations keep the layout but not the exact pixels — and style from the first ReLU
# of each of the five blocks, so textures from a few pixels up to about a quarter of the
# image are matched; equal λ, as in the paper.
DEFAULT_CONTENT_LAYER = "relu4_2"
DEFAULT_STYLE_LAYERS: dict[str, float] = {f"relu{b}_1": 1.0 for b in range(1, 6)}
# Calibrated on the activation-normalised bundled VGG16 (README, "Defaults"; the sweep
# is benchmarks/calibrate.py). J_content is a *sum* over positions, so it grows with the
# pixel count while J_style (Grams divided by M) does not: the default α is therefore
# 1 at 256 x 256 pixels and scaled by 256²/(H·W), which keeps the balance of a default
# run the same at any --size. An explicit α is used as given.
CONTENT_WEIGHT_PIXELS = 256 * 256
DEFAULT_STYLE_WEIGHT = 5e6
DEFAULT_SIZE = 512
DEFAULT_STEPS = 200
DEFAULT_INIT = "content"
DEFAULT_SCALES = "auto"  # coarse-to-fine from 128 px in steps of √2 (nstyle.multiscale)
# Steps at each coarse scale: enough for the large structures to settle (at 384 px, 50
# coarse + 150 final steps gave J within 3% of 200 single-scale steps in 9% less time,
# with visibly larger-scale texture); everything finer is redone at the next scale anyway.
DEFAULT_SCALE_STEPS = 50
# One whole-image evaluation needs about 2.5 kB per pixel (2.5 GiB at 1024 px, 40 GiB at
# 4096 px); above what fits, J is evaluated in tiles (nstyle.tiling), whose memory is
# one tile's plus ~56 bytes per pixel. 4096 px is the largest size tested on a 24 GiB
# machine (benchmarks/bench_speed.py --sections memory).
MAX_SIZE = 4096


@dataclass
class StylizeResult(BestStep):
    """What ``stylize`` returns: the image, the tensor it came from, and the run's record."""

    tensor: torch.Tensor  # (1, 3, H, W) RGB in [0, 1], the best G found
    history: list[StepInfo]
    best_step: int
    interrupted: bool
    alpha: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return to_pil(self.tensor, self.alpha)

    def save(self, path: str | Path) -> Path:
        """Write the image atomically (format from the extension)."""
        return save_image(self.tensor, path, self.alpha)


def parse_layer_weights(spec: str | Mapping[str, float]) -> dict[str, float]:
    """``"relu1_1:1,relu2_1:0.5"`` (or a mapping) to {layer: λ}; a bare name means λ = 1."""
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        items = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition(":")
            try:
                items.append((name.strip(), float(value) if value else 1.0))
            except ValueError:
                raise NStyleError(f"style layer weight {value!r} for {name} is not a number") from None
    if not items:
        raise NStyleError("no style layers given")
    for name, lam in items:
        check_weight(f"style layer weight for {name}", lam)
    return {name: float(lam) for name, lam in items}


def check_weight(what: str, value: float) -> float:
    """Weights must be finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NStyleError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise NStyleError(f"{what} must be a finite number >= 0, got {value}")
    return v


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    size: int | None = DEFAULT_SIZE,
    steps: int = DEFAULT_STEPS,
    content_weight: float | None = None,
    style_weight: float = DEFAULT_STYLE_WEIGHT,
    content_layer: str = DEFAULT_CONTENT_LAYER,
    style_layers: str | Mapping[str, float] | None = None,
    tv_weight: float = 0.0,
    init: str | ImageLike = DEFAULT_INIT,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    net: str = "vgg16",
    weights: str | Path | None = None,
    pooling: str = "max",
    device: str = "cpu",
    scales: ScaleSpec = DEFAULT_SCALES,
    scale_steps: int | None = None,
    precision: str = "fp32",
    tile: int | str | None = "auto",
    style_blend: str | Sequence[float] | None = None,
    style_scale: float = 1.0,
    colors: str | None = None,
    style_loss: str = DEFAULT_STYLE_LOSS,
    mask: ImageLike | None = None,
    mask_styles: str | Sequence[int | None] | None = None,
    callback: Callback | None = None,
) -> StylizeResult:
    """Re-render ``content`` in the style of ``style`` by minimising α·J_content + β·J_style.

    ``content``/``style``/``init`` accept paths, PIL images, NumPy arrays (H, W[, C]) and
    tensors (C, H, W). ``size`` is the output's long side in pixels (None keeps the
    content's size); the style image is resized to the same long side. ``init`` is
    ``noise`` (the seed's random start), ``content``, ``style`` or an image.
    ``content_weight`` None means α = 256²/(H·W) (see ``CONTENT_WEIGHT_PIXELS``).

    Coarse-to-fine (``scales``, see ``nstyle.multiscale``): G is optimised at each long
    side of the schedule in turn, ``scale_steps`` steps at every coarse scale (default
    ``min(steps, DEFAULT_SCALE_STEPS)``) and ``steps`` at the output size, and upsampled between scales; C and S are
    resized to each scale and J is the same objective at every scale (α follows the pixel
    count). ``precision`` is ``fp32``, ``bf16`` or (CUDA) ``fp16`` for the network; Grams and
    losses stay float32. ``tile``: side of the tiles J is evaluated in (``nstyle.tiling``),
    ``"auto"`` to tile only where one evaluation would not fit in memory, None never.

    Steering: ``style`` may be several images, blended by ``style_blend`` weights (the
    target statistics are Σ_i w_i·stats(S_i)); ``style_scale`` sizes S's long side
    relative to G's (2 = larger, coarser texture); ``colors`` keeps the content's colours
    (``keep-luminance``: transfer on luminance, C's chrominance put back;
    ``match-histogram``: S recoloured to C's colour mean and covariance first);
    ``style_loss`` picks the statistics compared (``gram``: the seed's; ``mean-std``,
    ``wasserstein``, ``sliced``: see ``nstyle.style_losses``); ``mask`` is a label image
    whose regions (sorted by value) get the styles ``mask_styles`` names (1-based list
    like ``"1,2,-"``, ``-`` = untouched; see ``nstyle.masks.parse_mask_styles``).
    """
    options = {k: v for k, v in locals().items() if k not in ("content", "style", "callback", "init")}
    options["init"] = init if isinstance(init, (str, Path)) else f"<{type(init).__name__}>"
    alpha = None if content_weight is None else check_weight("content weight", content_weight)
    beta = check_weight("style weight", style_weight)
    tv = check_weight("tv weight", tv_weight)
    layers = parse_layer_weights(style_layers if style_layers is not None else DEFAULT_STYLE_LAYERS)
    if size is not None and not 16 <= int(size) <= MAX_SIZE:
        raise NStyleError(f"size {size} is out of range (16 to {MAX_SIZE} pixels on the long side)")
    if steps < 0 or (scale_steps is not None and scale_steps < 0):
        raise NStyleError(f"steps must be >= 0, got {min(steps, scale_steps or 0)}")
    dev = _device(device)
    check_precision(precision, dev)
    # Inputs first: a missing file should fail at once, not after the network loads.
    c_sig = load_image(content, size=size)
    if max(c_sig.tensor.shape[-2:]) < 16:
        h, w = c_sig.tensor.shape[-2:]
        raise NStyleError(f"{c_sig.source}: image is too small ({w}x{h}; at least 16 pixels on the long side)")
    c_orig = c_sig.tensor.to(dev)
    style_list = list(style) if isinstance(style, (list, tuple)) else [style]
    if not style_list:
        raise NStyleError("no style image given")
    scale_k = _check_style_scale(style_scale)
    long = max(c_orig.shape[-2:])
    s_full = [_load_style(s, round(scale_k * long)).to(dev) for s in style_list]
    blend = _style_blend(style_blend, len(style_list))
    check_color_mode(colors)
    get_style_loss(style_loss)
    region_mask = load_mask(mask, tuple(c_orig.shape[-2:])) if mask is not None else None
    assign = (
        parse_mask_styles(mask_styles, region_mask.n_regions, len(style_list)) if region_mask is not None else None
    )
    if region_mask is None and mask_styles is not None:
        raise NStyleError("mask styles given without a mask")
    if region_mask is not None and style_blend is not None:
        raise NStyleError("style blend and mask exclude each other: a mask gives each region one style")
    # Colour control works on the inputs (and, for keep-luminance, on the result).
    c_full, s_full = prepare_colors(colors, c_orig, s_full)
    plan = scale_plan(long, scales, steps, scale_steps)
    model = build_net(net, weights=weights, pooling=pooling, device=dev)
    model.check_layers([content_layer, *layers])
    tile = _check_tile(tile, model, [content_layer, *layers])
    geometry = Geometry(model, [content_layer, *layers])
    _check_scales_fit(plan, c_full, s_full, scale_k, geometry)
    simple = style_loss == "gram" and len(s_full) == 1 and region_mask is None
    if not simple and tile not in (None, "auto"):
        raise NStyleError("tiling works with the gram style loss, one style image and no mask")
    tile = tile if simple else None

    # A noise start has no detail worth keeping: each scale starts from the upsampled G alone.
    detail = not (isinstance(init, str) and init == "noise")
    runs: list[RunResult] = []
    history: list[StepInfo] = []
    g: torch.Tensor | None = None
    offset = 0
    for index, (side, n_steps) in enumerate(plan):
        c = resize_long_side(c_full, side) if side != long else c_full
        s = [resize_long_side(x, max(16, round(scale_k * side))) if side != long else x for x in s_full]
        if g is None:
            g0 = _start(init, c, s[0], seed)
        else:  # a noise start has no detail band to add: skip drawing new noise
            g0 = _upscale(g, tuple(c.shape[2:]), _start(init, c, s[0], seed) if detail else None)
        a = default_content_weight(c) if alpha is None else alpha
        regions = None
        if region_mask is not None:
            w = region_weights(region_mask, tuple(c.shape[2:]), device=dev)
            regions = [(w[r : r + 1], k) for r, k in enumerate(assign) if k is not None]
        objective = _objective(
            model, c, s, content_layer, layers, a, beta, tv, precision, tile, geometry.stride,
            style_blend=blend, style_loss=style_loss, regions=regions,
        )
        state = runs[-1].opt_state if runs else None
        if state is not None:  # Adam's moments, carried to the new grid (linear: keeps them >= 0)
            state = {k: resize(v, c.shape[2:], smooth=False) if v.dim() > 1 else v for k, v in state.items()}
        run = optimize(
            objective, g0, n_steps, optimizer=optimizer, lr=lr, callback=callback,
            opt_state=state, step_offset=offset, scale=index,
        )
        runs.append(run)
        history += run.history
        g = run.g
        offset += n_steps + 1  # each scale also measures J after its last step
        if run.interrupted or run.diverged:
            break
    options["content_weight"] = default_content_weight(c_full) if alpha is None else alpha
    last = runs[-1]
    final = resize(last.g, c_full.shape[2:]) if last.g.shape != c_full.shape else last.g
    final = finish_colors(colors, final.clamp(0, 1), c_orig)
    if region_mask is not None:  # untouched regions keep the content's own pixels
        final = composite(final, c_orig, region_mask, [k is None for k in assign])
    return StylizeResult(
        tensor=final.clamp(0, 1).cpu(),
        history=history,
        best_step=last.best_step,
        interrupted=last.interrupted,
        alpha=c_sig.alpha,
        options=options,
    )


def _check_scales_fit(plan, c: torch.Tensor, styles: list[torch.Tensor], scale_k: float, geometry: Geometry) -> None:
    """Every scale's C and S must keep at least one position at the deepest layer used."""
    for side, _ in plan:
        for what, x, k in [("content", c, 1.0)] + [("style", s, scale_k) for s in styles]:
            short = min(x.shape[2:]) * max(16, round(k * side)) / max(x.shape[2:])
            if short < geometry.stride:
                raise NStyleError(
                    f"the {what} image is too small at the {side} px scale ({short:.0f} px on its short side; "
                    f"{geometry.deepest} needs at least {geometry.stride}): raise --size or the first of --scales"
                )


def _check_style_scale(value: float) -> float:
    """The style image's long side relative to G's: (0, 4]."""
    v = check_weight("style scale", value)
    if not 0 < v <= 4:
        raise NStyleError(f"style scale must be in (0, 4], got {value}")
    return v


def _load_style(src: ImageLike, side: int) -> torch.Tensor:
    if side < 16:
        raise NStyleError(f"style scale makes the style image {side} px; at least 16 px are needed")
    return load_image(src, size=side).tensor


def _style_blend(spec: str | Sequence[float] | None, count: int) -> list[float] | None:
    """Blend weights, one per style image (None: equal weights)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            values = [float(v) for v in spec.split(",") if v.strip()]
        except ValueError:
            raise NStyleError(f"style blend {spec!r}: give one number per style image, e.g. 0.7,0.3") from None
    else:
        values = [float(v) for v in spec]
    if len(values) != count:
        raise NStyleError(f"style blend has {len(values)} weight(s) for {count} style image(s)")
    for v in values:
        check_weight("style blend weight", v)
    if sum(values) <= 0:
        raise NStyleError("style blend weights must not all be 0")
    return values


def _upscale(g: torch.Tensor, shape: tuple[int, ...], start: torch.Tensor | None) -> torch.Tensor:
    """G from the previous scale on this scale's grid ``shape``, plus (if given) the band of
    ``start`` (this scale's initial signal) that the coarser grid could not hold.

    Upsampling alone gives a blurred G whose finest layers (relu1_1, relu2_1) are far from
    both C and S; adding back start − up(down(start)) — the content's fine detail for a
    content start — begins each scale where a single-scale run would begin at that band.
    """
    up = resize(g, shape)
    if start is not None:
        up = up + start - resize(resize(start, g.shape[2:]), shape)
    return up.clamp(0, 1)


def scale_plan(
    long_side: int, scales: ScaleSpec = DEFAULT_SCALES, steps: int = DEFAULT_STEPS, scale_steps: int | None = None
) -> list[tuple[int, int]]:
    """(long side, steps) of each scale of a run whose output has ``long_side`` pixels."""
    sides = parse_scales(scales, long_side)
    coarse = min(steps, DEFAULT_SCALE_STEPS) if scale_steps is None else scale_steps
    return [(side, coarse) for side in sides[:-1]] + [(sides[-1], steps)]


def _objective(
    model, c: torch.Tensor, styles: list[torch.Tensor], content_layer: str, layers: dict[str, float], alpha: float,
    beta: float, tv: float, precision: str, tile: int | str | None, stride: int, **steering: Any,
) -> StyleObjective | TiledObjective:
    """The objective at one scale: whole-image, or tiled where the image is large.

    ``steering`` (style_blend, style_loss, regions) goes to ``StyleObjective``; the caller
    passes ``tile=None`` where it asks for more than the Gram loss of one style image,
    which is all ``TiledObjective`` computes.

    ``tile="auto"`` tiles only where one whole-image evaluation of C or S would need more
    than half the memory available now, in the largest tiles that fit (``auto_tile``); an
    explicit side tiles whenever the image is larger than one tile. Both give the same J
    and dJ/dG (``nstyle.tiling``); tiling only costs time (a second forward per tile, and
    the margins), so fewer, larger tiles are faster.
    """
    shape = tuple(max(a, *(s.shape[2 + i] for s in styles)) for i, a in enumerate(c.shape[2:]))
    if tile == "auto":
        side = auto_tile(shape, c.device, precision, stride)
    else:
        side = tile if tile is not None and max(shape) > tile else None
    if side is None:
        return StyleObjective(model, c, styles, content_layer, layers, alpha, beta, tv, precision=precision, **steering)
    return TiledObjective(
        model, c, styles[0], content_layer, layers, alpha, beta, tv, precision=precision, tile=side
    )


def auto_tile(shape: tuple[int, ...], device: torch.device, precision: str, stride: int = 16) -> int | None:
    """None where one whole-image evaluation fits in half the available memory; otherwise the
    largest tile side (a multiple of ``stride``, at least ``DEFAULT_TILE``) whose tiled
    evaluation does."""
    if not needs_tiling(shape, device, precision):
        return None
    # 0.4, not 0.5: the estimate is for the net's work alone; G, S, the L-BFGS history
    # (up to 4 GiB) and the full-size content target live beside it.
    budget = 0.4 * available_bytes(device)
    side = max(DEFAULT_TILE, max(shape) // stride * stride)
    while side > DEFAULT_TILE and tiled_eval_bytes(shape, precision, tile=side) > budget:
        side -= stride
    return side


def _check_tile(tile: int | str | None, model, layers: list[str]) -> int | str | None:
    """``auto``, None, or a positive multiple of the network's stride at its deepest used layer."""
    if tile is None or tile == "auto":
        return tile
    stride = Geometry(model, layers).stride
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0 or tile % stride:
        raise NStyleError(
            f"tile {tile!r} must be auto, None or a positive multiple of {stride} pixels (the network's stride)"
        )
    return tile


def _start(init: str | ImageLike, c: torch.Tensor, s: torch.Tensor, seed: int) -> torch.Tensor:
    """The initial G: a named start (noise, content, style) or an image resized to C."""
    if isinstance(init, str) and init in INITS:
        return initial_signal(init, c, s, seed=seed)
    if isinstance(init, str) and not Path(init).exists() and "/" not in init and "." not in init:
        raise NStyleError(f"unknown init {init!r}; choose {', '.join(INITS)} or an image file")
    return resize_to(load_image(init).tensor, c.shape[-2:]).to(c.device)


def default_content_weight(content: torch.Tensor) -> float:
    """α = 256² / M for a content signal with M pixels: 1 at 256 x 256."""
    return CONTENT_WEIGHT_PIXELS / math.prod(content.shape[2:])


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise NStyleError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NStyleError("device cuda asked for, but torch sees no CUDA GPU")
    return dev
