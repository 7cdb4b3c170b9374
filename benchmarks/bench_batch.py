"""Jobs per minute: a shell loop of ``nstyle`` calls against ``nstyle batch`` with 1 and 2 workers.

Two batches, each run three ways in this one process (the loop as subprocesses, as a user's
shell would): 16 small images (4 of scikit-image's photos × 4 of its textures and photos as
styles, 128 px, 30 steps, one scale) and 4 volumes (nibabel's anatomical.nii in the style
of example4d.nii.gz and of itself, two style weights; triplanar, 10 steps). Printed: wall
time, jobs per minute and the time to the first finished result. The plain loop is the
reference: it pays the interpreter start, torch import and network build for every job.

    python benchmarks/bench_batch.py [--only images|volumes] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel
import torch
from _common import header, markdown_table

from nstyle.jobs import batch, read_plan
from nstyle.samples import sample_path

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
STYLES = ("ihc.png", "hubble_deep_field.jpg", "coffee.png", "chelsea.png")
NIB = Path(os.path.dirname(nibabel.__file__)) / "tests" / "data"


def image_plan(folder: Path) -> Path:
    for name in {*PHOTOS, *STYLES}:
        (folder / name).write_bytes(sample_path(name).read_bytes())
    styles = ", ".join(f'"{s}"' for s in STYLES)
    text = ('kind = "image"\nsize = 128\nsteps = 30\nscales = "none"\n' + "".join(
        f'[[product]]\ncontent = "{p}"\nstyle = [{styles}]\noutput = "out/{{content}}_{{style}}.png"\n'
        for p in PHOTOS))
    (folder / "images.toml").write_text(text)
    return folder / "images.toml"


def volume_plan(folder: Path) -> Path:
    for name in ("anatomical.nii", "example4d.nii.gz"):
        (folder / name).write_bytes((NIB / name).read_bytes())
    text = ('kind = "volume"\nsteps = 10\n[[product]]\ncontent = "anatomical.nii"\n'
            'style = ["example4d.nii.gz", "anatomical.nii"]\noutput = "out/{content}_{style}_{style_weight}.nii.gz"\n'
            'grid = { style_weight = [1e4, 1e5] }\n')
    (folder / "volumes.toml").write_text(text)
    return folder / "volumes.toml"


def shell_loop(plan: Path) -> tuple[float, float]:
    """Every job as its own ``nstyle`` process, one after the other: (total s, first s)."""
    start, first = time.perf_counter(), None
    (plan.parent / "out").mkdir(exist_ok=True)
    for job in read_plan(plan):
        argv = [sys.executable, "-m", "nstyle", job.kind, str(job.content), *map(str, job.styles),
                "-o", str(Path(job.output).with_name("loop_" + Path(job.output).name)), "--quiet", "--force"]
        for key, value in job.options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        subprocess.run(argv, check=True, capture_output=True)
        first = first or time.perf_counter() - start
    return time.perf_counter() - start, first or 0.0


def batched(plan: Path, workers: int) -> tuple[float, float]:
    """``nstyle.batch`` on a fresh local cluster of ``workers`` processes: (total s, first s)."""
    for p in plan.parent.glob("*.ledger.jsonl"):
        p.unlink()
    start, first = time.perf_counter(), []
    results = batch(plan, workers=workers, on_result=lambda r, c: first.append(time.perf_counter() - start))
    assert all(r.status == "done" for r in results), [r for r in results if r.status != "done"]
    return time.perf_counter() - start, first[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=("images", "volumes"), default=None)
    p.add_argument("--workers", default="1,2")
    args = p.parse_args()
    print("\n".join(header(torch.device("cpu"), torch.get_num_threads())))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plans = {"16 images": image_plan(folder), "4 volumes": volume_plan(folder)}
        for name, plan in plans.items():
            if args.only and not name.endswith(args.only):
                continue
            n = len(read_plan(plan))
            runs = [("shell loop of `nstyle` (reference)", lambda plan=plan: shell_loop(plan))]
            runs += [(f"`nstyle batch`, {w} worker(s)", lambda plan=plan, w=w: batched(plan, w))
                     for w in map(int, args.workers.split(","))]
            for label, fn in runs:
                total, first = fn()
                rows.append([name, label, f"{total:.0f} s", f"{60 * n / total:.1f}", f"{first:.1f} s"])
                print(" | ".join(rows[-1]), flush=True)
    print(markdown_table(["batch", "run", "time", "jobs/min", "first result"], rows, left=(0, 1)))


if __name__ == "__main__":
    main()
