"""Flicker, measured: per-frame independent stylisation against ``nstyle video`` on a real clip.

Clip: opencv-doc's ``examples/data/vtest.avi`` (Debian package opencv-doc; pedestrians, 768x576, 10 fps),
its first ``--frames`` frames; style: scikit-image's immunohistochemistry slide. Rows: the
reference (every frame an independent image run from the frame itself, the plain loop a
user would write) and ``stylize_video`` for several temporal weights γ. Columns:

- temporal warping error: mean over t >= 2 of mean(c · (warp(G_{t-1}) − G_t)²), with the
  flow and its certainty c computed on the *input* frames (what a viewer sees as flicker);
- style distance: Σ_l ‖Ĝ_l(S) − Ĝ_l(G_t)‖² over relu1_1..relu5_1 of the bundled VGG16,
  averaged over frames, and content distance: ‖a(C_t) − a(G_t)‖² / ‖a(C_t)‖² at relu4_2;
- seconds per frame.

    python benchmarks/bench_video.py [--frames 8] [--size 128] [--steps 60] [--weights 0,1e6,1e7,1e8,1e9]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import header, markdown_table

from nstyle import stylize
from nstyle.core.functional import scaled_gram
from nstyle.core.temporal import certainty, warp
from nstyle.modalities.image import load_image
from nstyle.modalities.video import grey, open_video, optical_flow
from nstyle.nets import build_net
from nstyle.samples import sample_path
from nstyle.video import stylize_video

CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
STYLE_LAYERS = [f"relu{b}_1" for b in range(1, 6)]


def distances(frames: list[torch.Tensor], results: list[torch.Tensor], style: torch.Tensor) -> tuple[float, ...]:
    """(warping error, style distance, content distance) of a stylised clip."""
    net = build_net("vgg16")
    with torch.no_grad():
        s = net(style, STYLE_LAYERS)
        targets = {k: scaled_gram(v) for k, v in s.items()}
        style_d, content_d, warp_e = [], [], []
        for t, (c, g) in enumerate(zip(frames, results)):
            a_g, a_c = net(g, [*STYLE_LAYERS, "relu4_2"]), net(c, ["relu4_2"])
            style_d.append(sum(float((scaled_gram(a_g[k]) - targets[k]).pow(2).sum()) for k in STYLE_LAYERS))
            content_d.append(float((a_g["relu4_2"] - a_c["relu4_2"]).pow(2).sum() / a_c["relu4_2"].pow(2).sum()))
            if t:
                back = optical_flow(grey(c), grey(frames[t - 1]))
                forward = optical_flow(grey(frames[t - 1]), grey(c))
                cert = certainty(back, forward)
                warp_e.append(float((cert * (warp(results[t - 1], back) - g).pow(2)).mean()))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return mean(warp_e), mean(style_d), mean(content_d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--weights", default="0,1e6,1e7,1e8,1e9")
    args = p.parse_args()
    if not CLIP.is_file():
        raise SystemExit(f"{CLIP} is missing: apt-get install opencv-doc")
    print("\n".join(header(torch.device("cpu"), torch.get_num_threads())))
    style_path = sample_path("ihc.png")
    _, stream = open_video(CLIP, size=args.size)
    frames = [f for _, f in zip(range(args.frames), stream)]
    style = load_image(style_path, size=args.size).tensor
    rows = []
    start = time.perf_counter()
    independent = [stylize(f[0], style_path, size=None, steps=args.steps).tensor for f in frames]
    seconds = (time.perf_counter() - start) / len(frames)
    rows.append(["independent frames (reference)", *(f"{d:.4g}" for d in distances(frames, independent, style)),
                 f"{seconds:.1f}"])
    print(" | ".join(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for gamma in map(float, args.weights.split(",")):
            out = Path(tmp) / f"g{gamma:g}/"
            start = time.perf_counter()
            stylize_video(CLIP, style_path, out, size=args.size, steps=args.steps, max_frames=args.frames,
                          temporal_weight=gamma)
            seconds = (time.perf_counter() - start) / len(frames)
            results = [load_image(q).tensor for q in sorted(out.iterdir()) if q.suffix == ".png"]
            rows.append([f"nstyle video, γ = {gamma:g}", *(f"{d:.4g}" for d in distances(frames, results, style)),
                         f"{seconds:.1f}"])
            print(" | ".join(rows[-1]), flush=True)
    cols = ["run", "warping error", "style distance", "content distance", "s/frame"]
    print(markdown_table(cols, rows, left=(0,)))


if __name__ == "__main__":
    main()
