"""The `nstyle` command: one-line errors with exit status 2 for every bad input, nothing
written or clobbered on error, and a tiny successful run with snapshots.

Most runs call ``nstyle.cli.main`` in-process (the network is built once per process);
one runs ``python -m nstyle.cli`` for the real exit status and stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nstyle import __version__
from nstyle.cli import main
from nstyle.outputs import atomic
from nstyle.samples import sample_path

OLD_BYTES = b"the previous result, which must survive a failed run"


@pytest.fixture(scope="module")
def content() -> str:
    return str(sample_path("astronaut.png"))


@pytest.fixture(scope="module")
def style() -> str:
    return str(sample_path("ihc.png"))


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) -> (exit status, stdout, stderr); argparse's SystemExit counts too."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error_line(err: str, *needles: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("nstyle: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def snapshot_folder(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` with its bytes (None for folders)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# --------------------------------------------------------------------------- bad inputs


def _text_png(d: Path) -> Path:
    (d / "x.png").write_text("hello, I am text\n")
    return d / "x.png"


def _half_png(d: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(d / "full.png")
    data = (d / "full.png").read_bytes()
    (d / "half.png").write_bytes(data[: len(data) // 2])
    return d / "half.png"


def _empty_png(d: Path) -> Path:
    (d / "zero.png").write_bytes(b"")
    return d / "zero.png"


def _folder(d: Path) -> Path:
    (d / "afolder.png").mkdir()
    return d / "afolder.png"


# Each case: (which argument is bad, how to make it, extra options, what the line must name).
# The maker gets the inputs folder and returns the bad path (or None for option cases).
BAD_INPUTS = {
    "content-missing": ("content", lambda d: d / "missing.png", [], ["missing.png", "no such file"]),
    "style-missing": ("style", lambda d: d / "nostyle.jpg", [], ["nostyle.jpg", "no such file"]),
    "content-text": ("content", _text_png, [], ["x.png", "not an image"]),
    "style-truncated": ("style", _half_png, [], ["half.png", "truncated"]),
    "content-zero-bytes": ("content", _empty_png, [], ["zero.png"]),
    "content-folder": ("content", _folder, [], ["afolder.png", "folder"]),
    "init-missing": (None, None, ["--init", "{d}/noinit.png"], ["noinit.png", "no such file"]),
    "init-unknown": (None, None, ["--init", "noize"], ["noize"]),
    "style-layer-unknown": (None, None, ["--style-layers", "relu1_1,relu9_9"], ["relu9_9"]),
    "content-layer-unknown": (None, None, ["--content-layer", "conv7_3"], ["conv7_3"]),
    "content-weight-negative": (None, None, ["--content-weight=-1"], ["content weight", "-1"]),
    "style-weight-negative": (None, None, ["--style-weight=-5e3"], ["style weight", "-5000"]),
    "style-weight-nan": (None, None, ["--style-weight", "nan"], ["style weight", "nan"]),
    "content-weight-inf": (None, None, ["--content-weight", "inf"], ["content weight", "inf"]),
    "layer-weight-negative": (None, None, ["--style-layers", "relu1_1:-2"], ["relu1_1", "-2"]),
    "layer-weight-nan": (None, None, ["--style-layers", "relu2_1:nan"], ["relu2_1", "nan"]),
    "layer-weight-text": (None, None, ["--style-layers", "relu2_1:lots"], ["relu2_1", "lots"]),
    "size-too-small": (None, None, ["--size", "4"], ["size", "4"]),
    "size-absurd": (None, None, ["--size", "100000"], ["size", "100000"]),
    "steps-negative": (None, None, ["--steps=-3"], ["steps", "-3"]),
    "save-every-negative": (None, None, ["--save-every=-1"], ["save-every", "-1"]),
    "scales-decreasing": (None, None, ["--scales", "24,16"], ["scales", "24,16", "increase"]),
    "scales-text": (None, None, ["--scales", "big"], ["scales", "big"]),
    "scales-above-size": (None, None, ["--scales", "16,64"], ["scales", "larger"]),
    "scale-steps-negative": (None, None, ["--scales", "16", "--scale-steps=-2"], ["steps", "-2"]),
    "precision-fp16-on-cpu": (None, None, ["--precision", "fp16"], ["fp16", "CUDA"]),
    "precision-unknown": (None, None, ["--precision", "int8"], ["precision", "int8"]),
    "tile-text": (None, None, ["--tile", "huge"], ["--tile", "huge"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, content, style):
    which, make, extra, needles = BAD_INPUTS[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "out.png"
    out.write_bytes(OLD_BYTES)
    before = snapshot_folder(outdir)

    c, s = content, style
    if which == "content":
        c = make(inputs)
    elif which == "style":
        s = make(inputs)
    extra = [a.replace("{d}", str(inputs)) for a in extra]
    rc, stdout, err = run(
        ["image", c, s, "-o", out, "--size", "32", "--steps", "2", "--quiet", "--save-every", "1", *extra], capsys
    )
    assert rc == 2, err
    assert_one_error_line(err, *needles)
    assert stdout == ""
    assert snapshot_folder(outdir) == before  # OUT unchanged, no snapshots, no .out.png.* temp


def test_output_folder_missing(tmp_path, capsys, content, style):
    out = tmp_path / "no_such_dir" / "out.png"
    rc, _, err = run(["image", content, style, "-o", out, "--size", "32", "--steps", "1", "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, "no_such_dir", "does not exist")
    assert not out.parent.exists()


def test_output_folder_not_writable(tmp_path, capsys, monkeypatch, content, style):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "out.png").write_bytes(OLD_BYTES)
    before = snapshot_folder(ro)
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere; make os.access say what it says to users
        real = os.access
        monkeypatch.setattr(atomic.os, "access", lambda p, m: False if Path(p) == ro else real(p, m))
    try:
        rc, _, err = run(
            ["image", content, style, "-o", ro / "out.png", "--size", "32", "--steps", "1", "--quiet"], capsys
        )
    finally:
        ro.chmod(0o755)
    assert rc == 2
    assert_one_error_line(err, str(ro), "not writable")
    assert snapshot_folder(ro) == before


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.gif"])
def test_unknown_output_extension(tmp_path, capsys, name, content, style):
    out = tmp_path / name
    out.write_bytes(OLD_BYTES)
    before = snapshot_folder(tmp_path)
    rc, _, err = run(["image", content, style, "-o", out, "--size", "32", "--steps", "1", "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, name, "extension")
    assert snapshot_folder(tmp_path) == before


def test_output_is_a_folder(tmp_path, capsys, content, style):
    (tmp_path / "res.png").mkdir()
    rc, _, err = run(
        ["image", content, style, "-o", tmp_path / "res.png", "--size", "32", "--steps", "1", "--quiet"], capsys
    )
    assert rc == 2
    assert_one_error_line(err, "res.png", "folder")
    assert snapshot_folder(tmp_path) == {"res.png": None}


def test_unparsable_option_value_is_one_line(tmp_path, capsys, content, style):
    rc, _, err = run(["image", content, style, "-o", tmp_path / "o.png", "--size", "big"], capsys)
    assert rc == 2
    assert_one_error_line(err, "--size", "big")


@pytest.mark.slow
def test_real_exit_status_and_stderr_in_a_subprocess(tmp_path, style):
    out = tmp_path / "out.png"
    out.write_bytes(OLD_BYTES)
    missing = tmp_path / "gone.png"
    proc = subprocess.run(
        [sys.executable, "-m", "nstyle.cli", "image", str(missing), style, "-o", str(out), "--size", "32",
         "--steps", "1", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, str(missing), "no such file")
    assert out.read_bytes() == OLD_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# --------------------------------------------------------------------------- success


def test_tiny_run_writes_result_and_snapshots(tmp_path, capsys, content, style):
    out = tmp_path / "out.png"
    out.write_bytes(OLD_BYTES)  # a successful run does replace it
    rc, stdout, err = run(
        ["image", content, style, "-o", out, "--size", "32", "--steps", "3", "--quiet", "--save-every", "1"], capsys
    )
    assert rc == 0, err
    assert stdout == ""
    assert f"wrote {out}" in err
    assert "error" not in err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["out.png", "out.step0001.png", "out.step0002.png", "out.step0003.png", "out.toml"]
    for name in names[:-1]:  # out.toml: the run's settings
        with Image.open(tmp_path / name) as im:
            assert max(im.size) == 32 and im.mode == "RGB"
    with Image.open(out) as im:
        assert im.size == (32, 32)  # the astronaut is square


def _rgba_content(tmp_path: Path, content: str) -> Path:
    with Image.open(content) as im:
        rgba = im.convert("RGBA").resize((48, 32))
    a = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (32, 1))
    rgba.putalpha(Image.fromarray(a, "L"))
    rgba.save(tmp_path / "rgba.png")
    return tmp_path / "rgba.png"


def test_rgba_content_gives_rgba_png(tmp_path, capsys, content, style):
    c = _rgba_content(tmp_path, content)
    out = tmp_path / "out.png"
    rc, _, err = run(["image", c, style, "-o", out, "--size", "32", "--steps", "2", "--quiet"], capsys)
    assert rc == 0, err
    with Image.open(out) as im:
        assert im.mode == "RGBA" and im.size == (32, 21)
        alpha = np.asarray(im)[..., 3]
    assert alpha[:, 0].max() < 20 and alpha[:, -1].min() > 235  # the gradient survived


def test_rgba_snapshots_keep_alpha(tmp_path, capsys, content, style):
    c = _rgba_content(tmp_path, content)
    out = tmp_path / "out.png"
    rc, _, err = run(
        ["image", c, style, "-o", out, "--size", "32", "--steps", "1", "--quiet", "--save-every", "1"], capsys
    )
    assert rc == 0, err
    with Image.open(tmp_path / "out.step0001.png") as im:
        assert im.mode == "RGBA"


def test_help_mentions_the_cost_options(capsys):
    rc, out, _ = run(["image", "--help"], capsys)
    assert rc == 0
    for opt in ("--style-layers", "--content-weight", "--style-weight", "--size", "--steps", "--init"):
        assert opt in out, opt


def test_top_level_help_exits_0(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    assert "image" in out


def test_top_level_help_mentions_the_cost_options(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    for opt in ("--style-layers", "--content-weight", "--style-weight"):
        assert opt in out, opt


def test_version(capsys):
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0
    assert __version__ in out


def test_no_command_is_an_error(capsys):
    rc, _, err = run([], capsys)
    assert rc == 2
    assert err


def test_ctrl_c_writes_the_best_result_so_far(tmp_path, capsys, monkeypatch, content, style):
    """Ctrl-C during the optimisation: exit 130, and OUT holds the lowest-J G seen."""
    from nstyle.core.objective import StyleObjective

    real_call = StyleObjective.__call__
    calls = {"n": 0}

    def interrupted_on_fifth_call(self, g):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_call(self, g)

    monkeypatch.setattr(StyleObjective, "__call__", interrupted_on_fifth_call)
    seen: list = []
    import nstyle.pipeline as stylize_module

    real_optimize = stylize_module.optimize

    def keep_result(*args, **kwargs):
        seen.append(real_optimize(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(stylize_module, "optimize", keep_result)
    out = tmp_path / "out.png"
    rc, _, err = run(
        ["image", content, style, "-o", out, "--size", "32", "--steps", "50", "--quiet", "--init", "noise"], capsys
    )
    assert rc == 130
    assert "interrupted" in err and str(out) in err
    result = seen[0]
    assert result.interrupted and len(result.history) == 4
    totals = [h.total for h in result.history]
    assert result.best_step == totals.index(min(totals)) and min(totals) < totals[0]
    with Image.open(out) as im:
        written = np.asarray(im.convert("RGB"), dtype=np.float64) / 255
    expected = result.g.clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(written - expected).max() <= 0.5 / 255 + 1e-6  # the best G, rounded to 8 bits
