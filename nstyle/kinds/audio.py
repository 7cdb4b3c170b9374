"""The sound adapter: random multi-branch convolutions over the log-magnitude STFT.

No pretrained 1D network exists offline, and random single-layer features are the
published practice for sound (Ulyanov & Lebedev 2016). ``mode="waveform"`` optimises the
samples through a differentiable STFT (no phase retrieval); ``mode="magnitude"`` optimises
the log-magnitude itself and recovers phase with Griffin-Lim from the content's phase.
Content and styles are resampled to ``rate`` and may differ in length; G has the
content's length and channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..core.multiscale import shrink
from ..errors import NStyleError
from ..nets.random import Branch, RandomBranches, parse_branches
from ..options import DEFAULT_AUDIO_BRANCHES, AudioSettings
from ..outputs.atomic import check_writable
from ..resources import check_elements
from ..validators import check_extension, layer_weights, parse_blend
from .base import Network, Result, Signals, declared_style_weight, per_element_alpha, sequence_start
from .series import autocorrelation_peak, branches_text

# Coarse-to-fine over STFT frames (magnitude mode) starts at 64 frames: 0.74 s at
# 22.05 kHz with hop 256, still several spans of the default 41-frame dilated branch.
COARSEST_FRAMES = 64
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # what save_audio writes
# A style whose loudness repeats more slowly (a busy tone: on/off every 0.5 s) gets one more
# branch of 11 taps spanning about two of its periods: a Gram matrix only holds a rhythm
# whose whole on-off-on cycle fits inside one filter's span.
RHYTHM_WIDTH, RHYTHM_FILTERS, RHYTHM_PERIODS = 11, 1024, 2


@dataclass
class AudioMeta:
    """What finishing and saving need: the content waveform (for its phase and length) and format."""

    waveform: torch.Tensor
    rate: int
    subtype: str | None


def match_channels(s: torch.Tensor, channels: int) -> torch.Tensor:
    """A style with another channel count than the content: mixed to mono, then repeated."""
    if s.shape[1] == channels:
        return s
    return s.mean(dim=1, keepdim=True).expand(-1, channels, -1).contiguous()


def spectral(x: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """A signal of the run as log-magnitude frames (N, ch·F, frames): waveforms are
    transformed, magnitude mode's signals already are."""
    from ..modalities.audio import log_magnitude

    return log_magnitude(x, settings.n_fft, settings.hop) if settings.mode == "waveform" else x


def rhythm_branches(base: list[Branch], loudness: Sequence[torch.Tensor], frames: int) -> list[Branch]:
    """``base``, plus a branch of ``RHYTHM_WIDTH`` taps spanning about ``RHYTHM_PERIODS``
    periods of the slowest repeating loudness among the styles' (each (1, 1, frames)), where
    that is wider than ``base``'s widest branch; its span is cut to ``frames`` (the shortest
    signal), and no branch is added where the cut leaves it no wider."""
    periods = [p for p in (autocorrelation_peak(x.double(), min_lag=3) for x in loudness) if p is not None]
    widest = max(b.span for b in base)
    if not periods:
        return base
    want = RHYTHM_PERIODS * max(periods)
    dilation = min(-(-(want - 1) // (RHYTHM_WIDTH - 1)), (frames - 1) // (RHYTHM_WIDTH - 1))
    extra = Branch(RHYTHM_WIDTH, RHYTHM_FILTERS, max(dilation, 1))
    return [*base, extra] if extra.span > widest else base


class AudioModality:
    """Sounds (WAV, FLAC, OGG): (1, channels, T) waveforms in [-1, 1], or their log-magnitude."""

    kind: ClassVar[str] = "audio"
    settings_type: ClassVar[type[AudioSettings]] = AudioSettings
    result_type: ClassVar[type[Result]] = Result
    coarsest: ClassVar[int] = COARSEST_FRAMES
    memory_hint: ClassVar[str] = "use a shorter clip (--max-seconds), a larger --hop or fewer --branches filters"
    bounds: ClassVar[tuple[float, float] | None] = None
    feather: ClassVar[int] = 0

    def load(self, content: Any, styles: Sequence[Any], settings: AudioSettings, device: torch.device) -> Signals:
        # Imported here so that `import nstyle` needs no audio libraries until sound is used.
        from ..modalities.audio import load_audio, log_magnitude

        sigs = [load_audio(x, rate=settings.rate, max_seconds=settings.max_seconds) for x in [content, *styles]]
        for sig in sigs:  # the STFT's reflect padding needs more than n_fft / 2 samples
            if sig.tensor.shape[-1] <= settings.n_fft // 2:
                raise NStyleError(
                    f"{sig.source}: {sig.tensor.shape[-1]} samples at {sig.rate} Hz is too short for "
                    f"n_fft={settings.n_fft} (needs over {settings.n_fft // 2}); use a longer clip or a smaller --n-fft"
                )
        parse_blend(settings.style_blend, len(styles))
        c = sigs[0].tensor.to(device)
        s = [match_channels(sig.tensor, c.shape[1]).to(device) for sig in sigs[1:]]
        self._frames_fit(sigs, settings)
        meta = AudioMeta(c, sigs[0].rate, sigs[0].subtype)
        if settings.mode == "magnitude":  # the signal optimised is the log-magnitude itself
            c, s = (
                log_magnitude(c, settings.n_fft, settings.hop),
                [log_magnitude(x, settings.n_fft, settings.hop) for x in s],
            )
        return Signals(c, s, meta, source=sigs[0].source, style_sources=[x.source for x in sigs[1:]])

    def _frames_fit(self, sigs: list[Any], settings: AudioSettings) -> None:
        span = max(b.span for b in parse_branches(settings.branches or DEFAULT_AUDIO_BRANCHES))
        for sig in sigs:
            n = 1 + sig.tensor.shape[-1] // settings.hop
            # the complex STFT, its magnitude and its log: four floats per frame and bin
            check_elements(
                f"{sig.source}: the STFT of {n:,} frames", (n, settings.n_fft // 2 + 1, sig.tensor.shape[1]),
                self.memory_hint, copies=4,
            )
            if n < span:
                raise NStyleError(
                    f"{sig.source}: {n} STFT frames is shorter than the widest branch ({span} frames); "
                    "use a longer clip, a smaller --hop or narrower --branches"
                )

    def network(self, signals: Signals, settings: AudioSettings, device: torch.device) -> Network:
        from ..modalities.audio import log_magnitude

        meta: AudioMeta = signals.meta
        n_bins = meta.waveform.shape[1] * (settings.n_fft // 2 + 1)
        # Magnitude mode optimises log(1 + |X|) directly; its features see |G| so that G can
        # never leave the valid (non-negative) domain, which L-BFGS otherwise exploits.
        waveform = settings.mode == "waveform"
        spectrum = (lambda x: log_magnitude(x, settings.n_fft, settings.hop)) if waveform else torch.abs
        if settings.branches:
            branches = parse_branches(settings.branches)
        else:
            loudness = [spectral(x, settings).mean(dim=1, keepdim=True) for x in signals.styles]
            fit = min(x.shape[-1] for x in [spectral(signals.content, settings), *loudness])
            branches = rhythm_branches(parse_branches(DEFAULT_AUDIO_BRANCHES), loudness, fit)
        net = RandomBranches(
            n_bins, branches, dims=1, seed=settings.net_seed, preprocess=spectrum, edges="reflect"
        ).to(device)
        content_layer = settings.content_layer or net.default_layers()[0]
        layers = layer_weights(settings.style_layers, net.default_layers())
        net.check_layers([content_layer, *layers])
        min_side = settings.n_fft // 2 + 1 if waveform else net.max_span
        return Network(net, [content_layer], layers, min_side=min_side, options={"branches": branches_text(branches)})

    def style_weight(self, settings: AudioSettings) -> float:
        return declared_style_weight(settings)

    def content_weight(self, network: Network, content: torch.Tensor) -> float:
        return per_element_alpha(network, content)

    def start(self, content: torch.Tensor, style: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
        g = sequence_start(content, style, settings)
        # Magnitude mode: noise per frequency bin at the content's level (white noise's flat
        # spectrum is too far for the random features to pull back: measured, the profile
        # ends 2.3x farther from S than C was), made non-negative as a magnitude must be.
        return g.abs() if settings.mode == "magnitude" and settings.init == "noise" else g

    def resize(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return shrink(x, shape)

    def finish(self, g: torch.Tensor, signals: Signals, settings: AudioSettings) -> torch.Tensor:
        meta: AudioMeta = signals.meta
        if settings.mode == "magnitude":
            from ..modalities.audio import griffin_lim, stft_phase

            phase = stft_phase(meta.waveform, settings.n_fft, settings.hop)
            g = griffin_lim(
                g.abs(), settings.n_fft, settings.hop, length=meta.waveform.shape[-1],
                n_iter=settings.griffin_lim_iters, phase=phase,
            )
        return g.clamp(-1, 1).cpu()

    def save(self, g: torch.Tensor, path: Path, meta: AudioMeta) -> Path:
        from ..modalities.audio import save_audio

        return save_audio(g, path, rate=meta.rate, subtype=meta.subtype)

    def check_output(self, path: str, content: Any, settings: AudioSettings) -> Path:
        return check_extension(check_writable(path), AUDIO_EXTENSIONS, "sound")
