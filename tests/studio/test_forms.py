"""The page's settings form: the CLI's conversions and checks, nothing a page must not set."""

from __future__ import annotations

from dataclasses import fields

import pytest

from nstyle.errors import NStyleError
from nstyle.options import SETTINGS, ImageSettings, VolumeSettings
from nstyle.studio.forms import SERVER_ONLY, coerce, given, schema, settings_from_form


def test_schema_lists_every_field_but_the_servers_own() -> None:
    for kind, cls in SETTINGS.items():
        names = [o["name"] for o in schema(kind)]
        assert sorted(names) == sorted(f.name for f in fields(cls) if f.name not in SERVER_ONLY)
        first = [o["name"] for o in schema(kind) if o["main"]]
        assert names[: len(first)] == first  # the main ones come first


def test_text_becomes_what_the_cli_would_parse() -> None:
    assert coerce("image", "size", "256") == 256 and coerce("image", "style_weight", "1e5") == 1e5
    assert coerce("image", "steps", " ") is None and coerce("image", "colors", "luminance") == "luminance"
    assert coerce("volume", "index", 2) == 2
    for name, value, message in [("size", "2.5", "integer"), ("steps", 2.5, "integer"), ("lr", "x", "number"),
                                 ("weights", "/tmp/w.pth", "unknown image option"), ("init", "a.png", "unknown init")]:
        with pytest.raises(NStyleError, match=message):
            coerce("image", name, value)


def test_settings_are_validated_and_server_values_win() -> None:
    page = {"size": "64", "colors": "keep-luminance", "init": "noise"}
    s = settings_from_form("image", page, {"init": "/data/x.png"})
    assert isinstance(s, ImageSettings) and s.size == 64 and s.init == "/data/x.png"
    assert given(s) == {"size": 64, "colors": "keep-luminance", "init": "/data/x.png"}
    with pytest.raises(NStyleError, match="out of range"):
        settings_from_form("image", {"size": "5"})
    with pytest.raises(NStyleError, match="volume net"):
        settings_from_form("volume", {"net": "huge"})
    assert isinstance(settings_from_form("volume", {}), VolumeSettings)
