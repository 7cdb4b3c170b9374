"""Compose the README picture: content | style | result, each scaled to the same height.

    python docs/make_figure.py CONTENT STYLE RESULT -o docs/demo.jpg [--height 320]
"""

from __future__ import annotations

import argparse

from PIL import Image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--height", type=int, default=320)
    a = p.parse_args()
    ims = []
    for path in a.images:
        im = Image.open(path).convert("RGB")
        ims.append(im.resize((round(im.width * a.height / im.height), a.height), Image.LANCZOS))
    gap = 8
    sheet = Image.new("RGB", (sum(i.width for i in ims) + gap * (len(ims) - 1), a.height), "white")
    x = 0
    for im in ims:
        sheet.paste(im, (x, 0))
        x += im.width + gap
    sheet.save(a.output)


if __name__ == "__main__":
    main()
