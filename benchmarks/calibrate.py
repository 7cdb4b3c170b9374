"""Calibrate the default style weight β (with the default α, 1 at 256 x 256) on real image pairs.

For each β in a sweep, runs the default image pipeline and reports, besides J, two
scale-free figures measured on the bundled, normalised VGG16:

* style distance  = Σ_l ‖Ĝ_l(G) − Ĝ_l(S)‖² / Σ_l ‖Ĝ_l(C) − Ĝ_l(S)‖²  (0: G has S's Grams;
  1: G is as far from S's style as the content photo itself),
* content distance = ‖a(G) − a(C)‖² / ‖a(C)‖² at the content layer (0: same content),

and writes a contact sheet (one column per β) so the choice can be checked by eye.

    python benchmarks/calibrate.py --betas 1e4,1e5,1e6 --size 256 --steps 150 --out calib.png

Style images default to scikit-image's ihc.png; the classic paintings in
../shared/data/styles/ are used too when that folder exists (not shipped with nstyle).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _common import Setup, prepare
from PIL import Image

from nstyle import stylize
from nstyle.core.functional import scaled_gram
from nstyle.modalities.image import to_pil
from nstyle.samples import sample_path

PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "styles"


@torch.no_grad()
def distances(g: torch.Tensor, run: Setup) -> tuple[float, float]:
    """(style distance, content distance) of G, on the run's own network and layers."""
    (content_layer,) = run.network.content_layers
    layers = list(run.network.style_weights)
    c, s = run.content, run.style
    ag, ac, as_ = (run.model(x, [*layers, content_layer]) for x in (g, c, s))
    d_style = sum(float((scaled_gram(ag[n]) - scaled_gram(as_[n])).pow(2).sum()) for n in layers)
    d_ref = sum(float((scaled_gram(ac[n]) - scaled_gram(as_[n])).pow(2).sum()) for n in layers)
    a_c, a_g = ac[content_layer], ag[content_layer]
    return d_style / d_ref, float((a_g - a_c).pow(2).sum() / a_c.pow(2).sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default="astronaut.png", help="scikit-image sample name or path")
    p.add_argument("--styles", default="ihc.png", help="comma-separated sample names or paths")
    p.add_argument("--paintings", action="store_true", help=f"add the paintings in {PAINTINGS}")
    p.add_argument("--betas", default="1e4,1e5,1e6,1e7")
    p.add_argument("--init", default="content")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--out", default="calibration.png")
    a = p.parse_args()
    resolve = lambda n: Path(n) if Path(n).exists() else sample_path(n)  # noqa: E731
    styles = [resolve(n) for n in a.styles.split(",")]
    if a.paintings and PAINTINGS.is_dir():
        styles += sorted(PAINTINGS.glob("*.jpg"))
    betas = [float(b) for b in a.betas.split(",")]
    content = resolve(a.content)
    rows = []
    print(f"content {content.name}, size {a.size}, {a.steps} L-BFGS steps, init {a.init}, default alpha")
    print(f"{'style':<20} {'beta':>8} {'J':>10} {'a*Jc':>10} {'b*Js':>10} {'style d':>8} {'content d':>9} {'s':>6}")
    for sp in styles:
        run = prepare("image", content, sp, "cpu", size=a.size)  # C, S and the net as stylize loads them
        row = [to_pil(run.content), to_pil(run.style)]
        for beta in betas:
            t = time.time()
            r = stylize(content, sp, size=a.size, steps=a.steps, style_weight=beta, init=a.init)
            ds, dc = distances(r.tensor, run)
            b = r.best
            print(f"{sp.name:<20} {beta:>8.0e} {b.total:>10.4g} {r.options['content_weight'] * b.content:>10.4g} "
                  f"{beta * b.style:>10.4g} {ds:>8.3f} {dc:>9.3f} {time.time() - t:>6.1f}", flush=True)
            row.append(r.image)
        rows.append(row)
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * len(rows[0]), h * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            sheet.paste(im.convert("RGB").resize((w, h)), (j * w, i * h))
    sheet.save(a.out)
    print(f"wrote {a.out}: columns content, style, then beta = {', '.join(f'{b:g}' for b in betas)}")


if __name__ == "__main__":
    main()
