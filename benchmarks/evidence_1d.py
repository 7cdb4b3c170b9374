"""Measure what a 1D result kept and what it took: the figures in the README's 1D section.

    python benchmarks/evidence_1d.py audio CONTENT.wav STYLE.wav RESULT.wav [--rate 22050]
    python benchmarks/evidence_1d.py series CONTENT STYLE RESULT [--columns ..] [--style-columns ..]

Audio: style = distance of the per-frequency mean log-magnitude to S's (G's vs C's), and
Σ_l ‖Ĝ_l(x) − Ĝ_l(S)‖² / ‖Ĝ_l(S)‖² under the audio branches seeded independently of the
run's net; content = correlation of the frame loudness envelope of G with C's (and of the
whole log-magnitude spectrograms: a steady-loudness content's pitch lines); rhythm =
the envelope's autocorrelation period (S's, G's); edges = power above 8 kHz in the first
and last 50 ms (``benchmarks/balance.py`` runs these over six pairs).
Series: style = Σ over branches of ‖Ĝ(x) − Ĝ(S)‖² / ‖Ĝ(S)‖² under a random network seeded
independently of the one the run used (G's vs C's); content = correlation of G's and C's
smoothed |lead 2| energy (beat positions for an ECG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nstyle.core.functional import scaled_gram
from nstyle.kinds.series import estimate_period, series_branches, standardize
from nstyle.modalities.audio import load_audio, log_magnitude
from nstyle.modalities.series import load_series
from nstyle.nets.random import RandomBranches, parse_branches
from nstyle.options import DEFAULT_AUDIO_BRANCHES, AudioSettings

AUDIO = AudioSettings()  # nstyle's defaults: rate, n_fft, hop


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


JUDGE_SEED = 987654  # the independent network's seed: not the run's (0)
EDGE_SECONDS = 0.05
EDGE_HZ = 8000


def envelope(x: torch.Tensor) -> torch.Tensor:
    """Frame loudness: the log-magnitude averaged over the bins, one value per STFT frame."""
    return log_magnitude(x, AUDIO.n_fft, AUDIO.hop)[0].mean(0)


def period(env: torch.Tensor, floor: float = 0.2) -> int | None:
    """The envelope's repetition period in frames: the first local maximum of its
    autocorrelation (lag >= 3) above ``floor``, or None where it does not repeat."""
    e = env - env.mean()
    energy = float((e * e).sum())
    if energy <= 0:
        return None
    ac = [1.0] + [float((e[:-k] * e[k:]).sum()) / energy for k in range(1, len(e) // 2)]
    for k in range(3, len(ac) - 1):
        if ac[k] > floor and ac[k] > ac[k - 1] and ac[k] >= ac[k + 1]:
            return k
    return None


def band_db(part: torch.Tensor, rate: int) -> float:
    """Mean power above 8 kHz of a stretch (1, ch, n) of sound (its channels mixed), dB."""
    spec = torch.fft.rfft(part[0].mean(0) * torch.hann_window(part.shape[-1]))
    freqs = torch.fft.rfftfreq(part.shape[-1], 1 / rate)
    return 10 * float(torch.log10(spec.abs().pow(2)[freqs > EDGE_HZ].mean() + 1e-12))


def edge_db(x: torch.Tensor, rate: int) -> tuple[float, float]:
    """Power above 8 kHz in the louder of the first and last 50 ms, and how far that is above
    the median of the 50 ms stretches between them (dB): a burst at the ends shows as a rise."""
    n = int(EDGE_SECONDS * rate)
    ends = max(band_db(x[..., :n], rate), band_db(x[..., -n:], rate))
    middle = sorted(band_db(x[..., i : i + n], rate) for i in range(n, x.shape[-1] - 2 * n + 1, n))
    return ends, ends - (middle[len(middle) // 2] if middle else ends)


def relative_gram_distance(x: torch.Tensor, s: torch.Tensor, rate: int) -> float:
    """Σ_l ‖Ĝ_l(x) − Ĝ_l(S)‖² / ‖Ĝ_l(S)‖² under nstyle's audio branches seeded with JUDGE_SEED."""
    feats = lambda y: log_magnitude(y, AUDIO.n_fft, AUDIO.hop)  # noqa: E731
    branches = parse_branches(DEFAULT_AUDIO_BRANCHES)  # fixed, whatever --branches the run used
    judge = RandomBranches(feats(s).shape[1], branches, seed=JUDGE_SEED)
    with torch.no_grad():
        ax, as_ = judge(feats(x), judge.default_layers()), judge(feats(s), judge.default_layers())
    total = 0.0
    for k in ax:
        gs = scaled_gram(as_[k])
        total += float((scaled_gram(ax[k]) - gs).pow(2).sum() / gs.pow(2).sum())
    return total


def audio_measures(content: str, style: str, result: str, rate: int = AUDIO.rate) -> dict[str, float | int | None]:
    """The figures of benchmarks/balance.py for one result (mono mixes of each file)."""
    c, s, g = (load_audio(p, rate=rate, mono=True).tensor for p in (content, style, result))
    d_c, d_g = relative_gram_distance(c, s, rate), relative_gram_distance(g, s, rate)
    spectrogram = lambda x: log_magnitude(x, AUDIO.n_fft, AUDIO.hop)[0]  # noqa: E731
    return {
        "env_corr": corr(envelope(c), envelope(g)), "spec_corr": corr(spectrogram(c), spectrogram(g)),
        "style_c": d_c, "style_g": d_g, "style_ratio": d_g / d_c,
        "period_s": period(envelope(s)), "period_g": period(envelope(g)),
        "edge_c": edge_db(c, rate)[0], "edge_s": edge_db(s, rate)[0], "edge_g": edge_db(g, rate)[0],
        "edge_rise_c": edge_db(c, rate)[1], "edge_rise_g": edge_db(g, rate)[1],
    }


def audio(a: argparse.Namespace) -> None:
    n_fft, hop = AUDIO.n_fft, AUDIO.hop
    c, s, g = (load_audio(p, rate=a.rate, mono=True).tensor for p in (a.content, a.style, a.result))
    prof = lambda x: log_magnitude(x, n_fft, hop)[0].mean(-1)  # noqa: E731
    env = lambda x: log_magnitude(x, n_fft, hop)[0].mean(0)  # noqa: E731
    d_c, d_g = float((prof(c) - prof(s)).norm()), float((prof(g) - prof(s)).norm())
    print(f"spectral profile distance to S: content {d_c:.3f}, result {d_g:.3f} ({d_g / d_c:.2f} of C's)")
    print(f"loudness envelope correlation G~C: {corr(env(c), env(g)):.3f}")
    m = audio_measures(a.content, a.style, a.result, a.rate)
    print(f"log-magnitude spectrogram correlation G~C: {m['spec_corr']:.3f}")
    print(f"Gram distance to S (independent net, relative): content {m['style_c']:.4g}, result {m['style_g']:.4g} "
          f"({m['style_ratio']:.2f} of C's)")
    print(f"envelope period (frames): style {m['period_s']}, result {m['period_g']}")
    print(f"power above 8 kHz in the first/last 50 ms (dB): content {m['edge_c']:.1f}, style {m['edge_s']:.1f}, "
          f"result {m['edge_g']:.1f}; above the median 50 ms: content {m['edge_rise_c']:.1f}, "
          f"result {m['edge_rise_g']:.1f}")


def series_measures(
    content: str, style: str, result: str, columns: str | None = None, style_columns: str | None = None
) -> dict[str, float]:
    """Style: Σ over branches of ‖Ĝ(x) − Ĝ(S)‖² / ‖Ĝ(S)‖² under a random net seeded
    independently of the run's (G's and C's); content: correlation of G's and C's smoothed
    |lead 2| energy (lead 1 for a single lead; beat positions for an ECG)."""
    cols = columns.split(",") if columns else None
    c = load_series(content, columns=cols).tensor
    s = load_series(style, columns=style_columns.split(",") if style_columns else cols).tensor
    g = load_series(result, columns=None if Path(result).suffix == ".npy" else cols).tensor
    z = standardize  # each lead to mean 0, standard deviation 1, as the run does
    judge = RandomBranches(c.shape[1], series_branches(estimate_period(c)), seed=JUDGE_SEED)
    with torch.no_grad():
        feats = lambda x: judge(z(x), judge.default_layers())  # noqa: E731
        ac, as_, ag = feats(c), feats(s), feats(g)
    d = lambda x: sum(  # noqa: E731
        float((scaled_gram(x[k]) - scaled_gram(as_[k])).pow(2).sum() / scaled_gram(as_[k]).pow(2).sum()) for k in x
    )
    d_c, d_g = d(ac), d(ag)
    lead = min(1, c.shape[1] - 1)
    energy = lambda x: torch.nn.functional.avg_pool1d(z(x)[0, lead].abs()[None, None], 50, 25)[0, 0]  # noqa: E731
    return {"env_corr": corr(energy(c), energy(g)), "style_c": d_c, "style_g": d_g, "style_ratio": d_g / d_c}


def series(a: argparse.Namespace) -> None:
    m = series_measures(a.content, a.style, a.result, a.columns, a.style_columns)
    print(f"Gram distance to S (independent net, relative): content {m['style_c']:.4g}, result {m['style_g']:.4g} "
          f"({m['style_ratio']:.2f} of C's)")
    print(f"energy envelope correlation G~C (lead 2, or 1): {m['env_corr']:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("audio", "series"))
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("result")
    p.add_argument("--rate", type=int, default=AUDIO.rate)
    p.add_argument("--columns", default=None)
    p.add_argument("--style-columns", default=None)
    a = p.parse_args()
    (audio if a.kind == "audio" else series)(a)


if __name__ == "__main__":
    main()
