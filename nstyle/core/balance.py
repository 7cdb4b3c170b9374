"""How α and β are made to mean the same trade-off for any pair: the costs' balance.

``absolute`` (the seed's costs as they are):

    J = α · ½‖a(C) − a(G)‖² + β · Σ_l λ_l · d_l(S, G)

``relative`` (each cost divided by the size of what it measures):

    J = α · ½‖a(C) − a(G)‖² / ‖a(C)‖² + β · Σ_l λ_l · d_l(S, G) / d_l(S, C)

With the Gram loss d_l(S, G) = ‖Ĝ_l(S) − Ĝ_l(G)‖². The content counts by its relative
activation error (½ at G = 0) and each style layer by the share of C's own distance from S
that G still has (1 at G = C, whatever that distance is). In the seed's terms this is the
same J with α' = α / ‖a(C)‖² and λ'_l = λ_l / d_l(S, C): the formulas are untouched, the
weights are read off the data. Why: a Gram distance grows with the fourth power of the
features' size and the content cost with the square, so under ``absolute`` a loud, tonal
style (a ring tone's few strong bins) outweighed a quiet speech's content by orders of
magnitude and erased it, while the same β under a soft noise style kept it; dividing by
‖Ĝ_l(S)‖² instead of d_l(S, C) still let a melody's far-off Grams (40 times the speech's
relative gap) erase it in the style of speech (benchmarks/balance.py; README, "Sound and
time series"). Without a content (texture synthesis) d_l(S, 0) = ‖Ĝ_l(S)‖² is used.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..errors import NStyleError

BALANCES = ("absolute", "relative")


def check_balance(balance: object) -> str:
    """``balance`` if it is one of ``BALANCES``; NStyleError otherwise."""
    if balance not in BALANCES:
        raise NStyleError(f"balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    return str(balance)


def norm_or_one(value: float) -> float:
    """A divisor: ``value``, or 1 where it is 0 or not finite (a silent C or S has nothing to
    be relative to, and its cost stays absolute rather than dividing by zero)."""
    return value if value > 0 and value < float("inf") else 1.0


def content_norm(targets: Iterable[torch.Tensor]) -> float:
    """‖a(C)‖² summed over the content layers: the divisor of the relative J_content."""
    return norm_or_one(sum(float(t.double().pow(2).sum()) for t in targets))
