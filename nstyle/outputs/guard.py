"""What a run may write: never over an input, never one output over another, all or nothing.

A careless ``-o photo.png`` that names the content, a hard link or a symlink to a style,
a ``--plot`` that names the result: each would silently destroy a file the user had.
``check_run_paths`` refuses them before any work (an input may be replaced only with
``--overwrite-input``; a folder output holding an input never). ``all_or_nothing``
removes the outputs a failed or interrupted run had already created, so a run either
leaves every output it promised or nothing new.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import NStyleError

#: Written into every DICOM slice folder nstyle makes: only such a folder may be replaced.
OUTPUT_MARKER = ".nstyle-output"

Named = tuple[str, Path]


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once symlinks are resolved,
    or (both existing) the same inode, which also catches hard links."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def check_run_paths(outputs: Sequence[Named], inputs: Sequence[Named], overwrite_input: bool = False) -> None:
    """Refuse outputs that name one another or an input (``overwrite_input`` allows the
    latter for files; an output folder that holds an input is always refused)."""
    for i, (what, out) in enumerate(outputs):
        for other_what, other in outputs[:i]:
            if same_file(out, other):
                raise NStyleError(f"{out}: the {what} would overwrite the {other_what} ({other}); give another name")
        for in_what, source in inputs:
            if _inside(source, out):
                raise NStyleError(f"{out}: the {what} folder holds the {in_what} {source}; give a new folder")
            if same_file(out, source) and not overwrite_input:
                raise NStyleError(
                    f"{out}: the {what} would overwrite the {in_what} {source}; give another name "
                    "(or --overwrite-input to replace it on purpose)"
                )


def input_paths(content: object, styles: Sequence[object], **others: object) -> list[Named]:
    """The inputs of a run that are files or folders (arrays and images in memory are not)."""
    named: list[Named] = []
    style_names = ["style"] if len(styles) == 1 else [f"style {i + 1}" for i in range(len(styles))]
    for what, value in [("content", content), *zip(style_names, styles), *others.items()]:
        if isinstance(value, (str, os.PathLike)) and str(value):
            named.append((what.replace("_", " "), Path(value)))
    return named


def check_replaceable_folder(path: Path, extensions: Sequence[str]) -> None:
    """A folder output (DICOM slices, video frames) may be written where nothing is, into an
    empty folder, or over a folder nstyle wrote before (it holds ``OUTPUT_MARKER`` and files
    of ``extensions`` only): replacing any other folder would delete files nstyle did not write."""
    if path.exists() and not path.is_dir():
        raise NStyleError(f"{path}: exists and is not a folder")
    if not path.is_dir():
        return
    names = [p.name for p in path.iterdir()]
    if not names:
        return
    if OUTPUT_MARKER not in names:
        raise NStyleError(f"{path}: folder is not empty and was not written by nstyle; give a new or empty folder")
    others = [n for n in names if n != OUTPUT_MARKER and Path(n).suffix.lower() not in extensions]
    if others:
        raise NStyleError(f"{path}: folder holds other files than nstyle's output ({others[0]}); give a new folder")


@contextmanager
def all_or_nothing(paths: Sequence[Path]) -> Iterator[None]:
    """Within the block, outputs are written; if it fails (an error, Ctrl-C), the ones of
    ``paths`` that did not exist before are removed again. Files that existed keep
    whatever the atomic writes left: their old bytes, or their complete new ones."""
    fresh = [p for p in paths if not os.path.lexists(p)]
    try:
        yield
    except BaseException:
        for p in fresh:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                p.unlink(missing_ok=True)
        raise
