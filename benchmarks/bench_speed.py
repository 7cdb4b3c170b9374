"""Where the time goes: convolution peak, seconds per evaluation, time to equal loss, memory.

One command, four sections (``--sections peak,eval,equal-loss,memory``, default all), each
printed as a markdown table:

* **peak**: the convolution throughput this machine reaches: one 3x3 convolution 256 -> 256
  channels on a 1x256x64x64 input (channels-last input and weights, the layout nstyle's VGG
  runs in), forward only, no autograd, in each precision (``torch.autocast`` on cpu / cuda for
  bf16 and fp16). FLOPs per forward: 2·C_in·C_out·9·H·W = 4.83 GFLOP. Three untimed forwards,
  then the best of 5 repeats of 10 forwards.
* **eval**: seconds per *evaluation* (one forward of G to the deepest layer used plus the
  backward to G: ``objective(g).total.backward()``, the objective ``nstyle.pipeline`` builds
  for ``stylize`` at the output size (``_common.prepare``; untiled), with nstyle's defaults:
  bundled VGG16, content relu4_2, style relu1_1 ... relu4_1 with λ = 1, 1, 0.1, 0.01,
  α = 256²/(H·W), β = 5e7) at each size
  (default 256, 512, 1024 px, astronaut.png / ihc.png, G = the content plus Gaussian noise of
  σ 0.1, seed 0) and precision. The FLOP count is analytic, from the network's convolution
  shapes: every convolution up to the deepest layer used forward (2·C_in·C_out·9·H·W) and once more for its
  input gradient (the same count: a transposed convolution), conv1_1's included, since that
  gradient is the image's gradient; no weight gradients (the weights are frozen), ReLU,
  pooling, the Grams and the costs are not counted (the Grams' share, 4·M·n_C² per style layer
  forward and backward, is printed below the table). Achieved GFLOP/s is that count over the
  median time, and "% peak" divides it by the measured peak of the same precision. The
  **plain** row is the reference of bench_image.py (``_common.PlainVGGLoss``) in one
  evaluation: the whole VGG16
  through pool5, contiguous (NCHW) memory, fp32, the costs written out; its FLOPs are counted
  the same way (forward to pool5, input gradients back from the deepest layer used). For every
  precision other than fp32 the table shows what it does to the loss and the gradient at the same G:
  |J − J_fp32| / J_fp32 and ‖∇J − ∇J_fp32‖ / ‖∇J_fp32‖. Each size runs in a fresh process:
  ``--warmup`` untimed and ``--steps`` timed evaluations per precision (median kept); with
  ``--repeats R`` R processes, the fastest kept.
* **equal-loss**: time to equal loss on real image pairs (``--pairs content:style,...``,
  names of scikit-image sample images or paths; default astronaut.png:ihc.png and
  coffee.png:hubble_deep_field.jpg) at ``--size`` (512). The *reference* is a plain
  single-scale loop (``_common.PlainVGGLoss``, as bench_image's: whole VGG16 through pool5, contiguous,
  fp32, the costs written out, ``torch.optim.LBFGS`` max_iter 1, history 50, lr 1, start at
  the content) run for ``--ref-steps`` (500) steps; it minimises the same J as nstyle at the
  output size (same net, layers, α, β, C and S resized the same way); its J at the last step
  is the *target*. *nstyle* is ``nstyle.stylize(content, style, size=..., scales=...,
  precision=..., callback=...)`` with its own defaults otherwise (coarse-to-fine "auto": long
  sides 128·√2^k, then the output size). Its time to equal loss is the wall time from the
  call until a final-scale step first measures J ≤ target with the reference's objective.
  Within one run both loops record J(G_k) when step k ends (the J L-BFGS evaluates at the
  G it starts the step from), so the two clocks are read the same way. stylize's J at the
  final scale is checked once against that objective (evaluated here in fp32 at the same G,
  off the clock); where it is not the same (bf16: the network runs in bfloat16; or if they
  disagree in fp32), any step whose reported J is within 5% of the target is re-evaluated
  here in fp32, off the clock. nstyle stops at the target (``--no-early-stop``: it runs all
  its steps). Both clocks start after the network is built (cached) and the images are
  loaded; they include computing the targets (nstyle: at every scale). Each run is a fresh
  process; the results are saved side by side (reference | nstyle) as PNGs in
  ``--out-dir``.
* **memory**: peak memory of one evaluation at 1024, 2048 and 4096 px
  (``--memory-sizes``), in a fresh process each, measured by ``_common.MemoryProbe`` (CPU: peak
  resident set above the resident set before, VmHWM reset through /proc/self/clear_refs;
  CUDA: max_memory_allocated above the allocated memory before): *setup* (building the
  objective: content activations and style Grams) and *eval* (one forward + backward) are
  measured separately. Untiled (nstyle's ``StyleObjective``) up to ``--max-untiled`` px
  (2048), and tiled ``nstyle.core.tiling.TiledObjective(..., tile=--tile)`` of the same J at
  every size, in each precision; the seconds of that one (cold) evaluation are printed too.

``--quick`` is a smoke check: eval at 128 and 256 px, equal loss at 256 px with 20 reference
steps (and nstyle given 20 steps per scale), memory at 512 and 1024 px.

    python benchmarks/bench_speed.py                       # everything: over an hour on 2 cores
    python benchmarks/bench_speed.py --quick               # smoke check: about 10 minutes on 2 cores
    python benchmarks/bench_speed.py --sections peak,eval --sizes 512
    python benchmarks/bench_speed.py --sections equal-loss --pairs photo.jpg:painting.jpg
    python benchmarks/bench_speed.py --device cuda --precisions fp32,bf16,fp16
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import (
    MemoryProbe,
    PlainVGGLoss,
    add_run_options,
    checked_device,
    header,
    lbfgs_args,
    markdown_table,
    prepare,
    settings_for,
    sync,
    worker_process,
)
from bench_image import CONTENT_IMAGE, STYLE_IMAGE  # the same pair
from torch import nn

SECTIONS = ("peak", "eval", "equal-loss", "memory")
NET = "vgg16"
DEFAULT_PAIRS = "astronaut.png:ihc.png,coffee.png:hubble_deep_field.jpg"
PEAK_SHAPE = (1, 256, 64, 64)  # N, C, H, W of the peak convolution (256 -> 256, 3x3)
PEAK_FLOP = 2 * 256 * 256 * 9 * 64 * 64
REEVAL_MARGIN = 0.05  # re-evaluate a step whose reported J is within this of the target


# ----------------------------------------------------------------------------- setup


def image_path(name: str) -> Path:
    """A path as given, else one of scikit-image's sample images."""
    from nstyle.samples import sample_path

    return Path(name) if Path(name).is_file() else sample_path(name)


def prepare_images(content: str, style: str, size: int, device: torch.device, **options):
    """The run of ``stylize(content, style, size=size, **options)`` (C at long side ``size``, S
    at C's long side, the bundled VGG16, nstyle's default layers, α and β), never tiled
    unless asked below; targets not built."""
    return prepare("image", image_path(content), image_path(style), device, size=size, net=NET, tile="none",
                   **options)


def noisy(c: torch.Tensor, sigma: float = 0.1) -> torch.Tensor:
    """A fixed G that is not C (at G = C the content cost and its gradient vanish)."""
    gen = torch.Generator().manual_seed(0)
    return (c.cpu() + sigma * torch.randn(c.shape, generator=gen)).clamp(0, 1).to(c.device)


def make_objective(run, precision: str, tile: int | None = None, margin: int | None = None):
    """nstyle's default objective for ``run``'s C and S (``nstyle.pipeline.build_objective``); a
    ``TiledObjective`` of that J when ``tile`` is given (at any size, with ``margin``)."""
    if tile is None:
        return run.replace(precision=precision).build(start=False).objective
    from nstyle.core.tiling import TiledObjective

    content_layers, style_weights, alpha, beta = run.weights()
    extra = {} if margin is None else {"margin": margin}
    return TiledObjective(run.model, run.content, run.style, content_layers, style_weights, alpha, beta,
                          precision=precision, tile=tile, **extra)


def conv_flops(net, hw: tuple[int, int], last: str, backward_from: str | None = None) -> float:
    """Convolution FLOPs of one evaluation of ``net`` on an H x W input.

    Forward: every convolution up to layer ``last``; backward: every convolution up to
    ``backward_from`` (default ``last``) once more for its input gradient.
    """
    h, w = hw
    stop = net.index[last]
    back = net.index[backward_from or last]
    total = 0.0
    for i, m in enumerate(net.layers):
        if i > stop:
            break
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            f = 2.0 * m.in_channels * m.out_channels * kh * kw * h * w
            total += f * (2 if i <= back else 1)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            h, w = h // 2, w // 2
    return total


def gram_flops(net, hw: tuple[int, int], layers) -> float:
    """Forward + backward FLOPs of the style Grams: about 4·M·n_C² per layer."""
    h, w = hw
    out = 0.0
    channels = 3
    for name, m in zip(net.names, net.layers):
        if isinstance(m, nn.Conv2d):
            channels = m.out_channels
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            h, w = h // 2, w // 2
        if name in layers:
            out += 4.0 * h * w * channels**2
    return out


# ----------------------------------------------------------------------------- workers


def peak_worker(spec: dict) -> dict:
    """GFLOP/s of the peak convolution in each precision."""
    from nstyle.core.precision import autocast

    device = torch.device(spec["device"])
    torch.manual_seed(0)
    conv = nn.Conv2d(256, 256, 3, padding=1).to(device).to(memory_format=torch.channels_last).requires_grad_(False)
    x = torch.randn(PEAK_SHAPE, device=device).contiguous(memory_format=torch.channels_last)
    out = {}
    for precision in spec["precisions"]:
        with torch.no_grad(), autocast(device, precision):
            for _ in range(3):
                conv(x)
            sync(device)
            best = math.inf
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(10):
                    conv(x)
                sync(device)
                best = min(best, (time.perf_counter() - t) / 10)
        out[precision] = PEAK_FLOP / best / 1e9
    return out


def time_evals(fn, g0: torch.Tensor, warmup: int, steps: int, device) -> tuple[float, float, torch.Tensor]:
    """Median seconds of ``fn(g).backward()``, J and ∇J at ``g0``."""
    g = g0.detach().clone().requires_grad_(True)
    times = []
    for i in range(warmup + steps):
        g.grad = None
        sync(device)
        t = time.perf_counter()
        j = fn(g)
        j.backward()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times), float(j.detach()), g.grad.detach().clone()


def eval_worker(spec: dict) -> dict:
    """s/eval of nstyle's objective in each precision and of the plain loop, at one size."""
    device = torch.device(spec["device"])
    case = prepare_images(CONTENT_IMAGE, STYLE_IMAGE, spec["size"], device)
    net, c = case.model, case.content
    g = noisy(c)
    style_layers = case.network.style_weights
    hw = tuple(c.shape[-2:])
    res: dict = {"shape": list(c.shape), "runs": {}}
    ref_j, ref_grad = None, None
    for precision in spec["precisions"]:
        obj = make_objective(case, precision)
        deepest = max(obj.layers, key=net.index.__getitem__)
        sec, j, grad = time_evals(lambda x, o=obj: o(x).total, g, spec["warmup"], spec["steps"], device)
        run = {"s": sec, "j": j, "flop": conv_flops(net, hw, deepest), "gram_flop": gram_flops(net, hw, style_layers)}
        if precision == "fp32":
            ref_j, ref_grad = j, grad
        elif ref_j is not None:
            run["j_rel"] = abs(j - ref_j) / abs(ref_j)
            run["grad_rel"] = float((grad - ref_grad).norm() / ref_grad.norm())
        res["runs"][precision] = run
        del obj
    if spec["plain"]:
        plain = PlainVGGLoss(case)
        deepest = max(plain.wanted, key=net.index.__getitem__)
        sec, j, _ = time_evals(plain, g, spec["warmup"], spec["steps"], device)
        res["runs"]["plain"] = {"s": sec, "j": j, "flop": conv_flops(net, hw, net.names[-1], deepest)}
    return res


def reference_worker(spec: dict) -> dict:
    """The plain single-scale loop: (seconds, J) per step; saves its result."""
    from nstyle.modalities.image import save_image

    device = torch.device(spec["device"])
    case = prepare_images(spec["content"], spec["style"], spec["size"], device, init=spec["init"], seed=0)
    c = case.content
    sync(device)
    t0 = time.perf_counter()
    loss = PlainVGGLoss(case)  # the targets are on the clock, as in stylize
    g = case.start().detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([g], **lbfgs_args(g.numel()))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        j = loss(g)
        j.backward()
        return j

    timeline = []
    for _ in range(spec["steps"]):
        j = float(opt.step(closure).detach())  # J(G_k), then G moves to G_k+1
        sync(device)
        timeline.append((time.perf_counter() - t0, j))
    # The same J through nstyle's objective at the content image: both must agree.
    with torch.no_grad():
        j_nstyle = float(make_objective(case, "fp32")(c).total)
        j_plain = float(loss(c))
    save_image(g.detach().clamp(0, 1), spec["save"])
    return {"timeline": timeline, "check": [j_plain, j_nstyle], "shape": list(c.shape)}


class EqualLossWatch:
    """stylize's callback: when does a final-scale step first reach J <= target?"""

    def __init__(self, objective, shape, target: float, precision: str, early_stop: bool, device) -> None:
        self.objective, self.shape, self.target = objective, tuple(shape[-2:]), target
        self.precision, self.early_stop, self.device = precision, early_stop, device
        self.t0 = self.paused = 0.0
        self.prev_g: torch.Tensor | None = None  # G_k, the G the current step evaluated J at
        self.trust: bool | None = None  # is stylize's reported J the reference's objective?
        self.steps = self.final_steps = self.evaluated = 0
        self.reached: tuple[float, int, int, float] | None = None  # s, step, final-scale step, J
        self.best = math.inf
        self.check: tuple[float, float] | None = None

    def start(self) -> None:
        sync(self.device)
        self.t0, self.paused = time.perf_counter(), 0.0

    def exact(self, g: torch.Tensor) -> float:
        with torch.no_grad():
            self.evaluated += 1
            return float(self.objective(g).total)

    def __call__(self, info, g: torch.Tensor) -> None:
        sync(self.device)
        now = time.perf_counter() - self.t0 - self.paused
        self.steps += 1
        if tuple(g.shape[-2:]) != self.shape:
            return
        self.final_steps += 1
        t = time.perf_counter()  # off the clock from here
        j = None
        if self.prev_g is not None:  # J(G_k) is known here; G_k is last call's G
            if self.trust is None:
                j = self.exact(self.prev_g)
                self.check = (info.total, j)
                self.trust = self.precision == "fp32" and abs(info.total - j) <= 1e-5 * abs(j)
            elif self.trust:
                j = info.total
            elif info.total <= self.target * (1 + REEVAL_MARGIN) or self.precision == "fp32":
                j = self.exact(self.prev_g)
        if j is not None:
            self.best = min(self.best, j)
            if self.reached is None and j <= self.target:
                self.reached = (now, self.steps, self.final_steps, j)
        self.prev_g = g.detach().clone()
        self.paused += time.perf_counter() - t
        if self.reached is not None and self.early_stop:
            raise KeyboardInterrupt  # optimize() stops and returns; stylize stops too


def nstyle_worker(spec: dict) -> dict:
    """One nstyle run towards the target; saves its result."""
    import nstyle

    device = torch.device(spec["device"])
    case = prepare_images(spec["content"], spec["style"], spec["size"], device)  # its net is cached: stylize reuses it
    watch = EqualLossWatch(make_objective(case, "fp32"), case.content.shape, spec["target"], spec["precision"],
                           spec["early_stop"], device)
    kwargs = {k: spec[k] for k in ("steps", "scale_steps") if spec.get(k) is not None}
    params = inspect.signature(nstyle.stylize).parameters
    for k in ("scales", "precision"):
        if k in params:
            kwargs[k] = spec[k]
        elif spec[k] not in (None, "none", "fp32"):
            raise SystemExit(f"nstyle.stylize has no {k!r} parameter yet")
    watch.start()
    result = nstyle.stylize(image_path(spec["content"]), image_path(spec["style"]), size=spec["size"],
                            device=spec["device"], init=spec["init"], callback=watch, **kwargs)
    sync(device)
    total = time.perf_counter() - watch.t0 - watch.paused
    if watch.prev_g is not None and watch.reached is None:  # the last G is measured after the last step
        watch.best = min(watch.best, watch.exact(watch.prev_g))
    result.save(spec["save"])
    return {"reached": watch.reached, "best": watch.best, "total_s": total, "steps": watch.steps,
            "final_steps": watch.final_steps, "check": watch.check, "evaluated": watch.evaluated,
            "interrupted": result.interrupted, "kwargs": kwargs}


def memory_worker(spec: dict) -> dict:
    """Peak memory of building the objective and of one evaluation, at one size."""
    device = torch.device(spec["device"])
    case = prepare_images(CONTENT_IMAGE, STYLE_IMAGE, spec["size"], device)
    c = case.content
    g = c.detach().clone().requires_grad_(True)
    probe = MemoryProbe(device)
    probe.start()
    try:
        obj = make_objective(case, spec["precision"], spec["tile"], spec["margin"])
        setup = probe.peak_mib()
        probe.start()
        sync(device)
        t = time.perf_counter()
        obj(g).total.backward()
        sync(device)
        sec = time.perf_counter() - t
    except (RuntimeError, MemoryError) as exc:  # out of memory
        return {"error": str(exc).splitlines()[0][:120]}
    return {"setup_mib": setup, "eval_mib": probe.peak_mib(), "s": sec, "method": probe.method,
            "shape": list(c.shape), "margin": getattr(obj, "margin", None)}


WORKERS = {"peak": peak_worker, "eval": eval_worker, "reference": reference_worker,
           "nstyle": nstyle_worker, "memory": memory_worker}


def run_worker(spec: dict, fatal: bool = True) -> dict:
    """``WORKERS[spec["kind"]](spec)`` in a fresh interpreter."""
    proc, result = worker_process(__file__, spec)
    if result is not None:
        return result
    what = " ".join(f"{k}={v}" for k, v in spec.items() if k in ("kind", "size", "precision", "tile", "content"))
    if fatal:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker failed: {what}")
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    if proc.returncode < 0:
        tail = f"killed by signal {-proc.returncode} (out of memory?)"
    return {"error": tail[:120]}


# ----------------------------------------------------------------------------- report


def table(cols: list[str], rows: list[list[str]]) -> str:
    return markdown_table(cols, rows)


def section_peak(a, precisions) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(a.repeats):
        out = run_worker({"kind": "peak", "device": a.device, "threads": a.threads, "precisions": precisions})
        for p, v in out.items():
            best[p] = max(best.get(p, 0.0), v)
    return best


def print_peak(peak: dict[str, float]) -> None:
    print("## Convolution peak\n")
    print(f"3x3 conv 256 -> 256 on {'x'.join(map(str, PEAK_SHAPE))}, channels-last, forward only, "
          f"{PEAK_FLOP / 1e9:.2f} GFLOP per forward, best of 5 x 10 after 3 warm-up\n")
    print(table(["precision", "GFLOP/s"], [[p, f"{v:.0f}"] for p, v in peak.items()]))
    print(flush=True)


def section_eval(a, sizes, precisions, peak) -> None:
    print("## Seconds per evaluation\n")
    print(f"{NET} (bundled), {CONTENT_IMAGE} / {STYLE_IMAGE}, G = content + N(0, 0.1²); forward to the deepest "
          f"layer used + backward to G; {a.warmup} warm-up + {a.steps} timed evaluations (median), {a.repeats} "
          "process(es) per size, fastest kept\n", flush=True)
    rows, gram_notes = [], []
    for size in sizes:
        best: dict | None = None
        for _ in range(a.repeats):
            out = run_worker({"kind": "eval", "device": a.device, "threads": a.threads, "size": size,
                              "precisions": precisions, "warmup": a.warmup, "steps": a.steps,
                              "plain": not a.no_plain})
            if best is None:
                best = out
            else:
                for k, r in out["runs"].items():
                    best["runs"][k]["s"] = min(best["runs"][k]["s"], r["s"])
        h, w = best["shape"][-2:]
        runs = best["runs"]
        plain_s = runs["plain"]["s"] if "plain" in runs else None
        for k, r in runs.items():
            prec = "fp32" if k == "plain" else k
            gflops = r["flop"] / r["s"] / 1e9
            frac = f"{100 * gflops / peak[prec]:.0f}%" if prec in peak else "-"
            rows.append([f"{w}x{h}", "plain fp32" if k == "plain" else f"nstyle {k}", f"{r['s']:.3f}",
                         f"{r['flop'] / 1e9:.1f}", f"{gflops:.0f}", frac,
                         f"{plain_s / r['s']:.2f}" if plain_s else "-",
                         f"{r['j_rel']:.1e}" if "j_rel" in r else "-",
                         f"{r['grad_rel']:.1e}" if "grad_rel" in r else "-"])
            print(f"  {w}x{h} {k}: {r['s']:.3f} s/eval, J {r['j']:.6g}", flush=True)
        if "fp32" in runs and "plain" in runs:
            rel = abs(runs["plain"]["j"] - runs["fp32"]["j"]) / abs(runs["fp32"]["j"])
            if rel > 1e-4:
                gram_notes.append(f"{w}x{h}: plain and nstyle fp32 J differ by {rel:.1e}")
        r0 = next(iter(runs.values()))
        if "gram_flop" in r0:
            gram_notes.append(f"{w}x{h}: Grams add {r0['gram_flop'] / 1e9:.1f} GFLOP "
                              f"({100 * r0['gram_flop'] / r0['flop']:.1f}% of the convolutions), not counted")
    print()
    print(table(["size", "run", "s/eval", "GFLOP", "GFLOP/s", "% peak", "plain/this", "ΔJ/J vs fp32",
                 "Δ∇J vs fp32"], rows))
    print("\nGFLOP: convolutions only (forward + input gradient). plain: whole VGG16 through pool5, "
          "NCHW, fp32 (bench_image's reference).")
    print("\n".join(gram_notes))
    print(flush=True)


def side_by_side(left: Path, right: Path, out: Path) -> None:
    from PIL import Image

    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    gap = 8
    im = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), "white")
    im.paste(a, (0, 0))
    im.paste(b, (a.width + gap, 0))
    im.save(out)


def section_equal_loss(a, pairs, precisions) -> None:
    import nstyle

    params = inspect.signature(nstyle.stylize).parameters
    has_scales = "scales" in params
    print("## Time to equal loss\n")
    steps = a.nstyle_steps if a.nstyle_steps is not None else params["steps"].default
    scale_steps = a.scale_steps
    if scale_steps is None and "scale_steps" in params:
        scale_steps = params["scale_steps"].default
    plan = ""
    if has_scales:
        from nstyle.kinds import MODALITIES
        from nstyle.pipeline import scale_plan

        settings = settings_for("image", size=a.size, scales=a.scales, steps=steps, scale_steps=scale_steps)
        plan = ", plan (long side, steps) " + " ".join(
            f"{s}:{n}" for s, n in scale_plan(a.size, settings, MODALITIES["image"].coarsest))
    else:
        print("(nstyle.stylize has no `scales` yet: nstyle runs single-scale)\n")
    print(f"start: {a.init}; reference: plain single-scale loop, {a.ref_steps} L-BFGS steps, fp32; nstyle: "
          f"stylize(scales={a.scales!r}, steps={steps}, scale_steps={scale_steps}){plan}; J = nstyle's default "
          f"objective at {a.size} px; {'stop at the target' if a.early_stop else 'all steps run'}\n", flush=True)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    base = {"device": a.device, "threads": a.threads, "size": a.size, "init": a.init}
    for content, style in pairs:
        stem = f"{Path(content).stem}-{Path(style).stem}-{a.size}-{a.init}"
        ref_png = out_dir / f"{stem}-reference.png"
        ref = run_worker(dict(base, kind="reference", content=content, style=style, steps=a.ref_steps,
                              save=str(ref_png)))
        ref_s, target = ref["timeline"][-1]
        jp, jn = ref["check"]
        if abs(jp - jn) > 1e-4 * abs(jn):
            notes.append(f"{stem}: the plain loop's J at C ({jp:.6g}) differs from nstyle's objective ({jn:.6g})")
        print(f"  {stem} reference: J {target:.6g} after {a.ref_steps} steps, {ref_s:.1f} s", flush=True)
        for precision in precisions:
            png = out_dir / f"{stem}-nstyle-{precision}.png"
            out = run_worker(dict(base, kind="nstyle", content=content, style=style, target=target,
                                  precision=precision, steps=a.nstyle_steps, scale_steps=a.scale_steps,
                                  scales=a.scales if has_scales else None, early_stop=a.early_stop,
                                  save=str(png)))
            side_by_side(ref_png, png, out_dir / f"{stem}-reference_vs_nstyle-{precision}.png")
            reached = out["reached"]
            if out["check"]:
                rep, ex = out["check"]
                notes.append(f"{stem} nstyle {precision}: stylize's J at the final scale {rep:.6g}, the "
                             f"reference's objective {ex:.6g} (rel. {abs(rep - ex) / abs(ex):.1e}); "
                             f"{out['evaluated']} fp32 re-evaluation(s) off the clock")
            if reached:
                t, step, fstep, j = reached
                cells = [f"{t:.1f}", f"{step} ({fstep} final)", f"{j:.6g}", f"{ref_s / t:.2f}x"]
                msg = f"J {j:.6g} <= target at step {step} ({fstep} at the final scale), {t:.1f} s"
            else:
                cells = ["not reached", f"{out['steps']} ({out['final_steps']} final)", f"{out['best']:.6g}", "-"]
                msg = f"not reached in {out['total_s']:.1f} s, best J {out['best']:.6g}"
            print(f"  {stem} nstyle {precision}: {msg}", flush=True)
            rows.append([f"{Path(content).name} / {Path(style).name}", f"{ref['shape'][-1]}x{ref['shape'][-2]}",
                         f"{target:.6g}", f"{ref_s:.1f}", precision, *cells])
    print()
    print(table(["pair", "size", f"reference J ({a.ref_steps} steps)", "reference s", "nstyle",
                 "nstyle s to J <= ref", "nstyle steps", "nstyle J", "speedup"], rows))
    print(f"\nnstyle steps: every step of every scale until the target (final-scale steps in brackets); "
          f"nstyle J: J when it reached the target, else the lowest J at the final scale. Pictures "
          f"(reference | nstyle): {out_dir}/")
    print("\n".join(notes))
    print(flush=True)


def section_memory(a, sizes, precisions) -> None:
    import importlib.util

    print("## Peak memory of one evaluation\n")
    tiled = importlib.util.find_spec("nstyle.core.tiling") is not None
    margin = "" if a.margin is None else f", margin {a.margin}"
    print(f"{CONTENT_IMAGE} / {STYLE_IMAGE} resized to each size; untiled up to {a.max_untiled} px; tiled: "
          f"TiledObjective(tile={a.tile}{margin})" + ("" if tiled else " (nstyle.core.tiling is not available)")
          + "; each in a fresh process\n", flush=True)
    rows, methods, margins = [], set(), set()
    for size in sizes:
        for mode in ("untiled", "tiled"):
            for precision in precisions:
                if mode == "untiled" and size > a.max_untiled:
                    rows.append([str(size), mode, precision, "skipped", "-", "-"])
                    continue
                if mode == "tiled" and not tiled:
                    rows.append([str(size), mode, precision, "n/a", "-", "-"])
                    continue
                out = run_worker({"kind": "memory", "device": a.device, "threads": a.threads, "size": size,
                                      "precision": precision, "tile": a.tile if mode == "tiled" else None,
                                      "margin": a.margin}, fatal=False)
                if "error" in out:
                    rows.append([str(size), mode, precision, "failed", "-", out["error"]])
                    print(f"  {size} px {mode} {precision}: failed: {out['error']}", flush=True)
                    continue
                methods.add(out["method"])
                if out["margin"] is not None:
                    margins.add(out["margin"])
                rows.append([str(size), mode, precision, f"{out['setup_mib']:.0f}", f"{out['eval_mib']:.0f}",
                             f"{out['s']:.1f}"])
                print(f"  {size} px {mode} {precision}: setup +{out['setup_mib']:.0f} MiB, eval "
                      f"+{out['eval_mib']:.0f} MiB, {out['s']:.1f} s", flush=True)
    print()
    print(table(["size", "objective", "precision", "setup peak MiB", "eval peak MiB", "eval s (one, cold)"], rows))
    print(f"\nMiB above the memory held before each phase ({'; '.join(sorted(methods)) or '-'}); setup: "
          "building the objective (targets), eval: one forward + backward")
    if margins:
        print(f"tiled: {a.tile} px cores, margin {', '.join(map(str, sorted(margins)))} px")
    print(flush=True)


def int_list(p: argparse.ArgumentParser, flag: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{flag} takes comma-separated integers, got {text!r}")


def checked_precisions(p: argparse.ArgumentParser, text: str, device: torch.device) -> list[str]:
    """The ``--precisions`` this device can run (nstyle's own check), or a usage error."""
    from nstyle.core.precision import check_precision
    from nstyle.errors import NStyleError

    precisions = [v.strip() for v in text.split(",") if v.strip()]
    for prec in precisions:
        try:
            check_precision(prec, device)
        except NStyleError as exc:
            p.error(str(exc))
    return precisions


def parse_pairs(p: argparse.ArgumentParser, text: str) -> list[tuple[str, str]]:
    """``--pairs`` as (content, style) names."""
    pairs = []
    for item in filter(None, (v.strip() for v in text.split(","))):
        content, sep, style = item.rpartition(":")
        if not sep or not content:
            p.error(f"--pairs: {item!r} is not content:style")
        pairs.append((content, style))
    return pairs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p, steps=5, warmup=2, repeats_help="")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16 (CUDA)")
    p.add_argument("--sizes", default=None, help="eval: square sizes in px (default 256,512,1024)")
    p.add_argument("--no-plain", action="store_true", help="eval: skip the plain-reference row")
    p.add_argument("--pairs", default=DEFAULT_PAIRS,
                   help=f"equal-loss: content:style,... (sample names or paths; default {DEFAULT_PAIRS})")
    p.add_argument("--size", type=int, default=None, help="equal-loss: output long side (default 512)")
    p.add_argument("--ref-steps", type=int, default=None, help="equal-loss: reference steps (default 500)")
    p.add_argument("--nstyle-steps", type=int, default=None,
                   help="equal-loss: stylize's steps (default: stylize's own default)")
    p.add_argument("--scale-steps", type=int, default=None,
                   help="equal-loss: stylize's scale_steps (default: stylize's own default)")
    p.add_argument("--scales", default="auto", help="equal-loss: stylize's scales (default auto)")
    p.add_argument("--init", choices=("content", "noise"), default="content",
                   help="equal-loss: where both runs start (content: nstyle's default; noise: the seed's)")
    p.add_argument("--no-early-stop", dest="early_stop", action="store_false",
                   help="equal-loss: let nstyle run all its steps after reaching the target")
    p.add_argument("--out-dir", default="out/bench_speed", help="equal-loss pictures (default out/bench_speed)")
    p.add_argument("--memory-sizes", default=None, help="memory: sizes in px (default 1024,2048,4096)")
    p.add_argument("--max-untiled", type=int, default=2048, help="memory: largest untiled size (default 2048)")
    p.add_argument("--tile", type=int, default=512, help="memory: TiledObjective tile (default 512)")
    p.add_argument("--margin", type=int, default=None, help="memory: TiledObjective margin (default its own)")
    p.add_argument("--quick", action="store_true",
                   help="smoke check: sizes 128,256, equal loss at 256 px with 20 steps, memory 512,1024")
    a = p.parse_args(argv)

    if a.worker:
        spec = json.loads(a.worker)
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        print(json.dumps(WORKERS[spec["kind"]](spec)), flush=True)
        return

    device = checked_device(p, a.device)
    sections = [v.strip() for v in a.sections.split(",") if v.strip()]
    for s in sections:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")
    precisions = checked_precisions(p, a.precisions, device)
    sizes = int_list(p, "--sizes", a.sizes or ("128,256" if a.quick else "256,512,1024"))
    mem_sizes = int_list(p, "--memory-sizes", a.memory_sizes or ("512,1024" if a.quick else "1024,2048,4096"))
    a.size = a.size or (256 if a.quick else 512)
    a.ref_steps = a.ref_steps or (20 if a.quick else 500)
    if a.quick and a.nstyle_steps is None:
        a.nstyle_steps = a.ref_steps
    pairs = parse_pairs(p, a.pairs)
    if a.steps < 1 or a.warmup < 0 or a.repeats < 1 or a.ref_steps < 1:
        p.error("--steps, --repeats and --ref-steps must be >= 1, --warmup >= 0")
    if a.threads:
        torch.set_num_threads(a.threads)

    print("\n".join(header(device, torch.get_num_threads())))
    print(f"sections: {', '.join(sections)}; precisions: {', '.join(precisions)}\n", flush=True)
    peak: dict[str, float] = {}
    if "peak" in sections or "eval" in sections:
        peak = section_peak(a, precisions)
    if "peak" in sections:
        print_peak(peak)
    if "eval" in sections:
        section_eval(a, sizes, precisions, peak)
    if "equal-loss" in sections:
        section_equal_loss(a, pairs, precisions)
    if "memory" in sections:
        section_memory(a, mem_sizes, precisions)


if __name__ == "__main__":
    main()
