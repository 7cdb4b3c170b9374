"""The command line's process concerns: stop signals, exit statuses, one-line messages.

Ctrl-C (SIGINT), SIGTERM (what ``kill``, ``timeout``, systemd and batch schedulers send)
and SIGHUP (a closed terminal) all stop a run the same way: the optimiser's loop ends,
the best G so far is written, and the exit status is 128 + the signal's number (130,
143, 129), as shells report a process killed by that signal. This module imports
nothing heavy, so the launcher can install the handlers before torch loads.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that stop a run and write the best result so far.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_received: list[int] = []


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, like Ctrl-C's KeyboardInterrupt
    (so everything that keeps the best result on Ctrl-C does so for these too)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise (KeyboardInterrupt, Stopped);
    the previous handlers come back after it. Only the main thread can install them:
    elsewhere (a test runner's worker thread) this does nothing."""
    _received.clear()
    try:
        old = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def quiet_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Within the block, warnings are collected instead of printed (a refusal stays one
    line); ``notice`` then reports what a successful run should know."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def notice(caught: list[warnings.WarningMessage]) -> None:
    """At most one short line for the warnings of a successful run: nstyle's own first
    (e.g. uneven slice spacing), with a count of the rest; libraries' notices (Pillow's
    EXIF, numpy overflow in a reader that recovered) are left out."""
    ours = [w for w in caught if f"{os.sep}nstyle{os.sep}" in (w.filename or "")]
    if ours:
        more = f" (and {len(ours) - 1} more)" if len(ours) > 1 else ""
        say(f"nstyle: note: {one_line(str(ours[0].message), 200)}{more}")


def stop_received() -> bool:
    """Whether a stop signal arrived since ``stop_signals`` was entered (even if the exception it
    raised was swallowed: some libraries catch everything around an optional import)."""
    return bool(_received)


def interrupted_status() -> int:
    """128 + the number of the first stop signal received (130 for Ctrl-C)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line of at most ``limit`` characters (messages may quote file contents)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def say(text: str) -> None:
    """Print to stderr whatever the text holds: a file name that is not valid UTF-8 is
    shown with backslash escapes instead of failing with UnicodeEncodeError."""
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr.write(text.encode(encoding, "backslashreplace").decode(encoding, "replace") + "\n")
    sys.stderr.flush()
