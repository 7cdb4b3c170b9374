"""`nstyle explain`: what each layer of the network keeps of one image (Gatys et al. 2016, Fig. 1).

Three kinds of panel, all of the same image C:

* content reconstructions: from uniform noise, minimise ½‖a_l(C) − a_l(G)‖² for one layer
  l alone (conv1_2 … conv5_2). Shallow layers give the pixels back almost exactly; deep
  ones keep the layout and lose the pixels.
* style reconstructions: from the same noise, minimise Σ_l λ_l ‖Ĝ_l(C) − Ĝ_l(G)‖²_F
  (Ĝ = G/(2·M·n_C), ``objective.scaled_gram``) over relu1_1, then relu1_1 + relu2_1, …
  up to relu5_1: textures of C whose patches grow with each layer added.
* activation maps: for each style layer, the ``channels`` channels of a_l(C) with the
  largest mean activation, as heat maps.

Every reconstruction is an ordinary ``engine.optimize`` run (L-BFGS) of a
``StyleObjective``: content C and β = 0 for a content panel, no content for a style one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .api import _device
from .atomic import check_writable
from .engine import initial_signal, optimize
from .errors import NStyleError
from .modalities.image import ImageLike, load_image
from .nets import build_net
from .objective import StyleObjective, layer_style_cost_from_grams, scaled_gram
from .plots import PLOT_EXTENSIONS, _save

CONTENT_LAYERS = tuple(f"conv{b}_2" for b in range(1, 6))
STYLE_LAYERS = tuple(f"relu{b}_1" for b in range(1, 6))
# Measured on the astronaut, one torch thread on a 2-core machine shared with other jobs:
# the 10 panels take 3.0 min at 128 px with 200 steps each (4.5 min with 300). From 200 to
# 300 steps the errors still fall (conv1_2 0.0033 -> 0.0020, relu1_1…relu5_1 0.092 ->
# 0.073) but the pictures hardly change. 128 px is the smallest size at which conv5_2
# still has an 8 x 8 grid; each doubling of the size costs 4x the time.
DEFAULT_SIZE = 128
DEFAULT_STEPS = 200
DEFAULT_CHANNELS = 4
# Average pooling, as in the paper's figures ("improves the gradient flow"). Measured at
# 128 px and 200 steps: with it conv4_2's reconstruction shows the face and the helmet,
# with max pooling (stylize's default) hardly any layout, though both match conv4_2 to a
# relative error of 4-7%.
DEFAULT_POOLING = "avg"
# Four 2x2 poolings lie before block 5: a side under 16 px leaves conv5_x without a grid.
MIN_SIDE = 16
# How each panel descends. engine.optimize's L-BFGS has no line search: its first step
# has an L1 norm of at most 1 (about 1e-4 per value of G here), and the curvature it
# measures along that tiny step sets the length of the next one. From noise, where the
# Gram costs are far from quadratic, that next step overshot to J ~ 1e4-1e8 and left G
# stuck with dead ReLUs: relu1_1+relu2_1 ended at Gram errors of 0.38-0.69 (start 0.7-0.8)
# for 3 of 6 runs at 32 px (astronaut, coffee, chelsea x seeds 0, 1; 40 steps), whatever J's
# scale. Ten Adam steps first (each moves every value by about lr = 0.02) put G where the
# quadratic model holds: then all 60 panels (32 and 48 px) converged, to errors of
# 0.02-0.17.
WARMUP_STEPS = 10
# J's scale still matters to L-BFGS: it updates its curvature memory only when y·s > 1e-10
# (an absolute test), and where that fails it steps along −∂J/∂G with length 1. Each
# panel's J is therefore multiplied by the k that makes the root mean square of ∂J/∂G at
# the noise start this value: such a fallback step then moves G by about 1% of its range.
# (In raw units, J ≈ 1e8 at the start, one such step sent G to J = 1e32.)
GRADIENT_RMS = 1e-2
# Layout: the RMSE of 16-cell block averages (along the long side) of G and C, which
# ignores the pixel-scale noise a deep layer does not see.
LAYOUT_CELLS = 16
# 1D and 3D inputs, recognised by extension so that they get a clear message.
OTHER_EXTENSIONS = (".wav", ".flac", ".ogg", ".csv", ".tsv", ".txt", ".npy", ".dcm", ".dicom", ".nii", ".nii.gz")

ProgressCallback = Callable[[str, int], None]


@dataclass
class Panel:
    """One reconstruction: what it matched, where it got to, and the signal itself."""

    name: str  # the panel's label: "conv3_2" (content), "relu1_1" then "+relu2_1" … (style)
    kind: str  # "content" or "style"
    layers: tuple[str, ...]  # the layers whose features (content) or Grams (style) were matched
    image: torch.Tensor  # (1, 3, H, W) the best G found, clamped to [0, 1] (what is drawn)
    signal: torch.Tensor  # the same G unclamped (what loss and error were measured on)
    loss_start: float  # J at the noise start
    loss: float  # J of the returned G
    error_start: float  # ``error`` of the noise start
    error: float  # content: ‖a_l(G) − a_l(C)‖/‖a_l(C)‖; style: RMS over l of ‖Ĝ_l(G) − Ĝ_l(C)‖/‖Ĝ_l(C)‖
    pixel_rmse: float  # √(mean (G − C)²) over pixels and colours, G clamped to [0, 1]
    layout_rmse: float  # the same for block averages of G and C (``layout_rmse``)
    steps: int  # steps taken (fewer than asked if interrupted)


@dataclass
class ActivationMaps:
    """The most active channels of one layer for C: mean activation, largest first."""

    layer: str
    channels: list[int]  # channel indices, most active first
    means: list[float]  # their mean activation over all positions
    maps: torch.Tensor  # (len(channels), h, w) the activations themselves


@dataclass
class ExplainResult:
    """The figure's contents and where it was written (None if not drawn)."""

    image: torch.Tensor  # (1, 3, H, W) the input C at the size used
    content: list[Panel]
    style: list[Panel]
    activations: list[ActivationMaps]
    path: Path | None
    interrupted: bool = False
    options: dict[str, object] = field(default_factory=dict)

    @property
    def panels(self) -> list[Panel]:
        return [*self.content, *self.style]


def relative_feature_error(a_c: torch.Tensor, a_g: torch.Tensor) -> float:
    """‖a(G) − a(C)‖ / ‖a(C)‖, Frobenius norms over every element."""
    a_c, a_g = a_c.double(), a_g.double()
    return float((a_g - a_c).norm() / a_c.norm().clamp_min(1e-300))


def relative_gram_error(a_c: torch.Tensor, a_g: torch.Tensor) -> float:
    """‖Ĝ(G) − Ĝ(C)‖_F / ‖Ĝ(C)‖_F for one layer's activations, Ĝ = scaled_gram."""
    target = scaled_gram(a_c.double())
    num = float(layer_style_cost_from_grams(target, scaled_gram(a_g.double())))
    return math.sqrt(num / max(float(target.pow(2).sum()), 1e-300))


def layout_rmse(g: torch.Tensor, c: torch.Tensor, cells: int = LAYOUT_CELLS) -> float:
    """√(mean (B(G) − B(C))²), B the average over square blocks of side ⌈long side / cells⌉:
    how far G is from C in layout (where light, dark and colour are), not in pixels."""
    side = max(1, math.ceil(max(c.shape[2:]) / cells))
    grid = tuple(max(1, round(n / side)) for n in c.shape[2:])
    pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[c.dim() - 2]
    return float((pool(g.double(), grid) - pool(c.double(), grid)).pow(2).mean().sqrt())


def most_active(a: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """Indices and means of the ``k`` channels of a (1, n_C, *spatial) with the largest mean
    activation over all positions, largest first (ties: lower index first)."""
    means = a[0].flatten(1).double().mean(dim=1)
    order = torch.argsort(means, descending=True, stable=True)[:k]
    return [int(i) for i in order], [float(means[i]) for i in order]


def explain(
    image: ImageLike,
    output: str | Path | None,
    *,
    size: int = DEFAULT_SIZE,
    steps: int = DEFAULT_STEPS,
    net: str = "vgg16",
    pooling: str = DEFAULT_POOLING,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    style_layers: Sequence[str] = STYLE_LAYERS,
    channels: int = DEFAULT_CHANNELS,
    seed: int = 0,
    device: str = "cpu",
    callback: ProgressCallback | None = None,
) -> ExplainResult:
    """Reconstruct ``image`` from each content layer and from each growing set of style
    layers, map its most active channels, and draw it all into ``output``.

    ``image``: a path, PIL image, array or tensor, as ``load_image`` takes; resized to
    ``size`` pixels on the long side. ``output``: a .png, .pdf or .svg path (checked
    before any work), or None to draw nothing. Each panel is ``steps`` L-BFGS steps from
    the same uniform noise (``seed``); ``callback(panel_name, step)`` is called after each
    (step = 1 … ``steps``), for ``len(content_layers) + len(style_layers)`` panels in that
    order: content layer names, then ``style_layers[0]``, ``+style_layers[1]``, …
    Ctrl-C ends the panel being optimised (its best G so far kept), skips the rest and
    still draws the figure; ``result.interrupted`` is then True.
    """
    path = _check_output(output)
    if isinstance(image, (str, Path)) and Path(image).name.lower().endswith(OTHER_EXTENSIONS):
        raise NStyleError(f"{image}: explain: 1D/3D inputs are not supported yet (give a 2D image)")
    if steps < 0:
        raise NStyleError(f"steps must be >= 0, got {steps}")
    if channels < 0:
        raise NStyleError(f"channels must be >= 0, got {channels}")
    if not content_layers and not style_layers:
        raise NStyleError("explain: no content or style layers given")
    dev = _device(device)
    sig = load_image(image, size=size)
    c = sig.tensor.to(dev)
    if min(c.shape[2:]) < MIN_SIDE:
        h, w = c.shape[2:]
        raise NStyleError(f"{sig.source}: at size {size} the image is {w}x{h}; explain needs {MIN_SIDE} px on the short side")
    model = build_net(net, pooling=pooling, device=dev)
    model.check_layers([*content_layers, *style_layers])
    options = {"size": size, "steps": steps, "net": net, "pooling": pooling, "seed": seed, "channels": channels}
    result = ExplainResult(image=sig.tensor, content=[], style=[], activations=[], path=None, options=options)
    with torch.no_grad():
        acts_c = model(c, [*content_layers, *style_layers])
    # The same noise for every panel: the panels then differ only by the layers matched.
    g0 = initial_signal("noise", c, seed=seed)
    for spec in panel_specs(acts_c, content_layers, style_layers):
        objective = spec.objective(model, c, gradient_scale(spec.objective(model, c, 1.0), g0))
        panel, result.interrupted = _reconstruct(spec, objective, g0, c, steps, acts_c, callback)
        (result.content if spec.kind == "content" else result.style).append(panel)
        if result.interrupted:
            break
    for layer in style_layers if channels else ():
        idx, means = most_active(acts_c[layer], channels)
        result.activations.append(ActivationMaps(layer, idx, means, acts_c[layer][0, idx].float().cpu()))
    if path is not None:
        result.path = draw(result, path)
    return result


@dataclass(frozen=True)
class PanelSpec:
    """What one panel matches. Its J, for a scale k: content, k·½‖a_l(C) − a_l(G)‖²/‖a_l(C)‖²
    (k·½e²); style, k·Σ_l ‖Ĝ_l(C) − Ĝ_l(G)‖²_F/‖Ĝ_l(C)‖²_F (k·Σ_l e_l²): every layer counts
    by its relative error."""

    name: str
    kind: str  # "content" or "style"
    layers: tuple[str, ...]
    weights: dict[str, float]  # 1/‖a_l(C)‖² (content) or λ_l = 1/‖Ĝ_l(C)‖²_F (style)

    def objective(self, net, c: torch.Tensor, scale: float) -> StyleObjective:
        if self.kind == "content":
            (layer,) = self.layers
            return StyleObjective(net, c, c, layer, {}, scale * self.weights[layer], 0.0)
        return StyleObjective(net, None, c, self.layers[0], self.weights, 0.0, scale)


def panel_specs(
    acts_c: Mapping[str, torch.Tensor], content_layers: Sequence[str], style_layers: Sequence[str]
) -> list[PanelSpec]:
    """One content panel per content layer, then style panels over style_layers[:1], [:2], …"""
    specs = []
    for layer in content_layers:
        specs.append(PanelSpec(layer, "content", (layer,), {layer: _inverse_square_norm(acts_c[layer])}))
    for k in range(len(style_layers)):
        layers = tuple(style_layers[: k + 1])
        lam = {n: _inverse_square_norm(scaled_gram(acts_c[n].double())) for n in layers}
        specs.append(PanelSpec(layers[-1] if k == 0 else f"+{layers[-1]}", "style", layers, lam))
    return specs


def _inverse_square_norm(x: torch.Tensor) -> float:
    return 1.0 / float(x.double().pow(2).sum().clamp_min(1e-300))


def gradient_scale(objective: StyleObjective, g0: torch.Tensor, target: float = GRADIENT_RMS) -> float:
    """The factor k that makes the root mean square of ∂(k·J)/∂G at ``g0`` equal ``target``."""
    g = g0.detach().clone().requires_grad_(True)
    objective(g).total.backward()
    rms = float(g.grad.double().pow(2).mean().sqrt())
    return target / rms if rms > 0 and math.isfinite(rms) else 1.0


def descend(
    objective: StyleObjective, g0: torch.Tensor, steps: int, on_step: Callable[[int], None] | None = None
) -> tuple[torch.Tensor, float, float, int, bool]:
    """``steps`` steps from ``g0``: ``WARMUP_STEPS`` of Adam, then L-BFGS (see WARMUP_STEPS).

    Returns the best G seen, J at ``g0``, J at that G, the steps taken and whether Ctrl-C
    ended it. ``on_step(n)`` is called after step n = 1 … ``steps``.
    """
    taken = 0

    def progress(info, g) -> None:
        nonlocal taken
        taken += 1
        if on_step is not None:
            on_step(taken)

    warm = min(WARMUP_STEPS, steps)
    runs = [optimize(objective, g0, warm, optimizer="adam", callback=progress)]
    if steps > warm and not (runs[0].interrupted or runs[0].diverged):
        runs.append(optimize(objective, runs[0].g, steps - warm, optimizer="lbfgs", callback=progress, step_offset=warm))
    measured = [r for r in runs if r.best is not None]
    with torch.no_grad():
        loss_start = measured[0].history[0].total if measured else float(objective(g0).total)
    if not measured:
        return g0.detach(), loss_start, loss_start, taken, runs[-1].interrupted
    best = min(measured, key=lambda r: r.best.total)
    return best.g.detach(), loss_start, best.best.total, taken, runs[-1].interrupted


def _reconstruct(
    spec: PanelSpec,
    objective: StyleObjective,
    g0: torch.Tensor,
    c: torch.Tensor,
    steps: int,
    acts_c: Mapping[str, torch.Tensor],
    callback: ProgressCallback | None,
) -> tuple[Panel, bool]:
    """One panel: ``descend`` on its objective from ``g0``, then its errors; and whether
    the run was interrupted (Ctrl-C)."""
    name, kind, layers = spec.name, spec.kind, spec.layers
    on_step = None if callback is None else (lambda n: callback(name, n))
    g, loss_start, loss, taken, interrupted = descend(objective, g0, steps, on_step)
    with torch.no_grad():
        errors = [_error(kind, layers, acts_c, objective.features(x, layers)) for x in (g0, g)]
    shown = g.clamp(0, 1)
    rmse = float((shown.double() - c.double()).pow(2).mean().sqrt())
    panel = Panel(
        name, kind, layers, shown.cpu(), g.cpu(), loss_start, loss, errors[0], errors[1], rmse, layout_rmse(shown, c), taken
    )
    return panel, interrupted


def _error(
    kind: str, layers: tuple[str, ...], acts_c: Mapping[str, torch.Tensor], acts_g: Mapping[str, torch.Tensor]
) -> float:
    """Content: the layer's relative feature error; style: the root mean square over the
    layers of their relative Gram errors (so J_style/LOSS_SCALE = n_layers · error²)."""
    if kind == "content":
        return relative_feature_error(acts_c[layers[0]], acts_g[layers[0]])
    return math.sqrt(sum(relative_gram_error(acts_c[n], acts_g[n]) ** 2 for n in layers) / len(layers))


def _check_output(output: str | Path | None) -> Path | None:
    """The figure's path, checked before any work: a known extension, a writable folder."""
    if output is None:
        return None
    path = Path(output)
    if path.suffix.lower() not in PLOT_EXTENSIONS:
        raise NStyleError(f"{path}: the explain figure is written as {', '.join(PLOT_EXTENSIONS)}")
    return check_writable(path)


def _rgb(x: torch.Tensor):
    return x[0].detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()


def draw(result: ExplainResult, path: str | Path) -> Path:
    """Write the figure atomically: row 1 C and the content reconstructions (layer, pixel
    RMSE), row 2 the style reconstructions (layers, Gram error), then one row of
    activation maps per layer (viridis, each map scaled to its own range)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    n_maps = max((len(m.channels) for m in result.activations), default=0)
    cols = max(1 + len(result.content), 1 + len(result.style), n_maps, 2)
    rows = 2 + len(result.activations)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.0 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.set_axis_off()
    h, w = result.image.shape[2:]
    axes[0, 0].imshow(_rgb(result.image))
    axes[0, 0].set_title(f"image ({w}x{h})", fontsize=8)
    for ax, p in zip(axes[0, 1:], result.content):
        ax.imshow(_rgb(p.image))
        ax.set_title(f"{p.name}\nRMSE {p.pixel_rmse:.3f}", fontsize=8)
    axes[1, 0].text(0.5, 0.5, "style from\nnoise →", ha="center", va="center", fontsize=9, transform=axes[1, 0].transAxes)
    for ax, p in zip(axes[1, 1:], result.style):
        ax.imshow(_rgb(p.image))
        ax.set_title(f"{p.name}\nGram err {p.error:.3f}", fontsize=8)
    for row, maps in enumerate(result.activations, start=2):
        for ax, ch, mean, m in zip(axes[row], maps.channels, maps.means, maps.maps):
            ax.imshow(m.numpy(), cmap="viridis", interpolation="nearest")
            ax.set_title(f"{maps.layer} #{ch} (mean {mean:.2g})", fontsize=7)
    opts = result.options
    note = " (interrupted)" if result.interrupted else ""
    fig.suptitle(
        f"What {opts.get('net')} ({opts.get('pooling')} pooling) keeps of the image: reconstructions from noise, "
        f"{opts.get('steps')} steps each ({WARMUP_STEPS} Adam, then L-BFGS){note}; most active channels below",
        fontsize=9,
    )
    return _save(plt, fig, path)
