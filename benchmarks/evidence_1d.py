"""Measure what a 1D result kept and what it took: the figures in the README's 1D section.

    python benchmarks/evidence_1d.py audio CONTENT.wav STYLE.wav RESULT.wav [--rate 22050]
    python benchmarks/evidence_1d.py series CONTENT STYLE RESULT [--columns ..] [--style-columns ..]

Audio: style = distance of the per-frequency mean log-magnitude to S's (G's vs C's);
content = correlation of the frame loudness envelope of G with C's.
Series: style = Σ over branches of ‖Ĝ(x) − Ĝ(S)‖² under a random network seeded
independently of the one the run used (G's vs C's); content = correlation of G's and C's
smoothed |lead 2| energy (beat positions for an ECG).
"""

from __future__ import annotations

import argparse

import torch

from nstyle.core.functional import scaled_gram
from nstyle.kinds.series import estimate_period, series_branches, standardize
from nstyle.modalities.audio import load_audio, log_magnitude
from nstyle.modalities.series import load_series
from nstyle.nets.random import RandomBranches
from nstyle.options import AudioSettings

AUDIO = AudioSettings()  # nstyle's defaults: rate, n_fft, hop


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def audio(a: argparse.Namespace) -> None:
    n_fft, hop = AUDIO.n_fft, AUDIO.hop
    c, s, g = (load_audio(p, rate=a.rate, mono=True).tensor for p in (a.content, a.style, a.result))
    prof = lambda x: log_magnitude(x, n_fft, hop)[0].mean(-1)  # noqa: E731
    env = lambda x: log_magnitude(x, n_fft, hop)[0].mean(0)  # noqa: E731
    d_c, d_g = float((prof(c) - prof(s)).norm()), float((prof(g) - prof(s)).norm())
    print(f"spectral profile distance to S: content {d_c:.3f}, result {d_g:.3f} ({d_g / d_c:.2f} of C's)")
    print(f"loudness envelope correlation G~C: {corr(env(c), env(g)):.3f}")


def series(a: argparse.Namespace) -> None:
    cols = a.columns.split(",") if a.columns else None
    c = load_series(a.content, columns=cols).tensor
    s = load_series(a.style, columns=a.style_columns.split(",") if a.style_columns else cols).tensor
    g = load_series(a.result, columns=cols).tensor
    z = standardize  # each lead to mean 0, standard deviation 1, as the run does
    judge = RandomBranches(c.shape[1], series_branches(estimate_period(c)), seed=987654)
    grams = lambda x: judge(z(x), judge.default_layers())  # noqa: E731
    ac, as_, ag = grams(c), grams(s), grams(g)
    d = lambda x: sum(float((scaled_gram(x[k]) - scaled_gram(as_[k])).pow(2).sum()) for k in x)  # noqa: E731
    d_c, d_g = d(ac), d(ag)
    print(f"Gram distance to S (independent net): content {d_c:.4g}, result {d_g:.4g} ({d_g / d_c:.2f} of C's)")
    lead = min(1, c.shape[1] - 1)
    energy = lambda x: torch.nn.functional.avg_pool1d(z(x)[0, lead].abs()[None, None], 50, 25)[0, 0]  # noqa: E731
    print(f"lead {lead + 1} energy envelope correlation G~C: {corr(energy(c), energy(g)):.3f}")


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
