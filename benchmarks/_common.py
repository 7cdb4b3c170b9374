"""What the benchmarks share: nstyle's run setup, the memory probe, step clocks, workers, report.

The scripts here run as ``python benchmarks/x.py``, so this folder is on ``sys.path`` and
they ``from _common import ...``.

**Setup.** ``setup(kind, content, style, device, **options)`` builds what
``nstyle.pipeline.run`` builds for one run at the output's scale (the last scale of its
plan; the only one with ``scales="none"``), by calling the same public pieces in the same
order: the kind's settings (``nstyle.options.SETTINGS``, validated, device and precision
checked), its adapter (``nstyle.kinds.MODALITIES``: ``load`` -> signals, ``network`` ->
network and layers), ``nstyle.pipeline.build_objective`` (J, whole or tiled, and α),
``nstyle.pipeline.start_at_scale`` (G0) and ``nstyle.pipeline.choose_optimizer``; so a
benchmark times exactly the evaluations a run makes, with nstyle's defaults wherever an
option is not given. ``prepare`` stops before the objective (whose targets, content
activations and style statistics, are computed when it is built), so that a benchmark can
start its memory probe or clock first and call ``Setup.build()`` after.

Everything else is what two or more scripts repeat: ``MemoryProbe`` (peak extra memory),
``StepClock`` (step end times, as an ``optimize`` callback or by hand), ``run_worker``
(one configuration in a fresh interpreter), ``add_run_options`` / ``checked_device``,
``header`` (the machine), ``markdown_table``, and the plain VGG reference loss of
bench_image.py and bench_speed.py (``PlainVGGLoss``, ``plain_gram``, ``lbfgs_args``).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nstyle.core.engine import DEFAULT_LR, RunResult, lbfgs_history, optimize
from nstyle.core.precision import check_precision
from nstyle.kinds import MODALITIES, Modality, Network, Signals
from nstyle.options import SETTINGS, Settings
from nstyle.pipeline import build_objective, choose_optimizer, default_alpha, start_at_scale
from nstyle.validators import resolve_device

# ----------------------------------------------------------------------------- nstyle's setup


@dataclass
class Setup:
    """One run's pieces as ``nstyle.pipeline.run`` builds them, at the output's scale.

    ``objective``, ``alpha`` and ``g0`` are None until ``build()``; ``optimizer`` is the
    name run picks (``choose_optimizer``: L-BFGS, or Adam where the net samples its input).
    """

    kind: str
    modality: Modality
    settings: Settings
    device: torch.device
    signals: Signals
    network: Network
    optimizer: str
    objective: Any = None  # StyleObjective or TiledObjective
    alpha: float | None = None
    g0: torch.Tensor | None = None

    @property
    def content(self) -> torch.Tensor:
        """C as G is optimised (a waveform, a log-magnitude, standardised leads, RGB, a volume)."""
        return self.signals.content

    @property
    def style(self) -> torch.Tensor:
        """The (first) style signal, in the same domain as ``content``."""
        return self.signals.styles[0]

    @property
    def model(self) -> Any:
        return self.network.model

    @property
    def beta(self) -> float:
        """β as the run uses it: the option given, or the kind's default."""
        return self.modality.style_weight(self.settings)

    def build(self, start: bool = True) -> Setup:
        """J (targets computed now), its α and (unless ``start`` is False) G0, as run builds
        them for its last scale."""
        objective, alpha = build_objective(self.modality, self.network, self.signals, self.settings)
        if self.alpha is not None and not math.isclose(alpha, self.alpha, rel_tol=1e-9):
            raise RuntimeError(f"α of the objective ({alpha:g}) is not the one reported before ({self.alpha:g})")
        self.objective, self.alpha = objective, alpha
        if start:
            self.g0 = self.start()
        return self

    def start(self) -> torch.Tensor:
        """G0: the kind's start (``init``, ``seed``) on C's grid."""
        return start_at_scale(self.modality, self.signals, self.settings, None)

    def weights(self) -> tuple[list[str], dict[str, float], float, float]:
        """(content layers, style layers with λ, α, β) of J, for a loop that computes the same J
        by hand; α is the objective's once built, else the adapter's default (or the option)."""
        if self.alpha is None:
            given = self.settings.content_weight
            self.alpha = default_alpha(self.modality, self.network, self.signals, self.settings) if given is None \
                else float(given)
        return list(self.network.content_layers), dict(self.network.style_weights), self.alpha, self.beta

    def optimize(self, steps: int, callback: Callable[..., None] | None = None) -> RunResult:
        """``steps`` steps of the run's optimiser (its ``lr`` too) on J from G0."""
        if self.objective is None:
            self.build()
        if self.g0 is None:
            self.g0 = self.start()
        return optimize(self.objective, self.g0, steps, optimizer=self.optimizer, lr=self.settings.lr,
                        callback=callback)

    def replace(self, **changes: Any) -> Setup:
        """This setup with other settings, unbuilt: only for settings that loading and the
        network do not read (precision, content/style weight, init, seed, style loss, lr)."""
        settings = dataclasses.replace(self.settings, **changes).validate()
        check_precision(settings.precision, self.device)
        return dataclasses.replace(self, settings=settings, optimizer=choose_optimizer(settings, self.network),
                                   objective=None, alpha=None, g0=None)


def settings_for(kind: str, **options: Any) -> Settings:
    """The validated settings of ``kind`` (``nstyle.options``) with ``options``, defaults elsewhere."""
    return SETTINGS[kind].from_options(options).validate()


def prepare(kind: str, content: Any, style: Any, device: torch.device | str, **options: Any) -> Setup:
    """Settings, signals, network and optimiser of a run of ``kind``, as ``nstyle.pipeline.run``
    makes them; ``content`` and ``style`` are what the kind's loader takes (file paths)."""
    settings = settings_for(kind, **options, device=str(device))
    dev = resolve_device(settings.device)
    settings = settings.resolved(dev)  # steps, plateau and precision as --quality sets them
    check_precision(settings.precision, dev)
    modality = MODALITIES[kind]
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    signals = modality.load(content, styles, settings, dev)
    network = modality.network(signals, settings, dev)
    return Setup(kind, modality, settings, dev, signals, network, choose_optimizer(settings, network))


def setup(kind: str, content: Any, style: Any, device: torch.device | str, **options: Any) -> Setup:
    """``prepare`` and ``Setup.build``: everything a run evaluates, targets computed."""
    return prepare(kind, content, style, device, **options).build()


# ----------------------------------------------------------------------------- the plain reference


# The reference loops' L-BFGS: nstyle's own settings (``nstyle.core.engine.optimize``): one
# evaluation per step, no line search, no tolerances.
def lbfgs_args(numel: int) -> dict[str, Any]:
    """``torch.optim.LBFGS`` keywords as nstyle's optimiser sets them for a G of ``numel`` values."""
    return {"lr": DEFAULT_LR["lbfgs"], "max_iter": 1, "history_size": lbfgs_history(numel),
            "tolerance_grad": 0.0, "tolerance_change": 0.0}


def plain_gram(a: torch.Tensor) -> torch.Tensor:
    """Gram matrix / (2 · M · n_C), written out."""
    f = a.flatten(2)
    return (f @ f.transpose(1, 2)) / (2.0 * f.shape[2] * f.shape[1])


class PlainVGGLoss:
    """The plain Gatys-style J: the whole VGG through pool5 in NCHW every call, the costs
    written out; same net, layers, α and β as ``setup``'s objective. Targets computed once."""

    def __init__(self, setup: Setup) -> None:
        self.net = setup.model
        content_layers, self.style_layers, self.alpha, self.beta = setup.weights()
        (self.content_layer,) = content_layers
        self.wanted = set(self.style_layers) | {self.content_layer}
        with torch.no_grad():  # the targets, once
            self.style_grams = {n: plain_gram(a) for n, a in self.features(setup.style).items()
                                if n in self.style_layers}
            self.content_act = self.features(setup.content)[self.content_layer]

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.net.preprocess(x)  # same input transform as the weights expect
        acts = {}
        for name, module in zip(self.net.names, self.net.layers):  # every layer, pool5 included
            h = module(h)
            if name in self.wanted:
                acts[name] = h
        return acts

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        acts = self.features(g)
        j_content = 0.5 * (acts[self.content_layer] - self.content_act).pow(2).sum()
        j_style = sum(lam * (plain_gram(acts[n]) - self.style_grams[n]).pow(2).sum()
                      for n, lam in self.style_layers.items())
        return self.alpha * j_content + self.beta * j_style


# ----------------------------------------------------------------------------- memory


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def status_kib(field: str) -> int | None:
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
        self.base = status_kib("VmRSS") or 0
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
            peak = status_kib("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return max(0, (peak or 0) - self.base) / 1024


# ----------------------------------------------------------------------------- timing


class StepClock:
    """End times of steps, index 0 the start: ``optimize``'s callback, or ``tick()`` by hand.

    Each time is read after the device has finished its work; ``on_step(step, seconds)``
    (optional) hears of every step as it ends.
    """

    def __init__(self, device: torch.device, on_step: Callable[[int, float], None] | None = None) -> None:
        self.device = device
        self.on_step = on_step
        self.times: list[float] = []

    def start(self) -> None:
        sync(self.device)
        self.times = [time.perf_counter()]

    def tick(self) -> None:
        sync(self.device)
        self.times.append(time.perf_counter())
        if self.on_step is not None:
            self.on_step(len(self.times) - 1, self.times[-1] - self.times[-2])

    def __call__(self, info: Any, g: torch.Tensor) -> None:  # optimize's record() has synced J already
        self.tick()

    def per_step(self, warmup: int, steps: int) -> dict[str, float]:
        """Median and mean seconds of the steps after the first ``warmup``."""
        if len(self.times) < warmup + steps + 1:
            raise RuntimeError(f"only {len(self.times) - 1} of {warmup + steps} steps ran")
        durations = [b - a for a, b in zip(self.times[warmup:], self.times[warmup + 1:])]
        return {"s_per_step": statistics.median(durations), "mean_s_per_step": statistics.fmean(durations)}


# ----------------------------------------------------------------------------- workers and options


def worker_process(script: str, spec: dict) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run ``script --_worker SPEC`` in a fresh interpreter: the process and its last JSON line."""
    cmd = [sys.executable, os.path.abspath(script), "--_worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return proc, (json.loads(lines[-1]) if proc.returncode == 0 and lines else None)


def run_worker(script: str, spec: dict, failure: str) -> dict:
    """``worker_process``'s result; on failure its stderr is shown and ``failure`` ends the run."""
    proc, result = worker_process(script, spec)
    if result is None:
        sys.stderr.write(proc.stderr)
        raise SystemExit(failure)
    return result


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
    p.add_argument("--_worker", dest="worker", help=argparse.SUPPRESS)


def checked_device(p: argparse.ArgumentParser, name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but torch sees no CUDA GPU")
    return device


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
    """Lines naming torch, Python, the OS, the CPU (and GPU) and the load."""
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


def markdown_table(cols: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = ()) -> str:
    """A markdown table, columns padded to their widest cell: right-aligned, but the
    columns numbered in ``left`` left-aligned."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) if i in left else v.rjust(w)
                                 for i, (v, w) in enumerate(zip(cells, widths))) + " |"

    return "\n".join([fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])
