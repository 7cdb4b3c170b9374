"""The studio's job queue: runs taken one at a time (or ``workers`` at a time) in threads,
each watched by a ``Live`` that the page's event stream reads.

A run is ``nstyle.pipeline.run`` with the kind's adapter and the settings the page chose,
exactly as the CLI calls it. Stop sets a flag the step callback turns into the engine's
own interruption (a KeyboardInterrupt), so the result is the best G so far, as after
Ctrl-C. Every few seconds the best G is saved (``best.pt``): a run cut off by a server
restart is listed as stopped and its result is finished from that file.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.engine import StepInfo
from ..errors import NStyleError
from ..kinds import MODALITIES
from ..outputs.atomic import write_atomic
from ..outputs.config import write_config
from ..pipeline import Plan, finish, run, steps_before
from ..runtime import one_line
from .forms import settings_from_form
from .frames import View, view
from .store import RunRecord, Store, write_bytes

log = logging.getLogger("nstyle.studio")

# A live frame is taken from G at most this often, and progress sent: 2 a second look live.
# Drawing them (here and in a browser on the same 2-core machine) is what a watching page
# costs the optimisation: 4.7 % of its speed at 2 frames and 4 progress events a second,
# less than the machine's noise at 2 of each (benchmarks/studio.py).
FRAME_INTERVAL = 0.5
PROGRESS_INTERVAL = 0.5
# The best G is saved for a restart this often.
CHECKPOINT_INTERVAL = 5.0
# On shutdown, how long a stopped run may take to write its result (one step, finishing, saving).
SHUTDOWN_WAIT = 30.0

Publish = Callable[[str, dict[str, Any]], None]


class StopRequested(KeyboardInterrupt):
    """Stop pressed on a page: the engine ends the run as on Ctrl-C, keeping the best G."""


class Live:
    """What a running job shows: progress, J's history, the latest G, the best G."""

    def __init__(self, record: RunRecord, settings: Any, store: Store, publish: Publish) -> None:
        self.record, self.settings, self.store, self.publish = record, settings, store, publish
        self.stop = threading.Event()
        self.beta = MODALITIES[record.kind].style_weight(settings)  # J's parts as they add up: β·J_style
        self.started = time.time()
        self.first_step: float | None = None  # loading and building the net come before it
        self.ndim = 2
        self.units: list[float] = []  # work of each scale: steps x grid points
        self.frame: torch.Tensor | None = None
        self.version = 0
        self.best_g: torch.Tensor | None = None
        self.best_total = math.inf
        self.best_scale = 0  # the engine, too, keeps the best G of the scale it is at
        # 0: the first step takes a frame, sends progress and saves the best G at once.
        self._frame_at = self._progress_at = self._checkpoint_at = 0.0

    def plan(self, plan: Plan) -> None:
        self.record.plan = [[side, steps] for side, steps in plan]
        self.record.total_steps = sum(steps for _, steps in plan)
        self.ndim = {"image": 2, "volume": 3}.get(self.record.kind, 1)
        self.units = [steps * side**self.ndim for side, steps in plan]
        self.store.save(self.record)

    def step(self, info: StepInfo, g: torch.Tensor) -> None:
        if self.stop.is_set():
            raise StopRequested()
        record = self.record
        now = record.last_step = time.time()
        if self.first_step is None:
            self.first_step = record.first_step = now
        # A scale the plateau rule ended early leaves its unused steps behind: count from the plan.
        record.steps_done = max(record.steps_done, steps_before(record.plan, info.scale)) + 1
        record.history.append(self.point(info))
        if info.scale != self.best_scale:  # J at a finer scale is not comparable: the best starts anew
            self.best_scale, self.best_total = info.scale, math.inf
        if info.total < self.best_total:
            self.best_total = info.total
            record.best = best_of(info)
            self.best_g = g.detach().clone()
        if now - self._frame_at >= FRAME_INTERVAL:
            self._frame_at = now
            self.frame = g.detach().to("cpu", copy=True)
            self.version += 1
        if now - self._checkpoint_at >= CHECKPOINT_INTERVAL:  # before a page hears of the step
            self._checkpoint_at = now
            self.checkpoint()
        if now - self._progress_at >= PROGRESS_INTERVAL:
            self._progress_at = now
            self.publish("progress", self.progress(info))

    def point(self, info: StepInfo) -> list[float]:
        """[step, J, α·J_content (+ TV), β·J_style, scale]: J's parts as they add up."""
        styled = self.beta * info.style
        return [info.step, info.total, info.total - styled, styled, info.scale]

    def finish(self, history: list[StepInfo], best: StepInfo | None) -> None:
        """The engine's own record of the run: it also measured J after each scale's last step."""
        if history:
            self.record.history = [self.point(info) for info in history]
        if best is not None:
            self.record.best = best_of(best)

    def progress(self, info: StepInfo) -> dict[str, Any]:
        record = self.record
        now = time.time()
        elapsed = now - self.started
        return {
            "id": record.id, "step": record.steps_done, "total_steps": record.total_steps, "scale": info.scale,
            "scales": len(record.plan), "side": record.plan[info.scale][0] if record.plan else None,
            "J": info.total, "J_content": info.content, "J_style": info.style, "elapsed": elapsed,
            "left": self.time_left(info.scale, now - (self.first_step or now)),
            "point": record.history[-1][:4],
        }

    def time_left(self, scale: int, elapsed: float) -> float | None:
        """Seconds left, from the pace since the first step (steps weighted by each scale's grid size)."""
        if not self.units:
            return None
        done_steps = self.record.steps_done - sum(steps for _, steps in self.record.plan[:scale])
        side, steps = self.record.plan[scale]
        done = sum(self.units[:scale]) + done_steps * side**self.ndim
        if done <= 0:
            return None
        return elapsed * (sum(self.units) - done) / done

    def checkpoint(self) -> None:
        """The best G so far and the record, for a restart (atomic writes)."""
        if self.best_g is None:
            return
        g = self.best_g.cpu()
        write_atomic(self.store.file(self.record, "best.pt"), lambda tmp: torch.save(g, tmp))
        self.store.save(self.record)


class Runner:
    """A queue of runs and ``workers`` threads taking them in order."""

    def __init__(self, store: Store, publish: Publish, workers: int = 1) -> None:
        self.store, self.publish = store, publish
        self.queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.lives: dict[str, Live] = {}
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._work, name=f"nstyle-run-{i}", daemon=True) for i in range(workers)
        ]
        self._resume()
        for t in self.threads:
            t.start()

    def _resume(self) -> None:
        """After a restart: runs that were going are stopped (their best G finished into a
        result), runs that were waiting wait again, in their order."""
        for record in sorted(self.store.runs.values(), key=lambda r: r.created):
            if record.status == "running":
                kept = self.store.file(record, "best.pt").is_file()
                record.status, record.finished = "stopped", record.finished or time.time()
                record.note = "cut off by a server restart; " + (
                    "the best G so far is kept" if kept else "it had taken no step yet")
                self.store.save(record)
                if kept:
                    self.queue.put(("recover", record.id))
            elif record.status == "queued":
                self.queue.put(("run", record.id))

    def submit(self, record: RunRecord) -> None:
        self.queue.put(("run", record.id))
        self.publish("runs", {})

    def stop(self, record: RunRecord) -> None:
        """Stop a running job (its best G becomes the result) or take a waiting one off the queue."""
        with self.lock:
            live = self.lives.get(record.id)
            if live is not None:
                live.stop.set()
            elif record.status == "queued":
                record.status, record.finished, record.note = "stopped", time.time(), "stopped before it started"
                self.store.save(record)
        self.publish("runs", {})

    def live(self, run_id: str) -> Live | None:
        with self.lock:
            return self.lives.get(run_id)

    def close(self, wait: float = SHUTDOWN_WAIT) -> None:
        """Stop the running jobs (their best G is written as on Stop) and end the threads;
        runs still waiting stay queued for the next start."""
        for _ in self.threads:
            self.queue.put(None)
        with self.lock:
            for live in self.lives.values():
                live.stop.set()
        deadline = time.time() + wait
        for t in self.threads:
            t.join(max(0.0, deadline - time.time()))

    def _work(self) -> None:
        if threading.current_thread() is self.threads[0]:
            warm_up()
        while True:
            item = self.queue.get()
            if item is None:
                return
            what, run_id = item
            try:
                record = self.store.get(run_id)
                if what == "recover":
                    self.recover(record)
                elif record.status == "queued":
                    self.execute(record)
            except Exception:  # a bug must not end the worker: log it, keep serving
                log.exception("run %s", run_id)
            self.publish("runs", {})

    def execute(self, record: RunRecord) -> None:
        """Run one queued job to its end: done, stopped (with the best G) or failed (with why)."""
        modality = MODALITIES[record.kind]
        with self.lock:
            if record.status != "queued":  # stopped while waiting
                return
            record.status, record.started = "running", time.time()
        try:
            settings = self.settings(record)  # the parent run, the uploads: still there?
            content, styles = self.inputs(record)
            live = Live(record, settings, self.store, self.publish)
            with self.lock:
                self.lives[record.id] = live
            self.store.save(record)
            self.publish("runs", {})
            result = run(modality, content, styles if len(styles) > 1 else styles[0], settings,
                         callback=live.step, on_plan=live.plan)
            live.finish(result.history, result.best)
            self.write_result(record, result, settings)
            record.status = "stopped" if result.interrupted else "done"
            if result.interrupted:
                record.note = "stopped; the best G so far is the result"
        except StopRequested:  # stopped before the first step (e.g. while loading)
            record.status, record.note = "stopped", "stopped before the first step"
        except NStyleError as e:
            record.status, record.error = "failed", self.client_names(record, one_line(str(e)))
        except (MemoryError, torch.OutOfMemoryError):
            record.status, record.error = "failed", "ran out of memory; lower the size"
        except Exception as e:
            log.exception("run %s failed", record.id)
            record.status, record.error = "failed", f"internal error: {one_line(str(e), 200)}"
        finally:
            with self.lock:
                self.lives.pop(record.id, None)
            record.finished = time.time()
            self.store.file(record, "best.pt").unlink(missing_ok=True)
            self.store.save(record)

    def settings(self, record: RunRecord) -> Any:
        server: dict[str, Any] = {}
        if record.parent is not None:  # continue from another run's result
            parent = self.store.get(record.parent)
            server["init"] = str(self.store.file(parent, parent.result or ""))
        return settings_from_form(record.kind, record.settings, server)

    def client_names(self, record: RunRecord, message: str) -> str:
        """``message`` with the server's paths of the run's inputs replaced by their names on
        the page (a page is not told where the server keeps files)."""
        for upload_id in {record.content, *record.styles}:
            try:
                message = message.replace(str(self.store.upload_path(upload_id)), self.store.upload(upload_id).name)
            except NStyleError:  # an upload gone from the data folder: its id is in the message already
                pass
        return message

    def inputs(self, record: RunRecord) -> tuple[str, list[str]]:
        return str(self.store.upload_path(record.content)), [str(self.store.upload_path(s)) for s in record.styles]

    def write_result(self, record: RunRecord, result: Any, settings: Any) -> None:
        """The result in the content's format, its preview and the run's TOML config."""
        content, styles = self.inputs(record)
        name = "result" + result_extension(record.kind, content)
        path = self.store.file(record, name)
        result.save(path)
        record.result = name
        record.options = {k: v for k, v in result.options.items() if isinstance(v, (int, float, str, bool))}
        self.write_preview(record, result.tensor, settings)
        # No output: `nstyle KIND --config run.toml -o NEW` must not write over this result.
        options = {"content": content, "style": styles, **settings.as_dict()}
        write_config(self.store.file(record, "run.toml"), options, record.kind)

    def write_preview(self, record: RunRecord, tensor: torch.Tensor, settings: Any) -> None:
        shown: View = view(record.kind, tensor, settings, live=False)
        data = shown.data if isinstance(shown.data, bytes) else json.dumps(shown.data).encode()
        name = "preview.png" if isinstance(shown.data, bytes) else "preview.json"
        write_bytes(self.store.file(record, name), data)

    def recover(self, record: RunRecord) -> None:
        """Finish a cut-off run's best G (saved before the restart) into its result."""
        best = self.store.file(record, "best.pt")
        try:
            modality = MODALITIES[record.kind]
            settings = self.settings(record)
            content, styles = self.inputs(record)
            g = torch.load(best, map_location="cpu", weights_only=True)
            signals = modality.load(content, styles, settings, torch.device("cpu"))
            final = finish(modality, g, signals, settings)
            result = modality.result_type(final, [], int(record.best["step"]) if record.best else 0, True,
                                          settings.as_dict(), modality, signals.meta, [])
            self.write_result(record, result, settings)
        except Exception as e:  # the record stays stopped, without a result file
            log.exception("recovering run %s", record.id)
            record.error = f"its best G could not be recovered: {one_line(str(e), 200)}"
        best.unlink(missing_ok=True)
        self.store.save(record)


def best_of(info: StepInfo) -> dict[str, float]:
    return {"step": info.step, "total": info.total, "content": info.content, "style": info.style}


def warm_up() -> None:
    """Pay once, at start, what the first Start would otherwise wait for: building the default
    image net (2-3 s on a CPU; nets are cached per process) and torch.optim's first optimiser,
    which imports torch._dynamo (another 2 s)."""
    try:
        from ..nets import build_net

        torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
        build_net("vgg16")
    except Exception:  # the run itself will say what is wrong
        log.exception("building the default net")


def result_extension(kind: str, content: str) -> str:
    """The result's file type: PNG, WAV, the series' own format, NIfTI (or .npy for .npy)."""
    suffix = "".join(Path(content).suffixes[-2:]).lower() if content.lower().endswith(".nii.gz") else (
        Path(content).suffix.lower())
    if kind == "image":
        return ".png"
    if kind == "audio":
        return ".wav"
    if kind == "series":
        return suffix if suffix in (".csv", ".npy", ".dcm") else ".csv"
    return ".npy" if suffix == ".npy" else ".nii.gz"
