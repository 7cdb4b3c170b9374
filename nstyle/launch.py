"""The ``nstyle`` console command: stop signals first, then the (heavy) command line.

Importing the CLI loads torch, which takes seconds; a Ctrl-C or SIGTERM in that time
would otherwise end in a traceback. Here the handlers are in place before any import,
and an interruption at start-up ends quietly with 128 + the signal's number.
"""

from __future__ import annotations

import sys

from .runtime import interrupted_status, say, stop_received, stop_signals


def main(argv: list[str] | None = None) -> int:
    try:
        with stop_signals():
            from .cli import main as cli_main

            if stop_received():  # raised inside a library's import that swallowed it: the import
                raise KeyboardInterrupt  # may be half done, so stop here rather than run on it
    except KeyboardInterrupt:
        say("nstyle: interrupted while starting; nothing written")
        return interrupted_status()
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
