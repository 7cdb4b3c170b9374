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

from ..core.engine import fit_length
from ..core.multiscale import shrink
from ..errors import NStyleError
from ..nets.random import RandomBranches, parse_branches
from ..options import AudioSettings
from ..outputs.atomic import check_writable
from ..resources import check_elements
from ..validators import check_extension, layer_weights, parse_blend
from .base import (
    Network,
    Result,
    Signals,
    declared_style_weight,
    init_source,
    per_element_alpha,
    sequence_start,
    settings_default,
)

# Coarse-to-fine over STFT frames (magnitude mode) starts at 64 frames: 0.74 s at
# 22.05 kHz with hop 256, still several spans of the default 41-frame dilated branch.
COARSEST_FRAMES = 64
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # what save_audio writes


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
        init = self.load_init(settings, c)
        if settings.mode == "magnitude":  # the signal optimised is the log-magnitude itself
            c, s = (
                log_magnitude(c, settings.n_fft, settings.hop),
                [log_magnitude(x, settings.n_fft, settings.hop) for x in s],
            )
            init = None if init is None else log_magnitude(init, settings.n_fft, settings.hop)
        return Signals(c, s, meta, source=sigs[0].source, style_sources=[x.source for x in sigs[1:]], init=init)

    @staticmethod
    def load_init(settings: AudioSettings, content: torch.Tensor) -> torch.Tensor | None:
        """A sound to start from (e.g. an earlier result), read as C is: same rate and
        channels, cut or looped to C's length."""
        from ..modalities.audio import load_audio

        start = init_source(settings)
        if start is None:
            return None
        sig = load_audio(start, rate=settings.rate, max_seconds=settings.max_seconds)
        return fit_length(match_channels(sig.tensor, content.shape[1]), content.shape[-1]).to(content.device)

    def _frames_fit(self, sigs: list[Any], settings: AudioSettings) -> None:
        span = max(b.span for b in parse_branches(settings.branches or settings_default(settings, "branches")))
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
        branches = parse_branches(settings.branches or settings_default(settings, "branches"))
        net = RandomBranches(
            n_bins, branches, dims=1, seed=settings.net_seed, preprocess=spectrum, edges="reflect"
        ).to(device)
        content_layer = settings.content_layer or net.default_layers()[0]
        layers = layer_weights(settings.style_layers, net.default_layers())
        net.check_layers([content_layer, *layers])
        min_side = settings.n_fft // 2 + 1 if waveform else net.max_span
        return Network(net, [content_layer], layers, min_side=min_side)

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
