"""Coarse-to-fine against one scale, for sound, series and volumes (the README's pairs).

For each kind: the plain reference loop (``scales="none"``, ``--steps`` steps at the
output's size) and nstyle's coarse-to-fine schedule (``scales="auto"``: 50 steps at each
coarse scale, then ``--steps`` and ``--steps / 2`` at the output's size), all through the
public ``nstyle.stylize_*`` functions in this one process. Printed: wall time, the number
of scales, and the best J with its two parts (α·J_content = J − β·J_style − tv_weight·TV). J at the
output's size is comparable between rows because α follows the grid (α = 1/elements).

    python benchmarks/bench_scales.py [--kinds sound,series,volume] [--steps 300]

Inputs: Debian alsa-utils' Front_Center.wav in the style of Noise.wav (magnitude mode:
waveform mode has no coarse-to-fine), pydicom's 12-lead ECG (leads I, II, V1, V5) in the
style of matplotlib's sample EEG, nibabel's anatomical.nii in the style of example4d.nii.gz
(triplanar VGG16).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import matplotlib
import nibabel
import numpy as np
import torch
from _common import header, markdown_table

import nstyle


def pairs(folder: Path) -> dict[str, tuple]:
    """kind -> (function, content, style, options of every row)."""
    from pydicom.data import get_testdata_file

    eeg = folder / "eeg.npy"
    np.save(eeg, np.fromfile(Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat").reshape(800, 4))
    nib = Path(os.path.dirname(nibabel.__file__)) / "tests" / "data"
    alsa = Path("/usr/share/sounds/alsa")
    return {
        "sound": (nstyle.stylize_audio, alsa / "Front_Center.wav", alsa / "Noise.wav", {"mode": "magnitude"}),
        "series": (nstyle.stylize_series, get_testdata_file("waveform_ecg.dcm"), eeg,
                   {"columns": "I,II,V1,V5", "style_columns": "lead0,lead1,lead2,lead3"}),
        "volume": (nstyle.stylize_volume, nib / "anatomical.nii", nib / "example4d.nii.gz", {}),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", default="sound,series,volume")
    p.add_argument("--steps", type=int, default=300, help="steps at the output's size (default 300)")
    args = p.parse_args()
    print("\n".join(header(torch.device("cpu"), torch.get_num_threads())))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        table = pairs(Path(tmp))
        for kind in args.kinds.split(","):
            fn, content, style, options = table[kind]
            if not Path(content).exists():
                print(f"{kind}: {content} is missing; skipped")
                continue
            runs = [("one scale (reference)", "none", args.steps), ("auto", "auto", args.steps),
                    ("auto, half the final steps", "auto", args.steps // 2)]
            for name, scales, steps in runs:
                t = time.perf_counter()
                r = fn(content, style, scales=scales, steps=steps, **options)
                seconds = time.perf_counter() - t
                best, beta = r.best, r.options["style_weight"]
                content_part = best.total - beta * best.style - r.options["tv_weight"] * best.tv
                rows.append([kind, name, str(len({h.scale for h in r.history})), f"{steps}", f"{seconds:.0f} s",
                             f"{best.total:.4g}", f"{content_part:.4g}", f"{beta * best.style:.4g}"])
                print(" | ".join(rows[-1]), flush=True)
    cols = ["kind", "run", "scales", "final steps", "time", "best J", "α·J_content", "β·J_style"]
    print(markdown_table(cols, rows, left=(0, 1)))


if __name__ == "__main__":
    main()
