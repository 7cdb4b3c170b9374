"""`nstyle explain`: what each layer of the network keeps of one signal (Gatys et al. 2016, Fig. 1).

Three kinds of panel, all of the same signal C:

* content reconstructions: from noise, minimise ½‖a_l(C) − a_l(G)‖² for one layer l alone
  (images: conv1_2 … conv5_2). Shallow layers give the pixels back almost exactly; deep
  ones keep the layout and lose the pixels.
* style reconstructions: from the same noise, minimise Σ_l λ_l ‖Ĝ_l(C) − Ĝ_l(G)‖²_F
  (Ĝ = G/(2·M·n_C), ``objective.scaled_gram``) over relu1_1, then relu1_1 + relu2_1, …
  up to relu5_1: textures of C whose patches grow with each layer added.
* activation maps: for each style layer, the ``channels`` channels of a_l(C) with the
  largest mean activation.

Every reconstruction is an ordinary ``engine.optimize`` run of a ``StyleObjective``:
content C and β = 0 for a content panel, no content for a style one.

The same works for the other kinds of signal, with the networks their products use:
volumes (``.nii``, ``.nii.gz``, 3D ``.npy``, DICOM slices) through the ``inflated`` VGG16
at a small size, mid-slices drawn; sounds (``.wav``, ``.flac``, ``.ogg``) and series
(``.csv``, ``.tsv``, ``.txt``, 1D/2D ``.npy``, ECG ``.dcm``) through untrained single-layer
branches (``nets.random``), which have no depth: content from each branch alone, style
from the branches cumulatively, spectrograms (sound) or traces (series) drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .core.engine import initial_signal, optimize
from .core.functional import FeatureNet, layer_style_cost_from_grams, scaled_gram
from .core.objective import StyleObjective
from .errors import NStyleError
from .modalities.image import ImageLike, load_image
from .nets import build_net
from .options import MAX_SEED
from .outputs.atomic import check_writable
from .outputs.plots import PLOT_EXTENSIONS, save_figure
from .resources import BACKWARD_FACTOR, activation_bytes, check_bytes, check_elements
from .validators import check_count, check_input_file, resolve_device

KINDS = ("image", "volume", "audio", "series")
CONTENT_LAYERS = tuple(f"conv{b}_2" for b in range(1, 6))
STYLE_LAYERS = tuple(f"relu{b}_1" for b in range(1, 6))
# Volumes: blocks 1-3, as nstyle.volumes uses (at 32 voxels a side, conv3_2's grid is 8³).
VOLUME_CONTENT_LAYERS = tuple(f"conv{b}_2" for b in range(1, 4))
VOLUME_STYLE_LAYERS = tuple(f"relu{b}_1" for b in range(1, 4))
# Measured on the astronaut, one torch thread on a 2-core machine shared with other jobs:
# the 10 panels take 3.2 min at 128 px with 200 steps each (4.5 min with 300). From 200 to
# 300 steps the errors still fall (conv1_2 0.0033 -> 0.0020, relu1_1…relu5_1 0.092 ->
# 0.073) but the pictures hardly change. 128 px is the smallest size at which conv5_2
# still has an 8 x 8 grid; each doubling of the size costs 4x the time.
DEFAULT_STEPS = 200
DEFAULT_CHANNELS = 4
# The long side in pixels / voxels, or the samples kept from the start of a 1D signal.
# Volumes: nibabel's anatomical.nii at 32 voxels (26 x 32 x 20) took 2.0 min for its 6
# panels of 200 steps, to errors of 0.003-0.014 (conv3_2's grid is then 7 x 8 x 5). Sound:
# with stylize_audio's branches (4096 + 1024 filters) a step costs about 0.3 s per second
# of sound (alsa-utils' Front_Center.wav, 1.43 s: 4 panels of 200 steps in 5.1 min, to
# errors of 0.05-0.12), so 1 s is kept. Series: 4096 samples, four heartbeats of a
# 1000 Hz ECG.
AUDIO_RATE = 22050
DEFAULT_SIZES = {"image": 128, "volume": 32, "audio": AUDIO_RATE, "series": 4096}
# What --size means per kind: the long side of this many axes, of signals with this many channels.
EXPLAIN_AXES = {"image": 2, "volume": 3, "audio": 1, "series": 1}
EXPLAIN_CHANNELS = {"image": 3, "volume": 1, "audio": 1, "series": 12}
# stylize_audio's STFT.
N_FFT, HOP = 1024, 256
# The random nets are those stylize_audio / stylize_series build by default (net_seed 0).
NET_SEED = 0
# Average pooling, as in the paper's figures ("improves the gradient flow"). Measured at
# 128 px and 200 steps: with it conv4_2's reconstruction shows the face and the helmet,
# with max pooling (stylize's default) hardly any layout, though both match conv4_2 to a
# relative error of 4-7%.
DEFAULT_POOLING = "avg"
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
# the noise start this value: such a fallback step moves G by about 1% of its range. (In
# raw units, J ≈ 1e8 at the start, step 2 sent G to J = 1e32: astronaut, 128 px, max
# pooling, relu1_1…relu5_1.)
GRADIENT_RMS = 1e-2
# Layout: the RMSE of block averages of G and C, 16 blocks along the long side, which
# ignores the pixel-scale noise a deep layer does not see.
LAYOUT_CELLS = 16
# Series traces drawn: at most this many samples (the first lead).
TRACE_SAMPLES = 4096

AUDIO_EXTS = (".wav", ".flac", ".ogg")
SERIES_EXTS = (".csv", ".tsv", ".txt")
VOLUME_EXTS = (".nii", ".nii.gz")
DICOM_EXTS = (".dcm", ".dicom")

ProgressCallback = Callable[[str, int], None]


@dataclass
class Panel:
    """One reconstruction: what it matched, where it got to, and the signal itself."""

    name: str  # the panel's label: "conv3_2" (content), "relu1_1" then "+relu2_1" … (style)
    kind: str  # "content" or "style"
    layers: tuple[str, ...]  # the layers whose features (content) or Grams (style) were matched
    signal: torch.Tensor  # the best G found, clamped to the signal's range if it has one (drawn)
    raw: torch.Tensor  # the same G unclamped (what loss and error were measured on)
    loss_start: float  # J at the noise start
    loss: float  # J of the returned G
    error_start: float  # ``error`` of the noise start
    error: float  # content: ‖a_l(G) − a_l(C)‖/‖a_l(C)‖; style: RMS over l of ‖Ĝ_l(G) − Ĝ_l(C)‖/‖Ĝ_l(C)‖
    rmse: float  # √(mean (G − C)²) per pixel and colour / voxel / sample (sound: per log-spectrogram bin)
    layout_rmse: float  # the same for block averages of G and C (``layout_rmse``)
    steps: int  # steps taken (fewer than asked if interrupted)


@dataclass
class ActivationMaps:
    """The most active channels of one layer for C: mean activation, largest first."""

    layer: str
    channels: list[int]  # channel indices, most active first
    means: list[float]  # their mean activation over all positions
    maps: torch.Tensor  # (len(channels), *spatial) the activations themselves


@dataclass
class ExplainResult:
    """The figure's contents and where it was written (None if not drawn)."""

    kind: str  # "image", "volume", "audio" or "series"
    source: str
    signal: torch.Tensor  # C as explained: (1, 3, H, W) image, (1, 1, D, H, W) volume,
    # (1, 1, T) sound (mono, 22.05 kHz), (1, leads, T) series (each lead standardised)
    content: list[Panel]
    style: list[Panel]
    activations: list[ActivationMaps]
    path: Path | None
    interrupted: bool = False
    options: dict[str, object] = field(default_factory=dict)

    @property
    def panels(self) -> list[Panel]:
        return [*self.content, *self.style]


@dataclass
class Subject:
    """C, the network that measures it, its default layers, and how its panels are shown."""

    kind: str
    source: str
    signal: torch.Tensor
    net: FeatureNet
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    start: torch.Tensor  # the noise every panel starts from
    limits: tuple[float, float] | None  # the signal's range (G is clamped to it when shown)
    view: Callable[[torch.Tensor], torch.Tensor] | None = None  # what is compared and drawn (sound: spectrogram)
    net_name: str = ""


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
    """√(mean (B(G) − B(C))²), B the average over blocks of side ⌈long side / cells⌉ along
    every spatial axis: how far G is from C in layout (where light, dark and colour are),
    not in pixels."""
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


def input_kind(source: ImageLike) -> str:
    """``image``, ``volume``, ``audio`` or ``series``, from a path's extension (and for
    ``.npy`` the number of axes, for DICOM whether it holds a waveform); not a path: image."""
    if not isinstance(source, (str, Path)):
        return "image"
    path = Path(source)
    if os.path.lexists(path):  # a pipe or a device would block the readers below (a missing file: by name)
        check_input_file(path, "file or DICOM folder", folder_ok=True)
    name = path.name.lower()
    if path.is_dir():
        return "volume"  # a folder of DICOM slices
    if name.endswith(AUDIO_EXTS):
        return "audio"
    if name.endswith(SERIES_EXTS):
        return "series"
    if name.endswith(VOLUME_EXTS):
        return "volume"
    if name.endswith(".npy") and path.is_file():
        try:
            ndim = np.load(path, mmap_mode="r", allow_pickle=False).ndim
        except (OSError, ValueError, EOFError):
            return "series"  # its loader says what is wrong with it
        return "volume" if ndim == 3 else "series"
    if name.endswith(DICOM_EXTS) and path.is_file():
        from .modalities.dicom import read_dataset

        return "series" if "WaveformSequence" in read_dataset(path) else "volume"
    return "image"


def explain(
    source: ImageLike,
    output: str | Path | None,
    *,
    size: int | None = None,
    steps: int = DEFAULT_STEPS,
    net: str = "vgg16",
    pooling: str = DEFAULT_POOLING,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    channels: int = DEFAULT_CHANNELS,
    seed: int = 0,
    kind: str | None = None,
    device: str = "cpu",
    callback: ProgressCallback | None = None,
) -> ExplainResult:
    """Reconstruct ``source`` from each content layer and from each growing set of style
    layers, find its most active channels, and draw it all into ``output``.

    ``source``: an image (path, PIL image, array or tensor, as ``load_image`` takes), or
    the path of a volume, sound or series; ``kind`` forces how a path is read (default
    ``input_kind``). ``size``: the long side in pixels (default 128) or voxels (32), or
    the samples kept from the start of a sound (22050, 1 s at 22.05 kHz, mono) or series
    (4096; each lead standardised). ``net``/``pooling``: the image network (volumes use
    VGG16 inflated to 3D with ``pooling``; 1D signals the random branches of
    stylize_audio / stylize_series). ``content_layers``/``style_layers``: None for the
    kind's defaults (images conv1_2…conv5_2 / relu1_1…relu5_1, volumes blocks 1-3, 1D
    every branch). ``output``: a .png, .pdf or .svg path (checked before any work), or
    None to draw nothing.

    Each panel is ``steps`` steps from the same noise (``seed``); ``callback(panel_name,
    step)`` is called after each (step = 1 … ``steps``), for ``len(content_layers) +
    len(style_layers)`` panels in that order: content layer names, then
    ``style_layers[0]``, ``+style_layers[1]``, … Ctrl-C ends the panel being optimised
    (its best G so far kept), skips the rest and still draws the figure;
    ``result.interrupted`` is then True.
    """
    path = _check_output(output)
    kind = kind or input_kind(source)
    if kind not in KINDS:
        raise NStyleError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    check_count("steps", steps)
    check_count("channels", channels, 1)
    check_count("seed", seed, 0, MAX_SEED)
    size = DEFAULT_SIZES[kind] if size is None else check_count("size", size, 1)
    # the signal at that size, before it is loaded: (3 channels x) size^axes floats, a few copies
    check_elements(f"explain --size {size}", (EXPLAIN_CHANNELS[kind], *[size] * EXPLAIN_AXES[kind]),
                   "lower --size", copies=4)
    dev = resolve_device(device)
    subject = _LOADERS[kind](source, size, net, pooling, seed, dev)
    c, model = subject.signal, subject.net
    acts = activation_bytes(model, tuple(c.shape), [*(content_layers or []), *(style_layers or [])] or
                            [*subject.content_layers, *subject.style_layers])
    check_bytes(f"explain --size {size}", BACKWARD_FACTOR * (acts or 0), "lower --size")
    content_layers = subject.content_layers if content_layers is None else tuple(content_layers)
    style_layers = subject.style_layers if style_layers is None else tuple(style_layers)
    if not content_layers and not style_layers:
        raise NStyleError("explain: no content or style layers given")
    model.check_layers([*content_layers, *style_layers])  # type: ignore[attr-defined]
    _check_extent(subject, [*content_layers, *style_layers])
    options = {"kind": kind, "size": size, "steps": steps, "net": subject.net_name, "seed": seed, "channels": channels}
    result = ExplainResult(kind, subject.source, c.cpu(), [], [], [], None, options=options)
    with torch.no_grad():
        acts_c = model(c, [*content_layers, *style_layers])
    for spec in panel_specs(acts_c, content_layers, style_layers):
        objective = spec.objective(model, c, gradient_scale(spec.objective(model, c, 1.0), subject.start))
        panel, result.interrupted = _reconstruct(spec, objective, subject, steps, acts_c, callback)
        (result.content if spec.kind == "content" else result.style).append(panel)
        if result.interrupted:
            break
    for layer in style_layers if channels else ():
        idx, means = most_active(acts_c[layer], channels)
        result.activations.append(ActivationMaps(layer, idx, means, acts_c[layer][0, idx].float().cpu()))
    if path is not None:
        result.path = draw(result, path, subject.view)
    return result


# --------------------------------------------------------------------------- the kinds of signal


def _image(source: ImageLike, size: int, net: str, pooling: str, seed: int, dev: torch.device) -> Subject:
    sig = load_image(source, size=size)
    c = sig.tensor.to(dev)
    model = build_net(net, pooling=pooling, device=dev)
    return Subject(
        "image", sig.source, c, model, CONTENT_LAYERS, STYLE_LAYERS,
        initial_signal("noise", c, seed=seed), (0.0, 1.0), net_name=f"{net} ({pooling} pooling)",
    )


def _volume(source: ImageLike, size: int, net: str, pooling: str, seed: int, dev: torch.device) -> Subject:
    from .kinds.volume import volume_vgg
    from .modalities.volume import load_volume

    sig = load_volume(_path(source, "volume"))
    v = sig.tensor
    shape = tuple(max(1, round(n * size / max(v.shape[2:]))) for n in v.shape[2:])
    # Shrinking: area averages (no aliasing); growing: trilinear.
    mode = "area" if max(shape) < max(v.shape[2:]) else "trilinear"
    c = F.interpolate(v, size=shape, mode=mode) if shape != tuple(v.shape[2:]) else v
    c = c.clamp(0, 1).to(dev)
    # volume_vgg builds the inflated VGG16 after checking that it fits in memory.
    model = volume_vgg("inflated", shape, list(VOLUME_CONTENT_LAYERS + VOLUME_STYLE_LAYERS), pooling, None, 0, dev)
    return Subject(
        "volume", sig.source, c, model, VOLUME_CONTENT_LAYERS, VOLUME_STYLE_LAYERS,
        initial_signal("noise", c, seed=seed), (0.0, 1.0), net_name=f"vgg16 inflated to 3D ({pooling} pooling)",
    )


def _audio(source: ImageLike, size: int, net: str, pooling: str, seed: int, dev: torch.device) -> Subject:
    from .core.engine import noise_like
    from .modalities.audio import load_audio, log_magnitude
    from .nets.random import RandomBranches, parse_branches
    from .options import DEFAULT_AUDIO_BRANCHES

    # A quarter second more than kept: resampling a cut file rings at the cut.
    sig = load_audio(_path(source, "audio"), rate=AUDIO_RATE, mono=True, max_seconds=size / AUDIO_RATE + 0.25)
    c = sig.tensor[..., :size].to(dev)

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        return log_magnitude(x, N_FFT, HOP)

    model = RandomBranches(
        N_FFT // 2 + 1, parse_branches(DEFAULT_AUDIO_BRANCHES), dims=1, seed=NET_SEED, preprocess=spectrum
    )
    frames = 1 + c.shape[-1] // HOP
    if c.shape[-1] <= N_FFT // 2 or frames < model.max_span:
        need = (model.max_span - 1) * HOP
        raise NStyleError(
            f"{sig.source}: {c.shape[-1]} samples at {AUDIO_RATE} Hz are too short for explain's network "
            f"(at least {need}, {need / AUDIO_RATE:.2f} s)"
        )
    layers = tuple(model.default_layers())
    return Subject(
        "audio", sig.source, c, model.to(dev), layers, layers, noise_like(c, seed), (-1.0, 1.0), spectrum,
        net_name=f"random branches {DEFAULT_AUDIO_BRANCHES} over log|STFT|",
    )


def _series(source: ImageLike, size: int, net: str, pooling: str, seed: int, dev: torch.device) -> Subject:
    from .core.engine import noise_like
    from .kinds.series import estimate_period, lead_stats, series_branches
    from .modalities.series import load_series
    from .nets.random import RandomBranches

    sig = load_series(_path(source, "series"))
    x = sig.tensor[..., :size]
    mean, std = lead_stats(x)
    c = ((x - mean) / std).to(dev)
    branches = series_branches(min(estimate_period(x), c.shape[-1]))
    model = RandomBranches(c.shape[1], branches, dims=1, seed=NET_SEED)
    if c.shape[-1] < model.max_span:
        raise NStyleError(f"{sig.source}: {c.shape[-1]} samples is shorter than the widest branch ({model.max_span})")
    layers = tuple(model.default_layers())
    spec = ",".join(f"{b.width}" + (f"x{b.dilation}" if b.dilation > 1 else "") + f":{b.filters}" for b in branches)
    return Subject(
        "series", sig.source, c, model.to(dev), layers, layers, noise_like(c, seed), None,
        net_name=f"random branches {spec}",
    )


_LOADERS: dict[str, Callable[..., Subject]] = {"image": _image, "volume": _volume, "audio": _audio, "series": _series}


def _path(source: ImageLike, kind: str) -> Path:
    if not isinstance(source, (str, Path)):
        raise NStyleError(f"explain: a {kind} is read from a file; got a {type(source).__name__}")
    return Path(source)


def _check_extent(subject: Subject, layers: Sequence[str]) -> None:
    """VGG nets: every side of C must survive the poolings before the deepest layer used."""
    names = getattr(subject.net, "names", None)
    index = getattr(subject.net, "index", None)
    if names is None or index is None or not layers:
        return
    deepest = max(index[n] for n in layers)
    need = 2 ** sum(1 for n in names[:deepest] if n.startswith("pool"))
    spatial = tuple(subject.signal.shape[2:])
    if min(spatial) < need:
        shape = "x".join(str(n) for n in (spatial[::-1] if subject.kind == "image" else spatial))
        raise NStyleError(
            f"{subject.source}: at this size the {subject.kind} is {shape}; explain needs {need} on every side "
            f"to reach {names[deepest]}"
        )


# --------------------------------------------------------------------------- the panels


@dataclass(frozen=True)
class PanelSpec:
    """What one panel matches. Its J, for a scale k: content, k·½‖a_l(C) − a_l(G)‖²/‖a_l(C)‖²
    (k·½e²); style, k·Σ_l ‖Ĝ_l(C) − Ĝ_l(G)‖²_F/‖Ĝ_l(C)‖²_F (k·Σ_l e_l²): every layer counts
    by its relative error."""

    name: str
    kind: str  # "content" or "style"
    layers: tuple[str, ...]
    weights: dict[str, float]  # 1/‖a_l(C)‖² (content) or λ_l = 1/‖Ĝ_l(C)‖²_F (style)

    def objective(self, net: FeatureNet, c: torch.Tensor, scale: float) -> StyleObjective:
        net = _skipping_empty(net)
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


def _skipping_empty(net: FeatureNet) -> FeatureNet:
    """``net`` that answers an empty layer list with no activations: StyleObjective asks for
    the style layers of S even when there are none, which nets.volume.Inflated refuses."""

    def features(x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        return net(x, layers) if layers else {}

    return features


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
        runs.append(
            optimize(objective, runs[0].g, steps - warm, optimizer="lbfgs", callback=progress, step_offset=warm)
        )
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
    subject: Subject,
    steps: int,
    acts_c: Mapping[str, torch.Tensor],
    callback: ProgressCallback | None,
) -> tuple[Panel, bool]:
    """One panel: ``descend`` on its objective from the subject's noise, then its errors;
    and whether the run was interrupted (Ctrl-C)."""
    name, kind, layers = spec.name, spec.kind, spec.layers
    on_step = None if callback is None else (lambda n: callback(name, n))
    g0, c = subject.start, subject.signal
    g, loss_start, loss, taken, interrupted = descend(objective, g0, steps, on_step)
    with torch.no_grad():
        errors = [_error(kind, layers, acts_c, objective.features(x, layers)) for x in (g0, g)]
        shown = g.clamp(*subject.limits) if subject.limits is not None else g
        view = subject.view or (lambda x: x)
        v_g, v_c = view(shown).double(), view(c).double()
        rmse = float((v_g - v_c).pow(2).mean().sqrt())
        layout = layout_rmse(v_g, v_c)
    panel = Panel(name, kind, layers, shown.cpu(), g.cpu(), loss_start, loss, errors[0], errors[1], rmse, layout, taken)
    return panel, interrupted


def _error(
    kind: str, layers: tuple[str, ...], acts_c: Mapping[str, torch.Tensor], acts_g: Mapping[str, torch.Tensor]
) -> float:
    """Content: the layer's relative feature error; style: the root mean square over the
    layers of their relative Gram errors (so J_style/k = n_layers · error²)."""
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


# --------------------------------------------------------------------------- the figure

# Inches per panel: square cells for pictures, wide ones for 1D signals.
CELL_INCHES = {"image": (1.9, 2.0), "volume": (1.9, 2.0), "audio": (3.0, 1.9), "series": (3.0, 1.6)}


def _show(
    ax, kind: str, x: torch.Tensor, view: Callable[[torch.Tensor], torch.Tensor] | None, ref: torch.Tensor
) -> None:
    """Draw one signal (1, C, *spatial): a picture, a volume's axial mid-slice, a sound's
    log-spectrogram, or a series' first lead over C's (grey)."""
    x = x.detach().float().cpu()
    if kind == "image":
        ax.imshow(x[0].permute(1, 2, 0).clamp(0, 1).numpy())
    elif kind == "volume":
        ax.imshow(x[0, 0, x.shape[2] // 2].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    elif kind == "audio":
        spec = view(x)[0].numpy() if view is not None else x[0].numpy()
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma")
    else:
        n = min(x.shape[-1], TRACE_SAMPLES)
        ax.plot(ref[0, 0, :n].float().cpu().numpy(), color="0.8", lw=0.6)
        ax.plot(x[0, 0, :n].numpy(), color="tab:blue", lw=0.6)


def _show_map(ax, m: torch.Tensor) -> None:
    """One activation map: a heat map (2D, or a 3D map's mid-slice) or a trace (1D)."""
    m = m.float()
    if m.dim() == 1:
        ax.plot(m.numpy(), color="tab:green", lw=0.6)
        return
    if m.dim() == 3:
        m = m[m.shape[0] // 2]
    ax.imshow(m.numpy(), cmap="viridis", interpolation="nearest")


def draw(result: ExplainResult, path: str | Path, view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Path:
    """Write the figure atomically: row 1 C and the content reconstructions (layer, RMSE to
    C), row 2 the style reconstructions (layers, Gram error), then one row of activation
    maps per layer (viridis, each map scaled to its own range). ``view``: what a sound's
    panels show (its log-magnitude spectrogram)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    kind = result.kind
    n_maps = max((len(m.channels) for m in result.activations), default=0)
    cols = max(1 + len(result.content), 1 + len(result.style), n_maps, 2)
    rows = 2 + len(result.activations)
    w, h = CELL_INCHES[kind]
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.set_axis_off()
    c = result.signal
    _show(axes[0, 0], kind, c, view, c)
    shape = "x".join(str(n) for n in (c.shape[2:][::-1] if kind == "image" else c.shape[1:]))
    axes[0, 0].set_title(f"{kind} ({shape})", fontsize=8)
    for ax, p in zip(axes[0, 1:], result.content):
        _show(ax, kind, p.signal, view, c)
        ax.set_title(f"{p.name}\nRMSE {p.rmse:.3f}", fontsize=8)
    axes[1, 0].text(
        0.5, 0.5, "style from\nnoise →", ha="center", va="center", fontsize=9, transform=axes[1, 0].transAxes
    )
    for ax, p in zip(axes[1, 1:], result.style):
        _show(ax, kind, p.signal, view, c)
        ax.set_title(f"{p.name}\nGram err {p.error:.3f}", fontsize=8)
    for row, maps in enumerate(result.activations, start=2):
        for ax, ch, mean, m in zip(axes[row], maps.channels, maps.means, maps.maps):
            _show_map(ax, m)
            ax.set_title(f"{maps.layer} #{ch} (mean {mean:.2g})", fontsize=7)
    opts = result.options
    note = " (interrupted)" if result.interrupted else ""
    fig.suptitle(
        f"What {opts.get('net')} keeps of {Path(result.source).name}\nreconstructions from noise, "
        f"{opts.get('steps')} steps each ({WARMUP_STEPS} Adam, then L-BFGS){note}; most active channels below",
        fontsize=9,
    )
    return save_figure(plt, fig, path)
