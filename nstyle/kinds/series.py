"""The series adapter: multichannel time series (ECG, EEG, sensor logs) through random 1D convolutions.

Each lead is standardised (its own mean and standard deviation) so that leads in
different units count alike; G is optimised in those units and mapped back with the
content's mean and standard deviation. Leads are the channels; C and S need the same
number. The default branches span from 5 samples up to about one period of the content
(``estimate_period``), e.g. one heartbeat for an ECG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..core.engine import fit_length
from ..core.multiscale import shrink
from ..errors import NStyleError
from ..modalities.series import DICOM_EXTS, SeriesSignal, load_series, save_series
from ..nets.random import Branch, RandomBranches, parse_branches
from ..options import SeriesSettings
from ..outputs.atomic import check_writable
from ..validators import check_extension, layer_weights, parse_blend, parse_names
from .base import Network, Result, Signals, declared_style_weight, init_source, per_element_alpha, sequence_start

# Time series: from 5 samples up to about one period of the content (see series_branches).
SERIES_FILTERS = 256
# Coarse-to-fine over time starts at 256 samples: a few periods of a 1 kHz ECG at 60 bpm
# shrunk, still more than the widest default branch spans at that scale.
COARSEST_SAMPLES = 256
TABLES = (".csv", ".tsv", ".txt")  # a time column only exists in a table
SERIES_EXTENSIONS = (*TABLES, ".npy", *DICOM_EXTS)  # what save_series writes


@dataclass
class SeriesMeta:
    """The content as read (names, rate, format) and each lead's mean and standard deviation."""

    like: SeriesSignal
    mean: torch.Tensor
    std: torch.Tensor


def estimate_period(x: torch.Tensor, min_lag: int = 8) -> int:
    """The dominant period in samples of (1, leads, T): the highest autocorrelation peak.

    Computed with an FFT on the lead-averaged, mean-removed signal; lags from
    ``min_lag`` to T/2 are searched. Returns T/4 when nothing periodic stands out.
    """
    v = x[0].double()
    v = (v - v.mean(dim=-1, keepdim=True)) / v.std(dim=-1, keepdim=True).clamp_min(1e-12)
    t = v.shape[-1]
    spec = torch.fft.rfft(v, n=2 * t)
    ac = torch.fft.irfft(spec * spec.conj(), n=2 * t)[..., :t].mean(dim=0)
    ac = ac / ac[0].clamp_min(1e-12)
    # Skip the initial decay of a smooth signal: search only after ac first drops below 0.
    below = torch.nonzero(ac[min_lag:] < 0)
    lo = min_lag + (int(below[0]) if below.numel() else 0)
    hi = max(lo + 1, t // 2)
    window = ac[lo:hi]
    if window.numel() == 0 or float(window.max()) < 0.2:
        return max(min_lag, t // 4)
    # The first local maximum that is close to the global one: the fundamental, not a multiple.
    peak = float(window.max())
    for i in range(1, window.numel() - 1):
        if window[i] >= window[i - 1] and window[i] >= window[i + 1] and window[i] >= 0.8 * peak:
            return lo + i
    return lo + int(window.argmax())


def series_branches(period: int, filters: int = SERIES_FILTERS, width: int = 5) -> list[Branch]:
    """Branches of ``width`` taps with dilations 1, 4, 16, ... spanning from a few samples
    up to about one period (the last branch is the largest span not above ``period``)."""
    out = [Branch(width, filters, 1)]
    d = 4
    while (width - 1) * d + 1 <= period:
        out.append(Branch(width, filters, d))
        d *= 4
    return out


def lead_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-lead mean and standard deviation of (1, leads, T); flat leads get std 1."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True)
    return mean, torch.where(std > 1e-12, std, torch.ones_like(std))


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each lead of (1, leads, T) to mean 0 and standard deviation 1."""
    mean, std = lead_stats(x)
    return (x - mean) / std


def branches_text(branches: Sequence[Branch]) -> str:
    """Branches in the CLI's ``width[xdilation]:filters`` form."""
    return ",".join(f"{b.width}" + (f"x{b.dilation}" if b.dilation > 1 else "") + f":{b.filters}" for b in branches)


class SeriesModality:
    """Series (CSV/TSV, .npy, DICOM ECG): (1, leads, T), standardised per lead."""

    kind: ClassVar[str] = "series"
    settings_type: ClassVar[type[SeriesSettings]] = SeriesSettings
    result_type: ClassVar[type[Result]] = Result
    coarsest: ClassVar[int] = COARSEST_SAMPLES
    memory_hint: ClassVar[str] = "use fewer --branches filters or a shorter series"
    bounds: ClassVar[tuple[float, float] | None] = None
    feather: ClassVar[int] = 0

    def load(self, content: Any, styles: Sequence[Any], settings: SeriesSettings, device: torch.device) -> Signals:
        columns = parse_names(settings.columns)
        c_sig = load_series(content, columns=columns, time_column=settings.time_column)
        s_sigs = [
            load_series(
                s, columns=parse_names(settings.style_columns) or columns,
                time_column=settings.time_column if Path(s).suffix.lower() in TABLES else None,
            )
            for s in styles
        ]
        for s_sig in s_sigs:
            if c_sig.tensor.shape[1] != s_sig.tensor.shape[1]:
                raise NStyleError(
                    f"{s_sig.source}: has {s_sig.tensor.shape[1]} leads but {c_sig.source} has "
                    f"{c_sig.tensor.shape[1]}; pick the same number with --columns / --style-columns"
                )
        parse_blend(settings.style_blend, len(styles))
        mean, std = lead_stats(c_sig.tensor)
        c = ((c_sig.tensor - mean) / std).to(device)
        s = [standardize(x.tensor).to(device) for x in s_sigs]
        meta = SeriesMeta(c_sig, mean, std)
        init = None
        if (start := init_source(settings)) is not None:  # e.g. an earlier result, in C's units
            i_sig = load_series(start, columns=columns, time_column=settings.time_column)
            if i_sig.tensor.shape[1] != c.shape[1]:
                raise NStyleError(f"{i_sig.source}: has {i_sig.tensor.shape[1]} leads but {c_sig.source} has "
                                  f"{c.shape[1]} (the start must have the content's leads)")
            init = fit_length((i_sig.tensor - mean) / std, c.shape[-1]).to(device)
        return Signals(c, s, meta, source=c_sig.source, style_sources=[x.source for x in s_sigs], init=init)

    def network(self, signals: Signals, settings: SeriesSettings, device: torch.device) -> Network:
        meta: SeriesMeta = signals.meta
        c = signals.content
        period = estimate_period(meta.like.tensor)
        chosen = parse_branches(settings.branches) if settings.branches else series_branches(min(period, c.shape[-1]))
        net = RandomBranches(c.shape[1], chosen, dims=1, seed=settings.net_seed).to(device)
        for source, x in signals.named():
            if x.shape[-1] < net.max_span:
                raise NStyleError(f"{source}: {x.shape[-1]} samples is shorter than the widest branch ({net.max_span})")
        content_layer = settings.content_layer or net.default_layers()[0]
        layers = layer_weights(settings.style_layers, net.default_layers())
        net.check_layers([content_layer, *layers])
        record = {"branches": branches_text(chosen), "period": period}
        return Network(net, [content_layer], layers, min_side=net.max_span, options=record)

    def style_weight(self, settings: SeriesSettings) -> float:
        return declared_style_weight(settings)

    def content_weight(self, network: Network, content: torch.Tensor) -> float:
        return per_element_alpha(network, content)

    def start(self, content: torch.Tensor, style: torch.Tensor, settings: SeriesSettings) -> torch.Tensor:
        return sequence_start(content, style, settings)

    def resize(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return shrink(x, shape)

    def finish(self, g: torch.Tensor, signals: Signals, settings: SeriesSettings) -> torch.Tensor:
        meta: SeriesMeta = signals.meta
        return (g.cpu() * meta.std + meta.mean).float()

    def save(self, g: torch.Tensor, path: Path, meta: SeriesMeta) -> Path:
        return save_series(g, path, like=meta.like)

    def check_output(self, path: str, content: Any, settings: SeriesSettings) -> Path:
        output = check_extension(check_writable(path), SERIES_EXTENSIONS, "series")
        # save_series would refuse this too, but only after the whole optimisation
        if output.suffix.lower() in DICOM_EXTS and Path(content).suffix.lower() not in DICOM_EXTS:
            raise NStyleError(f"{output}: writing DICOM needs a DICOM content; {content} is not one")
        return output
