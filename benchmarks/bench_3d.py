"""Seconds per optimisation step and peak memory: nstyle's 3D path (``stylize_volume``).

For each volume net (``triplanar``, ``inflated``, ``random``) and cube size (64³, 128³)
this times what ``stylize_volume(content, style, net=...)`` runs, with its defaults:
``_common.prepare`` sets the run up through nstyle's own volume adapter (loader, network,
layers, optimiser choice) and ``Setup.build`` makes J, α and G0 with
``nstyle.pipeline.build_objective`` / ``start_at_scale``, rather than calling the function,
so that file loading stays out of the timing:

* **triplanar**: the bundled VGG16 over slices along the three axes, style relu1_1,
  relu2_1, relu3_1 and content relu3_1, each per orientation (9 style layers, 3 content
  layers); at most 32 random slices per axis and evaluation (``--slices``' default), so
  Adam (lr 0.02) as the run picks for a sampled objective. The targets are made from
  every slice, once. The slices seen per step are printed.
* **inflated**: the same VGG16 with 3x3x3 kernels and 2x2x2 pooling, same layers, run
  on the whole volume: L-BFGS.
* **random**: ``RandomBranches`` ``3:64,3x2:64,3x4:64`` (3D, seed 0), content relu_3,
  style every branch: L-BFGS.

α = 1 / (elements of the content layers), computed as the run does (every slice), β per
net as ``nstyle.options.VOLUME_STYLE_WEIGHTS`` (0.1 for the VGG nets, 10 for random), init
content. Volumes: nibabel's bundled ``example4d.nii.gz`` (volume 0, 128 x 96 x 24) as
content and ``anatomical.nii`` (33 x 41 x 25) as style, each resized with
``torch.nn.functional.interpolate(mode="trilinear")`` to the cube, written as ``.npy`` to
a scratch folder and read back by nstyle's loader, which maps it to [0, 1] by its 1st and
99th percentiles (clipped), as for any MR. If nibabel or its test data is missing, both
are random smooth volumes (seeded noise at 8³, upsampled trilinearly, then the same
mapping) and the header says so.

There is no reference loop for 3D. Each configuration runs in a fresh subprocess (this
script with a hidden flag), with ``--warmup`` untimed steps and then ``--steps`` timed
ones; s/step is the median of the timed steps (the mean is printed in the log too). With
``--repeats R`` each configuration runs R times and the table keeps the fastest s/step
and the lowest peak. Peak memory is measured by ``_common.MemoryProbe`` (as in
bench_image.py): the extra memory above what is held once the network and the volumes
are loaded, including α, the targets and the steps; on CPU the peak resident set (VmHWM, reset through
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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    MemoryProbe,
    StepClock,
    add_run_options,
    checked_device,
    header,
    markdown_table,
    prepare,
)

from nstyle.kinds.volume import VGG_CONTENT_LAYER, VGG_STYLE_LAYERS
from nstyle.options import DEFAULT_VOLUME_BRANCHES, VOLUME_NETS, VOLUME_STYLE_WEIGHTS, VolumeSettings
from nstyle.validators import parse_layer_weights

NETS = VOLUME_NETS
CONTENT_FILE, CONTENT_INDEX = "example4d.nii.gz", 0
STYLE_FILE = "anatomical.nii"
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


def resized(v: np.ndarray, size: int) -> np.ndarray:
    """(D, H, W) values -> (size, size, size) by trilinear interpolation."""
    x = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None, None]
    return F.interpolate(x, size=(size,) * 3, mode="trilinear", align_corners=False)[0, 0].numpy()


def volume_files(size: int, folder: str) -> tuple[Path, Path, str]:
    """Content and style cubes of ``size``³ in their files' units, written as ``.npy`` to
    ``folder`` (for nstyle's loader, which maps them to [0, 1]), and where they came from."""
    files = nibabel_files()
    if files is None:
        gen = torch.Generator().manual_seed(SEED)
        c, s = (resized(torch.randn(8, 8, 8, generator=gen).numpy(), size) for _ in range(2))
        source = "RANDOM SMOOTH VOLUMES (nibabel or its bundled test data is missing): seeded 8³ noise, upsampled"
    else:
        from nstyle.modalities.volume import read_raw  # what load_volume reads, before its mapping

        c_raw, c_meta = read_raw(files[0], CONTENT_INDEX)
        s_raw, _ = read_raw(files[1], None)
        c, s = resized(c_raw, size), resized(s_raw, size)
        source = (f"content nibabel {CONTENT_FILE} volume {CONTENT_INDEX} ({'x'.join(map(str, c_raw.shape))} of "
                  f"{'x'.join(map(str, c_meta['shape']))}), style {STYLE_FILE} ({'x'.join(map(str, s_raw.shape))}), "
                  f"trilinear to {size}³, 1st/99th percentiles -> [0, 1]")
    paths = Path(folder) / "content.npy", Path(folder) / "style.npy"
    for path, v in zip(paths, (c, s)):
        np.save(path, v)
    return paths[0], paths[1], source


# ----------------------------------------------------------------------------- nstyle


def slices_seen(model, shape: tuple[int, ...]) -> tuple[int, int]:
    """(slices the triplanar net sees per evaluation, slices of the volume along all 3 axes)."""
    k = model.slices_per_axis
    return sum(n if k is None else min(n, k) for n in shape), sum(shape)


# ----------------------------------------------------------------------------- worker


def worker(spec: dict, emit) -> dict:
    """One configuration, in this (fresh) process: s/step, peak MiB, J0 and what it saw."""
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    with tempfile.TemporaryDirectory() as folder:
        c_path, s_path, source = volume_files(spec["size"], folder)
        run = prepare("volume", c_path, s_path, device, net=spec["net"])  # stylize_volume's defaults
    warmup, steps = spec["warmup"], spec["steps"]
    clock = StepClock(device, on_step=lambda step, dt: emit({"step": step, "dt": dt}))
    probe = MemoryProbe(device)
    probe.start()
    run.build()  # α as the run computes it (every slice), the targets, G0
    clock.start()  # the targets are built: from here on, steps only
    emit({"ready": True})
    result = run.optimize(warmup + steps, callback=clock)
    peak = probe.peak_mib()
    shape = tuple(run.content.shape[2:])
    seen = slices_seen(run.model, shape) if spec["net"] == "triplanar" else None
    return {**clock.per_step(warmup, steps), "peak_mib": peak, "j0": result.history[0].total, "alpha": run.alpha,
            "optimizer": run.optimizer, "slices": seen, "style_layers": list(run.network.style_weights),
            "content_layers": list(run.network.content_layers), "mem_method": probe.method, "source": source}


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
    return markdown_table(["net", "size", "optimizer", "seen per step", "s/step", "peak MiB"], rows, left=(0, 3))


def measure(a: argparse.Namespace, net: str, size: int, methods: set[str]) -> tuple[list[str], str | None]:
    """Run one configuration ``--repeats`` times: its table row (fastest s/step, lowest peak),
    and why it was stopped where no run finished (else None)."""
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
        return [net, f"{size}³", "-", "-", f"> {a.max_step_s:g} (stopped)", "-"], halted
    if best["slices"]:
        k, n = best["slices"]
        seen = f"{k} of {n} slices"
    else:
        seen = "whole volume"
    return [net, f"{size}³", best["optimizer"], seen, f"{best['s_per_step']:.3f}", f"{best['peak_mib']:.0f}"], None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(p, steps=3, warmup=1, repeats_help="")
    p.add_argument("--sizes", default="64,128", help="comma-separated cube sizes in voxels (default 64,128)")
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, from {', '.join(NETS)} (default all)")
    p.add_argument("--max-step-s", type=float, default=60.0,
                   help="stop a configuration when one of its steps runs longer (default 60)")
    a = p.parse_args(argv)

    if a.worker:
        emit = lambda event: print(json.dumps(event), flush=True)  # noqa: E731
        emit({"result": worker(json.loads(a.worker), emit)})
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

    print("\n".join(header(device, torch.get_num_threads())))
    files = nibabel_files()
    print("volumes: " + (f"content {files[0]} (volume {CONTENT_INDEX}), style {files[1]}, each resized trilinearly "
                         "to the cube, then 1st/99th percentiles -> [0, 1]" if files else
                         "RANDOM SMOOTH VOLUMES, nibabel's bundled example4d.nii.gz / anatomical.nii are missing: "
                         "seeded 8³ noise upsampled trilinearly, then 1st/99th percentiles -> [0, 1]"))
    print(f"stylize_volume defaults: VGG16 style {','.join(parse_layer_weights(VGG_STYLE_LAYERS))}, content "
          f"{VGG_CONTENT_LAYER} (per orientation for triplanar, at most {VolumeSettings().slices} random slices per "
          f"axis and step); random net branches {DEFAULT_VOLUME_BRANCHES}; β={VOLUME_STYLE_WEIGHTS}, "
          "α = 1/(content elements), init content")
    print(f"{a.warmup} warm-up + {a.steps} timed steps (median reported) per run, {a.repeats} run(s) per "
          f"configuration, each in a fresh process; a step over {a.max_step_s:g} s stops its configuration\n",
          flush=True)

    rows, methods, stopped = [], set(), []
    for net in nets:
        for size in sizes:
            row, halted = measure(a, net, size, methods)
            rows.append(row)
            if halted:
                stopped.append(f"{net} {size}³: {halted}")

    print()
    print(table(rows))
    print("\nseen per step: what one objective evaluation runs the network on (triplanar: random slices along the "
          "three axes, redrawn each step); peak MiB: memory above the baseline held once the network and volumes "
          f"are loaded, targets and steps included ({'; '.join(sorted(methods)) or 'none measured'})")
    if stopped:
        print("stopped: " + "; ".join(stopped))


if __name__ == "__main__":
    main()
