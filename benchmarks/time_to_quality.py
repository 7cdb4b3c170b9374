"""Time to a finished result at equal quality: nstyle's defaults against the former ones.

Two sections (``--sections pairs,bars``), each printed as a markdown table:

* **pairs**: real content/style pairs at ``--size`` (512) px. The *reference* is the image
  defaults before ``--quality`` existed, written out here as a plain loop: coarse-to-fine
  over the same long sides (128 px up by √2), G upsampled (bicubic) plus the content's detail
  band between scales, ``torch.optim.LBFGS`` (max_iter 1, history 50, lr 1), 50 steps at
  each coarse scale and 200 at the output size, a step that raises J above 10x the best so
  far sends G back to the best with half the step (the former restart), fp32, the Grams and
  costs written out with autograd (``FormerLoss``), G unbounded and clipped to [0, 1] when
  saved. *nstyle* is
  ``stylize(content, style, size=...)`` with today's defaults (``--qualities`` adds draft or
  best). For each: seconds, J of the saved picture (nstyle's fp32 objective at the output
  size, the same for both), and the README's two distances: style = Σ_l ‖Ĝ_l(G) − Ĝ_l(S)‖²
  over the default style layers (relu1_1 … relu4_1, unweighted) relative to the same sum
  for the content photo; content = ‖a(G) − a(C)‖² / ‖a(C)‖² at relu4_2. A contact sheet
  (content | style | reference | nstyle) is written to ``--out``.
* **bars**: the issue's table. Image 512x512 (scikit-image's astronaut in its ihc slide),
  the demo (same pair at 384 px): the reference loop above against ``stylize``. Sound (10 s
  of alsa's Front_Center.wav looped, in Noise.wav's style): the former defaults (300 fp32
  steps, no plateau) timed for ``--probe`` steps and extrapolated, against a full default
  run. Volume 128³ triplanar (nibabel's example volumes, as ``bench_3d.py``): the former
  defaults (200 fp32 steps at 128³, one scale) timed for ``--probe`` steps and
  extrapolated, against a full default run. Per evaluation: the share of the convolution
  peak one 512 px evaluation reaches in fp32 and bf16 (``bench_speed.py``'s peak and
  eval measurements).

Every run is in this one process, reference and nstyle interleaved, so that a noisy
machine slows both alike; ``nstyle.resources.keep_freed_memory`` is set first, so the
reference gets nstyle's allocator setting too (the ratio measures the schedule, the
bounds, the precision and the per-evaluation work, not the allocator).

    python benchmarks/time_to_quality.py                      # both sections, about an hour on 2 cores
    python benchmarks/time_to_quality.py --sections bars --skip volume
    python benchmarks/time_to_quality.py --sections pairs --pairs tubingen_starry,astronaut_ihc
    python benchmarks/time_to_quality.py --sections pairs --reuse-former   # today's side again only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import cpu_model, lbfgs_args, markdown_table, plain_gram, prepare
from PIL import Image, ImageDraw

import nstyle
from nstyle.core.engine import OVERSHOOT
from nstyle.core.multiscale import scale_schedule, scaled_shape, upscale
from nstyle.kinds.base import Signals
from nstyle.modalities.image import load_image, save_image
from nstyle.options import IMAGE_CONTENT_LAYER, IMAGE_STYLE_LAYERS
from nstyle.resources import keep_freed_memory

SECTIONS = ("pairs", "bars")
DEFAULT_PAIRS = "tubingen_starry,golden_gate_scream,tubingen_shipwreck,astronaut_ihc,chelsea_hubble,coffee_gravel128"
STYLE_LAYERS = [p.split(":")[0] for p in IMAGE_STYLE_LAYERS.split(",")]
FORMER_COARSE, FORMER_FINAL = 50, 200  # the former image defaults


class FormerLoss:
    """J as the former defaults evaluated it: nstyle's VGG to the deepest layer used, fp32,
    the Grams and costs written out (autograd differentiates them)."""

    def __init__(self, case: Any) -> None:
        self.net = case.model
        content_layers, self.style_weights, self.alpha, self.beta = case.weights()
        self.content_layer = content_layers[0]
        self.layers = sorted(set(self.style_weights) | {self.content_layer})
        with torch.no_grad():
            s = self.net(case.style, self.layers)
            self.targets = {n: plain_gram(s[n]) for n in self.style_weights}
            self.content = self.net(case.content, [self.content_layer])[self.content_layer]

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        acts = self.net(g, self.layers)
        j_c = 0.5 * (acts[self.content_layer] - self.content).pow(2).sum()
        j_s = sum(lam * (plain_gram(acts[n]) - self.targets[n]).pow(2).sum() for n, lam in self.style_weights.items())
        return self.alpha * j_c + self.beta * j_s


def former_image(content: Any, style: Any, size: int) -> torch.Tensor:
    """The former default image run (see the module docstring); the picture as saved."""
    case = prepare("image", content, style, "cpu", size=size, net="vgg16", tile="none", precision="fp32")
    full = case.signals
    long = max(full.content.shape[2:])
    g: torch.Tensor | None = None
    lr = float(lbfgs_args(1)["lr"])  # halved after an overshoot, and kept so at the finer scales
    sides = scale_schedule(long)
    for side in sides:
        shape = scaled_shape(full.content.shape[2:], side)
        s_side = max(1, round(max(full.styles[0].shape[2:]) * side / long))
        c = case.modality.resize(full.content, shape)
        s = case.modality.resize(full.styles[0], scaled_shape(full.styles[0].shape[2:], s_side))
        at = dataclasses.replace(case, signals=Signals(c, [s], full.meta, None, None, None, full.source), alpha=None)
        loss = FormerLoss(at)
        g0 = c.clone() if g is None else upscale(g, shape, c, (0.0, 1.0))
        x = g0.detach().clone().contiguous().requires_grad_(True)
        args = lbfgs_args(x.numel())
        opt = torch.optim.LBFGS([x], **{**args, "lr": lr})

        def closure(x: torch.Tensor = x, loss: FormerLoss = loss) -> torch.Tensor:
            x.grad = None
            j = loss(x)
            j.backward()
            return j.detach()

        best, best_g = float("inf"), x.detach().clone()
        for _ in range(FORMER_FINAL if side == sides[-1] else FORMER_COARSE):
            before = x.detach().clone()
            j = float(opt.step(closure))  # J at `before`
            if j < best:
                best, best_g = j, before
            elif j > OVERSHOOT * best:  # the former defaults' restart: back to the best G, half the step
                lr *= 0.5
                with torch.no_grad():
                    x.copy_(best_g)
                opt = torch.optim.LBFGS([x], **{**args, "lr": lr})
        g = best_g
    assert g is not None
    return g.clamp(0, 1)


class Judge:
    """J of a picture (nstyle's fp32 objective at the output size) and the README's distances."""

    def __init__(self, content: Any, style: Any, size: int) -> None:
        self.case = prepare("image", content, style, "cpu", size=size, net="vgg16", tile="none",
                            precision="fp32").build(start=False)
        net, c, s = self.case.model, self.case.content, self.case.style
        with torch.no_grad():
            self.ac = net(c, [*STYLE_LAYERS, IMAGE_CONTENT_LAYER])
            self.gs = {n: plain_gram(a) for n, a in net(s, STYLE_LAYERS).items()}
        self.c_style = self.style_sum(self.ac)

    def style_sum(self, acts: dict[str, torch.Tensor]) -> float:
        return sum(float((plain_gram(acts[n]) - self.gs[n]).pow(2).sum()) for n in STYLE_LAYERS)

    def __call__(self, g: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            j = float(self.case.objective(g).total)
            ag = self.case.model(g, [*STYLE_LAYERS, IMAGE_CONTENT_LAYER])
        a, c = ag[IMAGE_CONTENT_LAYER], self.ac[IMAGE_CONTENT_LAYER]
        return {"J": j, "style": self.style_sum(ag) / self.c_style,
                "content": float((a - c).pow(2).sum() / c.pow(2).sum())}


def timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def saved(g: torch.Tensor, path: Path) -> torch.Tensor:
    """G as the 8-bit picture a user keeps, and that picture written to ``path``."""
    save_image(g, path)
    return load_image(path).tensor


def former_figures(pair: Any, judge: Judge, path: Path, a: argparse.Namespace) -> tuple[dict[str, float], float]:
    """The former defaults' picture of ``pair`` (saved at ``path``), its figures and its time;
    with ``--reuse-former`` a picture and time kept by an earlier call at the same size."""
    record = path.with_suffix(".json")
    if a.reuse_former and path.exists() and record.exists():
        kept = json.loads(record.read_text())
        if kept.get("size") == a.size:
            return judge(load_image(path).tensor), float(kept["seconds"])
    ref, t_ref = timed(lambda: former_image(pair.content, pair.style, a.size))
    figures = judge(saved(ref, path))
    record.write_text(json.dumps({"size": a.size, "seconds": t_ref}))
    return figures, t_ref


def section_pairs(a: argparse.Namespace) -> None:
    from pictures import DATA, pairs  # the study's pairs: published paintings where present, scikit-image's

    known = {p.name: p for p in pairs()}
    wanted = [n for n in a.pairs.split(",") if n]
    missing = [n for n in wanted if n not in known]
    if missing:
        print(f"(skipped, not on this machine: {', '.join(missing)})")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, cells = [], []
    for name in [n for n in wanted if n in known]:
        pair = known[name]
        judge = Judge(pair.content, pair.style, a.size)
        ref_fig, t_ref = former_figures(pair, judge, out / f"{name}__former.png", a)
        row_cells = [out / f"{name}__former.png"]
        for q in a.qualities.split(","):
            res, t = timed(lambda pair=pair, q=q: nstyle.stylize(pair.content, pair.style, size=a.size, quality=q))
            fig = judge(saved(res.tensor, out / f"{name}__{q}.png"))
            row_cells.append(out / f"{name}__{q}.png")
            rows.append([name, q, f"{t_ref:.0f} s", f"{t:.0f} s", f"{t_ref / t:.1f}x",
                         f"{ref_fig['J']:.3g}", f"{fig['J']:.3g} ({fig['J'] / ref_fig['J'] - 1:+.0%})",
                         f"{ref_fig['style']:.4f}", f"{fig['style']:.4f} ({fig['style'] / ref_fig['style'] - 1:+.0%})",
                         f"{ref_fig['content']:.3f}",
                         f"{fig['content']:.3f} ({fig['content'] / ref_fig['content'] - 1:+.0%})"])
            print(" | ".join(rows[-1]), flush=True)
        cells.append((pair, row_cells))
    print()
    print(markdown_table(["pair", "quality", "former time", "nstyle time", "speed-up", "former J", "nstyle J",
                          "former style", "nstyle style", "former content", "nstyle content"], rows, left=[0, 1]))
    sheet(cells, out / "sheet.jpg", a.qualities.split(","))
    print(f"\ncontact sheet: {out / 'sheet.jpg'} (content | style | former | {' | '.join(a.qualities.split(','))})")
    if a.docs_sheet:  # only the pairs an installed package ships: the paintings stay outside the project
        shipped = [(p, row) for p, row in cells if not str(p.content).startswith(str(DATA))]
        sheet(shipped, Path(a.docs_sheet), a.qualities.split(","))
        print(f"scikit-image pairs only: {a.docs_sheet}")


def sheet(cells: list[tuple[Any, list[Path]]], path: Path, qualities: list[str], height: int = 256) -> None:
    def tile(src: Any) -> Image.Image:
        im = load_image(src).tensor[0].permute(1, 2, 0).clamp(0, 1).mul(255).byte().numpy()
        pic = Image.fromarray(im)
        return pic.resize((max(1, round(pic.width * height / pic.height)), height))

    rows = [[tile(p.content), tile(p.style), *[tile(c) for c in row]] for p, row in cells]
    if not rows:
        return
    labels = ["content", "style", "former", *qualities]
    widths = [max(r[i].width for r in rows) for i in range(len(labels))]
    out = Image.new("RGB", (sum(widths), (height + 18) * len(rows) + 4), "white")
    draw = ImageDraw.Draw(out)
    for r, row in enumerate(rows):
        x = 0
        for i, im in enumerate(row):
            out.paste(im, (x, r * (height + 18) + 18))
            label = f"{cells[r][0].name}: {labels[i]}" if i == 0 else labels[i]
            draw.text((x + 4, r * (height + 18) + 3), label, fill="black")
            x += widths[i]
    out.save(path, quality=90)


def audio_files(folder: Path) -> tuple[Path, Path]:
    from bench_1d import audio_pair, write_wav

    c, s, source = audio_pair()
    # Said on every run: without alsa-utils' WAVs the pair is synthetic, and the sound row's
    # time is not comparable with one measured on the real speech.
    print(f"sound pair: {source}", flush=True)
    return write_wav(c, folder / "content.wav"), write_wav(s, folder / "style.wav")


def probe_seconds(run: Any, total_steps: int, probe: int) -> float:
    """Seconds of a run of ``total_steps`` steps, from its first ``probe`` steps: start-up as
    measured, the steps at the median pace of those after the first."""
    times: list[float] = []
    t0 = time.perf_counter()

    def cb(info: Any, g: torch.Tensor) -> None:
        times.append(time.perf_counter() - t0)
        if len(times) > probe:
            raise KeyboardInterrupt  # the run keeps its best G and returns

    run(cb)
    steps = sorted(b - a for a, b in zip(times, times[1:]))
    return times[0] + steps[len(steps) // 2] * (total_steps - 1)


def section_bars(a: argparse.Namespace) -> None:
    from skimage import data  # noqa: F401 -- the samples' package must be there

    from nstyle.samples import sample_path

    rows = []
    photo, slide = sample_path("astronaut.png"), sample_path("ihc.png")
    for label, size, bar in (("image 512x512 (astronaut / ihc)", 512, 60.0), ("make demo (384 px)", 384, 30.0)):
        if "image" in a.skip:
            continue
        judge = Judge(photo, slide, size)
        ref, t_ref = timed(lambda size=size: former_image(photo, slide, size))
        res, t = timed(lambda size=size: nstyle.stylize(photo, slide, size=size))
        j_ref, j = judge(ref.clamp(0, 1))["J"], judge(res.tensor)["J"]
        rows.append([label, f"{t_ref:.0f} s", f"{t:.0f} s (J {j / j_ref - 1:+.0%})", f"≤ {bar:.0f} s",
                     "yes" if t <= bar else "no"])
        print(" | ".join(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "sound" not in a.skip:
            c, s = audio_files(Path(tmp))
            t_ref = probe_seconds(lambda cb: nstyle.stylize_audio(c, s, steps=300, precision="fp32", plateau=0.0,
                                                                  callback=cb), 300, a.probe)
            res, t = timed(lambda: nstyle.stylize_audio(c, s))
            rows.append(["sound, 10 s at 22.05 kHz", f"{t_ref:.0f} s (300 steps, from {a.probe})",
                         f"{t:.0f} s ({len(res.history) - 1} steps)", "≤ 60 s", "yes" if t <= 60 else "no"])
            print(" | ".join(rows[-1]), flush=True)
        if "volume" not in a.skip:
            from bench_3d import volume_files

            c, s, _ = volume_files(128, tmp)
            t_ref = probe_seconds(lambda cb: nstyle.stylize_volume(c, s, steps=200, scales="none", precision="fp32",
                                                                   callback=cb), 200, a.probe)
            res, t = timed(lambda: nstyle.stylize_volume(c, s))
            rows.append(["volume 128³, triplanar", f"{t_ref:.0f} s (200 steps, from {a.probe})", f"{t:.0f} s",
                         "≤ 600 s", "yes" if t <= 600 else "no"])
            print(" | ".join(rows[-1]), flush=True)
    if "eval" not in a.skip:
        import bench_speed

        peak = bench_speed.peak_worker({"device": "cpu", "precisions": ["fp32", "bf16"]})
        ev = bench_speed.eval_worker({"device": "cpu", "size": 512, "precisions": ["fp32", "bf16"], "warmup": 2,
                                      "steps": 5, "plain": False})
        for precision, bar in (("bf16", 0.5), ("fp32", 0.8)):
            run = ev["runs"][precision]
            share = run["flop"] / run["s"] / 1e9 / peak[precision]
            label = f"{precision} evaluation, 512 px: share of its convolution peak ({peak[precision]:.0f} GFLOP/s)"
            rows.append([label, "", f"{share:.0%} ({run['s']:.3f} s)", f"≥ {bar:.0%}", "yes" if share >= bar else "no"])
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(markdown_table(["run (defaults)", "former defaults, same process", "nstyle now", "bar", "holds"], rows,
                         left=[0]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    p.add_argument("--pairs", default=DEFAULT_PAIRS, help="pairs: names from benchmarks/pictures.py")
    p.add_argument("--size", type=int, default=512, help="pairs: output long side (default 512)")
    p.add_argument("--qualities", default="default", help="pairs: nstyle's --quality values to run (default default)")
    p.add_argument("--out", default="out/time_to_quality", help="pairs: pictures and contact sheet")
    p.add_argument("--reuse-former", action="store_true",
                   help="pairs: reuse the former defaults' pictures and times kept in --out by an earlier call")
    p.add_argument("--docs-sheet", default=None, help="pairs: also a sheet of the scikit-image pairs only, here")
    p.add_argument("--probe", type=int, default=8, help="bars: steps timed of a long former run (default 8)")
    p.add_argument("--skip", default="", help="bars: comma-separated from image, sound, volume, eval")
    a = p.parse_args(argv)
    sections = [s for s in a.sections.split(",") if s]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}")
    keep_freed_memory()
    threads = torch.get_num_threads()
    print(f"# time to quality; {cpu_model()}, {threads} threads, torch {torch.__version__}\n", flush=True)
    if "pairs" in sections:
        section_pairs(a)
    if "bars" in sections:
        section_bars(a)


if __name__ == "__main__":
    main()
