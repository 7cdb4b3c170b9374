"""The page's settings form, from ``nstyle.options``: one source for the CLI and the studio.

``schema(kind)`` describes every option of a kind (name, default, help, choices, type,
group) so that the page shows the CLI's defaults and help; ``settings_from_form(kind,
values)`` turns what the page sends into the kind's validated settings, with the CLI's
conversions (``argparse_type``) and the same ``Settings.validate``. Options that name a
file on the server (a mask, weights, an init image) are not taken from a page: a client
must not make the server read a path of its choosing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ..errors import NStyleError
from ..kinds import MODALITIES
from ..options import SETTINGS, Settings, argparse_type, option_of
from ..validators import NAMED_INITS

# Settings a page may not set: they name files on the server (the studio sets ``init`` itself
# when a run continues from another one's result) or choose the server's resources.
SERVER_ONLY = frozenset({"mask", "mask_styles", "weights", "device", "max_memory"})
# The settings users reach for first, shown above the rest (those the kind has, in this order).
MAIN = (
    "size", "quality", "steps", "style_weight", "content_weight", "style_scale", "colors", "style_loss", "init",
    "precision", "mode", "max_seconds", "net", "slices", "window",
)
KINDS = tuple(SETTINGS)


def check_kind(kind: str) -> type[Settings]:
    if kind not in SETTINGS:
        raise NStyleError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    return SETTINGS[kind]


def schema(kind: str) -> list[dict[str, Any]]:
    """Every option of ``kind`` a page may set: name, default, help, choices, type, group, main."""
    out = []
    for f in fields(check_kind(kind)):
        if f.name in SERVER_ONLY:
            continue
        opt = option_of(f)
        kind_of = argparse_type(f)
        choices = list(opt.choices) if opt.choices else None
        if f.name == "init":  # named starts only; "continue from" gives a result as the start
            choices = list(NAMED_INITS)
        out.append({
            "name": f.name, "default": f.default, "help": opt.help, "choices": choices, "group": opt.group,
            "type": kind_of.__name__ if kind_of in (int, float) else "str", "main": f.name in MAIN,
        })
        if f.name == "style_weight":  # β of a run left at the defaults (per balance, net)
            out[-1]["effective_default"] = MODALITIES[kind].style_weight(SETTINGS[kind]())
    main = [o for o in out if o["main"]]
    main.sort(key=lambda o: MAIN.index(o["name"]))
    return main + [o for o in out if not o["main"]]


def coerce(kind: str, name: str, value: Any) -> Any:
    """One value from a page as the CLI would have parsed it (text to int/float); empty: None."""
    cls = check_kind(kind)
    field = next((f for f in fields(cls) if f.name == name), None)
    if field is None or name in SERVER_ONLY:
        raise NStyleError(f"unknown {kind} option: {name}")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (dict, list)):
        raise NStyleError(f"{name.replace('_', ' ')}: give a single value, got {value!r}")
    if name == "init" and value not in NAMED_INITS:  # a file is the server's to choose ("continue from")
        raise NStyleError(f"unknown init {value!r}; choose {', '.join(NAMED_INITS)}")
    target = argparse_type(field)
    if target in (int, float) and not isinstance(value, bool):
        try:
            number = target(value) if not isinstance(value, str) else target(value.strip())
        except (TypeError, ValueError):
            raise NStyleError(f"{name.replace('_', ' ')} must be {'an integer' if target is int else 'a number'}, "
                              f"got {value!r}") from None
        if target is int and isinstance(value, float) and number != value:
            raise NStyleError(f"{name.replace('_', ' ')} must be an integer, got {value!r}")
        return number
    return value if isinstance(value, str) else str(value)


def settings_from_form(kind: str, values: Mapping[str, Any], server: Mapping[str, Any] | None = None) -> Settings:
    """The kind's settings from a page's ``values`` (empty values mean the default) plus the
    server's own ``server`` settings (e.g. an init file), validated as the CLI validates."""
    if not isinstance(values, Mapping):
        raise NStyleError("settings must be an object of option names and values")
    options = {}
    for name, value in values.items():
        parsed = coerce(kind, str(name), value)
        if parsed is not None:
            options[str(name)] = parsed
    options.update(server or {})
    return check_kind(kind).from_options(options).validate()


def given(settings: Settings) -> dict[str, Any]:
    """The options of ``settings`` that differ from their defaults (what a run's record shows)."""
    return {f.name: getattr(settings, f.name) for f in fields(settings) if getattr(settings, f.name) != f.default}
