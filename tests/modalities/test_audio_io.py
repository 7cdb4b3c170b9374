"""Audio I/O and spectral helpers: load_audio, save_audio, log_magnitude, stft_phase,
griffin_lim.

Real speech comes from Debian's alsa-utils clips (48 kHz mono 16-bit); exact answers come
from small signals synthesised here and from NumPy's own STFT, not through nstyle.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import nstyle.validators
from nstyle.errors import NStyleError
from nstyle.modalities import audio
from nstyle.modalities.audio import (
    AudioSignal,
    griffin_lim,
    load_audio,
    log_magnitude,
    save_audio,
    stft_phase,
)

ALSA = Path("/usr/share/sounds/alsa")
ALSA_MISSING = "Debian package alsa-utils not installed (/usr/share/sounds/alsa missing)"
LSB16 = 1 / 32768
RNG = np.random.default_rng(4321)


def alsa_clip(name: str) -> Path:
    """A clip from alsa-utils; skipped where the package is absent, a failure under CI."""
    path = ALSA / name
    if not path.is_file():
        reason = ALSA_MISSING if not ALSA.is_dir() else f"{path} missing (Debian package alsa-utils)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it")
        pytest.skip(reason)
    return path


def assert_one_line(err: BaseException, *needles: str) -> None:
    msg = str(err)
    assert "\n" not in msg.strip(), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def temp_leftovers(folder: Path, name: str) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]


def wave(sig: AudioSignal) -> np.ndarray:
    """(channels, T) float64 of a loaded signal, after checking its type and layout."""
    t = sig.tensor
    assert t.dtype == torch.float32 and t.dim() == 3 and t.shape[0] == 1 and t.shape[1] in (1, 2)
    return t[0].double().numpy()


def write_float_wav(path: Path, data: np.ndarray, rate: int) -> Path:
    """(T, ch) float32 samples, stored exactly (FLOAT subtype)."""
    sf.write(path, np.asarray(data, dtype=np.float32), rate, subtype="FLOAT", format="WAV")
    return path


def sine(freq: float, rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def numpy_log_mag(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """log1p |STFT| of a 1D signal as (F, frames): periodic Hann frames of the signal
    reflect-padded by n_fft // 2 at both ends (what torch.stft's center=True does)."""
    padded = np.pad(y, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = 1 + (len(padded) - n_fft) // hop
    spec = np.stack([np.fft.rfft(window * padded[i * hop : i * hop + n_fft]) for i in range(frames)], axis=1)
    return np.log1p(np.abs(spec)), np.angle(spec)


# --------------------------------------------------------------------------- loading


def test_load_clip_shape_rate_range_and_samples():
    path = alsa_clip("Front_Center.wav")
    sig = load_audio(path)
    ints, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == 48000 and sig.rate == 48000
    assert sig.tensor.shape == (1, 1, ints.shape[0])
    assert sig.subtype == "PCM_16" and sig.source == str(path)
    y = wave(sig)
    assert -1.0 <= y.min() < -0.05 and 0.05 < y.max() <= 1.0  # real speech, not silence
    np.testing.assert_array_equal(y[0], ints[:, 0] / 32768.0)


def test_resample_48k_to_22050_keeps_duration():
    path = alsa_clip("Front_Left.wav")
    full = load_audio(path)
    sig = load_audio(path, rate=22050)
    t, t2 = full.tensor.shape[-1], sig.tensor.shape[-1]
    assert sig.rate == 22050 and sig.subtype == "PCM_16"
    assert abs(t2 - round(t * 22050 / 48000)) <= 1
    # the same speech, in time: its loudness in 20 ms blocks lines up with the original's
    blocks = t2 // 441
    a = np.abs(wave(full)[0])[: blocks * 960].reshape(-1, 960).mean(1)
    b = np.abs(wave(sig)[0])[: blocks * 441].reshape(-1, 441).mean(1)
    assert corr(a, b) > 0.99


def test_resampled_sine_stays_at_1khz(tmp_path):
    path = write_float_wav(tmp_path / "sine.wav", sine(1000, 48000, 48000)[:, None], 48000)
    sig = load_audio(path, rate=22050)
    y = wave(sig)[0]
    assert sig.rate == 22050 and abs(len(y) - 22050) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    peak_hz = np.argmax(spectrum) * sig.rate / len(y)
    assert abs(peak_hz - 1000) < 1.5, peak_hz
    mid = y[2000:-2000]  # amplitude kept away from the edges
    assert abs(np.sqrt(2 * np.mean(mid**2)) - 0.5) < 0.005


def test_mono_mixing_is_the_channel_mean(tmp_path):
    left, right = sine(440, 8000, 4000, 0.6), RNG.uniform(-0.3, 0.3, 4000)
    stereo = np.stack([left, right], axis=1).astype(np.float32)
    path = write_float_wav(tmp_path / "st.wav", stereo, 8000)
    both = wave(load_audio(path))
    np.testing.assert_array_equal(both, stereo.T)  # channel order kept
    mono = load_audio(path, mono=True)
    assert mono.tensor.shape == (1, 1, 4000) and mono.subtype == "FLOAT"
    np.testing.assert_allclose(wave(mono)[0], stereo.astype(np.float64).mean(axis=1), atol=1e-7)


def test_mono_mixes_more_than_two_channels(tmp_path):
    data = RNG.uniform(-0.5, 0.5, (1000, 4)).astype(np.float32)
    path = write_float_wav(tmp_path / "quad.wav", data, 8000)
    np.testing.assert_allclose(wave(load_audio(path, mono=True))[0], data.astype(np.float64).mean(1), atol=1e-7)


def test_max_seconds_cuts_the_start():
    path = alsa_clip("Side_Left.wav")
    full = wave(load_audio(path))
    half = load_audio(path, max_seconds=0.5)
    assert half.tensor.shape == (1, 1, 24000)
    np.testing.assert_array_equal(wave(half), full[:, :24000])
    low = load_audio(path, rate=16000, max_seconds=0.25)
    assert low.tensor.shape == (1, 1, 4000) and low.rate == 16000
    longer = load_audio(path, max_seconds=1000)
    assert longer.tensor.shape[-1] == full.shape[-1]


def test_float_overshoot_is_clipped(tmp_path):
    path = write_float_wav(tmp_path / "hot.wav", np.array([[1.5], [-2.0], [0.25]]), 8000)
    np.testing.assert_array_equal(wave(load_audio(path))[0], [1.0, -1.0, 0.25])


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("ext,fmt", [(".wav", "WAV"), (".flac", "FLAC")])
def test_pcm16_round_trip(tmp_path, ext, fmt):
    x = RNG.uniform(-1, 1, (1, 1, 3000)).astype(np.float32)
    x[0, 0, :4] = [1.0, -1.0, 1.7, -3.0]  # full scale and beyond: clipped, not wrapped
    out = save_audio(torch.from_numpy(x), tmp_path / f"o{ext}", 11025)
    assert out == tmp_path / f"o{ext}"
    info = sf.info(out)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, "PCM_16", 11025, 1)
    back = load_audio(out)
    assert back.rate == 11025 and back.subtype == "PCM_16"
    np.testing.assert_allclose(wave(back), np.clip(x[0], -1, 1), rtol=0, atol=LSB16 + 1e-9)
    assert wave(back)[0, 2] > 0.999 and wave(back)[0, 3] == -1.0


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_16bit_clip_round_trip_is_exact(tmp_path, ext):
    sig = load_audio(alsa_clip("Rear_Center.wav"))
    back = load_audio(save_audio(sig.tensor, tmp_path / f"c{ext}", sig.rate, sig.subtype))
    np.testing.assert_array_equal(wave(back), wave(sig))


def test_ogg_round_trip(tmp_path):
    sig = load_audio(alsa_clip("Front_Center.wav"), max_seconds=1.0)
    out = save_audio(sig.tensor, tmp_path / "c.ogg", sig.rate)
    info = sf.info(out)
    assert (info.format, info.subtype) == ("OGG", "VORBIS")
    back = load_audio(out)
    assert back.rate == sig.rate and back.subtype == "VORBIS"
    assert abs(back.tensor.shape[-1] - sig.tensor.shape[-1]) <= 1
    n = min(back.tensor.shape[-1], sig.tensor.shape[-1])
    assert corr(wave(back)[0, :n], wave(sig)[0, :n]) > 0.9


def test_stereo_round_trip(tmp_path):
    x = np.stack([sine(300, 16000, 2000, 0.8), sine(1234, 16000, 2000, 0.3)])
    out = save_audio(torch.from_numpy(x).float(), tmp_path / "st.wav", 16000)  # (ch, T) accepted too
    assert sf.info(out).channels == 2
    back = load_audio(out)
    assert back.tensor.shape == (1, 2, 2000)
    np.testing.assert_allclose(wave(back), x, rtol=0, atol=LSB16 + 1e-7)
    flac = load_audio(save_audio(back.tensor, tmp_path / "st.flac", 16000))
    np.testing.assert_array_equal(wave(flac), wave(back))


def test_source_subtype_is_kept_or_falls_back(tmp_path):
    x = torch.from_numpy(RNG.uniform(-1, 1, (1, 1, 500)).astype(np.float32))
    out = save_audio(x, tmp_path / "f.wav", 8000, subtype="FLOAT")
    assert sf.info(out).subtype == "FLOAT"
    np.testing.assert_array_equal(wave(load_audio(out)), x[0].double().numpy())
    assert sf.info(save_audio(x, tmp_path / "f.flac", 8000, subtype="FLOAT")).subtype == "PCM_24"
    assert sf.info(save_audio(x, tmp_path / "f24.wav", 8000, subtype="PCM_24")).subtype == "PCM_24"
    assert sf.info(save_audio(x, tmp_path / "f.ogg", 8000, subtype="PCM_16")).subtype == "VORBIS"
    assert sf.info(save_audio(x, tmp_path / "v.wav", 8000, subtype="VORBIS")).subtype == "PCM_16"


def test_upper_case_extension(tmp_path):
    x = torch.zeros(1, 1, 100)
    assert sf.info(save_audio(x, tmp_path / "LOUD.FLAC", 8000)).format == "FLAC"


# --------------------------------------------------------------------------- spectra


@pytest.mark.parametrize("n_fft,hop", [(64, 16), (63, 20)])
def test_log_magnitude_matches_numpy_stft(n_fft, hop):
    x = RNG.uniform(-1, 1, (2, 2, 301)).astype(np.float32)
    lm = log_magnitude(torch.from_numpy(x), n_fft, hop)
    n_bins = n_fft // 2 + 1
    assert lm.shape == (2, 2 * n_bins, 1 + 301 // hop) and lm.dtype == torch.float32
    for n in range(2):
        for c in range(2):  # channel-major: bins of channel 0, then channel 1
            want, _ = numpy_log_mag(x[n, c].astype(np.float64), n_fft, hop)
            np.testing.assert_allclose(lm[n, c * n_bins : (c + 1) * n_bins].numpy(), want, rtol=1e-4, atol=1e-6)


def test_log_magnitude_of_a_bin_centred_sine():
    n_fft, hop, k0, amp = 256, 64, 20, 0.5
    x = torch.from_numpy(sine(k0 / n_fft, 1, 4096, amp)).float()[None, None]
    lm = log_magnitude(x, n_fft, hop)
    # |X[k0]| = amp * sum(hann) / 2 = amp * n_fft / 4 in every frame away from the ends
    np.testing.assert_allclose(lm[0, k0, 4:-4].numpy(), np.log1p(amp * n_fft / 4), rtol=1e-5)
    assert lm[0, k0, 4:-4].min() > 10 * lm[0, k0 + 5 :, 4:-4].max()


def test_log_magnitude_gradient():
    x = torch.from_numpy(RNG.uniform(-1, 1, (1, 2, 40))).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: log_magnitude(v, 16, 4), (x,), eps=1e-6, atol=1e-5)
    # the rows of channel 0 depend on channel 0 only
    log_magnitude(x, 16, 4)[:, :9].sum().backward()
    assert x.grad[0, 0].abs().sum() > 0 and torch.all(x.grad[0, 1] == 0)


def test_stft_phase_matches_numpy():
    n_fft, hop = 32, 8
    x = RNG.uniform(-1, 1, (1, 2, 200)).astype(np.float32)
    ph = stft_phase(torch.from_numpy(x), n_fft, hop)
    n_bins = n_fft // 2 + 1
    assert ph.shape == (1, 2 * n_bins, 1 + 200 // hop)
    for c in range(2):
        mag, want = numpy_log_mag(x[0, c].astype(np.float64), n_fft, hop)
        got = ph[0, c * n_bins : (c + 1) * n_bins].double().numpy()
        solid = mag > 0.05  # the angle of a near-zero bin is noise
        assert solid.mean() > 0.9
        diff = np.angle(np.exp(1j * (got - want)))[solid]
        assert np.abs(diff).max() < 1e-3


def test_griffin_lim_from_true_phase_reconstructs():
    sig = load_audio(alsa_clip("Front_Right.wav"), rate=16000, max_seconds=0.5)
    x, n_fft, hop = sig.tensor, 512, 128
    lm, ph = log_magnitude(x, n_fft, hop), stft_phase(x, n_fft, hop)
    exact = griffin_lim(lm, n_fft, hop, x.shape[-1], n_iter=0, phase=ph)
    assert exact.shape == x.shape
    np.testing.assert_allclose(exact.numpy(), x.numpy(), atol=2e-5)
    y = griffin_lim(lm, n_fft, hop, x.shape[-1], n_iter=16, phase=ph)
    assert corr(y.numpy(), x.numpy()) > 0.99


def test_griffin_lim_stereo_keeps_channels():
    n_fft, hop, T = 128, 32, 2000
    x = torch.from_numpy(np.stack([sine(0.05, 1, T), RNG.uniform(-0.5, 0.5, T)])[None]).float()
    y = griffin_lim(log_magnitude(x, n_fft, hop), n_fft, hop, T, n_iter=8, phase=stft_phase(x, n_fft, hop))
    assert y.shape == (1, 2, T)
    assert corr(y[0, 0].numpy(), x[0, 0].numpy()) > 0.99 and corr(y[0, 1].numpy(), x[0, 1].numpy()) > 0.99


def spectral_convergence(y: torch.Tensor, mag: torch.Tensor, n_fft: int, hop: int) -> float:
    got = torch.expm1(log_magnitude(y, n_fft, hop))
    return float((got - mag).norm() / mag.norm())


def test_griffin_lim_from_random_phase_converges():
    sig = load_audio(alsa_clip("Front_Center.wav"), rate=16000, max_seconds=1.0)
    x, n_fft, hop = sig.tensor, 512, 128
    lm = log_magnitude(x, n_fft, hop)
    mag = torch.expm1(lm)
    T = x.shape[-1]
    y64 = griffin_lim(lm, n_fft, hop, T, n_iter=64)
    y4 = griffin_lim(lm, n_fft, hop, T, n_iter=4)
    sc64, sc4 = spectral_convergence(y64, mag, n_fft, hop), spectral_convergence(y4, mag, n_fft, hop)
    assert y64.shape == x.shape and torch.isfinite(y64).all()
    assert sc64 < 0.25 and sc64 < sc4, (sc64, sc4)
    # the momentum matters: classic Griffin-Lim (momentum 0) is clearly behind after 64 steps
    classic = spectral_convergence(griffin_lim(lm, n_fft, hop, T, n_iter=64, momentum=0.0), mag, n_fft, hop)
    assert sc64 < 0.6 * classic, (sc64, classic)
    # seeded: the same call gives the same waveform
    torch.testing.assert_close(griffin_lim(lm, n_fft, hop, T, n_iter=4), y4, rtol=0, atol=0)


def test_griffin_lim_rejects_a_bad_layout():
    with pytest.raises(ValueError, match="bins"):
        griffin_lim(torch.zeros(1, 40, 10), 64, 16, 200)


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "no such file")


def test_folder(tmp_path):
    with pytest.raises(NStyleError) as e:
        load_audio(tmp_path)
    assert_one_line(e.value, str(tmp_path), "folder")


def test_unreadable_file(tmp_path, monkeypatch):
    p = write_float_wav(tmp_path / "locked.wav", np.zeros((10, 1)), 8000)
    real = os.access
    monkeypatch.setattr(nstyle.validators.os, "access", lambda q, m: False if Path(q) == p else real(q, m))
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "permission denied")


@pytest.mark.parametrize("content", [b"hello, this is not a sound\n" * 20, b"RIFF\x24\x00\x00\x00WAVEfmt "])
def test_not_audio(tmp_path, content):
    p = tmp_path / "fake.wav"
    p.write_bytes(content)
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "not an audio file")


def test_empty_audio(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 1), np.float32), 8000, subtype="PCM_16")
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "empty", "0 frames")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    p = write_float_wav(tmp_path / "nan.wav", np.array([[0.1], [bad], [0.2]]), 8000)
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "NaN or infinite")


def test_more_than_two_channels(tmp_path):
    p = write_float_wav(tmp_path / "six.wav", np.zeros((100, 6)), 8000)
    with pytest.raises(NStyleError) as e:
        load_audio(p)
    assert_one_line(e.value, str(p), "6 audio channels", "mono")


@pytest.mark.parametrize("rate", [0, -8000, 22050.5])
def test_bad_rate(tmp_path, rate):
    p = write_float_wav(tmp_path / "ok.wav", np.zeros((100, 1)), 8000)
    with pytest.raises(NStyleError) as e:
        load_audio(p, rate=rate)
    assert_one_line(e.value, str(p), "sample rate")
    out = tmp_path / "out.wav"
    with pytest.raises(NStyleError) as e:
        save_audio(torch.zeros(1, 1, 10), out, rate)
    assert_one_line(e.value, str(out), "sample rate")
    assert not out.exists()


def test_unknown_output_extension(tmp_path):
    out = tmp_path / "song.mp4"
    with pytest.raises(NStyleError) as e:
        save_audio(torch.zeros(1, 1, 10), out, 8000)
    assert_one_line(e.value, str(out), "unknown audio extension", ".wav")
    assert not out.exists()


@pytest.mark.parametrize(
    "x,needle",
    [
        (torch.full((1, 1, 5), float("nan")), "NaN"),
        (torch.zeros(1, 1, 0), "0 samples"),
        (torch.zeros(2, 1, 5), "shaped"),
    ],
)
def test_unwritable_tensors(tmp_path, x, needle):
    out = tmp_path / "o.wav"
    with pytest.raises(NStyleError) as e:
        save_audio(x, out, 8000)
    assert_one_line(e.value, str(out), needle)
    assert not out.exists()


def test_missing_output_folder(tmp_path):
    out = tmp_path / "no" / "o.wav"
    with pytest.raises(NStyleError) as e:
        save_audio(torch.zeros(1, 1, 10), out, 8000)
    assert_one_line(e.value, str(out), "does not exist")


@pytest.mark.parametrize("failure", [RuntimeError("encoder blew up"), OSError(errno.ENOSPC, "No space left on device")])
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, failure):
    out = tmp_path / "keep.flac"
    old = save_audio(torch.full((1, 1, 50), 0.25), out, 8000).read_bytes()

    def half_write(file, data, rate, **kw):
        Path(file).write_bytes(b"fLaC half a file")
        raise failure

    monkeypatch.setattr(audio.sf, "write", half_write)
    with pytest.raises(NStyleError) as e:
        save_audio(torch.zeros(1, 1, 50), out, 8000)
    assert_one_line(e.value, str(out))
    assert out.read_bytes() == old
    assert temp_leftovers(tmp_path, out.name) == []
    monkeypatch.undo()
    np.testing.assert_allclose(wave(load_audio(out)), 0.25)
