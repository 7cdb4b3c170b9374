"""Run configurations (nstyle.config): a TOML file holding every option of a run, read
back bit-exactly, validated against the CLI's parser, and overridden by the command line."""

from __future__ import annotations

import argparse
import math
import os
import struct
from pathlib import Path

import pytest

from nstyle import __version__
from nstyle.errors import NStyleError
from nstyle.outputs.config import (
    PATH_OPTIONS,
    add_config_option,
    config_defaults,
    config_path_for,
    config_text,
    parse_args_with_config,
    read_config,
    write_config,
)

TRICKY = 'say "hi" \\ C:\\dir\n\ttab\r é ✓ \x01 \x7f \x1b'


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_round_trip_is_exact(tmp_path):
    options = {
        "style_weight": 5e6,
        "third": 1 / 3,
        "tiny": 5e-324,  # the smallest subnormal
        "big": 1.7976931348623157e308,
        "neg_zero": -0.0,
        "inf": math.inf,
        "sum": 0.1 + 0.2,
        "steps": 200,
        "huge_int": 2**63 - 1,
        "quiet": False,
        "verbose": True,
        "content_weight": None,  # left out: the default
        "name": TRICKY,
        "weights": Path("some dir") / "w.h5",
        "layers": ["relu1_1", "relu2_1"],
        "sizes": (128, 181, 256),
        "mixed": [1, 2.5, "x", [True, False]],
        "empty": [],
        "style_layers": {"relu1_1": 1.0, "relu5.1": 0.25},  # a mapping: an inline table
        "odd key": "quoted key",
    }
    path = write_config(tmp_path / "run.toml", options, "image")
    assert os.listdir(tmp_path) == ["run.toml"]
    back = read_config(path)
    assert back.pop("command") == "image"
    expected = {k: v for k, v in options.items() if v is not None}
    expected.update(weights=str(options["weights"]), sizes=list(options["sizes"]))
    assert back == expected
    for key in ("style_weight", "third", "tiny", "big", "neg_zero", "sum"):  # same bits, not just ==
        assert bits(back[key]) == bits(options[key]), key
    assert isinstance(back["style_weight"], float) and isinstance(back["steps"], int)


def test_header_and_none_comment(tmp_path):
    path = write_config(tmp_path / "out.toml", {"steps": 3, "lr": None, "config": "old.toml"}, "audio")
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith(f"# nstyle {__version__}: options of `nstyle audio`, written 20")
    assert f"# working directory: {os.getcwd()}" in text
    assert "# lr: not set (the default)" in text
    assert read_config(path) == {"command": "audio", "steps": 3}  # `config` is not an option to repeat


def test_unwritable_values_refused_before_any_file(tmp_path):
    for options, needle in (
        ({"sizes": [1, None]}, r"option sizes\[1\]: None"),
        ({"n": 2**64}, "option n: 18446744073709551616 does not fit"),
        ({"net": object()}, "option net: cannot write a object"),
    ):
        with pytest.raises(NStyleError, match=needle):
            write_config(tmp_path / "run.toml", options, "image")
    assert os.listdir(tmp_path) == []


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run.toml"
    path.write_text("steps = 1\n")

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(NStyleError, match=r"run\.toml: cannot write it \(No space left"):
        write_config(path, {"steps": 2}, "image")
    monkeypatch.undo()
    assert path.read_text() == "steps = 1\n" and os.listdir(tmp_path) == ["run.toml"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('steps = 3\nlr = 0.1\nsize = = 64\n', r"bad\.toml: not valid TOML: .*line 3"),
        ('name = "unterminated\n', r"bad\.toml: not valid TOML: .*line 1"),
        ("steps = 3\nsteps = 4\n", r"bad\.toml: not valid TOML: .*line 2"),
        ("when = 2024-01-01\n", r"bad\.toml: option when: dates and times"),
        ("command = 3\n", r"bad\.toml: command must be a string"),
    ],
)
def test_bad_files(tmp_path, text, needle):
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    with pytest.raises(NStyleError, match=needle):
        read_config(tmp_path / "bad.toml")


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(NStyleError, match=r"nope\.toml: no such file"):
        read_config(tmp_path / "nope.toml")
    with pytest.raises(NStyleError, match="is a folder"):
        read_config(tmp_path)
    (tmp_path / "bin.toml").write_bytes(b"steps = 3\n\xff\xfe")
    with pytest.raises(NStyleError, match=r"bin\.toml: not UTF-8 text \(byte 10\)"):
        read_config(tmp_path / "bin.toml")


def test_config_path_for():
    assert config_path_for("out.png") == Path("out.toml")
    assert config_path_for("results/out.v2.jpg") == Path("results/out.v2.toml")
    assert config_path_for("ct/out.nii.gz") == Path("ct/out.toml")
    assert config_path_for("slices/") == Path("slices.toml")  # a DICOM folder: the file beside it
    assert config_path_for("noext") == Path("noext.toml")


# ------------------------------------------------------------------- against a parser


def tiny_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """A two-command CLI shaped like nstyle's: positionals, a required -o, typed options."""

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise SystemExit(f"usage error: {message}")

    top = Parser(prog="nstyle")
    sub = top.add_subparsers(dest="command", parser_class=Parser)
    sub.required = True
    img = sub.add_parser("image")
    img.add_argument("content")
    img.add_argument("style")
    img.add_argument("-o", "--output", required=True)
    img.add_argument("--steps", type=int, default=200)
    img.add_argument("--style-weight", type=float, default=5e6)
    img.add_argument("--content-weight", type=float, default=None)
    img.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    img.add_argument("--tile", default="auto")
    img.add_argument("--quiet", action="store_true")
    add_config_option(img)
    other = sub.add_parser("audio")
    other.add_argument("content")
    other.add_argument("--rate", type=int, default=22050)
    add_config_option(other)
    return top, img


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_converted_by_the_options_types(tmp_path):
    _, img = tiny_parser()
    path = write(tmp_path, 'steps = "7"\nstyle-weight = 5\ntile = 512\nquiet = true\noptimizer = "adam"\n')
    values = config_defaults(path, img)
    assert values == {"steps": 7, "style_weight": 5.0, "tile": "512", "quiet": True, "optimizer": "adam"}
    assert isinstance(values["style_weight"], float)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("stpes = 3\n", r"run\.toml: unknown option 'stpes' for `nstyle image` \(did you mean steps\?\)"),
        ("[image]\nsteps = 3\n", r"unknown option 'image' .*not \[tables\]"),
        ("steps = 2.5\n", r"run\.toml: option steps must be an integer, got 2\.5"),
        ('steps = "many"\n', r"run\.toml: option steps: 'many' is not a valid int"),
        ("steps = true\n", r"option steps takes one int value, got True"),
        ("style_weight = [1.0]\n", r"option style_weight takes one float value"),
        ("quiet = 1\n", r"option quiet must be true or false, got 1"),
        ('optimizer = "sgd"\n', r"option optimizer must be one of lbfgs, adam, got 'sgd'"),
        ('command = "audio"\nsteps = 3\n', r"run\.toml: written for `nstyle audio`, not `nstyle image`"),
    ],
)
def test_bad_options(tmp_path, text, needle):
    _, img = tiny_parser()
    with pytest.raises(NStyleError, match=needle):
        config_defaults(write(tmp_path, text), img, "image")


def test_command_line_overrides_the_file(tmp_path):
    top, _ = tiny_parser()
    path = write(tmp_path, 'command = "image"\ncontent = "c.png"\nstyle = "s.png"\noutput = "o.png"\nsteps = 50\n'
                           "style_weight = 1e3\nquiet = true\n")
    args = parse_args_with_config(top, ["image", "--config", str(path), "--steps", "9", "other.png"])
    assert (args.steps, args.content, args.style, args.output) == (9, "other.png", str(tmp_path / "s.png"),
                                                                   str(tmp_path / "o.png"))  # relative to the file
    assert (args.style_weight, args.quiet, args.optimizer) == (1e3, True, "lbfgs")  # file, file, parser default
    # Without the file the same arguments lack STYLE and -o.
    with pytest.raises(SystemExit, match="required"):
        tiny_parser()[0].parse_args(["image", "--steps", "9", "other.png"])


def test_command_taken_from_the_file(tmp_path):
    top, _ = tiny_parser()
    path = write(tmp_path, 'command = "audio"\ncontent = "a.wav"\nrate = 8000\n')
    args = parse_args_with_config(top, [f"--config={path}"])
    assert (args.command, args.content, args.rate) == ("audio", str(tmp_path / "a.wav"), 8000)
    with pytest.raises(NStyleError, match="written for `nstyle audio`, not `nstyle image`"):
        parse_args_with_config(tiny_parser()[0], ["image", "--config", str(path)])
    with pytest.raises(NStyleError, match="no command given"):
        parse_args_with_config(tiny_parser()[0], ["--config", str(write(tmp_path, "rate = 1\n"))])


def test_written_run_repeats_exactly(tmp_path):
    argv = ["image", "c.png", "s.png", "-o", "out.png", "--steps", "17", "--style-weight", str(1 / 3),
            "--content-weight", "2.5e-7", "--tile", "none", "--quiet"]
    first = tiny_parser()[0].parse_args(argv)
    path = write_config(config_path_for(tmp_path / first.output), vars(first), first.command)
    assert path == tmp_path / "out.toml"
    again = parse_args_with_config(tiny_parser()[0], ["--config", str(path)])
    # the same files: written relative to the config's folder, read back from there
    absolute = {k: os.path.abspath(v) if k in ("content", "output") else v for k, v in vars(first).items()}
    absolute["style"] = [os.path.abspath(s) for s in first.style] if isinstance(first.style, list) else \
        os.path.abspath(first.style)
    assert vars(again) == {**absolute, "config": str(path)}
    assert "../" in path.read_text()  # relative to tmp_path, not to the working directory
    assert bits(again.style_weight) == bits(1 / 3)


def test_config_text_is_flat_toml():
    text = config_text({"a": 1, "b": None}, "image")
    assert text == 'command = "image"\na = 1\n# b: not set (the default)\n'


# Files written by nstyle 0.1 before the one pipeline (tests/outputs/data/v0.1-*.toml, made
# by that version's own parser and write_config): they must still load, option for option.
OLD = Path(__file__).parent / "data"


@pytest.mark.parametrize("kind", ["image", "audio", "series", "volume"])
def test_config_files_of_the_previous_version_still_load(kind):
    from nstyle.cli import build_parser, settings_from
    from nstyle.outputs.config import parse_args_with_config, read_config

    path = OLD / f"v0.1-{kind}.toml"
    args = parse_args_with_config(build_parser(), ["--config", str(path)])
    assert args.command == kind
    settings = settings_from(args)  # validated
    for key, value in read_config(path).items():
        if key in ("command", "style"):
            continue
        if key in PATH_OPTIONS and value not in ("noise", "content", "style"):  # names relative to its working dir
            value = value if os.path.isabs(value) else os.path.join("/tmp", value)
        assert getattr(args, key) == value, key
    styles = read_config(path)["style"]
    styles = styles if isinstance(styles, list) else [styles]
    assert args.style == [s if os.path.isabs(s) else os.path.join("/tmp", s) for s in styles]
    assert settings.steps == read_config(path)["steps"]
