"""Seconds per optimisation step and peak memory: nstyle's image path against a plain loop.

For each network (VGG16, VGG19) and square size (256, 512 px) this times

* **nstyle**: what ``nstyle.pipeline.run`` evaluates for ``stylize(content, style,
  size=..., net=...)`` at the output's size (``_common.prepare`` + ``Setup.build``: the
  image adapter's signals and network, ``build_objective``, ``start_at_scale``), with
  nstyle's defaults: content relu4_2, style relu1_1 ... relu4_1 with λ = 1, 1, 0.1, 0.01,
  α = 256²/(H·W), β = 5e7, init content, and ``optimize(..., optimizer="lbfgs")``. The
  network stops after relu4_2 (the deepest layer used) and the style Grams and content
  activations are computed once, before the first step.
* **reference**: a straightforward loop (``_common.PlainVGGLoss``): every step runs the
  *whole* VGG stack, conv1_1 ... pool5, picks the same activations out of it, and evaluates
  the same costs (written out there), under ``torch.optim.LBFGS(max_iter=1)`` with the same
  settings as nstyle's (lr 1, history 50, no tolerances), so both take identical steps.
  Its targets are computed once too, as in any ordinary implementation.

Each configuration runs in a fresh subprocess (this script with a hidden flag), with
``--warmup`` untimed steps and then ``--steps`` timed ones; s/step is the median of the
timed steps (the mean is printed in the log too). With ``--repeats R`` each
configuration runs R times, nstyle and reference alternating which goes first, and the
table keeps the fastest s/step and lowest peak of each: use it on a shared machine. Peak
memory is the extra memory the run needs above what is held just before it (network,
images, interpreter): on CPU the peak resident set (VmHWM, reset through
/proc/self/clear_refs after a malloc_trim; ``ru_maxrss`` where that reset is refused)
minus the resident set at that moment; on CUDA ``torch.cuda.max_memory_allocated`` minus
the memory allocated at that moment. J at the first step is compared between the two,
as a check that both compute the same objective.

VGG16 is the bundled, activation-normalised net (``net="vgg16"``). VGG19 weights cannot be
downloaded here and speed does not depend on their values, so VGG19 is ``net="vgg19"`` with
``weights=`` a torchvision-format file of PyTorch's default random init (seed 0), written
by the worker: nstyle loads and activation-normalises it as it would real VGG19 weights;
both loops use that same net.

    python benchmarks/bench_image.py                        # 256 and 512 px, VGG16 and VGG19
    python benchmarks/bench_image.py --sizes 256 --steps 2  # quick check
    python benchmarks/bench_image.py --device cuda --sizes 256,512,1024
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from _common import (
    MemoryProbe,
    PlainVGGLoss,
    StepClock,
    add_run_options,
    checked_device,
    header,
    lbfgs_args,
    markdown_table,
    prepare,
    run_worker,
)

from nstyle.kinds.image import CONTENT_WEIGHT_PIXELS
from nstyle.options import IMAGE_CONTENT_LAYER, IMAGE_STYLE_LAYERS, ImageSettings

CONTENT_IMAGE = "astronaut.png"
STYLE_IMAGE = "ihc.png"
IMPLS = ("nstyle", "reference")


# ----------------------------------------------------------------------------- setup


def random_vgg19_weights(folder: str) -> Path:
    """VGG19 with PyTorch's default random init (seed 0) as a torchvision ``.pth`` state dict."""
    from nstyle.nets import VGG

    torch.manual_seed(0)
    net = VGG("vgg19")
    state = {}
    for name, conv in net.convs():
        state[f"features.{net.index[name]}.weight"] = conv.weight.detach().clone()
        state[f"features.{net.index[name]}.bias"] = conv.bias.detach().clone()
    path = Path(folder) / "vgg19-random.pth"
    torch.save(state, path)
    return path


def prepare_image(net: str, size: int, device: torch.device):
    """The run of ``stylize(CONTENT_IMAGE, STYLE_IMAGE, size=size, net=net)``, targets not yet built."""
    from nstyle.samples import sample_path

    paths = sample_path(CONTENT_IMAGE), sample_path(STYLE_IMAGE)
    if net == "vgg16":
        return prepare("image", *paths, device, size=size, net=net)
    with tempfile.TemporaryDirectory() as folder:
        return prepare("image", *paths, device, size=size, net=net, weights=str(random_vgg19_weights(folder)))


# ----------------------------------------------------------------------------- the two loops


def run_nstyle(run, clock: StepClock, total_steps: int) -> float:
    """nstyle's steps (the targets are built first, off the clock); J at the first step."""
    run.build()
    clock.start()
    result = run.optimize(total_steps, callback=clock)
    return result.history[0].total


def run_reference(run, clock: StepClock, total_steps: int) -> float:
    """A plain Gatys-style loop: full VGG forward (through pool5) every step; J at the first step."""
    loss = PlainVGGLoss(run)
    g = run.start().detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([g], **lbfgs_args(g.numel()))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        j = loss(g)
        j.backward()
        return j

    clock.start()
    first = None
    for _ in range(total_steps):
        j = opt.step(closure)
        if first is None:
            first = float(j.detach())
        clock.tick()
    return float(first)


# ----------------------------------------------------------------------------- worker


def worker(spec: dict) -> dict:
    """One configuration, in this (fresh) process: returns s/step, peak MiB and J0."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    run = prepare_image(spec["net"], spec["size"], device)
    warmup, steps = spec["warmup"], spec["steps"]
    clock = StepClock(device)
    probe = MemoryProbe(device)
    probe.start()
    fn = run_nstyle if spec["impl"] == "nstyle" else run_reference
    j0 = fn(run, clock, warmup + steps)
    peak = probe.peak_mib()
    return {**clock.per_step(warmup, steps), "peak_mib": peak, "j0": j0, "mem_method": probe.method,
            "shape": list(run.content.shape)}


def run_config(spec: dict) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter and return its result."""
    return run_worker(__file__, spec, f"worker failed for {spec['impl']} {spec['net']} {spec['size']} px")


# ----------------------------------------------------------------------------- report


def table(rows: list[list[str]]) -> str:
    return markdown_table(["net", "size", "nstyle s/step", "reference s/step", "ratio (ref/nstyle)",
                           "nstyle peak MiB", "reference peak MiB"], rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p)
    p.add_argument("--sizes", default="256,512", help="comma-separated square sizes in px (default 256,512)")
    p.add_argument("--nets", default="vgg16,vgg19", help="comma-separated: vgg16, vgg19 (default both)")
    a = p.parse_args(argv)

    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))), flush=True)
        return

    device = checked_device(p, a.device)
    sizes = [int(v) for v in a.sizes.split(",") if v.strip()]
    nets = [v.strip() for v in a.nets.split(",") if v.strip()]
    for n in nets:
        if n not in ("vgg16", "vgg19"):
            p.error(f"unknown net {n!r}; choose vgg16, vgg19")
    if a.steps < 1 or a.warmup < 0 or a.repeats < 1:
        p.error("--steps and --repeats must be >= 1, --warmup >= 0")
    if a.threads:
        torch.set_num_threads(a.threads)

    print("\n".join(header(device, torch.get_num_threads())))
    print(f"content {CONTENT_IMAGE}, style {STYLE_IMAGE}, init content; content {IMAGE_CONTENT_LAYER}, "
          f"style {IMAGE_STYLE_LAYERS}, α={CONTENT_WEIGHT_PIXELS}/(H·W), "
          f"β={ImageSettings().style_weight:g}; L-BFGS max_iter=1")
    print(f"{a.warmup} warm-up + {a.steps} timed steps (median reported) per run, {a.repeats} run(s) "
          f"per configuration, each in a fresh process\n", flush=True)

    rows, notes, methods = [], [], set()
    for net in nets:
        for size in sizes:
            res: dict[str, dict] = {}
            for rep in range(a.repeats):
                for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
                    spec = dict(impl=impl, net=net, size=size, device=a.device, steps=a.steps,
                                warmup=a.warmup, threads=a.threads)
                    out = run_config(spec)
                    methods.add(out["mem_method"])
                    print(f"  {net} {size} px {impl:9s}: {out['s_per_step']:.3f} s/step (median; mean "
                          f"{out['mean_s_per_step']:.3f}), peak +{out['peak_mib']:.0f} MiB, J0 {out['j0']:.6g}",
                          flush=True)
                    best = res.setdefault(impl, out)
                    best["s_per_step"] = min(best["s_per_step"], out["s_per_step"])
                    best["peak_mib"] = min(best["peak_mib"], out["peak_mib"])
            n, r = res["nstyle"], res["reference"]
            rel = abs(n["j0"] - r["j0"]) / max(abs(r["j0"]), 1e-30)
            if rel > 1e-4:
                notes.append(f"{net} {size} px: J at step 0 differs by {rel:.2e} (nstyle {n['j0']:.6g}, "
                             f"reference {r['j0']:.6g})")
            rows.append([net, str(size), f"{n['s_per_step']:.3f}", f"{r['s_per_step']:.3f}",
                         f"{r['s_per_step'] / n['s_per_step']:.2f}", f"{n['peak_mib']:.0f}",
                         f"{r['peak_mib']:.0f}"])

    print()
    print(table(rows))
    print(f"\npeak MiB: memory above the baseline held before the run ({'; '.join(sorted(methods))})")
    print("\n".join(notes) if notes else "J at step 0 agrees between nstyle and the reference (rel. diff <= 1e-4)")


if __name__ == "__main__":
    main()
