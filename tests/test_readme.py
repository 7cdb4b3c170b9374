"""The README's option tables are the settings' own (docs/make_tables.py writes them)."""

from __future__ import annotations

import re
from pathlib import Path

from nstyle.options import TABLED, options_table

README = Path(__file__).parent.parent / "README.md"


def test_every_kind_has_its_options_table_and_it_is_current():
    text = README.read_text(encoding="utf-8")
    blocks = dict(re.findall(r"<!-- options:(\w+) -->\n(.*?)<!-- /options -->", text, re.S))
    assert set(blocks) == set(TABLED)
    for kind, table in blocks.items():
        assert table == options_table(kind), f"README's {kind} table is stale: run python docs/make_tables.py"
