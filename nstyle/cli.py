"""`nstyle image|audio|series|volume CONTENT STYLE... -o OUT`: parse, call ``nstyle.pipeline``, report.

Every subcommand's options are built from its settings type (``nstyle.options``): the
help, the defaults and the choices shown here are the API's own.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

import torch

from . import __version__
from .core.engine import StepInfo
from .errors import NStyleError
from .jobs.ledger import ledger_path
from .kinds import MODALITIES
from .options import (
    OUTPUTS,
    SETTINGS,
    ImageOutputs,
    Settings,
    VideoSettings,
    argparse_type,
    command_fields,
    option_of,
)
from .outputs.atomic import check_writable
from .outputs.config import (
    add_config_option,
    config_path_for,
    config_text,
    parse_args_with_config,
    write_config,
    written_by_nstyle,
)
from .outputs.guard import Named, all_or_nothing, check_run_paths, input_paths
from .pipeline import Plan, run, steps_before
from .resources import limits
from .runtime import interrupted_status, notice, one_line, quiet_warnings, say, stop_signals
from .validators import NAMED_INITS, check_count, check_range

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
  nstyle volume anatomy.nii.gz texture.nii.gz -o out.nii.gz --preview slices.png
  nstyle explain photo.jpg -o layers.png
  nstyle studio                              (a web page: http://127.0.0.1:8765/)
  nstyle --config out.toml -o again.png      (repeat a run from its settings file)
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

# (help, description, CONTENT help, STYLE help, -o help) of each kind's subcommand.
COMMANDS = {
    "image": ("style transfer between two images",
              "Re-render CONTENT in the style of STYLE and write the result to OUT.",
              "the image whose layout is kept",
              "the image(s) whose colours and textures are taken (several: see --style-blend, --mask)",
              "result image (.png, .jpg, .tif, ...)"),
    "audio": ("style transfer between two sounds (WAV, FLAC, OGG)",
              "Style transfer between two sounds (WAV, FLAC, OGG).",
              "the sound whose timing is kept", "the sound(s) whose timbre and texture are taken",
              "result sound (.wav, .flac, .ogg)"),
    "series": ("style transfer between multichannel time series (CSV, .npy, DICOM ECG)",
               "Style transfer between multichannel time series (CSV, .npy, DICOM ECG).",
               "the series whose events (e.g. beats) are kept", "the series whose waveform shapes are taken",
               "result in the content's format (.csv, .npy, .dcm)"),
    "volume": ("style transfer between 3D volumes (NIfTI, DICOM series, .npy)",
               "Re-render the CT/MRI volume CONTENT in the style of STYLE, keeping CONTENT's geometry.",
               "volume whose anatomy is kept: .nii/.nii.gz, a DICOM folder or file, .npy",
               "volume(s) whose texture is taken",
               "result (.nii, .nii.gz, .npy; a folder for DICOM slices)"),
}


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
    for kind, (help_, description, c_help, s_help, o_help) in COMMANDS.items():
        p = sub.add_parser(kind, help=help_, description=description, formatter_class=HelpFormatter)
        p.add_argument("content", help=c_help)
        p.add_argument("style", nargs="+", help=s_help)
        p.add_argument("-o", "--output", required=True, help=o_help)
        add_fields(p, command_fields(kind))
    _add_explain_parser(sub)
    _add_video_parser(sub)
    for command in sub.choices.values():
        add_config_option(command)  # --config RUN.toml: a previous run's options as defaults
    _add_batch_parser(sub)  # a plan is its own settings file: no --config
    _add_studio_parser(sub)
    return parser


def _add_studio_parser(sub) -> None:
    p = sub.add_parser(
        "studio", help="a local web page to make runs, watch them live and steer them",
        description="Start nstyle studio, a web app on this machine: upload or pick content and style, start "
                    "runs, watch G change, stop, continue from a result, download it and its settings file.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--port", type=int, default=8765, help="port to listen on")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; beyond loopback (e.g. 0.0.0.0) a token is required and printed")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="folder of uploads and runs (default: $XDG_DATA_HOME/nstyle/studio)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--workers", type=int, default=1, help="runs at a time (one suits a CPU machine)")
    p.add_argument("--token", default=None, help="require this token (default: one is made when not on loopback)")
    p.add_argument("--max-upload", type=float, default=64, metavar="MB", help="largest file a page may send")


def run_studio(args: argparse.Namespace) -> int:
    from .studio import serve

    check_range("max upload (MB)", args.max_upload, 0, 1e6, low_open=True)
    serve(args.host, args.port, args.data, args.open, args.workers, args.token, args.max_upload, say=say)
    return 0


def _add_video_parser(sub) -> None:
    p = sub.add_parser(
        "video", help="style transfer for a clip, frame by frame without flicker (Ruder et al. 2016)",
        description="Restyle the video CONTENT (MP4, AVI, MKV, WebM, MOV, GIF or a folder of frames) in the style "
                    "of STYLE; each frame starts from the previous result carried along the optical flow and is "
                    "tied to it by J_temporal. Ctrl-C writes the frames done; the same command resumes.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("content", help="the clip whose motion and layout are kept")
    p.add_argument("style", nargs="+", help="the style image(s)")
    p.add_argument("-o", "--output", required=True, help="result: a video file (same frame rate and audio), "
                   ".gif, or a folder/ of PNG frames")
    add_fields(p, command_fields("video"))


def run_video(args: argparse.Namespace) -> int:
    """``nstyle video``: one bar over frames, the video written even when interrupted."""

    from .video import stylize_video

    options = {f.name: getattr(args, f.name) for f in fields(VideoSettings)}
    VideoSettings.from_options(options).validate()
    outputs = [("output", Path(args.output)), ("settings file", config_path_for(args.output))]
    outputs += [("film", Path(args.film))] if args.film else []
    check_outputs(outputs, input_paths(args.content, args.style, config=args.config), args)
    recorder, first_steps = None, []
    if args.film:
        from .outputs.film import FilmRecorder, check_film_path

        check_film_path(args.film)
        recorder = FilmRecorder(args.film, max_frames=args.film_frames)

    bar = LazyBar(args.quiet, total=args.max_frames, unit="frame")

    def step(t: int, info: StepInfo, g: torch.Tensor) -> None:
        bar.get()
        if recorder is not None and t == 0:  # the film shows how the first frame forms
            recorder(info, g)
            first_steps.append(info)

    try:
        with all_or_nothing([config_path_for(args.output), *([Path(args.film)] if args.film else [])]):
            result = stylize_video(
                args.content, args.style, args.output, callback=step,
                on_frame=lambda t, j: (bar.get().update(1), bar.get().set_postfix_str(f"J={j:.4g}")) and None,
                **options,
            )
            if recorder is not None and first_steps:
                say(f"wrote {recorder.write(first_steps)}")
            write_settings(args)
    finally:
        bar.close()
    say(f"{'interrupted: ' if result.interrupted else ''}wrote {result.output} ({result.frames} frames)")
    if result.interrupted:
        say(f"the finished frames are kept in {result.work}: the same command resumes")
    return interrupted_status() if result.interrupted else 0


def _add_batch_parser(sub) -> None:
    p = sub.add_parser(
        "batch", help="many runs from one plan (TOML or CSV), on this machine or a Dask cluster",
        description="Run every job of PLAN that is not done yet (see nstyle.jobs.plan for the format); "
                    "results are recorded in PLAN.ledger.jsonl. Exit status 0: every job done; 1: some failed.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("plan", help="the plan: [[job]] and [[product]] tables (.toml) or rows (.csv)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local "
                        "cluster)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core, 3 GiB of memory each)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per job (default: cores / workers)")
    p.add_argument("--shared", action="store_true",
                   help="workers read the inputs from their paths (a shared file system) instead of receiving bytes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_batch(args: argparse.Namespace) -> int:
    """``nstyle batch PLAN``: one bar for the batch, one line per failed job, a summary."""

    from .jobs import batch

    for what, n in (("workers", args.workers), ("threads", args.threads)):
        if n is not None:
            check_count(what, n, 1)
    bar = LazyBar(args.quiet, unit="job")

    def start(pending: int, client: Any) -> None:
        if importlib.util.find_spec("bokeh") is not None:
            say(f"Dask dashboard: {client.dashboard_link}")
        bar.options["total"] = pending
        bar.get()

    def done(result: Any, counts: dict[str, int]) -> None:
        if not bar.started:  # refused on this machine before any job ran
            say(f"failed: {result.output}: {result.error}")
            return
        if result.status == "failed":
            bar.get().write(f"failed: {result.output}: {result.error}", file=sys.stderr)
        bar.get().update(1)
        bar.get().set_postfix_str(f"done={counts['done']} failed={counts['failed']} running={counts['running']}")

    try:
        results = batch(args.plan, scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                        shared=args.shared, on_start=start, on_result=done)
    except KeyboardInterrupt:
        bar.close()
        say(f"interrupted: finished jobs are in {ledger_path(Path(args.plan))}; run the plan again to resume")
        return interrupted_status()
    bar.close()
    tally = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed", "cancelled")}
    say(", ".join(f"{n} {s}" for s, n in tally.items() if n) + f"; ledger: {ledger_path(Path(args.plan))}")
    return 1 if tally["failed"] else 0


def add_fields(parser: argparse.ArgumentParser, settings_fields: list[Any]) -> None:
    """One option per settings field: --name-with-dashes, its default, help, choices, type."""
    groups: dict[str, Any] = {}
    for f in settings_fields:
        opt = option_of(f)
        if opt.group not in groups:
            groups[opt.group] = parser.add_argument_group(opt.group)
        flag = "--" + f.name.replace("_", "-")
        if opt.flag:
            groups[opt.group].add_argument(flag, action="store_true", help=opt.help)
            continue
        kw: dict[str, Any] = {"default": f.default, "help": opt.help}
        kind = argparse_type(f)
        kw.update({k: v for k, v in (("choices", opt.choices), ("metavar", opt.metavar), ("type", kind)) if v})
        groups[opt.group].add_argument(flag, **kw)


def _add_explain_parser(sub) -> None:
    from . import explainer as ex

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
    p.add_argument(
        "--steps", type=int, default=ex.DEFAULT_STEPS, help="steps per reconstruction (10 Adam, then L-BFGS)"
    )
    p.add_argument("--channels", type=int, default=ex.DEFAULT_CHANNELS, help="activation maps per layer")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise every reconstruction starts from")
    p.add_argument("--net", choices=("vgg16", "vgg19"), default="vgg16")
    p.add_argument("--pooling", choices=("max", "avg"), default=ex.DEFAULT_POOLING)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--max-memory", type=float, default=None, metavar="GIB",
                   help="GiB the figure's reconstructions may use (default: 0.8 x this machine's memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace a settings file OUT.toml that nstyle did not write (refused otherwise)")


def run_explain(args: argparse.Namespace) -> int:

    from .explainer import explain

    output = check_writable(args.output)
    outputs = [("figure", output), ("settings file", config_path_for(args.output))]
    check_outputs(outputs, input_paths(args.image, [], config=args.config), args)
    if args.max_memory is not None:
        check_range("max memory (GiB)", args.max_memory, 0, 1e6, low_open=True)
    bar = LazyBar(args.quiet, unit="step")  # the panel count depends on the kind of input: no total

    def progress(panel: str, step: int) -> None:
        bar.get().set_description(panel)
        bar.get().update(1)

    with all_or_nothing([p for _, p in outputs]):
        try:
            with limits(args.max_memory):
                result = explain(
                    args.image, args.output, size=args.size, steps=args.steps, net=args.net, pooling=args.pooling,
                    channels=args.channels, seed=args.seed, device=args.device, callback=progress,
                )
        finally:
            bar.close()
        say(f"wrote {result.path}")
        write_settings(args)
    return interrupted_status() if result.interrupted else 0


def check_outputs(outputs: list[Named], inputs: list[Named], args: argparse.Namespace) -> None:
    """Before any work: every output's folder writable, the settings file's text
    writable, no output over an input or over another output."""
    if args.output.endswith(("/", os.sep)) and args.command not in ("volume", "video"):  # they may write folders
        raise NStyleError(f"{args.output}: names a folder; give a file name (the output)")
    for what, path in outputs[1:]:  # the main output: checked by its kind (a folder may be one)
        try:
            check_writable(path)
        except NStyleError as e:
            raise NStyleError(f"{e} (the {what})") from None
    config_text(vars(args), args.command)  # a value TOML cannot hold fails now, not after the run
    check_run_paths(outputs, inputs, getattr(args, "overwrite_input", False))
    check_derived(args)


def check_derived(args: argparse.Namespace) -> None:
    """Files whose names nstyle derives from OUT (the settings file OUT.toml, the snapshots
    OUT.stepNNNN.ext) replace only files nstyle wrote: a settings file that starts with
    nstyle's header, snapshots next to such a settings file. Anything else of those names
    is the user's, and is refused unless --force. (Files named on the command line, -o,
    --plot, --film, --preview, are replaced: the user named them.)"""
    if getattr(args, "force", False):
        return
    settings = config_path_for(args.output)
    ours = written_by_nstyle(settings)
    if os.path.lexists(settings) and not ours:
        raise NStyleError(f"{settings}: exists and nstyle did not write it (the settings file of {args.output}); "
                          "move it or pass --force")
    every = getattr(args, "save_every", 0) or 0
    if every > 0 and not ours:
        output = Path(args.output)
        taken = sorted(output.parent.glob(f"{glob.escape(output.stem)}.step[0-9][0-9][0-9][0-9]{output.suffix}"))
        if taken:
            raise NStyleError(f"{taken[0]}: exists and nstyle did not write it (a snapshot name of --save-every); "
                              "move it or pass --force")


def write_settings(args: argparse.Namespace) -> None:
    """Every option of the run, next to its output: `nstyle --config OUT.toml` repeats it."""
    say(f"wrote {write_config(config_path_for(args.output), vars(args), args.command)}")


def snapshot_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


class LazyBar:
    """A tqdm bar made on first use, so that a refusal before any work prints only its line;
    ``options`` (total, unit, ...) may still change until then."""

    def __init__(self, quiet: bool, **options: Any) -> None:
        self.options = {"disable": quiet, "dynamic_ncols": True, **options}
        self.bar: Any = None

    @property
    def started(self) -> bool:
        return self.bar is not None

    def get(self) -> Any:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(**self.options)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Progress(LazyBar):
    """The steps of a run, sized by its scale plan, with J and its parts."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(quiet, unit="step")
        self.planned: Plan = []

    def plan(self, plan: Plan) -> None:
        self.options["total"] = sum(n for _, n in plan)
        self.planned = plan

    def __call__(self, info: StepInfo, g: torch.Tensor) -> None:
        bar = self.get()
        start = steps_before(self.planned, info.scale)
        if bar.n < start:  # the previous scale reached its plateau early: skip its unused steps
            bar.update(start - bar.n)
        bar.update(1)
        bar.set_postfix_str(f"J={info.total:.4g} J_content={info.content:.3g} J_style={info.style:.3g}")


def finish(result: Any, output: str | Path, overwrite_input: bool = False) -> int:
    """Write the result (also after Ctrl-C: the best G so far) and report; the exit status."""
    result.save(output, overwrite_input=overwrite_input)
    best = result.best
    summary = f"wrote {output}" + (f" (best J={best.total:.4g} at step {best.step})" if best else "")
    say(f"interrupted: {summary}" if result.interrupted else summary)
    return interrupted_status() if result.interrupted else 0


def check_plot_path(path: str) -> Path:
    plot = check_writable(path)
    if plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise NStyleError(f"{plot}: plots are written as .png, .pdf or .svg")
    return plot


class ImageExtras:
    """The image command's extra outputs: a film of the run and snapshots every N steps."""

    def __init__(self, args: argparse.Namespace, output: Path) -> None:
        from .outputs.film import check_film_path

        if args.save_every < 0:
            raise NStyleError(f"--save-every must be >= 0, got {args.save_every}")
        if args.film_frames < 2:
            raise NStyleError(f"--film-frames must be at least 2, got {args.film_frames}")
        self.args, self.output = args, output
        if args.film:
            check_film_path(args.film)
        self.film: Any = None  # made once the plan says how many steps it spans
        self.last_scale, self.done, self.alpha = 0, 0, None

    def plan(self, plan: Plan) -> None:
        from .outputs.film import FilmRecorder

        self.last_scale = len(plan) - 1
        if self.args.film:
            total = sum(n for _, n in plan)
            self.film = FilmRecorder(self.args.film, max_frames=self.args.film_frames, total_steps=total)

    def __call__(self, info: StepInfo, g: torch.Tensor) -> None:
        from .modalities.image import load_image, save_image

        if self.film is not None:
            self.film(info, g)
        if info.scale != self.last_scale:  # snapshots at the output's size only
            return
        self.done += 1
        if self.args.save_every and self.done % self.args.save_every == 0:
            if self.alpha is None:  # the content's alpha channel, kept in snapshots as in the result
                self.alpha = [load_image(self.args.content, size=self.args.size).alpha]
            save_image(g.clamp(0, 1), snapshot_path(self.output, self.done), self.alpha[0])

    def write(self, result: Any) -> None:
        from .outputs.plots import plot_losses

        if self.film is not None and result.history:
            best = result.best
            self.film.add(result.tensor, step=result.best_step, j=best.total if best else None, note="result")
            say(f"wrote {self.film.write(result.history)}")
        if self.args.plot and result.history:
            plot_losses(
                result.history, self.args.plot, beta=result.options["style_weight"], tv_weight=self.args.tv_weight
            )
            say(f"wrote {self.args.plot}")


def write_extras(args: argparse.Namespace, result: Any) -> None:
    """The sound, series and volume commands' figures: spectrograms, traces, mid-slices."""
    from .outputs.plots import plot_audio, plot_series

    if args.command in ("audio", "series") and args.plot:
        (plot_audio if args.command == "audio" else plot_series)(
            args.content, args.style[0], args.output, args.plot, result.options
        )
        say(f"wrote {args.plot}")
    if args.command == "volume" and args.preview:
        from .modalities.volume import load_volume, preview
        from .validators import parse_window

        style = load_volume(args.style[0], index=args.style_index, window=parse_window(args.window)).tensor
        preview([result.like.tensor, style, result.tensor], ["content C", "style S", "result G"], args.preview)
        say(f"wrote {args.preview}")


def settings_from(args: argparse.Namespace) -> Settings:
    """The kind's settings from the parsed options (validated)."""
    cls = SETTINGS[args.command]
    return cls.from_options({f.name: getattr(args, f.name) for f in fields(cls)}).validate()


def run_paths(args: argparse.Namespace, settings: Settings, output: Path) -> tuple[list[Named], list[Named]]:
    """(what, path) of every file a run writes (snapshots aside) and of every file it reads."""
    outputs: list[Named] = [("output", output), ("settings file", config_path_for(args.output))]
    extras = [e for e in ("plot", "preview", "film") if getattr(args, e, None)]
    outputs += [(extra, Path(getattr(args, extra))) for extra in extras]
    init = getattr(settings, "init", None)
    inputs = input_paths(
        args.content, args.style, config=args.config, mask=settings.mask, weights=getattr(settings, "weights", None),
        init=None if isinstance(init, str) and init in NAMED_INITS else init,
    )
    return outputs, inputs


def run_kind(args: argparse.Namespace) -> int:
    """One run of ``nstyle image|audio|series|volume``: check every output first, run, write."""
    modality = MODALITIES[args.command]
    settings = settings_from(args)
    outputs, inputs = run_paths(args, settings, Path(args.output))
    check_outputs(outputs, inputs, args)
    output = modality.check_output(args.output, args.content, settings)
    for extra in ("plot", "preview"):
        if getattr(args, extra, None):
            check_plot_path(getattr(args, extra))
    progress = Progress(args.quiet)
    extras = ImageExtras(args, output) if isinstance(OUTPUTS[args.command](), ImageOutputs) else None
    hooks = [h for h in (progress, extras) if h is not None]
    try:
        result = run(
            modality, args.content, args.style if len(args.style) > 1 else args.style[0], settings,
            callback=lambda info, g: [h(info, g) for h in hooks] and None,
            on_plan=lambda plan: [h.plan(plan) for h in hooks] and None,
        )
    finally:
        progress.close()
    with all_or_nothing([p for _, p in outputs]):
        # args.output, the string: a trailing "/" asks a volume for a folder
        status = finish(result, args.output, args.overwrite_input)
        if extras is not None:
            extras.write(result)
        write_extras(args, result)
        write_settings(args)
    return status


def main(argv: list[str] | None = None) -> int:
    """The command line; the exit status: 0 done, 2 bad input (one line), 130/143/129 when
    interrupted by Ctrl-C, SIGTERM or SIGHUP (the best result so far written)."""
    try:
        with stop_signals(), quiet_warnings() as caught:
            args = parse_args_with_config(build_parser(), sys.argv[1:] if argv is None else argv)
            commands = {"explain": run_explain, "batch": run_batch, "video": run_video, "studio": run_studio}
            status = commands.get(args.command, run_kind)(args)
        notice(caught)
        return status
    except NStyleError as e:
        say(f"nstyle: error: {one_line(str(e))}")
        return 2
    except KeyboardInterrupt:
        say("nstyle: interrupted; no new files written")
        return interrupted_status()
    except OSError as e:  # the file system refused something nstyle did not foresee
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        say(f"nstyle: error: {where}{one_line(e.strerror or str(e))}")
        return 2
    except (MemoryError, torch.OutOfMemoryError):
        say("nstyle: error: ran out of memory; lower --size (or the signal's length, or the --branches filters)")
        return 2
    except RuntimeError as e:
        if "alloc" in str(e).lower() or "out of memory" in str(e).lower():  # torch's CPU allocator failure
            say(f"nstyle: error: ran out of memory ({one_line(str(e), 120)}); lower --size")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
