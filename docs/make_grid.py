"""The README's steering grid, made by the program itself (issue 5's "Done means").

One content (scikit-image's astronaut) and every control the README lists, each cell a
real `nstyle.stylize` run with the same size and steps, labelled with what it shows:

    row 1: content | ihc.png | hubble_deep_field.jpg | chelsea.png        (inputs)
    row 2: ihc single-scale | in each of the three styles (coarse-to-fine, the default)
    row 3: ihc, colours kept (luminance) | ihc, colours matched (histogram)
           | ihc + hubble blended 0.5/0.5 | mask: left untouched, right in ihc
    row 4: mask with two styles | style scale 2 | Wasserstein loss | sliced Wasserstein

    python docs/make_grid.py -o docs/grid.jpg [--size 256 --steps 100]

About 6 minutes on a 2-core CPU at the defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageDraw

import nstyle
from nstyle.modalities.image import load_image, to_pil
from nstyle.samples import sample_path

CONTENT = "astronaut.png"
STYLES = ("ihc.png", "hubble_deep_field.jpg", "chelsea.png")


def label(im: Image.Image, text: str) -> Image.Image:
    im = im.copy()
    d = ImageDraw.Draw(im)
    box = d.textbbox((4, 4), text)
    d.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
    d.text((4, 4), text, fill=(255, 255, 255))
    return im


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    c = str(sample_path(CONTENT))
    s = [str(sample_path(n)) for n in STYLES]
    kw = dict(size=a.size, steps=a.steps)
    mask = np.zeros((a.size, a.size), np.uint8)
    mask[:, a.size // 2 :] = 255  # left: region 1, right: region 2

    def run(name: str, *args, **extra) -> Image.Image:
        t = time.time()
        r = nstyle.stylize(c, *args, **kw, **extra)
        print(f"{name}: J {r.best.total:.4g}, {time.time() - t:.0f} s", flush=True)
        return label(r.image, name)

    def square(path: str, name: str) -> Image.Image:
        im = to_pil(load_image(path, size=a.size).tensor)
        canvas = Image.new("RGB", (a.size, a.size), "white")
        canvas.paste(im, ((a.size - im.width) // 2, (a.size - im.height) // 2))
        return label(canvas, name)

    rows = [
        [square(c, "content"), *(square(x, f"style: {n}") for x, n in zip(s, STYLES))],
        [run("ihc, one scale (--scales none)", s[0], scales=None), *(run(n, x) for x, n in zip(s, STYLES))],
        [
            run("ihc, --colors keep-luminance", s[0], colors="keep-luminance"),
            run("ihc, --colors match-histogram", s[0], colors="match-histogram"),
            run("ihc + hubble, --style-blend 0.5,0.5", [s[0], s[1]], style_blend="0.5,0.5"),
            run("--mask: left untouched | right ihc", s[0], mask=mask),
        ],
        [
            run("--mask: left hubble | right chelsea", [s[1], s[2]], mask=mask),
            run("ihc, --style-scale 2", s[0], style_scale=2.0),
            run("ihc, --style-loss wasserstein", s[0], style_loss="wasserstein"),
            run("ihc, --style-loss sliced", s[0], style_loss="sliced"),
        ],
    ]
    gap = 6
    w = 4 * a.size + 3 * gap
    sheet = Image.new("RGB", (w, len(rows) * a.size + (len(rows) - 1) * gap), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            sheet.paste(im, (j * (a.size + gap), i * (a.size + gap)))
    sheet.save(a.output, quality=90)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
