"""``python -m nstyle``: the same as the ``nstyle`` command."""

import sys

from .launch import main

sys.exit(main())
