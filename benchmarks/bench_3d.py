"""Seconds per optimisation step and peak memory: nstyle's 3D path (``stylize_volume``).

For each volume net (``triplanar``, ``inflated``, ``random``) and cube size (64³, 128³)
this times the objects ``stylize_volume`` builds, with its defaults, built here from the
pieces it uses (``_network``, its default layers, ``Triplanar.expand_layers``,
``StyleObjective``, ``initial_signal``, ``optimize``) rather than through the function, so
that file loading stays out of the timing:

* **triplanar**: the bundled VGG16 over slices along the three axes, style relu1_1,
  relu2_1, relu3_1 and content relu3_1, each per orientation (9 style layers, 3 content
  layers); at most 32 random slices per axis and evaluation (``DEFAULT_SLICES``), so
  Adam (lr 0.02) as ``stylize_volume`` picks for a sampled objective. The targets are
  made from every slice, once. The slices seen per step are printed.
* **inflated**: the same VGG16 with 3x3x3 kernels and 2x2x2 pooling, same layers, run
  on the whole volume: L-BFGS.
* **random**: ``RandomBranches`` ``3:64,3x2:64,3x4:64`` (3D, seed 0), content relu_3,
  style every branch: L-BFGS.

α = 1 / (elements of the content layers), computed as ``stylize_volume`` does (every
slice), β = 1e3, init content. Volumes: nibabel's bundled ``example4d.nii.gz`` (volume 0,
128 x 96 x 24) as content and ``anatomical.nii`` (33 x 41 x 25) as style, each resized
with ``torch.nn.functional.interpolate(mode="trilinear")`` to the cube and then mapped to
[0, 1] by its 1st and 99th percentiles (clipped), as ``load_volume`` maps MR. If nibabel
or its test data is missing, both are random smooth volumes (seeded noise at 8³,
upsampled trilinearly, then the same mapping) and the header says so.

There is no reference loop for 3D. Each configuration runs in a fresh subprocess (this
script with a hidden flag), with ``--warmup`` untimed steps and then ``--steps`` timed
ones; s/step is the median of the timed steps (the mean is printed in the log too). With
``--repeats R`` each configuration runs R times and the table keeps the fastest s/step
and the lowest peak. Peak memory is measured as in bench_image.py (same probe): the
extra memory above what is held once the network and the volumes are loaded, including
the targets and the steps; on CPU the peak resident set (VmHWM, reset through
/proc/self/clear_refs after a malloc_trim) minus the resident set at that moment; on
CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated then. A step that
runs past ``--max-step-s`` (default 60 s) stops its configuration: the table says so.

    python benchmarks/bench_3d.py                                    # 64³ and 128³, all three nets
    python benchmarks/bench_3d.py --sizes 64 --steps 2               # quick check
    python benchmarks/bench_3d.py --nets triplanar --device cuda --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_image import (  # shared pieces
    MemoryProbe,
    _sync,
    add_run_options,
    checked_device,
    header,
)

NETS = ("triplanar", "inflated", "random")
CONTENT_FILE, CONTENT_INDEX = "example4d.nii.gz", 0
STYLE_FILE = "anatomical.nii"
PERCENTILES = (1.0, 99.0)
SEED = 0
SETUP_LIMIT_S = 600.0  # network, volumes, α and the targets, before the first step


# ----------------------------------------------------------------------------- inputs


def nibabel_files() -> tuple[Path, Path] | None:
    """nibabel's bundled test volumes, or None where nibabel or its data is missing."""
    try:
        from nibabel.testing import data_path
    except ImportError:
        return None
    c, s = Path(data_path) / CONTENT_FILE, Path(data_path) / STYLE_FILE
    return (c, s) if c.is_file() and s.is_file() else None


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map the 1st..99th percentiles to 0..1 and clip, as ``load_volume`` does for MR."""
    v = x.double().numpy()
    lo, hi = (float(q) for q in np.percentile(v, PERCENTILES))
    return torch.from_numpy(np.clip((v - lo) / (hi - lo), 0.0, 1.0).astype(np.float32))


def resized(v: np.ndarray, size: int) -> torch.Tensor:
    """(D, H, W) values -> (1, 1, size, size, size) by trilinear interpolation."""
    x = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None, None]
    return F.interpolate(x, size=(size,) * 3, mode="trilinear", align_corners=False)


def volume_pair(size: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(1, 1, size³) content and style in [0, 1], and where they came from."""
    files = nibabel_files()
    if files is None:
        gen = torch.Generator().manual_seed(SEED)
        c, s = (to_unit(resized(torch.randn(8, 8, 8, generator=gen).numpy(), size)) for _ in range(2))
        return c, s, "RANDOM SMOOTH VOLUMES (nibabel or its bundled test data is missing): seeded 8³ noise, upsampled"
    from nstyle.modalities.volume import (
        read_raw,  # what load_volume reads, before its mapping
    )

    c_raw, c_meta = read_raw(files[0], CONTENT_INDEX)
    s_raw, _ = read_raw(files[1], None)
    c, s = to_unit(resized(c_raw, size)), to_unit(resized(s_raw, size))
    return c, s, (f"content nibabel {CONTENT_FILE} volume {CONTENT_INDEX} ({'x'.join(map(str, c_raw.shape))} of "
                  f"{'x'.join(map(str, c_meta['shape']))}), style {STYLE_FILE} ({'x'.join(map(str, s_raw.shape))}), "
                  f"trilinear to {size}³, 1st/99th percentiles -> [0, 1]")


# ----------------------------------------------------------------------------- nstyle


def build(net: str, c: torch.Tensor, device: torch.device):
    """The network, layers and optimizer ``stylize_volume`` picks for ``net`` (its defaults)."""
    from nstyle.api import parse_layer_weights
    from nstyle.nets.random import RandomBranches, parse_branches
    from nstyle.nets.volume import Triplanar
    from nstyle.volumes import (
        DEFAULT_CONTENT_LAYER,
        DEFAULT_RANDOM_BRANCHES,
        DEFAULT_SLICES,
        DEFAULT_STYLE_LAYERS,
        _network,
    )

    shape = tuple(c.shape[2:])
    if net == "random":
        probe = RandomBranches(1, parse_branches(DEFAULT_RANDOM_BRANCHES), dims=3, seed=0)
        layers = dict.fromkeys(probe.default_layers(), 1.0)
        content_layer = probe.default_layers()[0]
    else:
        layers = parse_layer_weights(DEFAULT_STYLE_LAYERS)
        content_layer = DEFAULT_CONTENT_LAYER
    model = _network(net, shape, [content_layer, *layers], DEFAULT_SLICES, DEFAULT_RANDOM_BRANCHES, 0, "max", device)
    if net == "triplanar":
        lam = {name: w for layer, w in layers.items() for name in Triplanar.expand_layers([layer])}
        content_layers = Triplanar.expand_layers([content_layer])
    else:
        lam, content_layers = layers, [content_layer]
    model.check_layers([*lam, *content_layers])
    sampled = net == "triplanar" and model.slices_per_axis is not None
    return model, lam, content_layers, ("adam" if sampled else "lbfgs")


def slices_seen(model, shape: tuple[int, ...]) -> tuple[int, int]:
    """(slices the triplanar net sees per evaluation, slices of the volume along all 3 axes)."""
    k = model.slices_per_axis
    return sum(n if k is None else min(n, k) for n in shape), sum(shape)


def run_nstyle(net: str, model, lam, content_layers, optimizer: str, c, s, total_steps: int,
               device: torch.device, emit) -> tuple[list[float], float, float]:
    """Step end times (index 0: the start), J at the first step, and α."""
    from nstyle.core.engine import initial_signal, optimize
    from nstyle.core.objective import StyleObjective
    from nstyle.volumes import DEFAULT_STYLE_WEIGHTS

    with torch.no_grad():  # α as stylize_volume computes it: every slice
        if net == "triplanar":
            model.use_all_slices()
        alpha = 1.0 / sum(model(c, [n])[n].numel() for n in content_layers)
    objective = StyleObjective(model, c, s, content_layers, lam, alpha, DEFAULT_STYLE_WEIGHTS[net])
    g0 = initial_signal("content", c, s, seed=SEED)
    times: list[float] = []

    def tick(info, g) -> None:  # optimize's record() has already synced J to floats
        _sync(device)
        times.append(time.perf_counter())
        emit({"step": len(times) - 1, "dt": times[-1] - times[-2]})

    _sync(device)
    times.append(time.perf_counter())  # the targets are built: from here on, steps only
    emit({"ready": True})
    run = optimize(objective, g0, total_steps, optimizer=optimizer, callback=tick)
    return times, run.history[0].total, alpha


# ----------------------------------------------------------------------------- worker


def worker(spec: dict, emit) -> dict:
    """One configuration, in this (fresh) process: s/step, peak MiB, J0 and what it saw."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    c, s, source = volume_pair(spec["size"])
    c, s = c.to(device), s.to(device)
    model, lam, content_layers, optimizer = build(spec["net"], c, device)
    warmup, steps = spec["warmup"], spec["steps"]
    probe = MemoryProbe(device)
    probe.start()
    times, j0, alpha = run_nstyle(spec["net"], model, lam, content_layers, optimizer, c, s, warmup + steps,
                                  device, emit)
    peak = probe.peak_mib()
    if len(times) < warmup + steps + 1:
        raise RuntimeError(f"only {len(times) - 1} of {warmup + steps} steps ran")
    durations = [b - a for a, b in zip(times[warmup:], times[warmup + 1:])]
    shape = tuple(c.shape[2:])
    seen = slices_seen(model, shape) if spec["net"] == "triplanar" else None
    return {"s_per_step": statistics.median(durations), "mean_s_per_step": statistics.fmean(durations),
            "peak_mib": peak, "j0": j0, "alpha": alpha, "optimizer": optimizer, "slices": seen,
            "style_layers": list(lam), "content_layers": list(content_layers),
            "mem_method": probe.method, "source": source}


def run_config(spec: dict, max_step_s: float) -> dict:
    """Run ``worker(spec)`` in a fresh interpreter; stop it if one step runs past ``max_step_s``.

    The worker prints one JSON line per event (ready, each step, the result); a step
    that has not ended ``max_step_s`` after the previous one kills the worker, and the
    result says ``stopped``.
    """
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        lines: queue.Queue = queue.Queue()

        def read() -> None:
            for ln in proc.stdout:
                lines.put(ln)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        result, done, ready = None, 0, False
        t0 = last = time.perf_counter()
        while True:
            limit = max_step_s if ready else SETUP_LIMIT_S
            try:
                line = lines.get(timeout=max(0.0, last + limit - time.perf_counter()))
            except queue.Empty:
                proc.kill()
                proc.wait()
                what = f"step {done + 1}" if ready else "setup (before the first step)"
                return {"stopped": True, "why": f"{what} ran past {limit:g} s; stopped after "
                        f"{time.perf_counter() - t0:.0f} s, {done} step(s) done"}
            if line is None:
                break
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            last = time.perf_counter()
            if event.get("ready"):
                ready = True
            elif "step" in event:
                done = event["step"]
            elif "result" in event:
                result = event["result"]
        proc.wait()
        if proc.returncode != 0 or result is None:
            err.seek(0)
            sys.stderr.write(err.read())
            raise SystemExit(f"worker failed for {spec['net']} {spec['size']}³")
    return result


# ----------------------------------------------------------------------------- report


def table(rows: list[list[str]]) -> str:
    cols = ["net", "size", "optimizer", "seen per step", "s/step", "peak MiB"]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = lambda cells: "| " + " | ".join(
        v.ljust(w) if i in (0, 3) else v.rjust(w) for i, (v, w) in enumerate(zip(cells, widths))) + " |"
    return "\n".join([fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p, steps=3, warmup=1, repeats_help="")
    p.add_argument("--sizes", default="64,128", help="comma-separated cube sizes in voxels (default 64,128)")
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, from {', '.join(NETS)} (default all)")
    p.add_argument("--max-step-s", type=float, default=60.0,
                   help="stop a configuration when one of its steps runs longer (default 60)")
    a = p.parse_args(argv)

    if a._worker:
        emit = lambda event: print(json.dumps(event), flush=True)
        emit({"result": worker(json.loads(a._worker), emit)})
        return

    device = checked_device(p, a.device)
    try:
        sizes = [int(v) for v in a.sizes.split(",") if v.strip()]
    except ValueError:
        p.error(f"--sizes takes comma-separated integers, got {a.sizes!r}")
    nets = [v.strip() for v in a.nets.split(",") if v.strip()]
    for n in nets:
        if n not in NETS:
            p.error(f"unknown net {n!r}; choose from {', '.join(NETS)}")
    if not sizes or min(sizes) < 16 or a.steps < 1 or a.warmup < 0 or a.repeats < 1 or a.max_step_s <= 0:
        p.error("--sizes must be >= 16, --steps and --repeats >= 1, --warmup >= 0, --max-step-s > 0")
    if a.threads:
        torch.set_num_threads(a.threads)

    from nstyle.volumes import (
        DEFAULT_CONTENT_LAYER,
        DEFAULT_SLICES,
        DEFAULT_STYLE_LAYERS,
        DEFAULT_STYLE_WEIGHTS,
    )

    print("\n".join(header(device, torch.get_num_threads())))
    files = nibabel_files()
    print("volumes: " + (f"content {files[0]} (volume {CONTENT_INDEX}), style {files[1]}, each resized trilinearly "
                         "to the cube, then 1st/99th percentiles -> [0, 1]" if files else
                         "RANDOM SMOOTH VOLUMES, nibabel's bundled example4d.nii.gz / anatomical.nii are missing: "
                         "seeded 8³ noise upsampled trilinearly, then 1st/99th percentiles -> [0, 1]"))
    print(f"stylize_volume defaults: VGG16 style {','.join(DEFAULT_STYLE_LAYERS)}, content {DEFAULT_CONTENT_LAYER} "
          f"(per orientation for triplanar, at most {DEFAULT_SLICES} random slices per axis and step); random net "
          f"branches 3:64,3x2:64,3x4:64; β={DEFAULT_STYLE_WEIGHTS}, α = 1/(content elements), init content")
    print(f"{a.warmup} warm-up + {a.steps} timed steps (median reported) per run, {a.repeats} run(s) per "
          f"configuration, each in a fresh process; a step over {a.max_step_s:g} s stops its configuration\n",
          flush=True)

    rows, methods, stopped = [], set(), []
    for net in nets:
        for size in sizes:
            best: dict | None = None
            halted = None
            for _ in range(a.repeats):
                spec = {"net": net, "size": size, "device": a.device, "steps": a.steps, "warmup": a.warmup,
                        "threads": a.threads}
                out = run_config(spec, a.max_step_s)
                if out.get("stopped"):
                    halted = out["why"]
                    print(f"  {net:9s} {size}³: STOPPED, {halted}", flush=True)
                    break
                methods.add(out["mem_method"])
                seen = ""
                if out["slices"]:
                    k, n = out["slices"]
                    seen = f", {k} of {n} slices per step ({k // 3} per axis)"
                print(f"  {net:9s} {size}³: {out['s_per_step']:.3f} s/step (median; mean {out['mean_s_per_step']:.3f}), "
                      f"peak +{out['peak_mib']:.0f} MiB, {out['optimizer']}{seen}, J0 {out['j0']:.6g}, "
                      f"α {out['alpha']:.3g}", flush=True)
                if best is None:
                    best = dict(out)
                best["s_per_step"] = min(best["s_per_step"], out["s_per_step"])
                best["peak_mib"] = min(best["peak_mib"], out["peak_mib"])
            if best is None:
                stopped.append(f"{net} {size}³: {halted}")
                rows.append([net, f"{size}³", "-", "-", f"> {a.max_step_s:g} (stopped)", "-"])
                continue
            if best["slices"]:
                k, n = best["slices"]
                seen = f"{k} of {n} slices"
            else:
                seen = "whole volume"
            rows.append([net, f"{size}³", best["optimizer"], seen, f"{best['s_per_step']:.3f}",
                         f"{best['peak_mib']:.0f}"])

    print()
    print(table(rows))
    print("\nseen per step: what one objective evaluation runs the network on (triplanar: random slices along the "
          "three axes, redrawn each step); peak MiB: memory above the baseline held once the network and volumes "
          f"are loaded, targets and steps included ({'; '.join(sorted(methods)) or 'none measured'})")
    if stopped:
        print("stopped: " + "; ".join(stopped))


if __name__ == "__main__":
    main()
