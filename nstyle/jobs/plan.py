"""A batch plan: many runs described in one TOML or CSV file.

TOML: top-level keys are settings shared by every job (``kind`` and any option of that
kind); ``[[job]]`` tables are explicit runs; ``[[product]]`` tables expand a glob of
contents × a list of styles × an option grid into runs, named by an output pattern::

    kind = "image"
    size = 256
    steps = 100

    [[job]]
    content = "photos/harbour.jpg"
    style = "styles/starry.jpg"            # or a list of styles
    output = "out/harbour_starry.png"
    style_weight = 1e5                      # overrides the shared value

    [[product]]
    content = "photos/*.jpg"                # a glob
    style = ["styles/starry.jpg", "styles/scream.jpg"]
    output = "out/{content}_{style}_{style_weight}.png"
    grid = { style_weight = [1e4, 1e5] }

CSV: a header row with ``kind, content, style, output`` and any option as a column; an
empty cell leaves the option at its default; several styles are separated by ``;``.

File names are relative to the plan's folder. Placeholders of an output pattern:
``{content}`` and ``{style}`` (file stems; several styles joined by ``+``), ``{kind}``,
``{index}`` and every option of the grid. Every job's settings are validated when the plan
is read, so a typo stops the batch before anything runs; a bad *input file* fails only
its own job, when it runs.
"""

from __future__ import annotations

import csv
import glob
import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import NStyleError
from ..options import SETTINGS
from ..outputs.config import read_config
from ..validators import check_input_file

#: Keys of a job or product that are not options of the run.
JOB_KEYS = ("kind", "content", "style", "output", "grid")
#: Options whose values name files (shipped to the workers with the job).
FILE_OPTIONS = ("mask", "weights", "init")


@dataclass
class Job:
    """One run of a batch: what to restyle, with what, into which file, with which options."""

    kind: str
    content: Path
    styles: list[Path]
    output: str  # the plan's name joined to the plan's folder (a trailing "/" asks a volume for a DICOM folder)
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the output as the plan names it (relative to the plan): the key of its ledger records

    @property
    def output_path(self) -> Path:
        return Path(self.output)


def read_plan(path: str | Path) -> list[Job]:
    """The jobs of the plan file ``path`` (.toml or .csv), validated; NStyleError naming
    the plan and the job for anything wrong in it."""
    path = check_input_file(path, "plan file")
    if path.suffix.lower() == ".csv":
        jobs = _csv_jobs(path)
    elif path.suffix.lower() == ".toml":
        jobs = _toml_jobs(path)
    else:
        raise NStyleError(f"{path}: a plan is a .toml or .csv file")
    if not jobs:
        raise NStyleError(f"{path}: the plan has no jobs ([[job]] or [[product]] tables, or CSV rows)")
    inputs = {str(p.resolve()) for job in jobs for p in (job.content, *job.styles)}
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if str(job.output_path.resolve()) in inputs:
            raise NStyleError(f"{path}: job {i + 1} would write {job.name}, which is an input of the plan")
        key = str(job.output_path.resolve())
        if key in seen:
            raise NStyleError(f"{path}: jobs {seen[key] + 1} and {i + 1} both write {job.name}")
        seen[key] = i
        _validate(path, i, job)
    return jobs


def _validate(plan: Path, index: int, job: Job) -> None:
    if job.kind not in SETTINGS:
        raise NStyleError(f"{plan}: job {index + 1}: unknown kind {job.kind!r}; choose {', '.join(SETTINGS)}")
    try:
        SETTINGS[job.kind].from_options(job.options).validate()
    except NStyleError as e:
        raise NStyleError(f"{plan}: job {index + 1} ({job.name}): {e}") from None


def _toml_jobs(path: Path) -> list[Job]:
    data = read_config(path)
    shared = {k: v for k, v in data.items() if k not in ("job", "product", "command")}
    known = {f.name for cls in SETTINGS.values() for f in fields(cls)} | {"kind"}
    unknown = sorted(set(shared) - known)
    if unknown:
        raise NStyleError(f"{path}: {unknown[0]!r} is not an option of any kind")
    tables = [("job", t) for t in _tables(path, data, "job")] + [("product", t) for t in _tables(path, data, "product")]
    jobs: list[Job] = []
    for what, table in tables:
        kind = str(table.get("kind", shared.get("kind", "image")))
        # a shared setting applies to the jobs whose kind has it (size: images, rate: sounds)
        own = {f.name for f in fields(SETTINGS[kind])} if kind in SETTINGS else set(shared)
        entry = {**{k: v for k, v in shared.items() if k in own or k == "kind"}, **table}
        jobs += _expand(path, entry) if what == "product" else [_job(path, entry)]
    return jobs


def _tables(path: Path, data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    tables = data.get(name, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise NStyleError(f"{path}: {name} entries must be [[{name}]] tables")
    return tables


def _files(plan: Path, value: Any, what: str) -> list[Path]:
    """File names relative to the plan's folder (a glob for a product's content)."""
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise NStyleError(f"{plan}: {what} must be a file name or a list of them, got {value!r}")
    return [plan.parent / n for n in names]


def _job(plan: Path, entry: dict[str, Any]) -> Job:
    for key in ("content", "style", "output"):
        if key not in entry:
            raise NStyleError(f"{plan}: a job without {key}: {entry}")
    kind = str(entry.get("kind", "image"))
    options = {k: v for k, v in entry.items() if k not in JOB_KEYS}
    output = str(entry["output"])
    return Job(kind, _files(plan, entry["content"], "content")[0], _files(plan, entry["style"], "style"),
               _relative(plan, output), _options(plan, options), output)


def _relative(plan: Path, name: str) -> str:
    folder = "/" if name.endswith("/") else ""
    return str(plan.parent / name) + folder


def _options(plan: Path, options: dict[str, Any]) -> dict[str, Any]:
    """File-naming options (mask, weights, an init image) made relative to the plan."""
    out = dict(options)
    for key in FILE_OPTIONS:
        value = out.get(key)
        if isinstance(value, str) and value and not (key == "init" and value in ("noise", "content", "style")):
            out[key] = str(plan.parent / value)
    return out


def _expand(plan: Path, entry: dict[str, Any]) -> list[Job]:
    """A product: every content of the glob × every style × every point of the grid."""
    for key in ("content", "style", "output"):
        if key not in entry:
            raise NStyleError(f"{plan}: a product without {key}")
    pattern = str(plan.parent / str(entry["content"]))
    contents = sorted(Path(p) for p in glob.glob(pattern))
    if not contents:
        raise NStyleError(f"{plan}: no file matches the content glob {entry['content']!r}")
    styles = _files(plan, entry["style"], "style")
    grid = entry.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise NStyleError(f"{plan}: grid must be a table of lists, e.g. grid = {{ style_weight = [1e4, 1e5] }}")
    kind = str(entry.get("kind", "image"))
    base = {k: v for k, v in entry.items() if k not in JOB_KEYS}
    jobs: list[Job] = []
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    for content, style, point in itertools.product(contents, styles, points):
        fields = {"content": content.stem, "style": style.stem, "kind": kind, "index": len(jobs) + 1,
                  **{k: _shown(v) for k, v in point.items()}}
        try:
            output = str(entry["output"]).format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise NStyleError(f"{plan}: output pattern {entry['output']!r}: unknown placeholder {e}") from None
        jobs.append(Job(kind, content, [style], _relative(plan, output), _options(plan, {**base, **point}), output))
    return jobs


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _csv_jobs(path: Path) -> list[Job]:
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as e:
        raise NStyleError(f"{path}: not a readable CSV plan ({e})") from None
    jobs = []
    for row in rows:
        entry = {k.strip(): _cell(v) for k, v in row.items() if k and v is not None and v.strip() != ""}
        if "style" in entry:
            entry["style"] = [s.strip() for s in str(entry["style"]).split(";") if s.strip()]
        jobs.append(_job(path, entry))
    return jobs


def _cell(text: str) -> Any:
    """A CSV cell as the option's value: a whole number, a number, true/false, or text."""
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
