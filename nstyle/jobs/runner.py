"""``batch``: read a plan, skip what is done, run the rest on Dask, write and record each result.

With no scheduler, a ``LocalCluster`` of worker *processes* runs on this machine; given
one (``scheduler="tcp://host:8786"`` or the ``DASK_SCHEDULER_ADDRESS`` convention), the
jobs go to that cluster. Workers need no shared file system: the client reads every
input once, scatters its bytes to the cluster (shared by every job that uses it), and
writes the results the workers send back, atomically, beside the plan's outputs. With
``shared=True`` workers read the inputs from their paths instead.

Threads: one job at a time per worker, and torch threads per job = the host's cores /
the workers on that host, so workers × threads never exceed the cores. The local default
is ``default_workers()``: one single-threaded worker per core, as long as each has 3 GiB
of memory. On this project's 2-core machine two 1-thread workers did 15.0 small image
jobs a minute against 11.7 for one 2-thread worker (and 9.4 against 8.7 volumes): two
jobs side by side use the cores better than one job's threads do
(benchmarks/bench_batch.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import NStyleError
from ..options import SETTINGS
from ..outputs.atomic import check_writable, write_atomic, write_folder_atomic
from ..outputs.guard import check_replaceable_folder, check_run_paths
from ..resources import physical_memory
from ..runtime import one_line
from ..validators import NAMED_INITS, check_input_file
from . import task
from .ledger import JobResult, append, file_digest, ledger_path, read_ledger, settings_hash
from .plan import FILE_OPTIONS, Job, read_plan

#: How often a job whose worker died (with it, maybe, the job's inputs) is sent again.
#: Dask itself retries a task on another worker; this covers the inputs the dead worker held.
RESUBMITS = 3
#: Memory one local worker is given room for: a network, a 512 px run's activations, its inputs.
WORKER_MEMORY = 3 * 2**30


def default_workers(cores: int | None = None, memory: int | None = None) -> tuple[int, int]:
    """(workers, torch threads each) for a local batch: one per core, 3 GiB each at least."""
    cores = cores or os.cpu_count() or 1
    memory = memory or physical_memory()
    workers = max(1, min(cores, memory // WORKER_MEMORY))
    return workers, max(1, cores // workers)


@dataclass
class Prepared:
    """A job with what the workers need: its spec, its inputs' names and paths, its hash."""

    job: Job
    spec: dict[str, Any]
    inputs: dict[str, Path] = field(default_factory=dict)
    hash: str = ""
    error: str | None = None


def _input_name(path: Path, digest: str) -> str:
    return f"{digest[:16]}_{path.name.rstrip('/') or 'input'}"


def prepare(job: Job, version: str) -> Prepared:
    """Validate, check the inputs and the output, and hash the job (a bad input: ``error``)."""
    settings = SETTINGS[job.kind].from_options(job.options).validate()
    files = {"content": job.content, **{f"style {i + 1}": s for i, s in enumerate(job.styles)}}
    for key in FILE_OPTIONS:
        value = job.options.get(key)
        if isinstance(value, str) and not (key == "init" and value in NAMED_INITS):
            files[key] = Path(value)
    item = Prepared(job, {})
    try:
        for what, path in files.items():
            check_input_file(path, what, folder_ok=True)
        check_run_paths([("output", job.output_path)], list(files.items()))
        digests = {what: file_digest(path) for what, path in files.items()}
    except NStyleError as e:
        item.error = one_line(str(e))
        return item
    names = {what: _input_name(path, digests[what]) for what, path in files.items()}
    item.inputs = {names[what]: files[what] for what in files}
    item.hash = settings_hash(job, settings.as_dict(), digests, version)
    item.spec = {
        "kind": job.kind, "content": names["content"],
        "styles": [names[f"style {i + 1}"] for i in range(len(job.styles))],
        "options": {k: names.get(k, v) if k in FILE_OPTIONS else v for k, v in job.options.items()},
        "file_options": [k for k in FILE_OPTIONS if k in names], "output_name": job.output_path.name,
        "output_is_folder": job.output.endswith("/"), "device": settings.device,
        "sources": {names[what]: str(path) for what, path in files.items()},
    }
    return item


def _payload(path: Path, shared: bool) -> task.Payload:
    return str(path.resolve()) if shared else task.read_payload(path)


def _write(job: Job, data: bytes | dict[str, bytes]) -> None:
    """The output, atomically, in the plan's place (its folder made if missing)."""
    path = job.output_path
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        check_replaceable_folder(path, tuple({Path(name).suffix.lower() for name in data} - {""}))
        write_folder_atomic(path, data)
    else:
        check_writable(path)

        def save(tmp: Path) -> None:
            tmp.write_bytes(data)

        write_atomic(path, save)


def _connect(scheduler: str | None, workers: int | None, threads: int | None) -> tuple[Any, Any, Any]:
    """(client, cluster or None, torch threads per job: a number, or {host: workers there})."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise NStyleError("nstyle batch needs Dask distributed: pip install 'nstyle[batch]'") from None
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise NStyleError(f"cannot reach the Dask scheduler at {scheduler} ({one_line(str(e), 120)})") from None
        if threads:
            return client, None, threads
        hosts: dict[str, int] = {}
        for address in client.scheduler_info()["workers"]:
            host = urlparse(address).hostname or address
            hosts[host] = hosts.get(host, 0) + 1
        return client, None, hosts
    n, each = default_workers()
    n = workers or n
    each = threads or max(1, (os.cpu_count() or 1) // n)
    # Dask's own logs (a worker's heartbeat failing while the cluster shuts down) would
    # interleave with the batch's report; errors that matter reach us as job results.
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, silence_logs=logging.CRITICAL,
                           dashboard_address=":0" if importlib.util.find_spec("bokeh") else None)
    return Client(cluster), cluster, each


def batch(
    plan: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    shared: bool = False,
    on_result: Callable[[JobResult, dict[str, int]], None] | None = None,
    on_start: Callable[[int, Any], None] | None = None,
) -> list[JobResult]:
    """Run every job of the plan file ``plan`` that is not already done; a table of results
    in the plan's order (status done, failed, skipped or cancelled).

    ``scheduler``: a Dask scheduler address (default ``DASK_SCHEDULER_ADDRESS``, else a
    local cluster of ``workers`` processes); ``threads``: torch threads per job; ``shared``:
    workers read inputs from their paths (a shared file system) instead of receiving bytes.
    ``on_start(pending, client)`` once the cluster is up; ``on_result(result, counts)``
    after each finished job. Ctrl-C cancels what is running; finished jobs stay recorded.
    """
    from .. import __version__

    plan = Path(plan)
    jobs = read_plan(plan)
    ledger = ledger_path(plan)
    done_before = read_ledger(ledger)
    results: dict[int, JobResult] = {}
    pending: list[tuple[int, Prepared]] = []
    for i, job in enumerate(jobs):
        item = prepare(job, __version__)
        last = done_before.get(job.name)
        same = last is not None and last.hash == item.hash
        if item.error is not None:
            results[i] = JobResult(job.name, "failed", "", error=item.error, refused=True)
            if not (same and last is not None and last.error == item.error):
                append(ledger, results[i])
            if on_result is not None:
                on_result(results[i], {"done": 0, "failed": 1, "running": 0})
        elif same and last is not None and last.status == "done" and os.path.lexists(job.output_path):
            results[i] = JobResult(job.name, "skipped", item.hash, last.j, last.seconds, last.worker)
        elif same and last is not None and last.status == "failed" and last.refused:
            results[i] = last  # refused before, unchanged since: refused again without a worker
        else:
            pending.append((i, item))
    if pending:
        _run(pending, results, ledger, scheduler, workers, threads, shared, on_result, on_start)
    return [results.get(i, JobResult(job.name, "cancelled", "")) for i, job in enumerate(jobs)]


def _run(
    pending: Sequence[tuple[int, Prepared]], results: dict[int, JobResult], ledger: Path, scheduler: str | None,
    workers: int | None, threads: int | None, shared: bool,
    on_result: Callable[[JobResult, dict[str, int]], None] | None, on_start: Callable[[int, Any], None] | None,
) -> None:
    from distributed import as_completed

    client, cluster, torch_threads = _connect(scheduler, workers, threads)
    futures: dict[Any, tuple[int, Prepared]] = {}
    try:
        if on_start is not None:
            on_start(len(pending), client)
        # Each input goes to the cluster once, whatever number of jobs use it, before any job
        # starts. A job sent again (its worker died, maybe with those inputs) carries its
        # inputs itself: the scheduler then holds them until the job is done.
        scattered = {name: client.scatter(_payload(path, shared), hash=False)
                     for name, path in {n: p for _, item in pending for n, p in item.inputs.items()}.items()}

        def submit(i: int, item: Prepared, attempt: int = 0) -> Any:
            inputs = {n: scattered[n] if attempt == 0 else _payload(p, shared) for n, p in item.inputs.items()}
            resources = {"GPU": 1} if str(item.spec["device"]).startswith("cuda") else None
            future = client.submit(
                task.run_job, item.spec, inputs, torch_threads,
                key=f"nstyle-{item.hash}-{i}-{attempt}", pure=False, resources=resources,
            )
            futures[future] = (i, item)
            return future

        queue = as_completed([submit(i, item) for i, item in pending])
        attempts: dict[int, int] = {}
        counts = {"done": 0, "failed": 0, "running": len(pending)}
        for future in queue:
            i, item = futures.pop(future)
            if future.status != "finished" and attempts.get(i, 0) < RESUBMITS:
                # the job's worker died, or took the job's inputs with it: send it again
                attempts[i] = attempts.get(i, 0) + 1
                queue.add(submit(i, item, attempts[i]))
                continue
            results[i] = _finish(item, future)
            append(ledger, results[i])
            counts[results[i].status] += 1
            counts["running"] -= 1
            if on_result is not None:
                on_result(results[i], counts)
    finally:
        for future in list(futures):
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def _finish(item: Prepared, future: Any) -> JobResult:
    """The job's record, its output written if it succeeded."""
    job = item.job
    try:
        out = future.result()
    except Exception as e:  # noqa: BLE001 -- e.g. KilledWorker after too many worker deaths
        return JobResult(job.name, "failed", item.hash, error=one_line(f"{type(e).__name__}: {e}"))
    if out["status"] == "done":
        try:
            _write(job, out["data"])
        except NStyleError as e:
            return JobResult(job.name, "failed", item.hash, error=one_line(str(e)))
    return JobResult(job.name, out["status"], item.hash, out.get("j"), out.get("seconds"), out.get("worker"),
                     out.get("error"), bool(out.get("refused")))
