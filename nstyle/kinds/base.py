"""What a kind of signal (image, sound, series, volume) tells the one run: the ``Modality`` protocol.

``nstyle.pipeline.run`` drives every kind through the same steps; an adapter supplies only
what differs: how to load C and S (and keep what saving needs), which network and
layers measure them, the default α, how to start G, how to shrink a signal for a coarse
scale, and how to finish and save G in the content's own format. Adding a kind means
writing one adapter that satisfies this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from ..core.engine import BestStep, StepInfo, fit_length, initial_signal, noise_like
from ..core.functional import FeatureNet
from ..errors import NStyleError
from ..nets.protocol import SampledNet
from ..options import Settings
from ..outputs.guard import check_run_paths
from ..resources import on_meta
from ..steering.masks import RegionMask
from ..validators import NAMED_INITS


@dataclass
class Signals:
    """C and the style signals as G is optimised, and what finishing and saving need.

    ``content`` and ``styles`` are (1, channels, *spatial) in the domain G lives in
    (RGB in [0, 1], a waveform, standardised leads, a windowed volume); ``original`` is
    the content as the result is composited with where a mask leaves regions untouched
    (default ``content``); ``meta`` is the adapter's own (alpha channel, sample rate,
    the series' table, the volume's geometry).
    """

    content: torch.Tensor
    styles: list[torch.Tensor]
    meta: Any = None
    original: torch.Tensor | None = None
    mask: RegionMask | None = None
    mask_styles: list[int | None] | None = None
    source: str = "<content>"
    style_sources: list[str] = field(default_factory=list)
    #: A start given as a file or an array (``settings.init`` not a name), read like C into
    #: G's domain on C's grid; the run starts from it instead of the kind's own start.
    init: torch.Tensor | None = None

    def named(self) -> list[tuple[str, torch.Tensor]]:
        """(source, signal) of C and of every S, for messages about each."""
        styles = self.style_sources or [f"style {i + 1}" for i in range(len(self.styles))]
        return [(self.source, self.content), *zip(styles, self.styles)]


@dataclass
class Network:
    """The feature network of a run and the layers it is read at.

    ``min_side``: the fewest samples a signal may have along any axis (the network's
    stride at the deepest layer used, or its widest branch); every scale must keep it.
    ``tile``: ``auto``/None/a side in pixels for nets that ``nstyle.core.tiling`` can
    evaluate in tiles (2D VGG), None otherwise.
    """

    model: FeatureNet
    content_layers: list[str]
    style_weights: dict[str, float]
    min_side: int = 1
    tile: int | str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # what the adapter chose (e.g. branches), for the record


class Modality(Protocol):
    """One kind of signal, as the run needs it."""

    kind: ClassVar[str]
    settings_type: ClassVar[type[Settings]]
    #: Long side of the first scale of an ``auto`` coarse-to-fine schedule.
    coarsest: ClassVar[int]
    #: The valid range of G (clamped after each upsampling and at the end), or None.
    bounds: ClassVar[tuple[float, float] | None]
    #: Width in samples of the blend from C into a styled mask region (0: a hard edge).
    feather: ClassVar[int]
    #: What to lower when a run would not fit the memory limit (ends a one-line error).
    memory_hint: ClassVar[str]
    #: The type ``run`` returns (``Result`` or a subclass with the kind's conveniences).
    result_type: ClassVar[type[Result]]

    def load(self, content: Any, styles: Sequence[Any], settings: Any, device: torch.device) -> Signals:
        """Read C and every S (NStyleError naming the file on bad input)."""
        ...

    def network(self, signals: Signals, settings: Any, device: torch.device) -> Network:
        """The network and its layers for these signals."""
        ...

    def style_weight(self, settings: Any) -> float:
        """β: the settings' own, or the kind's default."""
        ...

    def content_weight(self, network: Network, content: torch.Tensor) -> float:
        """The default α for a content signal at one scale."""
        ...

    def start(self, content: torch.Tensor, style: torch.Tensor, settings: Any) -> torch.Tensor:
        """The initial G on ``content``'s grid (``settings.init``, ``settings.seed``)."""
        ...

    def resize(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """``x`` on a coarser grid ``shape`` (antialiased), for one scale of a run."""
        ...

    def finish(self, g: torch.Tensor, signals: Signals, settings: Any) -> torch.Tensor:
        """G in the output's units (colours restored, phase recovered, units put back)."""
        ...

    def save(self, g: torch.Tensor, path: Path, meta: Any) -> Path:
        """Write G atomically in the format ``path`` names, with the content's metadata."""
        ...

    def check_output(self, path: str, content: Any, settings: Any) -> Path:
        """Refuse, before any work, an output ``save`` would refuse (folder, extension, format)."""
        ...


@dataclass
class Result(BestStep):
    """What a run returns: the best G found (in the output's units), its record, and ``save``."""

    tensor: torch.Tensor
    history: list[StepInfo]
    best_step: int
    interrupted: bool
    options: dict[str, Any] = field(default_factory=dict)
    modality: Modality | None = None
    meta: Any = None
    #: (what, path) of the run's file inputs: ``save`` will not write over them.
    inputs: list[tuple[str, Path]] = field(default_factory=list)

    def save(self, path: str | Path, overwrite_input: bool = False) -> Path:
        """Write G atomically, in the format the extension names, with the content's metadata.
        A path that names one of the run's input files is refused unless ``overwrite_input``."""
        if self.modality is None:
            raise NStyleError("this result has no modality to save it with")
        check_run_paths([("output", Path(path))], self.inputs, overwrite_input)
        return self.modality.save(self.tensor, Path(path), self.meta)


def per_element_alpha(network: Network, content: torch.Tensor) -> float:
    """α = 1 / (number of elements of the content layers' activations of C).

    J_content is a sum over those elements while J_style (Grams divided by M) is not, so
    this α keeps the balance of a default run the same at any length or size of signal.
    A net that samples its input is measured on all of it. Only the shapes count, so they
    are taken on the meta device (a 128³ volume's slices took 8 s to run for real).
    """
    model = network.model
    if isinstance(model, SampledNet) and model.sampled:
        model.use_all_slices()
    layers = list(network.content_layers)
    acts = on_meta(model, tuple(content.shape), layers) if isinstance(model, torch.nn.Module) else None
    if acts is None:
        with torch.no_grad():
            acts = model(content, layers)
    return 1.0 / sum(acts[n].numel() for n in network.content_layers)


def settings_default(settings: Settings, name: str) -> Any:
    """The declared default of field ``name`` of ``settings``' type (``nstyle.options``)."""
    return next(f.default for f in fields(settings) if f.name == name)


def declared_style_weight(settings: Settings) -> float:
    """β: the settings' own, or the default declared for the kind (``nstyle.options``), per
    balance where the kind declares a table of them (``style_weights``)."""
    if settings.style_weight is not None:
        return float(settings.style_weight)
    table = getattr(settings, "style_weights", None)
    if table is not None:
        return float(table[settings.balance])
    return float(settings_default(settings, "style_weight"))


def init_source(settings: Settings) -> Any:
    """``settings.init`` when it is a file or an array to start from; None for a named start."""
    init = settings.init
    return None if isinstance(init, str) and init in NAMED_INITS else init


def sequence_start(content: torch.Tensor, style: torch.Tensor, settings: Settings) -> torch.Tensor:
    """The start of a 1D G: noise at the content's own level per channel, the content, or
    the style tiled/cut to the content's length (not stretched: that would change its pitch)."""
    if settings.init == "noise":
        return noise_like(content, settings.seed)
    if settings.init == "style":
        return fit_length(style, content.shape[-1])
    return initial_signal(settings.init, content, style, seed=settings.seed)
