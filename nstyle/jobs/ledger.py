"""The ledger of a batch: one JSON line per finished job, appended as each job ends.

A record holds the job's output, its settings hash (the kind, every validated option,
the bytes of every input and nstyle's version), its status (``done`` or ``failed``),
the best J, the seconds it took, the worker and, for a failure, the one-line error.
Rerunning a plan skips a job whose last record is ``done`` with the same hash while its
output still exists, and one whose input was refused (same hash: it would be refused
again); everything else (changed settings or inputs, a lost output, a worker that died,
an internal error) runs again. Lines are appended and flushed one at
a time, so a batch stopped at any moment (Ctrl-C, a crash) keeps every finished job.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .plan import Job


@dataclass
class JobResult:
    """One row of a batch's result table (and of its ledger)."""

    output: str
    status: str  # done, failed, skipped (done before, same settings), or cancelled
    hash: str
    j: float | None = None
    seconds: float | None = None
    worker: str | None = None
    error: str | None = None
    #: A refusal of the job's own input or settings (nstyle's one-line error): the same
    #: inputs would be refused again, so a rerun does not resubmit it until its hash changes.
    refused: bool = False


def ledger_path(plan: Path) -> Path:
    """``PLAN.ledger.jsonl`` beside the plan."""
    return plan.with_name(plan.stem + ".ledger.jsonl")


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes, sorted)."""
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.iterdir() if q.is_file()):
            h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    else:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def settings_hash(job: Job, options: Mapping[str, Any], inputs: Mapping[str, str], version: str) -> str:
    """What decides a job's result: kind, validated options, input digests, nstyle's version."""
    text = json.dumps(
        {"kind": job.kind, "options": {k: repr(v) for k, v in sorted(options.items())},
         "inputs": dict(sorted(inputs.items())), "version": version},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_ledger(path: Path) -> dict[str, JobResult]:
    """The last record of each output (a damaged line, from a crash mid-write, is skipped)."""
    last: dict[str, JobResult] = {}
    if not path.is_file():
        return last
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = JobResult(**json.loads(line))
        except (ValueError, TypeError):
            continue
        last[record.output] = record
    return last


def append(path: Path, result: JobResult) -> None:
    """Add one record, on disk before this returns."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(result)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def records(path: Path) -> Iterator[JobResult]:
    """Every record, in order (for reports and tests)."""
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            yield JobResult(**json.loads(line))
        except (ValueError, TypeError):
            continue
