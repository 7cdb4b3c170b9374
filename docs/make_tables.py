"""Rewrite README.md's option tables from the settings types (nstyle.options.options_table).

Every block between ``<!-- options:KIND -->`` and ``<!-- /options -->`` is replaced by the
current table of ``nstyle KIND``; tests/test_readme.py checks the README holds exactly that.

    python docs/make_tables.py [README.md]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nstyle.options import options_table

BLOCK = re.compile(r"(<!-- options:(\w+) -->\n)(.*?)(<!-- /options -->)", re.S)


def fill(text: str) -> str:
    """``text`` with every options block replaced by the current table."""
    return BLOCK.sub(lambda m: m.group(1) + options_table(m.group(2)) + m.group(4), text)


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "README.md")
    readme.write_text(fill(readme.read_text(encoding="utf-8")), encoding="utf-8")
