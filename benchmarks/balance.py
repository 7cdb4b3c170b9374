"""One default balance across pairs: nstyle's defaults on real pairs of each kind, measured
by what a listener or reader would check, under a network the run did not optimise.

    python benchmarks/balance.py audio [--pairs speech_ring,...] [--variant NAME:opt=v,...]
    python benchmarks/balance.py series
    python benchmarks/balance.py volume

Pairs, all from installed packages: **audio** — Debian's alsa-utils clips
(/usr/share/sounds/alsa) and sound-theme-freedesktop's (/usr/share/sounds/freedesktop/stereo):
speech × noise (the README's), speech × the outgoing-call tone, speech × the busy tone
(on/off every 0.25 s), speech × the alarm clock's beeps, speech × the incoming-call melody,
melody × speech. **series** — pydicom's 12-lead ECG (``waveform_ecg.dcm``) and matplotlib's
sample EEG (``eeg.dat``, 4 channels) and neuron membrane potential (``membrane.dat``):
ECG × EEG (4 leads, the README's), ECG lead II × membrane, membrane × ECG lead II.
**volume** — nibabel's test MR volumes: anatomical × example4d (the README's) and
example4d × anatomical.

The README's "before" figures for sound are this script run on the code before the relative
balance (``git worktree add /tmp/before d092c2c && cd /tmp/before && PYTHONPATH=. python
/path/to/nstyle/benchmarks/balance.py audio --out /tmp/b``), its PAIR.default.* copied into
--out/audio as PAIR.before.*, then shown with ``--no-default --variant before: --variant
default:`` (``--plot docs/audio_tonal.png --pairs speech_ring`` draws the README's figure).

Each variant (``default``: nstyle's defaults; ``--variant NAME:balance=absolute,style_weight=1000``
adds one; ``--no-default`` drops the defaults) runs every pair once; results are kept in
--out/KIND and reused unless --again.

Measures (``evidence_1d`` for sound and series): **content** — audio: correlation of G's
frame loudness envelope with C's (the words are still there where it is >= 0.6), and of
the log-magnitude spectrograms (pitch lines of a content whose loudness is flat); series:
correlation of the first content lead's smoothed energy (beat positions); volume: MSE to C
in [0, 1] units. **style** — Σ_l ‖Ĝ_l(x) − Ĝ_l(S)‖² / ‖Ĝ_l(S)‖² under a net the run did
not use (random nets seeded anew; the bundled VGG for volumes), G's as a share of C's.
Audio also: **rhythm** — the loudness envelope's period in frames (S's, G's); **edges** —
power above 8 kHz in the louder of the first and last 50 ms, dB (C's, S's, G's), and how far
G's is above the median 50 ms between them (a burst at the ends shows as a rise).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evidence_1d import audio_measures, series_measures

import nstyle

ALSA = Path("/usr/share/sounds/alsa")
FD = Path("/usr/share/sounds/freedesktop/stereo")


def _series_files() -> dict[str, str]:
    import matplotlib
    import numpy as np
    from pydicom.data import get_testdata_file

    data = Path(matplotlib.get_data_path()) / "sample_data"
    scratch = Path("out/balance/inputs")
    scratch.mkdir(parents=True, exist_ok=True)
    eeg, membrane = scratch / "eeg.npy", scratch / "membrane.npy"
    np.save(eeg, np.fromfile(data / "eeg.dat").reshape(800, 4))
    np.save(membrane, np.fromfile(data / "membrane.dat", np.float32))
    return {"ecg": str(get_testdata_file("waveform_ecg.dcm")), "eeg": str(eeg), "membrane": str(membrane)}


def _volume_dir() -> Path:
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data"


Pair = tuple[str, str, dict[str, Any]]


def pairs(kind: str) -> dict[str, Pair]:
    if kind == "audio":
        return {
            "speech_noise": (str(ALSA / "Front_Center.wav"), str(ALSA / "Noise.wav"), {}),
            "speech_ring": (str(FD / "audio-channel-front-center.oga"), str(FD / "phone-outgoing-calling.oga"), {}),
            "speech_busy": (str(FD / "audio-channel-side-left.oga"), str(FD / "phone-outgoing-busy.oga"), {}),
            "speech_alarm": (str(ALSA / "Rear_Right.wav"), str(FD / "alarm-clock-elapsed.oga"), {}),
            "speech_music": (str(ALSA / "Front_Left.wav"), str(FD / "phone-incoming-call.oga"), {}),
            "music_speech": (str(FD / "phone-incoming-call.oga"), str(ALSA / "Rear_Left.wav"), {}),
        }
    if kind == "series":
        f = _series_files()
        return {
            "ecg_eeg": (f["ecg"], f["eeg"], {"columns": "I,II,V1,V5", "style_columns": "lead0,lead1,lead2,lead3"}),
            "ecg_membrane": (f["ecg"], f["membrane"], {"columns": "II", "style_columns": "lead0"}),
            "membrane_ecg": (f["membrane"], f["ecg"], {"columns": "lead0", "style_columns": "II"}),
        }
    d = _volume_dir()
    return {
        "anatomical_example4d": (str(d / "anatomical.nii"), str(d / "example4d.nii.gz"), {}),
        "example4d_anatomical": (str(d / "example4d.nii.gz"), str(d / "anatomical.nii"), {}),
    }


EXT = {"audio": ".wav", "series": ".npy", "volume": ".nii.gz"}
STYLIZE: dict[str, Callable[..., Any]] = {
    "audio": nstyle.stylize_audio, "series": nstyle.stylize_series, "volume": nstyle.stylize_volume,
}
KEYS = {
    "audio": [
        "s", "env_corr", "spec_corr", "style_ratio", "period_s", "period_g",
        "edge_c", "edge_s", "edge_g", "edge_rise_g",
    ],
    "series": ["s", "env_corr", "style_ratio"],
    "volume": ["s", "content_mse", "style_ratio"],
}


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    """``NAME:opt=value,...`` -> (NAME, options); numbers become int or float."""
    name, _, opts = text.partition(":")
    out: dict[str, object] = {}
    for part in filter(None, re.split(r",(?=\w+=)", opts)):  # a value may hold commas: branches=11:64,11x4:8
        k, _, v = part.partition("=")
        try:
            out[k] = int(v) if v.lstrip("-").isdigit() else float(v)
        except ValueError:
            out[k] = v
    return name, out


def volume_measures(content: str, style: str, g: Any, net: str) -> dict[str, float]:
    """Content MSE in [0, 1] units and the relative Gram distance to S under a net of the
    run's kind built here (VGG nets: the same bundled weights; random: another seed)."""
    import torch

    from nstyle.core.functional import scaled_gram
    from nstyle.modalities.volume import load_volume
    from nstyle.nets import build_net
    from nstyle.nets.random import RandomBranches, parse_branches
    from nstyle.nets.volume import Inflated, Triplanar

    c, s = load_volume(content).tensor, load_volume(style).tensor
    if net == "random":
        judge: Any = RandomBranches(1, parse_branches("3:64,3x2:64,3x4:64"), dims=3, seed=4242)
        layers = judge.default_layers()
    elif net == "triplanar":
        judge, layers = Triplanar(build_net("vgg16")), Triplanar.expand_layers(["relu1_1", "relu2_1", "relu3_1"])
    else:
        judge, layers = Inflated(build_net("vgg16")), ["relu1_1", "relu2_1", "relu3_1"]
    with torch.no_grad():
        a_s = judge(s, layers)
        def distance(x: Any) -> float:
            a_x = judge(x, layers)
            return sum(
                float((scaled_gram(a_x[n]) - scaled_gram(a_s[n])).pow(2).sum() / scaled_gram(a_s[n]).pow(2).sum())
                for n in layers
            )
        d_c, d_g = distance(c), distance(g.float())
    mse = float((g.float() - c).pow(2).mean())
    return {"content_mse": mse, "style_c": d_c, "style_g": d_g, "style_ratio": d_g / d_c}


def measure(kind: str, c: str, s: str, result: Any, path: Path, opts: dict[str, Any]) -> dict[str, Any]:
    if kind == "audio":
        return audio_measures(c, s, str(path))
    if kind == "series":
        return series_measures(c, s, str(path), opts.get("columns"), opts.get("style_columns"))
    return volume_measures(c, s, result.tensor, opts.get("net", "triplanar"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("audio", "series", "volume"))
    p.add_argument("--pairs", default=None, help="comma-separated names (default: all of the kind)")
    p.add_argument("--variant", action="append", default=[], help="NAME:option=value,... (repeatable)")
    p.add_argument("--no-default", action="store_true", help="run only the --variant ones")
    p.add_argument("--out", default="out/balance")
    p.add_argument("--again", action="store_true", help="run again even where a result is kept")
    p.add_argument("--plot", default=None, help="audio: spectrograms of the first pair's C, S and every variant's G")
    a = p.parse_args()
    known = pairs(a.kind)
    chosen = a.pairs.split(",") if a.pairs else list(known)
    variants = ([] if a.no_default else [("default", {})]) + [parse_variant(v) for v in a.variant]
    out = Path(a.out) / a.kind
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair in chosen:
        c, s, fixed = known[pair]
        for name, opts in variants:
            path, rec = out / f"{pair}.{name}{EXT[a.kind]}", out / f"{pair}.{name}.json"
            if a.again or not rec.exists() or not path.exists():
                t0 = time.perf_counter()
                result = STYLIZE[a.kind](c, s, **fixed, **opts)
                result.save(path)
                info: dict[str, Any] = {"s": time.perf_counter() - t0, "J": result.best.total}
                if a.kind != "audio":  # measured from the run's result, once
                    info.update(measure(a.kind, c, s, result, path, {**fixed, **opts}))
                rec.write_text(json.dumps(info))
            info = json.loads(rec.read_text())
            if a.kind == "audio":  # measured from the saved file: cheap, so always with today's measures
                info.update(measure(a.kind, c, s, None, path, {**fixed, **opts}))
            rows.append((pair, name, info))
            print(pair, name, {k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()}, flush=True)
    if a.plot and a.kind == "audio":
        from nstyle.options import AudioSettings
        from nstyle.outputs.plots import plot_audio

        c, s, _ = known[chosen[0]]
        made = [(f"result G ({name})", out / f"{chosen[0]}.{name}.wav") for name, _ in variants]
        plot_audio(c, s, made[0][1], a.plot, AudioSettings().as_dict(), more=made[1:], result_label=made[0][0])
    keys = KEYS[a.kind]
    print(f"\n| pair | variant | {' | '.join(keys)} |\n|---|---|{'---|' * len(keys)}")
    for pair, name, info in rows:
        cells = [f"{info[k]:.3g}" if isinstance(info.get(k), float) else str(info.get(k, "–")) for k in keys]
        print(f"| {pair} | {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
