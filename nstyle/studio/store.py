"""The studio's data directory: uploads and runs as plain files, listed again after a restart.

    DATA/uploads/<id><ext>       a file a page sent; the name is made here, never the client's
    DATA/uploads/<id>.json       its kind, the name it had on the client (shown only), its shape
    DATA/runs/<id>/run.json      a run's record: kind, inputs, settings, status, J's history
    DATA/runs/<id>/result<ext>   the result, in the content's format
    DATA/runs/<id>/run.toml      `nstyle --config run.toml -o again.png` repeats the run
    DATA/runs/<id>/preview.png   the result as the page shows it (mid-slices, spectrogram, ...)
    DATA/runs/<id>/best.pt       while a run goes: its best G so far, so a restart keeps it

Nothing outside DATA is read or written; ids are 16 hex digits made by ``new_id``, and a
path is only ever built from an id that matched that form.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import NStyleError
from ..outputs.atomic import write_atomic

ID = re.compile(r"[0-9a-f]{16}")
STATUSES = ("queued", "running", "done", "stopped", "failed")
FINISHED = ("done", "stopped", "failed")
# File types a page may send, per kind (the CLI's readers take these).
EXTENSIONS = {
    "image": (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"),
    "audio": (".wav", ".flac", ".ogg", ".oga"),
    "series": (".csv", ".tsv", ".txt", ".npy", ".dcm"),
    "volume": (".nii.gz", ".nii", ".npy", ".dcm"),
}


def new_id() -> str:
    return secrets.token_hex(8)


def check_id(value: str, what: str = "run") -> str:
    """``value`` if it is an id this server could have made, else NotFound naming it."""
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise NotFound(f"no {what} {value!r}")
    return value


class NotFound(NStyleError):
    """An unknown run or upload id."""


def extension_of(name: str, kind: str) -> str:
    """The file type of a client's file name among the kind's readable ones (lower case)."""
    lower = name.lower()
    for ext in EXTENSIONS[kind]:
        if lower.endswith(ext):
            return ext
    raise NStyleError(f"{display_name(name)}: not a file type nstyle reads as {kind} "
                      f"({', '.join(EXTENSIONS[kind])})")


def display_name(name: str) -> str:
    """A client's file name for showing only: its last part, printable, at most 80 characters."""
    last = re.split(r"[\\/]", str(name))[-1]
    clean = "".join(ch for ch in last if ch.isprintable())
    return clean[:80] or "file"


@dataclass
class Upload:
    id: str
    kind: str
    name: str  # as the client called it: shown, never used as a path
    ext: str
    bytes: int
    shape: list[int] = field(default_factory=list)
    sample: str | None = None


@dataclass
class RunRecord:
    """What the page lists and what survives a restart."""

    id: str
    kind: str
    content: str  # upload ids
    styles: list[str]
    settings: dict[str, Any]  # the options given (the rest are the defaults)
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    first_step: float | None = None  # when the first step ended (loading and the net come before it)
    last_step: float | None = None  # and the last one (saving the result comes after it)
    finished: float | None = None
    error: str | None = None
    note: str | None = None
    parent: str | None = None  # the run whose result this one started from
    result: str | None = None  # file name in the run's folder
    plan: list[list[int]] = field(default_factory=list)
    steps_done: int = 0
    total_steps: int = 0
    best: dict[str, float] | None = None
    # [step, J, α·J_content (+ TV), β·J_style, scale]: the parts as they add up to J
    history: list[list[float]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # every option the run used (α, β, ...)

    def summary(self) -> dict[str, Any]:
        """The record without its history (what the list of runs needs)."""
        out = asdict(self)
        out.pop("history")
        return out


class Store:
    """Uploads and runs under one folder; safe to use from several threads."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uploads = self.root / "uploads"
        self.runs_dir = self.root / "runs"
        try:
            self.uploads.mkdir(parents=True, exist_ok=True)
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NStyleError(f"{self.root}: cannot use it as the studio's data folder ({e.strerror or e})") from None
        self.lock = threading.RLock()
        self.runs: dict[str, RunRecord] = {}
        self._load_runs()

    # ------------------------------------------------------------------ uploads

    def upload_path(self, upload_id: str) -> Path:
        meta = self.upload(upload_id)
        return self.uploads / f"{meta.id}{meta.ext}"

    def upload(self, upload_id: str) -> Upload:
        check_id(upload_id, "upload")
        path = self.uploads / f"{upload_id}.json"
        if not path.is_file():
            raise NotFound(f"no upload {upload_id!r}")
        return Upload(**json.loads(path.read_text()))

    def add_upload(self, upload: Upload) -> Upload:
        write_json(self.uploads / f"{upload.id}.json", asdict(upload))
        return upload

    # ------------------------------------------------------------------ runs

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / check_id(run_id)

    def get(self, run_id: str) -> RunRecord:
        with self.lock:
            record = self.runs.get(check_id(run_id))
        if record is None:
            raise NotFound(f"no run {run_id!r}")
        return record

    def add(self, record: RunRecord) -> RunRecord:
        with self.lock:
            self.run_dir(record.id).mkdir(parents=True, exist_ok=False)
            self.runs[record.id] = record
            self.save(record)
        return record

    def save(self, record: RunRecord) -> None:
        with self.lock:
            write_json(self.run_dir(record.id) / "run.json", asdict(record))

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.summary() for r in sorted(self.runs.values(), key=lambda r: r.created)]

    def file(self, record: RunRecord, name: str) -> Path:
        return self.run_dir(record.id) / name

    def _load_runs(self) -> None:
        known = {f.name for f in fields(RunRecord)}
        for folder in sorted(self.runs_dir.iterdir()):
            path = folder / "run.json"
            if not ID.fullmatch(folder.name) or not path.is_file():
                continue
            try:
                data = json.loads(path.read_text())
                record = RunRecord(**{k: v for k, v in data.items() if k in known})
            except (ValueError, TypeError):
                continue  # a record this version cannot read: left on disk, not listed
            self.runs[record.id] = record


def write_json(path: Path, data: Any) -> None:
    payload = json.dumps(data, indent=1, default=str, allow_nan=False).encode()
    write_bytes(path, payload)


def write_bytes(path: Path, payload: bytes) -> Path:
    """``payload`` as the whole of ``path``, atomically (temp file + rename)."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(payload)

    return write_atomic(path, write)
