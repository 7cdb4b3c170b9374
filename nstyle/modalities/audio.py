"""Audio in and out with soundfile (libsndfile), plus the spectral helpers style transfer
on sound needs.

Any file libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, ...) becomes a float32 tensor
(1, channels, T) in [-1, 1], mono or stereo, optionally resampled with soxr. Results are
written back as WAV, FLAC or OGG/Vorbis, atomically.

Spectral layout, shared by :func:`log_magnitude`, :func:`stft_phase` and
:func:`griffin_lim`: a signal (N, ch, T) becomes (N, ch * F, frames) with
F = n_fft // 2 + 1, channel-major (all F bins of channel 0, then those of channel 1), so a
spectrogram is an ordinary 1D multi-channel signal over frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from ..errors import NStyleError
from ..outputs.atomic import write_atomic
from ..resources import check_elements
from ..validators import check_input_file

# extension -> (libsndfile container, default subtype)
SAVE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
MAX_CHANNELS = 2
RESAMPLE_QUALITY = "HQ"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
GRIFFIN_LIM_SEED = 0


@dataclass
class AudioSignal:
    """A sound as the engine sees it, plus what is needed to write it back."""

    tensor: torch.Tensor  # (1, n_channels, T) float32 in [-1, 1]; n_channels is 1 or 2
    rate: int  # sample rate of ``tensor`` (after any resampling)
    source: str = "<array>"  # the path, for messages
    subtype: str | None = None  # soundfile subtype of the source ('PCM_16', 'FLOAT', 'VORBIS', ...)

    @property
    def channels(self) -> int:
        return int(self.tensor.shape[1])

    @property
    def seconds(self) -> float:
        return self.tensor.shape[-1] / self.rate


# --------------------------------------------------------------------------- reading


def load_audio(
    path: str | Path, rate: int | None = None, mono: bool = False, max_seconds: float | None = None
) -> AudioSignal:
    """Read ``path`` as float32 (1, channels, T) in [-1, 1].

    ``rate`` resamples (soxr, 'HQ') when it differs from the file's rate; ``mono`` averages
    the channels (and is the way to read files with more than two); ``max_seconds`` keeps
    only the start of the file.
    """
    path = Path(path)
    label = str(path)
    if rate is not None:
        _check_rate(rate, label)
    if max_seconds is not None and not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise NStyleError(f"{label}: max_seconds must be a positive number of seconds, got {max_seconds!r}")
    check_input_file(path, "audio file")

    data, file_rate, subtype = _read(path, label, mono, max_seconds)
    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    out_rate = file_rate
    if rate is not None and rate != file_rate:
        data = soxr.resample(data, file_rate, rate, quality=RESAMPLE_QUALITY)
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        out_rate = int(rate)
        if max_seconds is not None:
            data = data[: max(1, round(max_seconds * out_rate))]
        if data.shape[0] == 0:
            raise NStyleError(f"{label}: too short to resample from {file_rate} Hz to {out_rate} Hz")
    # resampling can overshoot a full-scale signal a little, and float files may exceed 1
    data = np.clip(data, -1.0, 1.0)
    tensor = torch.from_numpy(np.ascontiguousarray(data.T))[None].contiguous()
    return AudioSignal(tensor, out_rate, label, subtype)


def _read(path: Path, label: str, mono: bool, max_seconds: float | None) -> tuple[np.ndarray, int, str | None]:
    """(T, channels) float32, the file's rate and subtype; every failure an NStyleError."""
    try:
        with sf.SoundFile(path) as f:
            channels, file_rate, subtype = f.channels, int(f.samplerate), f.subtype
            if channels > MAX_CHANNELS and not mono:
                raise NStyleError(
                    f"{label}: has {channels} audio channels, at most {MAX_CHANNELS} (stereo) are supported; "
                    "load it as mono to mix them down"
                )
            if file_rate <= 0:
                raise NStyleError(f"{label}: unusable sample rate {file_rate} Hz in the file")
            frames = -1 if max_seconds is None else max(1, round(max_seconds * file_rate))
            claimed = f.frames if frames < 0 else min(frames, f.frames)
            check_elements(f"{label}: {claimed:,} frames", (claimed, channels), "use --max-seconds")
            # libsndfile opens some codecs (GSM 6.10) as not seekable: they need an explicit count
            data = f.read(frames=frames if f.seekable() else claimed, dtype="float32", always_2d=True)
    except NStyleError:
        raise
    except PermissionError:
        raise NStyleError(f"{label}: cannot read it (permission denied)") from None
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        reason = _reason(e)
        if "system error" in reason.lower():  # libsndfile's word for an OS failure
            raise NStyleError(f"{label}: cannot read it ({reason})") from None
        raise NStyleError(f"{label}: not an audio file soundfile can read ({reason})") from None
    except OSError as e:
        raise NStyleError(f"{label}: cannot read it ({e.strerror or e})") from None
    if data.shape[0] == 0:
        raise NStyleError(f"{label}: audio is empty (0 frames)")
    if not np.isfinite(data).all():
        raise NStyleError(f"{label}: audio holds NaN or infinite samples")
    return data, file_rate, subtype


def _reason(e: BaseException) -> str:
    """libsndfile's own words (without the path soundfile repeats), on one line."""
    text = getattr(e, "error_string", None) or str(e)
    return " ".join(str(text).split()) or type(e).__name__


def _check_rate(rate: object, label: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise NStyleError(f"{label}: sample rate must be a positive whole number of Hz, got {rate!r}")
    return int(rate)


# --------------------------------------------------------------------------- writing


def save_audio(x: torch.Tensor, path: str | Path, rate: int, subtype: str | None = None) -> Path:
    """Write ``x`` ((1, ch, T) or (ch, T), clipped to [-1, 1]) atomically.

    The container follows the extension: .wav and .flac (PCM_16 unless ``subtype`` says
    otherwise), .ogg (Vorbis). A ``subtype`` the container cannot hold (say the 'FLOAT' of a
    source WAV when writing FLAC) falls back to the container's default.
    """
    path = Path(path)
    label = str(path)
    entry = SAVE_FORMATS.get(path.suffix.lower())
    if entry is None:
        raise NStyleError(f"{label}: unknown audio extension; use one of {', '.join(SAVE_FORMATS)}")
    fmt, default_subtype = entry
    rate = _check_rate(rate, label)
    subtype = _pick_subtype(fmt, default_subtype, subtype, rate)

    t = x.detach().to("cpu", torch.float32)
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2 or t.shape[0] < 1:
        raise NStyleError(f"{label}: expected audio shaped (1, channels, T) or (channels, T), got {tuple(x.shape)}")
    if t.shape[1] == 0:
        raise NStyleError(f"{label}: nothing to write (0 samples)")
    if not torch.isfinite(t).all():
        raise NStyleError(f"{label}: audio to write holds NaN or infinite samples")
    data = np.ascontiguousarray(t.clamp(-1, 1).numpy().T)  # (T, ch)

    def write(tmp: Path) -> None:
        # format is given explicitly: never rely on the temporary name's suffix
        try:
            sf.write(tmp, data, rate, subtype=subtype, format=fmt)
        except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
            reason = _reason(e)
            raise NStyleError(
                f"{label}: cannot write {data.shape[1]}-channel {fmt}/{subtype} audio at {rate} Hz ({reason})"
            ) from None

    return write_atomic(path, write)


# Sample formats a result may keep from its source. Codecs (MP3, GSM 6.10, ADPCM, μ-law)
# are not carried over: libsndfile may list one for a container and still fail to write it,
# and a lossy re-encoding of a new signal is not what a user asks for by naming .wav.
KEPT_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "VORBIS", "OPUS")


def _pick_subtype(fmt: str, default: str, subtype: str | None, rate: int) -> str:
    if subtype is None:
        return default
    subtype = subtype.upper()
    if subtype not in KEPT_SUBTYPES:
        return default
    if fmt == "FLAC" and subtype in ("PCM_32", "FLOAT", "DOUBLE"):
        return "PCM_24"  # the most FLAC holds; closer to the source than 16 bits
    if subtype == "OPUS" and rate not in OPUS_RATES:
        return default
    try:
        ok = sf.check_format(fmt, subtype)
    except (TypeError, ValueError):
        ok = False
    return subtype if ok else default


# --------------------------------------------------------------------------- spectra


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> tuple[torch.Tensor, int]:
    """x (N, ch, T) -> complex STFT (N * ch, F, frames) and ch."""
    if x.dim() != 3:
        raise ValueError(f"expected a signal (N, channels, T), got shape {tuple(x.shape)}")
    if n_fft < 2 or hop < 1:
        raise ValueError(f"need n_fft >= 2 and hop >= 1, got n_fft={n_fft}, hop={hop}")
    n, ch, length = x.shape
    if length <= n_fft // 2:
        raise ValueError(f"a signal of {length} samples is too short for n_fft={n_fft} (needs over {n_fft // 2})")
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        x.reshape(n * ch, length), n_fft, hop_length=hop, win_length=n_fft, window=window,
        center=True, pad_mode="reflect", return_complex=True,
    )
    return spec, ch


def _stack(spec: torch.Tensor, n: int, ch: int) -> torch.Tensor:
    """(N * ch, F, frames) -> (N, ch * F, frames), channel-major."""
    return spec.reshape(n, ch * spec.shape[-2], spec.shape[-1])


def log_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """log1p(|STFT(x)|): (N, ch, T) -> (N, ch * (n_fft // 2 + 1), frames), differentiable.

    Hann window, center=True (reflect padding of n_fft // 2 at both ends).
    """
    spec, ch = _stft(x, n_fft, hop)
    return _stack(torch.log1p(spec.abs()), x.shape[0], ch)


def stft_phase(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """The STFT's angles in radians, laid out as :func:`log_magnitude`."""
    spec, ch = _stft(x, n_fft, hop)
    return _stack(torch.angle(spec), x.shape[0], ch)


def griffin_lim(
    log_mag: torch.Tensor,
    n_fft: int,
    hop: int,
    length: int,
    n_iter: int = 64,
    phase: torch.Tensor | None = None,
    momentum: float = 0.99,
) -> torch.Tensor:
    """A waveform (N, ch, length) whose STFT magnitude approximates expm1(``log_mag``).

    ``log_mag`` is laid out as :func:`log_magnitude` makes it. The phase starts from
    ``phase`` (same layout) if given, else uniformly random (seed 0, so runs repeat), and
    is refined by the fast Griffin-Lim algorithm (Perraudin, Balazs and Søndergaard 2013):
    c_n = STFT(ISTFT(M e^{i angle(t_{n-1})})), t_n = c_n + momentum * (c_n - c_{n-1}).
    ``momentum=0`` is the classic Griffin-Lim.
    """
    if log_mag.dim() != 3:
        raise ValueError(f"expected a spectrogram (N, channels * F, frames), got shape {tuple(log_mag.shape)}")
    if n_fft < 2 or hop < 1 or length < 1 or n_iter < 0 or momentum < 0:
        raise ValueError(
            f"need n_fft >= 2, hop >= 1, length >= 1, n_iter >= 0, momentum >= 0; "
            f"got {n_fft}, {hop}, {length}, {n_iter}, {momentum}"
        )
    n_bins = n_fft // 2 + 1
    n, rows, frames = log_mag.shape
    if rows % n_bins:
        raise ValueError(f"{rows} spectrogram rows are not a whole number of channels of {n_bins} bins (n_fft={n_fft})")
    ch = rows // n_bins
    mag = torch.expm1(log_mag.detach()).clamp_min(0).reshape(n * ch, n_bins, frames)
    real = mag.dtype
    window = torch.hann_window(n_fft, device=mag.device, dtype=real)

    if phase is not None:
        if phase.shape != log_mag.shape:
            raise ValueError(f"phase shape {tuple(phase.shape)} differs from the spectrogram's {tuple(log_mag.shape)}")
        angle = phase.detach().to(mag.device, real).reshape(n * ch, n_bins, frames)
    else:
        gen = torch.Generator(device="cpu").manual_seed(GRIFFIN_LIM_SEED)
        angle = (torch.rand(mag.shape, generator=gen, dtype=real) * (2 * math.pi)).to(mag.device)
    angles = torch.polar(torch.ones_like(angle), angle)

    def istft(spec: torch.Tensor) -> torch.Tensor:
        return torch.istft(spec, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True, length=length)

    def stft(y: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            y, n_fft, hop_length=hop, win_length=n_fft, window=window,
            center=True, pad_mode="reflect", return_complex=True,
        )

    # With t_n normalised each step, t_n ∝ c_n - momentum / (1 + momentum) * c_{n-1}.
    alpha = momentum / (1.0 + momentum)
    previous = None
    with torch.no_grad():
        for _ in range(n_iter):
            rebuilt = stft(istft(mag * angles))
            if rebuilt.shape[-1] != frames:
                raise ValueError(f"length {length} gives {rebuilt.shape[-1]} frames, the spectrogram has {frames}")
            t = rebuilt if previous is None or alpha == 0 else rebuilt - alpha * previous
            angles = t / t.abs().clamp_min(1e-16)
            previous = rebuilt
        y = istft(mag * angles)
    return y.reshape(n, ch, length)
