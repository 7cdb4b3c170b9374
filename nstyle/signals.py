"""1D products on top of the engine: ``stylize_audio`` and ``stylize_series``.

Both measure with untrained multi-branch convolutions (``nets.random``): no pretrained
1D network exists offline, and random single-layer features are the published practice
for sound (Ulyanov & Lebedev 2016). The seed's costs and the engine are the image ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .api import check_weight, parse_layer_weights
from .engine import BestStep, Callback, StepInfo, optimize
from .errors import NStyleError
from .modalities.series import SeriesSignal, load_series, save_series
from .nets.random import Branch, RandomBranches, parse_branches
from .objective import StyleObjective

if TYPE_CHECKING:
    from .modalities.audio import AudioSignal

AUDIO_MODES = ("waveform", "magnitude")
# One wide layer of 4096 filters of 11 frames over the log-magnitude STFT (Ulyanov &
# Lebedev's setting), plus a dilated branch of 1024 filters spanning 41 frames (about
# 0.5 s at 22.05 kHz, hop 256) for rhythm-scale structure.
DEFAULT_AUDIO_BRANCHES = "11:4096,11x4:1024"
# Time series: from 5 samples up to about one period of the content (see series_branches).
SERIES_FILTERS = 256
# J_content is a sum over the content layer's elements (filters x frames), J_style is not:
# the default α is 1 / (number of those elements), so the balance does not drift with the
# signal's length or the branch size. β was calibrated with that α (README, 1D section).
AUDIO_STYLE_WEIGHT = 1e3
SERIES_STYLE_WEIGHT = 10.0


@dataclass
class SignalResult(BestStep):
    """The best G found, the run's record, and how to write G in the content's format."""

    tensor: torch.Tensor  # (1, channels, T) in the content's own units
    history: list[StepInfo]
    best_step: int
    interrupted: bool
    saver: Callable[[torch.Tensor, Path], Path]
    options: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write G atomically, in the format the extension names."""
        return self.saver(self.tensor, Path(path))


def _weights(
    net: RandomBranches,
    content: torch.Tensor,
    content_layer: str | None,
    style_layers: str | Mapping[str, float] | None,
    content_weight: float | None,
    style_weight: float,
) -> tuple[str, dict[str, float], float, float]:
    """Checked layers and weights; α None means 1 / (elements of the content layer)."""
    beta = check_weight("style weight", style_weight)
    layers = parse_layer_weights(style_layers) if style_layers is not None else dict.fromkeys(net.default_layers(), 1.0)
    content_layer = content_layer or net.default_layers()[0]
    net.check_layers([content_layer, *layers])
    if content_weight is None:
        with torch.no_grad():
            alpha = 1.0 / net(content, [content_layer])[content_layer].numel()
    else:
        alpha = check_weight("content weight", content_weight)
    return content_layer, layers, alpha, beta


def _noise_like(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian noise with ``x``'s per-channel mean and standard deviation.

    At the data's own scale on purpose: tiny noise around a constant stalls, because
    the ReLU features (and their gradients) of a near-flat signal are near zero.
    """
    gen = torch.Generator().manual_seed(int(seed))
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True).clamp_min(1e-8)
    return mean + std * torch.randn(x.shape, generator=gen).to(x.device)  # drawn on the CPU: same noise on any device


def _match_channels(s: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """Style with another channel count than the content: mix to mono, then repeat."""
    if s.shape[1] == channels:
        return s
    return s.mean(dim=1, keepdim=True).expand(-1, channels, -1).contiguous()


# ---- audio ---------------------------------------------------------------------------


def stylize_audio(
    content: str | Path,
    style: str | Path,
    *,
    rate: int = 22050,
    mode: str = "waveform",
    n_fft: int = 1024,
    hop: int = 256,
    branches: str = DEFAULT_AUDIO_BRANCHES,
    net_seed: int = 0,
    steps: int = 300,
    content_weight: float | None = None,
    style_weight: float = AUDIO_STYLE_WEIGHT,
    content_layer: str | None = None,
    style_layers: str | Mapping[str, float] | None = None,
    init: str = "noise",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    griffin_lim_iters: int = 64,
    max_seconds: float | None = None,
    device: str = "cpu",
    callback: Callback | None = None,
) -> SignalResult:
    """Re-render the sound ``content`` in the style (timbre, texture) of ``style``.

    Features are random convolutions over log(1 + |STFT|) with the frequency bins as
    channels. ``mode="waveform"`` optimises the samples themselves through a
    differentiable STFT (no phase retrieval); ``mode="magnitude"`` optimises the
    log-magnitude and recovers phase with Griffin-Lim, starting from the content's phase.
    Content and style are resampled to ``rate`` and may differ in length; G has the
    content's length and channels.
    """
    from .api import _device

    # Imported here so that `import nstyle` needs no audio libraries until sound is used.
    from .modalities.audio import (
        griffin_lim,
        load_audio,
        log_magnitude,
        save_audio,
        stft_phase,
    )

    if mode not in AUDIO_MODES:
        raise NStyleError(f"unknown audio mode {mode!r}; choose {' or '.join(AUDIO_MODES)}")
    if n_fft < 16 or hop < 1 or hop > n_fft:
        raise NStyleError(f"n_fft must be >= 16 and 1 <= hop <= n_fft (got n_fft={n_fft}, hop={hop})")
    if init not in ("noise", "content", "style"):
        raise NStyleError(f"unknown init {init!r} for audio; choose noise, content or style")
    options = {k: v for k, v in locals().items() if k not in ("content", "style", "callback")}
    dev = _device(device)
    c_sig: AudioSignal = load_audio(content, rate=rate, max_seconds=max_seconds)
    s_sig: AudioSignal = load_audio(style, rate=rate, max_seconds=max_seconds)
    for sig in (c_sig, s_sig):  # the STFT's reflect padding needs more than n_fft / 2 samples
        if sig.tensor.shape[-1] <= n_fft // 2:
            raise NStyleError(
                f"{sig.source}: {sig.tensor.shape[-1]} samples at {sig.rate} Hz is too short for n_fft={n_fft} "
                f"(needs over {n_fft // 2}); use a longer clip or a smaller --n-fft"
            )
    c = c_sig.tensor.to(dev)
    s = _match_channels(s_sig.tensor, c.shape[1], "style").to(dev)
    n_bins = c.shape[1] * (n_fft // 2 + 1)
    # Magnitude mode optimises log(1 + |X|) directly; its features see |G| so that G can
    # never leave the valid (non-negative) domain, which L-BFGS otherwise exploits.
    spectrum = (lambda x: log_magnitude(x, n_fft, hop)) if mode == "waveform" else torch.abs
    net = RandomBranches(n_bins, parse_branches(branches), dims=1, seed=net_seed, preprocess=spectrum).to(dev)
    if mode == "waveform":
        start = {"noise": lambda: _noise_like(c, seed), "content": c.clone, "style": lambda: _fit_length(s, c.shape[-1])}
        c_in, s_in = c, s
    else:  # the signal optimised is the log-magnitude itself
        c_in, s_in = log_magnitude(c, n_fft, hop), log_magnitude(s, n_fft, hop)
        start = {
            # Noise per frequency bin at the content's level: white noise's flat spectrum
            # is too far for the random features to pull back (measured: the profile ends
            # 2.3x farther from S than C was).
            "noise": lambda: _noise_like(c_in, seed).abs(),
            "content": c_in.clone,
            "style": lambda: _fit_length(s_in, c_in.shape[-1]),
        }
    frames = {sig.source: 1 + x.shape[-1] // hop for sig, x in ((c_sig, c), (s_sig, s))}
    for source, n in frames.items():
        if n < net.max_span:
            raise NStyleError(
                f"{source}: {n} STFT frames is shorter than the widest branch ({net.max_span} frames); "
                "use a longer clip, a smaller --hop or narrower --branches"
            )
    content_layer, layers, alpha, beta = _weights(net, c_in, content_layer, style_layers, content_weight, style_weight)
    options["content_weight"] = alpha
    g0 = start[init]()
    objective = StyleObjective(net, c_in, s_in, content_layer, layers, alpha, beta)
    run = optimize(objective, g0, steps, optimizer=optimizer, lr=lr, callback=callback)
    g = run.g.detach()
    if mode == "magnitude":
        g = griffin_lim(g.abs(), n_fft, hop, length=c.shape[-1], n_iter=griffin_lim_iters, phase=stft_phase(c, n_fft, hop))
    g = g.clamp(-1, 1).cpu()

    def saver(x: torch.Tensor, path: Path) -> Path:
        return save_audio(x, path, rate=c_sig.rate, subtype=c_sig.subtype)

    return SignalResult(g, run.history, run.best_step, run.interrupted, saver, options)


def _fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Tile or cut ``x`` along its last axis to ``length`` (a style start for G)."""
    reps = math.ceil(length / x.shape[-1])
    return x.repeat(*([1] * (x.dim() - 1)), reps)[..., :length].clone()


# ---- time series ---------------------------------------------------------------------


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


def stylize_series(
    content: str | Path,
    style: str | Path,
    *,
    columns: list[str] | None = None,
    time_column: str | None = None,
    style_columns: list[str] | None = None,
    branches: str | None = None,
    net_seed: int = 0,
    steps: int = 300,
    content_weight: float | None = None,
    style_weight: float = SERIES_STYLE_WEIGHT,
    content_layer: str | None = None,
    style_layers: str | Mapping[str, float] | None = None,
    init: str = "noise",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
) -> SignalResult:
    """Re-render the multichannel series ``content`` in the style of ``style``.

    Each lead is standardised (its own mean and standard deviation) so that leads in
    different units count alike; G is optimised in those units and mapped back with the
    content's mean and standard deviation. Leads are the channels; C and S need the same
    number (``columns`` picks them in both, ``style_columns`` in S alone). The default branches span from 5 samples up to about one period of the
    content (``estimate_period``), e.g. one heartbeat for an ECG.
    """
    from .api import _device

    if init not in ("noise", "content", "style"):
        raise NStyleError(f"unknown init {init!r} for a series; choose noise, content or style")
    options = {k: v for k, v in locals().items() if k not in ("content", "style", "callback")}
    dev = _device(device)
    c_sig: SeriesSignal = load_series(content, columns=columns, time_column=time_column)
    tables = (".csv", ".tsv", ".txt")  # a time column only exists in a table
    s_time = time_column if Path(style).suffix.lower() in tables else None
    s_sig: SeriesSignal = load_series(style, columns=style_columns or columns, time_column=s_time)
    if c_sig.tensor.shape[1] != s_sig.tensor.shape[1]:
        raise NStyleError(
            f"{s_sig.source}: has {s_sig.tensor.shape[1]} leads but {c_sig.source} has {c_sig.tensor.shape[1]}; "
            "pick the same number with --columns / --style-columns"
        )
    c_mean, c_std = _stats(c_sig.tensor)
    s_mean, s_std = _stats(s_sig.tensor)
    c = ((c_sig.tensor - c_mean) / c_std).to(dev)
    s = ((s_sig.tensor - s_mean) / s_std).to(dev)
    period = estimate_period(c_sig.tensor)
    chosen = parse_branches(branches) if branches else series_branches(min(period, c.shape[-1]))
    options["branches"] = ",".join(f"{b.width}" + (f"x{b.dilation}" if b.dilation > 1 else "") + f":{b.filters}" for b in chosen)
    options["period"] = period
    net = RandomBranches(c.shape[1], chosen, dims=1, seed=net_seed).to(dev)
    for sig, x in ((c_sig, c), (s_sig, s)):
        if x.shape[-1] < net.max_span:
            raise NStyleError(f"{sig.source}: {x.shape[-1]} samples is shorter than the widest branch ({net.max_span})")
    content_layer, layers, alpha, beta = _weights(net, c, content_layer, style_layers, content_weight, style_weight)
    options["content_weight"] = alpha
    g0 = {"noise": lambda: _noise_like(c, seed), "content": c.clone, "style": lambda: _fit_length(s, c.shape[-1])}[init]()
    objective = StyleObjective(net, c, s, content_layer, layers, alpha, beta)
    run = optimize(objective, g0, steps, optimizer=optimizer, lr=lr, callback=callback)
    g = (run.g.detach().cpu() * c_std + c_mean).float()

    def saver(x: torch.Tensor, path: Path) -> Path:
        return save_series(x, path, like=c_sig)

    return SignalResult(g, run.history, run.best_step, run.interrupted, saver, options)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-lead mean and standard deviation of (1, leads, T); flat leads get std 1."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True)
    return mean, torch.where(std > 1e-12, std, torch.ones_like(std))
