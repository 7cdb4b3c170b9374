"""Write outputs atomically: to a temporary file in the target folder, then rename.

A crash, Ctrl-C or a full disk mid-write leaves the old file (if any) untouched and no
half-written file under the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import NStyleError

_UMASK_LOCK = threading.Lock()


def check_writable(path: str | Path) -> Path:
    """Fail early, before any work, if ``path``'s folder is missing or not writable."""
    path = Path(path)
    folder = path.parent
    if not path.name or path.name in (".", ".."):
        raise NStyleError(f"{path}: not a file name")
    # The temporary file is ".NAME.xxxxxxxx.EXT": that name, too, must fit the file system.
    longest = len(os.fsencode(path.name)) + len(os.fsencode(path.suffix)) + 10
    if longest > name_max(folder):
        raise NStyleError(f"{str(path)[:60]}...: file name too long for the file system ({name_max(folder)} bytes)")
    if not folder.is_dir():
        raise NStyleError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NStyleError(f"{path}: output folder {folder} is not writable")
    if path.is_dir():
        raise NStyleError(f"{path}: is a folder, not a file name")
    return path


def name_max(folder: Path) -> int:
    """The longest file name ``folder``'s file system allows (255 where it cannot be asked)."""
    try:
        return os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it; keep our own calls serial
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    The file gets the mode a plain ``open(path, "w")`` would give (0666 less the umask),
    not mkstemp's 0600. OS errors (disk full, permission denied) become ``NStyleError``
    naming ``path``; whatever happens, the temporary file is removed and an existing
    ``path`` keeps its bytes.
    """
    path = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise NStyleError(f"{path}: cannot write in {path.parent} ({e.strerror or e})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:  # the data is on disk before the name points at it
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise NStyleError(f"{path}: cannot write it ({e.strerror or e})") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_folder_atomic(path: str | Path, files: Mapping[str, bytes]) -> Path:
    """Write the folder ``path`` holding ``files`` ({name: bytes}) as a whole: a new folder
    beside it first, then renamed into place (an existing folder is moved aside and removed
    only once the new one is in). The caller decides whether an existing folder may go."""
    path = Path(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as e:
        raise NStyleError(f"{path}: cannot write in {path.parent} ({e.strerror or e})") from None
    old = None
    try:
        for name, payload in files.items():
            with open(tmp / name, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp / name, 0o666 & ~current_umask())
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException as e:
        if old is not None and not path.exists():
            os.rename(old, path)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise NStyleError(f"{path}: cannot write it ({e.strerror or e})") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path
