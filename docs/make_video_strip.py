"""Compose the README's video strip: input frames above, the result's frames below.

    python docs/make_video_strip.py INPUT_VIDEO RESULT.gif -o docs/video_strip.jpg [--frames 5] [--height 150]
"""

from __future__ import annotations

import argparse

from PIL import Image

from nstyle.modalities.video import open_video


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video")
    p.add_argument("result")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--height", type=int, default=150)
    a = p.parse_args()
    _, stream = open_video(a.video)
    inputs = []
    for _, frame in zip(range(a.frames), stream):
        arr = (frame[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        inputs.append(Image.fromarray(arr))
    gif = Image.open(a.result)
    results = []
    for k in range(min(a.frames, gif.n_frames)):
        gif.seek(k)
        results.append(gif.convert("RGB"))
    gap = 6
    rows = [[im.resize((round(im.width * a.height / im.height), a.height), Image.LANCZOS) for im in row]
            for row in (inputs[: len(results)], results)]
    width = sum(im.width for im in rows[0]) + gap * (len(rows[0]) - 1)
    sheet = Image.new("RGB", (width, 2 * a.height + gap), "white")
    for r, row in enumerate(rows):
        x = 0
        for im in row:
            sheet.paste(im, (x, r * (a.height + gap)))
            x += im.width + gap
    sheet.save(a.output, quality=90)


if __name__ == "__main__":
    main()
