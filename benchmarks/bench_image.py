"""Seconds per optimisation step and peak memory: nstyle's image path against a plain loop.

For each network (VGG16, VGG19) and square size (256, 512 px) this times

* **nstyle**: ``StyleObjective`` (content relu4_2, style relu1_1 ... relu5_1 with λ = 1,
  α = 1, β = 1e5) and ``optimize(..., optimizer="lbfgs")``, from the content image. The
  network stops after relu5_1 (the deepest layer used) and the style Grams and content
  activations are computed once, before the first step.
* **reference**: a straightforward loop written here: every step runs the *whole* VGG
  stack, conv1_1 ... pool5, picks the same activations out of it, and evaluates the same
  costs (written out below), under ``torch.optim.LBFGS(max_iter=1)`` with the same
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

VGG16 is the bundled, activation-normalised net (``build_net("vgg16")``). VGG19 weights
cannot be downloaded here and speed does not depend on their values, so VGG19 is
``VGG("vgg19")`` with PyTorch's default random init (seed 0), activation-normalised on
the calibration photos as ``build_net`` does; both loops use that same net.

    python benchmarks/bench_image.py                        # 256 and 512 px, VGG16 and VGG19
    python benchmarks/bench_image.py --sizes 256 --steps 2  # quick check
    python benchmarks/bench_image.py --device cuda --sizes 256,512,1024
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

CONTENT_IMAGE = "astronaut.png"
STYLE_IMAGE = "ihc.png"
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = {f"relu{b}_1": 1.0 for b in range(1, 6)}
ALPHA, BETA = 1.0, 1e5
LBFGS_ARGS = dict(lr=1.0, max_iter=1, history_size=50, tolerance_grad=0.0, tolerance_change=0.0)
IMPLS = ("nstyle", "reference")


# ----------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    """A ``Vm*`` field of /proc/self/status in KiB (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class MemoryProbe:
    """Extra memory used between ``start()`` and ``peak_mib()``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = ""
        self.base = 0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
            return
        try:  # give freed heap back to the OS, so the baseline holds only live memory
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.base = _status_kib("VmRSS") or 0
        try:  # reset the peak resident set (VmHWM) to the current one (Linux >= 4.0)
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM after clear_refs, minus VmRSS"
        except OSError:
            self.method = "ru_maxrss minus VmRSS (peak may predate the run)"
        if not self.base:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.method = "ru_maxrss minus ru_maxrss before the run"

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        if self.method.startswith("VmHWM"):
            peak = _status_kib("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return max(0, (peak or 0) - self.base) / 1024


# ----------------------------------------------------------------------------- setup


def build_network(name: str, device: torch.device):
    from nstyle.nets import build_net, calibration_images
    from nstyle.nets.normalize import normalize_activations
    from nstyle.nets.vgg import VGG

    if name == "vgg16":
        return build_net("vgg16", device=device)
    torch.manual_seed(0)
    net = VGG(name)  # default random init: no VGG19 weights can be downloaded here
    normalize_activations(net, calibration_images())
    return net.to(device)


def load_pair(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    from nstyle.modalities.image import load_image
    from nstyle.samples import sample_path

    c = load_image(sample_path(CONTENT_IMAGE), size=size).tensor
    s = load_image(sample_path(STYLE_IMAGE), size=size).tensor
    return c.to(device), s.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- nstyle


def run_nstyle(net, c, s, total_steps: int, device: torch.device) -> tuple[list[float], float]:
    """Step end times (index 0: the start) and J at the first step."""
    from nstyle.core.engine import initial_signal, optimize
    from nstyle.core.objective import StyleObjective

    objective = StyleObjective(net, c, s, CONTENT_LAYER, STYLE_LAYERS, ALPHA, BETA)
    g0 = initial_signal("content", c, s)
    times: list[float] = []

    def tick(info, g) -> None:  # optimize's record() has already synced J to floats
        _sync(device)
        times.append(time.perf_counter())

    _sync(device)
    times.append(time.perf_counter())
    run = optimize(objective, g0, total_steps, optimizer="lbfgs", callback=tick)
    return times, run.history[0].total


# ----------------------------------------------------------------------------- reference


def run_reference(net, c, s, total_steps: int, device: torch.device) -> tuple[list[float], float]:
    """A plain Gatys-style loop: full VGG forward (through pool5) every step."""
    names = list(net.names)
    modules = list(net.layers)
    wanted = set(STYLE_LAYERS) | {CONTENT_LAYER}

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = net.preprocess(x)  # same input transform as the weights expect
        acts = {}
        for name, module in zip(names, modules):  # every layer, pool5 included
            h = module(h)
            if name in wanted:
                acts[name] = h
        return acts

    def gram(a: torch.Tensor) -> torch.Tensor:  # G / (2 · M · n_C)
        f = a.flatten(2)
        return (f @ f.transpose(1, 2)) / (2.0 * f.shape[2] * f.shape[1])

    with torch.no_grad():
        style_grams = {n: gram(a) for n, a in features(s).items() if n in STYLE_LAYERS}
        content_act = features(c)[CONTENT_LAYER]

    g = c.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([g], **LBFGS_ARGS)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        acts = features(g)
        j_content = 0.5 * (acts[CONTENT_LAYER] - content_act).pow(2).sum()
        j_style = sum(lam * (gram(acts[n]) - style_grams[n]).pow(2).sum() for n, lam in STYLE_LAYERS.items())
        loss = ALPHA * j_content + BETA * j_style
        loss.backward()
        return loss

    times = [time.perf_counter()]
    first = None
    for _ in range(total_steps):
        loss = opt.step(closure)
        if first is None:
            first = float(loss.detach())
        _sync(device)
        times.append(time.perf_counter())
    return times, float(first)


# ----------------------------------------------------------------------------- worker


def worker(spec: dict) -> dict:
    """One configuration, in this (fresh) process: returns s/step, peak MiB and J0."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    net = build_network(spec["net"], device)
    c, s = load_pair(spec["size"], device)
    warmup, steps = spec["warmup"], spec["steps"]
    probe = MemoryProbe(device)
    probe.start()
    fn = run_nstyle if spec["impl"] == "nstyle" else run_reference
    times, j0 = fn(net, c, s, warmup + steps, device)
    peak = probe.peak_mib()
    if len(times) < warmup + steps + 1:
        raise RuntimeError(f"only {len(times) - 1} of {warmup + steps} steps ran")
    durations = [b - a for a, b in zip(times[warmup:], times[warmup + 1:])]
    return {"s_per_step": statistics.median(durations), "mean_s_per_step": statistics.fmean(durations),
            "peak_mib": peak, "j0": j0, "mem_method": probe.method, "shape": list(c.shape)}


def run_config(spec: dict) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter and return its result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker failed for {spec['impl']} {spec['net']} {spec['size']} px")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(device: torch.device, threads: int) -> list[str]:
    lines = [
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.system()} {platform.release()}",
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores), torch threads: {threads}",
    ]
    if device.type == "cuda":
        lines.append(f"GPU: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}")
    try:
        lines.append("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    except OSError:
        pass
    return lines


def table(rows: list[list[str]]) -> str:
    cols = ["net", "size", "nstyle s/step", "reference s/step", "ratio (ref/nstyle)",
            "nstyle peak MiB", "reference peak MiB"]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = lambda cells: "| " + " | ".join(v.rjust(w) for v, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def add_run_options(p: argparse.ArgumentParser, steps: int = 5, warmup: int = 2,
                    repeats_help: str = "alternating nstyle/reference; ") -> None:
    """The options every benchmark here shares: device, timing, repeats, threads, worker flag."""
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--steps", type=int, default=steps, help=f"timed steps per configuration (default {steps})")
    p.add_argument("--warmup", type=int, default=warmup, help=f"untimed steps first (default {warmup})")
    p.add_argument("--repeats", type=int, default=1,
                   help=f"runs of each configuration, {repeats_help}the fastest is kept "
                        "and the lowest peak (default 1; raise it on a busy machine)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    p.add_argument("--_worker", help=argparse.SUPPRESS)


def checked_device(p: argparse.ArgumentParser, name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA GPU")
    return device


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p)
    p.add_argument("--sizes", default="256,512", help="comma-separated square sizes in px (default 256,512)")
    p.add_argument("--nets", default="vgg16,vgg19", help="comma-separated: vgg16, vgg19 (default both)")
    a = p.parse_args(argv)

    if a._worker:
        print(json.dumps(worker(json.loads(a._worker))), flush=True)
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
    print(f"content {CONTENT_IMAGE}, style {STYLE_IMAGE}, init content; content {CONTENT_LAYER}, "
          f"style {','.join(STYLE_LAYERS)} (λ=1), α={ALPHA:g}, β={BETA:g}; L-BFGS max_iter=1")
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
