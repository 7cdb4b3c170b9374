"""What a worker runs for one job: the inputs arrive as bytes (or as paths on a shared
file system), the result goes back as bytes; the worker writes nothing that outlives it.

The network is built once per worker process (``nstyle.nets`` caches it) and reused by
every job that worker runs. A bad input is a *result* (``failed`` with nstyle's one-line
error), not an exception, so Dask does not retry it; a worker that dies mid-job raises
nothing here, and Dask reruns the job on another worker.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Union

#: A shipped input: a file's bytes, a folder's {name: bytes}, or a path all workers can read.
Payload = Union[bytes, dict[str, bytes], str]


def _materialise(folder: Path, name: str, payload: Payload) -> str:
    """Write a shipped input under ``folder`` with its own name (readers go by extension)."""
    if isinstance(payload, str):  # a shared file system: read in place
        return payload
    target = folder / name
    if isinstance(payload, dict):
        target.mkdir()
        for file_name, data in payload.items():
            (target / file_name).write_bytes(data)
    else:
        target.write_bytes(payload)
    return str(target)


def read_payload(path: Path) -> bytes | dict[str, bytes]:
    """A file's bytes, or a folder's files as {name: bytes}: what travels between client and worker."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
    return path.read_bytes()


def _threads(threads: int | dict[str, int] | None) -> int | None:
    """Torch threads for this job: a number, or the host's cores / workers on this host."""
    if not isinstance(threads, dict):
        return threads
    from urllib.parse import urlparse

    from distributed import get_worker

    host = urlparse(get_worker().address).hostname or ""
    return max(1, (os.cpu_count() or 1) // max(1, threads.get(host, 1)))


def run_job(
    spec: dict[str, Any], inputs: dict[str, Payload], threads: int | dict[str, int] | None = None
) -> dict[str, Any]:
    """Run one job. ``spec``: kind, options, the input names of content, styles and file
    options, and the output's file name; ``inputs``: {name: payload}. Returns status,
    J, seconds, worker, and the output's bytes (or a folder's {name: bytes}) or the error."""
    import torch

    from ..errors import NStyleError
    from ..kinds import MODALITIES
    from ..options import SETTINGS
    from ..pipeline import run
    from ..runtime import one_line

    n = _threads(threads)
    if n:
        torch.set_num_threads(n)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nstyle-job-") as tmp:
        folder = Path(tmp)
        names = {name: _materialise(folder, name, payload) for name, payload in inputs.items()}
        try:
            options = {k: names.get(v, v) if k in spec["file_options"] else v for k, v in spec["options"].items()}
            settings = SETTINGS[spec["kind"]].from_options(options)
            styles = [names[s] for s in spec["styles"]]
            result = run(MODALITIES[spec["kind"]], names[spec["content"]], styles if len(styles) > 1 else styles[0],
                         settings)
            out = folder / "out" / spec["output_name"]
            out.parent.mkdir()
            result.save(str(out) + ("/" if spec["output_is_folder"] else ""))
            best = result.best
            return {"status": "done", "j": best.total if best else None, "seconds": time.perf_counter() - start,
                    "worker": worker, "data": read_payload(out)}
        except NStyleError as e:
            message = str(e)
            for name, source in spec.get("sources", {}).items():  # the user's names, not the worker's copies
                message = message.replace(names.get(name, name), source)
            return {"status": "failed", "error": one_line(message), "seconds": time.perf_counter() - start,
                    "worker": worker, "refused": True}
        except Exception as e:  # noqa: BLE001 -- one job's bug must not end the batch; it is recorded
            return {"status": "failed", "error": one_line(f"internal error: {type(e).__name__}: {e}"),
                    "seconds": time.perf_counter() - start, "worker": worker}
