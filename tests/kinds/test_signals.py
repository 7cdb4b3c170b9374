"""1D style transfer end to end on real recordings: style statistics move to S's, content stays.

Audio: Debian alsa-utils' speech clip Front_Center.wav (content) and its Noise.wav (style),
and sound-theme-freedesktop's telephone tones, both installed by .ci/run. Series: pydicom's
bundled 12-lead ECG (waveform_ecg.dcm, 1000 Hz) as content and matplotlib's bundled EEG
traces (sample_data/eeg.dat, 800 x 4) as style.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nstyle import stylize_audio, stylize_series
from nstyle.core.functional import scaled_gram
from nstyle.errors import NStyleError
from nstyle.kinds.series import estimate_period, series_branches
from nstyle.modalities.audio import load_audio, log_magnitude
from nstyle.modalities.series import load_series
from nstyle.nets.random import Branch, RandomBranches, parse_branches

ALSA = Path("/usr/share/sounds/alsa")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")


def packaged_file(path: Path, package: str) -> Path:
    """``path`` from a Debian package that .ci/run installs: a failure in CI, a skip elsewhere."""
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} missing: .ci/run must install Debian's {package}")
        pytest.skip(f"Debian package {package} not installed ({path.parent} missing)")
    return path


def alsa_clip(name: str) -> Path:
    return packaged_file(ALSA / name, "alsa-utils")


def freedesktop_clip(name: str) -> Path:
    return packaged_file(FREEDESKTOP / name, "sound-theme-freedesktop")


# ---- the random network ------------------------------------------------------------------


def test_random_branches_are_seeded_he_and_valid():
    net = RandomBranches(3, [Branch(5, 64), Branch(5, 32, 4)], dims=1, seed=7)
    again = RandomBranches(3, [Branch(5, 64), Branch(5, 32, 4)], dims=1, seed=7)
    other = RandomBranches(3, [Branch(5, 64), Branch(5, 32, 4)], dims=1, seed=8)
    w = net.convs["w5"].weight
    assert torch.equal(w, again.convs["w5"].weight) and not torch.equal(w, other.convs["w5"].weight)
    assert abs(float(w.std()) - (2 / (3 * 5)) ** 0.5) < 0.1 * (2 / 15) ** 0.5  # He: var 2/fan_in
    x = torch.randn(1, 3, 100)
    out = net(x, ["relu_w5", "conv_w5d4"])
    assert out["relu_w5"].shape == (1, 64, 96)  # valid convolution: 100 - 5 + 1
    assert out["conv_w5d4"].shape == (1, 32, 100 - 16)  # span (5-1)*4+1 = 17
    expected = torch.nn.functional.conv1d(x, w).clamp_min(0)
    torch.testing.assert_close(out["relu_w5"], expected)
    assert not any(p.requires_grad for p in net.parameters())


def test_random_branches_work_in_2d_and_3d():
    for dims, shape in ((2, (1, 2, 9, 8)), (3, (1, 2, 6, 7, 5))):
        net = RandomBranches(2, [Branch(3, 8)], dims=dims, seed=0)
        a = net(torch.randn(shape), ["relu_w3"])["relu_w3"]
        assert a.shape == (1, 8, *[s - 2 for s in shape[2:]])


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_reflect_edges_see_every_sample_as_often_as_the_middle(dims):
    """A valid convolution sees the first and last samples through one output, the middle
    ones through ``width`` per axis; mirrored edges keep every axis's length and give the
    edge samples ``width − 1`` per axis (the mirror does not repeat the edge sample itself)
    (coverage = gradient of Σ outputs with all-one weights)."""
    shape = (1, 1, *[12] * dims)
    counts = {}
    for edges in ("valid", "reflect"):
        net = RandomBranches(1, [Branch(3, 1, 2)], dims=dims, seed=0, edges=edges)  # span 5
        with torch.no_grad():
            net.convs["w3d2"].weight.fill_(1.0)
        x = torch.ones(shape, requires_grad=True)
        out = net(x, ["conv_w3d2"])["conv_w3d2"]
        out.sum().backward()
        counts[edges] = x.grad.flatten(2)[0, 0]
        if edges == "reflect":
            assert out.shape == shape
    assert float(counts["valid"].min()) == 1 and float(counts["valid"].max()) == 3**dims
    assert float(counts["reflect"].min()) == 2**dims
    with pytest.raises(NStyleError, match="edges"):
        RandomBranches(1, [Branch(3, 1)], edges="zeros")


def test_the_ends_of_a_sound_are_held_like_its_middle():
    """G's first and last 50 ms get as much of dJ/dG as the middle does at the noise start:
    with unpadded branches they got under a fifth of it and kept the start's broadband
    hiss (20 dB above the middle above 8 kHz after a default run: benchmarks/balance.py)."""
    from nstyle.kinds.audio import AudioModality
    from nstyle.options import AudioSettings
    from nstyle.pipeline import build_objective

    kind, settings = AudioModality(), AudioSettings(branches="11:256,11x4:64").validate()
    sig = kind.load(alsa_clip("Front_Center.wav"), [freedesktop_clip("phone-outgoing-calling.oga")], settings,
                    torch.device("cpu"))
    objective, _ = build_objective(kind, kind.network(sig, settings, torch.device("cpu")), sig, settings)
    g = kind.start(sig.content, sig.styles[0], settings).requires_grad_(True)
    objective(g).total.backward()
    energy = g.grad[0].pow(2).mean(0)
    n = int(0.05 * settings.rate)
    middle = float(energy[n:-n].mean())
    assert float(energy[:n].mean()) > 0.5 * middle and float(energy[-n:].mean()) > 0.5 * middle


def test_branch_spec_parsing_and_errors():
    assert parse_branches("11:4096,11x4:1024") == [Branch(11, 4096), Branch(11, 1024, 4)]
    with pytest.raises(NStyleError, match="width"):
        parse_branches("11-4096")
    net = RandomBranches(1, [Branch(11, 4, 4)], seed=0)
    with pytest.raises(NStyleError, match="too short"):
        net(torch.randn(1, 1, 30), ["relu_w11d4"])  # span 41 > 30
    with pytest.raises(NStyleError, match="unknown layer"):
        net(torch.randn(1, 1, 60), ["relu4_2"])


@pytest.mark.slow
def test_period_of_a_real_ecg_is_one_heartbeat():
    from pydicom.data import get_testdata_file

    ecg = load_series(get_testdata_file("waveform_ecg.dcm"))
    period = estimate_period(ecg.tensor)
    # R-peaks of lead II, found independently with scipy: the median RR interval.
    from scipy.signal import find_peaks

    lead = ecg.tensor[0, 1].numpy()
    peaks, _ = find_peaks(lead, height=np.percentile(lead, 99) * 0.5, distance=300)
    rr = float(np.median(np.diff(peaks)))
    assert abs(period - rr) < 0.1 * rr
    spans = [b.span for b in series_branches(period)]
    assert spans[0] == 5 and spans[-1] <= period < spans[-1] * 4


# ---- audio -----------------------------------------------------------------------------


def profile(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Per-frequency mean log-magnitude: the style statistic for sound."""
    return log_magnitude(x, n_fft, hop)[0].mean(dim=-1)


def envelope(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Frame loudness (mean log-magnitude over frequency): the content statistic."""
    return log_magnitude(x, n_fft, hop)[0].mean(dim=0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["waveform", "magnitude"])
def test_audio_takes_the_style_spectrum_and_keeps_the_envelope(mode, tmp_path):
    content, style = alsa_clip("Front_Center.wav"), alsa_clip("Noise.wav")
    rate, n_fft, hop = 8000, 256, 64
    r = stylize_audio(content, style, rate=rate, mode=mode, n_fft=n_fft, hop=hop, branches="11:256", steps=40)
    c = load_audio(content, rate=rate).tensor
    s = load_audio(style, rate=rate).tensor
    assert r.tensor.shape == c.shape and r.best.total < 0.2 * r.history[0].total
    d_before = float((profile(c, n_fft, hop) - profile(s, n_fft, hop)).norm())
    d_after = float((profile(r.tensor, n_fft, hop) - profile(s, n_fft, hop)).norm())
    assert d_after < 0.7 * d_before
    corr = torch.corrcoef(torch.stack([envelope(c, n_fft, hop), envelope(r.tensor, n_fft, hop)]))[0, 1]
    assert corr > 0.6
    out = r.save(tmp_path / "g.wav")
    back = load_audio(out)
    assert back.rate == rate and back.tensor.shape == c.shape


@pytest.mark.slow
def test_a_tonal_style_no_longer_erases_the_speech():
    """A spoken clip in the style of a telephone tone (8 kHz, one steady pitch): under the
    relative balance the words stay (envelope correlation >= 0.6; 0.83 measured) while the
    Grams move towards the tone's under a net the run did not use; the seed's absolute costs with
    the old default β = 10³ left only the tone (correlation near 0)."""
    content, style = alsa_clip("Front_Center.wav"), freedesktop_clip("phone-outgoing-calling.oga")
    rate, n_fft, hop, branches = 16000, 512, 128, "11:256,11x4:64"
    c, s = (load_audio(p, rate=rate, mono=True).tensor for p in (content, style))
    judge = RandomBranches(n_fft // 2 + 1, parse_branches(branches), seed=12345)

    def style_distance(x: torch.Tensor) -> float:
        a_x, a_s = (judge(log_magnitude(y, n_fft, hop), judge.default_layers()) for y in (x, s))
        return sum(float((scaled_gram(a_x[k]) - scaled_gram(a_s[k])).pow(2).sum()
                         / scaled_gram(a_s[k]).pow(2).sum()) for k in a_x)

    def kept(x: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([envelope(c, n_fft, hop), envelope(x, n_fft, hop)]))[0, 1])

    common = dict(rate=rate, n_fft=n_fft, hop=hop, branches=branches, steps=100)
    g = stylize_audio(content, style, **common).tensor
    assert kept(g) >= 0.6
    assert style_distance(g) < 0.6 * style_distance(c)  # 0.44 measured; the white start's hiss is the rest
    old = stylize_audio(content, style, balance="absolute", style_weight=1e3, **common).tensor
    assert kept(old) < 0.3


# ---- time series -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def eeg_npy(tmp_path_factory) -> Path:
    import matplotlib

    raw = Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat"
    eeg = np.fromfile(raw, dtype=np.float64).reshape(800, 4)  # as matplotlib's own example reads it
    path = tmp_path_factory.mktemp("eeg") / "eeg.npy"
    np.save(path, eeg)
    return path


@pytest.mark.slow
def test_ecg_in_the_style_of_eeg_keeps_beats_and_takes_style(eeg_npy, tmp_path):
    from pydicom.data import get_testdata_file

    ecg_path = get_testdata_file("waveform_ecg.dcm")
    full = load_series(ecg_path)
    # Four leads, the first 3000 samples (3 s), written as a CSV with a time column.
    leads = full.tensor[0, [0, 1, 6, 10], :3000].numpy()
    csv = tmp_path / "ecg.csv"
    rows = np.column_stack([np.arange(3000) / 1000.0, leads.T])
    np.savetxt(csv, rows, delimiter=",", header="time,I,II,V1,V5", comments="", fmt="%.6g")
    r = stylize_series(csv, eeg_npy, steps=60)
    c = load_series(csv).tensor
    s = load_series(eeg_npy).tensor
    g = r.tensor
    assert g.shape == c.shape

    # Style: Grams under an independently seeded network of the same shape.
    judge = RandomBranches(4, parse_branches(r.options["branches"]), seed=12345)
    z = lambda x: (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)  # noqa: E731
    grams = {k: [scaled_gram(judge(z(x), [k])[k]) for x in (c, s, g)] for k in judge.default_layers()}
    d_cs = sum(float((gc - gs).pow(2).sum()) for gc, gs, _ in grams.values())
    d_gs = sum(float((gg - gs).pow(2).sum()) for _, gs, gg in grams.values())
    assert d_gs < 0.5 * d_cs

    # Content: the beats stay where they were (lead II energy envelope correlates).
    def energy(x: torch.Tensor) -> torch.Tensor:
        e = z(x)[0, 1].abs()
        return torch.nn.functional.avg_pool1d(e[None, None], 50, 25)[0, 0]

    corr = float(torch.corrcoef(torch.stack([energy(c), energy(g)]))[0, 1])
    assert corr > 0.5

    out = r.save(tmp_path / "g.csv")
    back = load_series(out)
    assert back.names == ["I", "II", "V1", "V5"]
    torch.testing.assert_close(back.tensor, g, rtol=1e-4, atol=1e-3)


def test_series_with_different_lead_counts_is_an_error(eeg_npy, tmp_path):
    from pydicom.data import get_testdata_file

    with pytest.raises(NStyleError, match="leads"):
        stylize_series(get_testdata_file("waveform_ecg.dcm"), eeg_npy, steps=1)
