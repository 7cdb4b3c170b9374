"""Pictures worth keeping: a contact sheet of real pairs, nstyle before and after, with figures.

For every pair (content photo, style image) this renders nstyle's result with each variant
of the settings (by default ``before``: the image defaults until this study, and ``after``:
today's defaults, i.e. no options), and writes one contact sheet whose rows are the pairs
and whose columns are content | style | reference (where one exists) | one column per
variant. Beside the pictures it prints, per pair and variant, the run's time, its J and four
distances, each 0 when G matches the target and 1 when G is no closer than the content photo:

* **own style / own content**: the README's distances on the net the runs optimise (the
  bundled, activation-normalised VGG16, max pooling): Σ_l ‖Ĝ_l(G) − Ĝ_l(S)‖² over relu1_1 ...
  relu5_1 (unweighted, the same for every variant), relative to the same sum for C;
  ‖a(G) − a(C)‖² / ‖a(C)‖² at relu4_2.
* **2nd shallow / 2nd deep / 2nd content**: the same kind of distances on a network no run
  optimises: the bundled VGG16 with *average* pooling and *no* normalisation, at the layers HED
  reads its edges from, each layer's Gram distance relative to C's, averaged over the shallow
  ones (relu1_2, relu2_2: colours, strokes) and the deep ones (relu3_3, relu4_3: larger
  structures), raw activations differing in size by 10x between layers; content at relu3_3.
  A setting cannot win these by gaming its own loss.

No figure stands in for looking: the published results are *further* from the content than
nstyle's and far from S at the shallow layers, yet look better, because they redraw edges as
strokes. Judge by the sheet.

Pairs: the five published neural-style-pt results in ``../shared/data/reference/`` (with
their paintings from ``../shared/data/styles/``; used only when that folder exists, never
shipped), and four pairs of scikit-image sample images: the astronaut portrait in the
immunohistochemistry slide, the cat in the Hubble deep field, the rocket in the slide, and
the coffee cup in a 128 px patch of the gravel texture (a patch smaller than the result:
used at its own pixels by default, magnified before).

    python benchmarks/pictures.py                          # 512 px, every pair, before + after
    python benchmarks/pictures.py --size 256 --pairs astronaut_ihc,tubingen_starry
    python benchmarks/pictures.py --variant "deep:style_layers=relu3_1:1,relu4_1:1"

Results and their figures are kept in ``--out`` (``PAIR__VARIANT.png`` / ``.json``) and reused
by the next call (``--redo`` renders again), so a long sheet can be built in several sittings.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import markdown_table
from PIL import Image, ImageDraw

from nstyle import stylize
from nstyle.core.functional import scaled_gram
from nstyle.kinds.image import ImageModality
from nstyle.modalities.image import load_image, resize_to
from nstyle.nets import build_net
from nstyle.options import IMAGE_CONTENT_LAYER
from nstyle.samples import sample_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: The image defaults before the study of benchmarks/pictures.py (issue "Pictures worth
#: keeping"), spelled out as options, so ``before`` can be rendered by today's code.
BEFORE: dict[str, Any] = dict(
    style_scale=1.0, style_weight=5e6, style_layers="relu1_1:1,relu2_1:1,relu3_1:1,relu4_1:1,relu5_1:1"
)
VARIANTS: dict[str, dict[str, Any]] = {"before": BEFORE, "after": {}}

FIGURES = ("own style", "own content", "2nd shallow", "2nd deep", "2nd content")
OWN_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # the README's distances
SECOND_NET = dict(pooling="avg", normalize=False)
SECOND_SHALLOW = ("relu1_2", "relu2_2")
SECOND_DEEP = ("relu3_3", "relu4_3")
SECOND_CONTENT = "relu3_3"


@dataclass
class Pair:
    name: str
    content: Any  # a path or an array
    style: Any
    reference: Path | None = None


def patch(name: str, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` pixels of a scikit-image sample, as RGB."""
    im = np.asarray(Image.open(sample_path(name)).convert("RGB"))
    y, x = (im.shape[0] - side) // 2, (im.shape[1] - side) // 2
    return im[y : y + side, x : x + side]


def pairs() -> list[Pair]:
    out: list[Pair] = []
    ref, styles = DATA / "reference", DATA / "styles"
    if ref.is_dir() and styles.is_dir():
        for photo, painting, result in (
            ("tubingen", "starry_night", "tubingen_starry"),
            ("tubingen", "the_scream", "tubingen_scream"),
            ("tubingen", "shipwreck", "tubingen_shipwreck"),
            ("golden_gate", "starry_night", "golden_gate_starry"),
            ("golden_gate", "the_scream", "golden_gate_scream"),
        ):
            out.append(Pair(result, ref / f"{photo}.jpg", styles / f"{painting}.jpg", ref / f"{result}.png"))
    s = sample_path
    out += [
        Pair("astronaut_ihc", s("astronaut.png"), s("ihc.png")),
        Pair("chelsea_hubble", s("chelsea.png"), s("hubble_deep_field.jpg")),
        Pair("rocket_ihc", s("rocket.jpg"), s("ihc.png")),
        Pair("coffee_gravel128", s("coffee.png"), patch("gravel.png", 128)),
    ]
    return out


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], layer: str) -> float:
    """‖Ĝ(a) − Ĝ(b)‖² at ``layer``."""
    return float((scaled_gram(a[layer]) - scaled_gram(b[layer])).pow(2).sum())


def content_distance(a: dict[str, torch.Tensor], c: dict[str, torch.Tensor], layer: str) -> float:
    """‖a − a(C)‖² / ‖a(C)‖² at ``layer``."""
    return float((a[layer] - c[layer]).pow(2).sum() / c[layer].pow(2).sum())


class Judge:
    """The four distances of a result G from the pair's C and S (see the module's docstring)."""

    def __init__(self) -> None:
        self.own = build_net("vgg16")
        self.second = build_net("vgg16", **SECOND_NET)

    @torch.no_grad()
    def __call__(self, g: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> dict[str, float]:
        c = resize_to(c, g.shape[-2:])
        out: dict[str, float] = {}
        layers = [*OWN_STYLE, IMAGE_CONTENT_LAYER]
        ag, ac, as_ = (self.own(x, layers) for x in (g, c, s))
        out["own style"] = sum(gram_distance(ag, as_, n) for n in OWN_STYLE) / sum(
            gram_distance(ac, as_, n) for n in OWN_STYLE
        )
        out["own content"] = content_distance(ag, ac, IMAGE_CONTENT_LAYER)
        layers = [*SECOND_SHALLOW, *SECOND_DEEP, SECOND_CONTENT]
        ag, ac, as_ = (self.second(x, layers) for x in (g, c, s))
        for key, group in (("2nd shallow", SECOND_SHALLOW), ("2nd deep", SECOND_DEEP)):
            out[key] = sum(gram_distance(ag, as_, n) / gram_distance(ac, as_, n) for n in group) / len(group)
        out["2nd content"] = content_distance(ag, ac, SECOND_CONTENT)
        return out


def render(pair: Pair, variant: str, options: dict[str, Any], size: int, out: Path, redo: bool) -> dict[str, Any]:
    png, meta = out / f"{pair.name}__{variant}.png", out / f"{pair.name}__{variant}.json"
    if meta.exists() and png.exists() and not redo:
        return json.loads(meta.read_text())
    t = time.time()
    result = stylize(pair.content, pair.style, size=size, **options)
    seconds = time.time() - t
    result.image.convert("RGB").save(png)
    record = dict(
        pair=pair.name,
        variant=variant,
        seconds=round(seconds, 1),
        J=result.best.total,
        options={k: str(v) for k, v in options.items()},
    )
    meta.write_text(json.dumps(record, indent=1))
    return record


def measure(result: Any, pair: Pair, size: int, judge: Judge) -> dict[str, float]:
    """Distances of a result image (a saved one, or the published one) from C and S as a
    default run at ``size`` loads them (C resized to the result's grid by the judge)."""
    c = load_image(pair.content, size=size).tensor
    s = ImageModality.load_style(pair.style, max(c.shape[-2:]), None).tensor
    return judge(load_image(result).tensor, c, s)


def sheet(rows: list[Pair], variants: list[str], out: Path, height: int, path: Path) -> Path:
    """Rows of content | style | reference | variants, each cell ``height`` px high, labelled."""
    label = 16

    def cell(src: Any) -> Image.Image:
        im = Image.fromarray(src) if isinstance(src, np.ndarray) else Image.open(src)
        im = im.convert("RGB")
        return im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)

    lines = []
    for p in rows:
        cells = [("content", cell(p.content)), ("style", cell(p.style))]
        if p.reference is not None:
            cells.append(("published (neural-style-pt)", cell(p.reference)))
        for v in variants:
            png = out / f"{p.name}__{v}.png"
            blank = Image.new("RGB", (height, height), "lightgray")  # not rendered (--cached)
            cells.append((f"nstyle {v}", cell(png) if png.exists() else blank))
        lines.append(cells)
    width = max(sum(im.width + 4 for _, im in cells) for cells in lines)
    board = Image.new("RGB", (width, (height + label) * len(lines)), "white")
    draw = ImageDraw.Draw(board)
    for i, cells in enumerate(lines):
        x, y = 0, i * (height + label)
        for name, im in cells:
            draw.text((x + 2, y + 2), name, fill="black")
            board.paste(im, (x, y + label))
            x += im.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    board.save(path, quality=90)
    return path


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` (values as Python literals where they parse)."""
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    key = None
    for part in rest.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            options[key] = value
        elif key is not None:  # a comma inside a value, as in style_layers=a:1,b:1
            options[key] += "," + part
    for k, v in options.items():
        try:
            options[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            pass
    return name, options


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pairs", default="all", help="comma-separated pair names, or all")
    p.add_argument("--variants", default="before,after", help="which of the named variants to render")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="an extra variant: options on top of today's defaults",
    )
    p.add_argument("--out", default="out/pictures")
    p.add_argument("--height", type=int, default=256, help="height of one cell of the sheet")
    p.add_argument("--sheet", help="where the contact sheet goes (default: OUT/SIZE/sheet.jpg)")
    p.add_argument("--cached", action="store_true", help="render nothing: show and measure only kept results")
    p.add_argument("--redo", action="store_true", help="render again even where a result is kept")
    a = p.parse_args()
    torch.manual_seed(0)
    variants = {k: VARIANTS[k] for k in a.variants.split(",") if k}
    variants.update(parse_variant(v) for v in a.variant)
    rows = [q for q in pairs() if a.pairs == "all" or q.name in a.pairs.split(",")]
    out = Path(a.out) / str(a.size)
    out.mkdir(parents=True, exist_ok=True)
    judge = Judge()
    table = []
    for pair in rows:
        for name, options in variants.items():
            if a.cached and not (out / f"{pair.name}__{name}.json").exists():
                continue
            rec = render(pair, name, options, a.size, out, a.redo)
            d = measure(out / f"{pair.name}__{name}.png", pair, a.size, judge)
            figures = [f"{x:.3f}" for x in d.values()]
            table.append([pair.name, name, f"{rec['seconds']:.0f}", f"{rec['J']:.4g}", *figures])
            print(" | ".join(table[-1]), flush=True)
        if pair.reference is not None:
            d = measure(pair.reference, pair, a.size, judge)
            table.append([pair.name, "published", "", "", *(f"{x:.3f}" for x in d.values())])
    print()
    print(markdown_table(["pair", "variant", "s", "J", *FIGURES], table))
    target = Path(a.sheet) if a.sheet else out / "sheet.jpg"
    print(f"\nsheet: {sheet(rows, list(variants), out, a.height, target)}")


if __name__ == "__main__":
    main()
