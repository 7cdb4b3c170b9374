"""Ctrl-C, SIGTERM and SIGHUP: the best result so far is written, the exit status is
128 + the signal's number, and nothing is left half-written; at start-up, a quiet exit.

These run the real ``nstyle`` command in a subprocess (signals are per process); inputs
are nstyle's sample images (scikit-image's astronaut and immunohistochemistry slide).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from nstyle.samples import sample_path
from tests.cli.test_cli import run

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "nstyle"]


def _start(args: list, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_mid_run_writes_the_best_result(signum, tmp_path):
    out = tmp_path / "o.png"
    proc = _start(["image", sample_path("astronaut.png"), sample_path("ihc.png"), "-o", out, "--size", "48",
                   "--steps", "2000", "--scales", "none", "--save-every", "1", "--quiet"], tmp_path)
    _wait_for(tmp_path / "o.step0001.png", proc)  # the optimisation is under way
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith("interrupted: wrote"), err
    assert Image.open(out).size == (48, 48)
    assert out.with_suffix(".toml").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_stop_signal_at_start_up_ends_quietly(tmp_path):
    proc = _start(["image", sample_path("astronaut.png"), sample_path("ihc.png"), "-o", tmp_path / "o.png"], tmp_path)
    time.sleep(0.5)  # the interpreter is up, torch is still loading
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert list(tmp_path.iterdir()) == []


def test_explain_interrupted_exits_130_and_still_draws(tmp_path, capsys, monkeypatch):
    """Ctrl-C during the first panel: the figure is drawn from what was done, status 130."""
    import tqdm

    def ctrl_c(self, n=1):
        raise KeyboardInterrupt

    monkeypatch.setattr(tqdm.tqdm, "update", ctrl_c)
    rc, _, err = run(["explain", sample_path("astronaut.png"), "-o", tmp_path / "e.png", "--size", "32",
                      "--steps", "3", "--channels", "1"], capsys)
    assert rc == 130, err
    assert (tmp_path / "e.png").is_file()


def test_a_stop_signal_swallowed_by_an_import_still_stops_the_start(monkeypatch, capsys, tmp_path):
    """A library that catches everything around an import can swallow the exception a signal
    raised there (seen: SIGTERM inside numpy's lazy import of numpy.linalg under torch, which
    then failed later with a RecursionError); the start-up still ends quietly with 128 + 15."""
    from contextlib import contextmanager

    import nstyle.launch as launch
    import nstyle.runtime as runtime

    entered = runtime.stop_signals

    @contextmanager
    def swallowed():
        with entered():
            runtime._received.append(signal.SIGTERM)  # the handler ran; its exception was caught
            yield

    monkeypatch.setattr(launch, "stop_signals", swallowed)
    out = tmp_path / "o.png"
    assert launch.main(["image", str(sample_path("astronaut.png")), str(sample_path("ihc.png")), "-o", str(out)]) == 143
    assert "interrupted while starting" in capsys.readouterr().err and not out.exists()
