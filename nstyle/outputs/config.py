"""Run configurations as TOML files: every option of a run, written next to its output,
so that ``nstyle COMMAND --config out.toml`` repeats it exactly.

The file is flat ``key = value`` lines, one per option (keys are the options' argparse
``dest`` names, e.g. ``style_weight``; ``style-weight`` is accepted too), plus
``command = "image"``. Values are strings, integers, floats, booleans, lists and inline
tables of those; None is not written (the key is left out, which means "the default").
Floats are written with ``repr``, which reads back to the same bits.

Reading uses the standard library's ``tomllib`` (Python 3.11+; ``tomli`` on 3.10).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from ..errors import NStyleError
from ..validators import NAMED_INITS, check_input_file
from .atomic import write_atomic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

CONFIG_SUFFIX = ".toml"
# Keys of the run that are not options to repeat: the subcommand is written once as
# ``command``, and the config file a run was read from is not part of the next run.
# A config file holds a few dozen short options; anything much larger is not one.
MAX_CONFIG_BYTES = 1 << 20
# No option is a list of lists; deeper nesting is refused before it costs a deep recursion.
MAX_NESTING = 8
# Options that name files: relative names in a config file are relative to its folder.
PATH_OPTIONS = frozenset({"content", "style", "output", "mask", "init", "weights", "plot", "film", "preview", "image"})
RELATIVE_MARK = "file names are relative to this file's folder"
NOT_OPTIONS = frozenset({"command", "config"})
# A permission given for one run, not a setting to repeat: never written to a config file.
NOT_WRITTEN = NOT_OPTIONS | {"overwrite_input", "force"}
# Suffixes that belong to one file type, replaced as a whole: out.nii.gz -> out.toml.
DOUBLE_SUFFIXES = (".nii.gz", ".tar.gz")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INT64 = (-(2**63), 2**63 - 1)  # TOML integers are 64-bit


def config_path_for(output: str | Path) -> Path:
    """The config file written next to ``output``: its name with the extension replaced by
    ``.toml`` (out.png -> out.toml, out.nii.gz -> out.toml, a DICOM folder out/ -> out.toml,
    out -> out.toml)."""
    output = Path(output)
    name = output.name
    for double in DOUBLE_SUFFIXES:
        if name.lower().endswith(double) and len(name) > len(double):
            return output.with_name(name[: -len(double)] + CONFIG_SUFFIX)
    return output.with_suffix(CONFIG_SUFFIX) if output.suffix else output.with_name(name + CONFIG_SUFFIX)


# ---------------------------------------------------------------------------- writing


def toml_string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
            raise NStyleError(f"{s.encode('utf-8', 'backslashreplace').decode()}: the name is not valid UTF-8, "
                              "which the settings file (TOML) cannot record; rename it")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # TOML forbids raw control characters
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_key(key: str) -> str:
    """A bare key where TOML allows one (letters, digits, _ and -), else a quoted key."""
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any, where: str = "value") -> str:
    """``value`` as TOML: str, bool, int, float (repr: exact), os.PathLike (as its string),
    lists/tuples and mappings (inline tables) of those. None has no TOML form."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise NStyleError(f"{where}: {value} does not fit TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        # repr is the shortest text that reads back to the same double, and always has a
        # "." or an exponent as TOML floats must; TOML spells inf, -inf and nan as repr does.
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, os.PathLike):
        return toml_string(os.fspath(value))
    if isinstance(value, Mapping):
        items = (f"{toml_key(str(k))} = {toml_value(v, f'{where}.{k}')}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if value is None:
        raise NStyleError(f"{where}: None cannot be written in TOML (only a whole option may be None: it is left out)")
    raise NStyleError(f"{where}: cannot write a {type(value).__name__} in TOML")


def written_by_nstyle(path: Path) -> bool:
    """Whether the file ``path`` is a settings file nstyle wrote (its first line says so)."""
    try:
        with open(path, "rb") as f:
            return f.read(9) == b"# nstyle "
    except OSError:
        return False


def config_text(options: Mapping[str, Any], command: str, header: Sequence[str] = ()) -> str:
    """The TOML text ``write_config`` writes: comment lines, ``command``, then one line per
    option in the given order; None options become a comment saying they are defaults."""
    # a comment is one line: a newline (or any control character) in a file name is escaped
    lines = ["# " + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in h) for h in header]
    lines.append(f"command = {toml_string(command)}")
    for key, value in options.items():
        if key in NOT_WRITTEN:
            continue
        if value is None:
            lines.append(f"# {key}: not set (the default)")
        else:
            lines.append(f"{toml_key(str(key))} = {toml_value(value, f'option {key}')}")
    return "\n".join(lines) + "\n"


def write_config(path: str | Path, options: Mapping[str, Any], command: str) -> Path:
    """Write ``options`` (e.g. ``vars(args)`` of the CLI) for ``nstyle <command>`` to
    ``path`` as TOML, atomically, under a header naming the nstyle version and the date.
    Relative file names in the options (given relative to the working directory) are
    written relative to ``path``'s folder, where ``--config`` resolves them.

    Keys ``command`` and ``config`` of ``options`` are not written as options. Values
    that are None are left out: reading the file back then gives the parser's default,
    which is what None is in the CLI's parsed arguments.
    """
    from .. import __version__

    path = Path(path)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    header = (
        f"nstyle {__version__}: options of `nstyle {command}`, written {stamp}",
        f"working directory: {os.getcwd()}",
        RELATIVE_MARK,
        f"repeat the run: nstyle {command} --config {path.name}",
    )
    moved = {k: rebase(v, Path.cwd(), path.parent.resolve(), k) if k in PATH_OPTIONS else v for k, v in options.items()}
    text = config_text(moved, command, header)  # errors before any file is touched
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------------------- reading


def read_config(path: str | Path) -> dict[str, Any]:
    """The keys and values of the TOML file ``path`` (including ``command``, if present).

    NStyleError for a missing or unreadable file, TOML syntax errors (naming the line)
    and values nstyle has no use for (dates, times).
    """
    path = Path(path)
    check_input_file(path, "config file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise NStyleError(f"{path}: {path.stat().st_size:,} bytes is too large for a config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except OSError as e:
        raise NStyleError(f"{path}: cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise NStyleError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # The message names the line and column, e.g. "... (at line 3, column 7)".
        raise NStyleError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise NStyleError(f"{path}: arrays or tables nested too deeply for a config file") from None
    for key, value in data.items():
        _check_plain(path, key, value)
    if "command" in data and not isinstance(data["command"], str):
        raise NStyleError(f"{path}: command must be a string such as \"image\", got {data['command']!r}")
    return data


def _check_plain(path: Path, key: str, value: Any, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        raise NStyleError(f"{path}: option {key.split('[')[0].split('.')[0]}: nested too deeply for an option")
    if isinstance(value, (datetime, date, time)):
        raise NStyleError(f"{path}: option {key}: dates and times are not nstyle options (got {value})")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(path, f"{key}[{i}]", v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_plain(path, f"{key}.{k}", v, depth + 1)


# --------------------------------------------------------------------- the CLI's use


def add_config_option(parser: argparse.ArgumentParser) -> argparse.Action:
    """Add ``--config TOML`` to a subcommand's parser (``parse_args_with_config`` reads it)."""
    return parser.add_argument(
        "--config", default=None, metavar="TOML",
        help="read options from this file (as written next to each output; relative file names in it are "
             "relative to its folder); options given here override it",
    )


def config_defaults(path: str | Path, parser: argparse.ArgumentParser, command: str | None = None) -> dict[str, Any]:
    """{dest: value} for ``parser.set_defaults`` from the config file ``path``, every key
    checked against ``parser``'s options: NStyleError for an unknown key, a value of the
    wrong type (strings are converted by the option's ``type``, as argparse would; an int
    is accepted for a float option) or one outside the option's choices, and for a file
    written for another ``command``.
    """
    path = Path(path)
    data = read_config(path)
    if command is not None and data.get("command", command) != command:
        raise NStyleError(f"{path}: written for `nstyle {data['command']}`, not `nstyle {command}`")
    actions = {a.dest: a for a in parser._actions if _settable(a)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in NOT_OPTIONS:
            continue
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None:
            close = difflib.get_close_matches(dest, list(actions), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            if isinstance(value, dict):
                hint = " (options are top-level `key = value` lines, not [tables])"
            raise NStyleError(f"{path}: unknown option {key!r} for `{parser.prog}`{hint}")
        values[dest] = _convert(path, key, value, action)
    base = path_base(path)
    return {k: rebase(v, base, None, k) if k in PATH_OPTIONS else v for k, v in values.items()}


def path_base(path: Path) -> Path:
    """The folder relative file names in the config file ``path`` are relative to: its own
    folder; for a file nstyle 0.1 wrote (no ``RELATIVE_MARK``), the working directory its
    header records."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if RELATIVE_MARK not in text:
        found = re.search(r"^# working directory: (.+)$", text, flags=re.MULTILINE)
        if found and Path(found[1]).is_absolute():
            return Path(found[1])
    return path.parent


def rebase(value: Any, old: Path, new: Path | None, key: str = "") -> Any:
    """A relative file name (or a list of them) given relative to ``old``: made relative to
    ``new`` (None: joined to ``old``). Absolute names and ``init``'s named starts stay."""
    if isinstance(value, list):
        return [rebase(v, old, new, key) for v in value]
    if not isinstance(value, str) or not value or os.path.isabs(value) or (key == "init" and value in NAMED_INITS):
        return value
    folder = "/" if value.endswith(("/", os.sep)) else ""  # a DICOM output folder keeps its slash
    joined = os.path.normpath(os.path.join(old, value))
    return (joined if new is None else os.path.relpath(joined, new)) + folder


def parse_args_with_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with ``--config FILE`` (anywhere in ``argv``) setting the
    defaults of the subcommand's options; options given in ``argv`` override the file.

    The subcommand is the first word of ``argv`` that names one, else the file's
    ``command`` (so ``nstyle --config out.toml`` works). Arguments the file provides stop
    being required on the command line (CONTENT, STYLE, -o). The subcommand's parser
    needs a ``--config`` option (``add_config_option``). NStyleError for a bad file.
    """
    argv = list(argv)
    config, command_at = _scan(argv)
    if config is None:
        return parser.parse_args(argv)
    commands = _subparsers(parser)
    command = argv[command_at] if command_at is not None and argv[command_at] in commands else None
    if command is None:
        command = read_config(config).get("command")
        if command not in commands:
            raise NStyleError(
                f"{config}: no command given; name one ({', '.join(commands)}) or write command = \"...\" in the file"
            )
        argv.insert(0, command)
    sub = commands[command]
    values = config_defaults(config, sub, command)
    for action in sub._actions:
        if action.dest in values and action.required:
            action.required = False
            if not action.option_strings and action.nargs in (None, "+"):
                # a positional the file fills in may now be left out
                action.nargs = "?" if action.nargs is None else "*"
    sub.set_defaults(**values)
    return parser.parse_args(argv)


def _scan(argv: Sequence[str]) -> tuple[str | None, int | None]:
    """(value of the last --config, index of the first word that is not an option or --config's value)."""
    config, first_word, i = None, None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--config" and i + 1 < len(argv):
            config, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif first_word is None and not arg.startswith("-"):
            first_word = i
        i += 1
    return config, first_word


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _settable(action: argparse.Action) -> bool:
    """Options a file may set: not --help, --version, --config or a subcommand list."""
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return not isinstance(action, skip) and action.dest not in NOT_OPTIONS and action.dest != argparse.SUPPRESS


def _convert(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    """``value`` from the file as argparse would have stored it for ``action``."""
    if action.nargs == 0:  # flags: store_true / store_false / store_const
        if isinstance(action.const, bool):
            if not isinstance(value, bool):
                raise NStyleError(f"{path}: option {key} must be true or false, got {value!r}")
            return value
        if value not in (action.const, action.default):
            raise NStyleError(f"{path}: option {key} must be {action.const!r} or {action.default!r}, got {value!r}")
        return value
    if isinstance(action, argparse._CountAction):
        return _scalar(path, key, value, int)
    if action.nargs in ("*", "+") and not isinstance(value, list):
        value = [value]  # one value where several may be given (e.g. style = "s.wav" from an older file)
    if action.nargs in ("*", "+") or isinstance(action.nargs, int) or isinstance(action, argparse._AppendAction):
        if not isinstance(value, list):
            raise NStyleError(f"{path}: option {key} takes a list, e.g. {key} = [...], got {value!r}")
        out = [_scalar(path, f"{key}[{i}]", v, action.type, action.choices) for i, v in enumerate(value)]
        if isinstance(action.nargs, int) and len(out) != action.nargs:
            raise NStyleError(f"{path}: option {key} takes {action.nargs} values, got {len(out)}")
        return out
    return _scalar(path, key, value, action.type, action.choices)


def _scalar(path: Path, key: str, value: Any, kind: Any, choices: Any = None) -> Any:
    """One value for an option of argparse ``type`` ``kind`` (None: a string). Text goes
    through ``kind`` as on the command line; TOML numbers must already be of the kind
    (an integer option refuses 2.5, a float option takes 2)."""
    name = getattr(kind, "__name__", "str") if kind is not None else "str"
    if isinstance(value, (bool, list, dict)):
        raise NStyleError(f"{path}: option {key} takes one {name} value, got {value!r}")
    if isinstance(value, str) and kind not in (None, str):
        try:
            out: Any = kind(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise NStyleError(f"{path}: option {key}: {value!r} is not a valid {name} ({e})") from None
    elif isinstance(value, str):
        out = value
    elif kind is int:
        if not isinstance(value, int):
            raise NStyleError(f"{path}: option {key} must be an integer, got {value!r}")
        out = value
    elif kind is float:
        out = float(value)  # an int or a float: TOML has no other numbers
    else:  # a number for a text option (e.g. tile = 512), given to ``kind`` as its text
        return _scalar(path, key, repr(value), kind, choices)
    if choices is not None and out not in choices:
        raise NStyleError(f"{path}: option {key} must be one of {', '.join(map(str, choices))}, got {out!r}")
    return out
