"""How α and β are made to mean the same trade-off for any pair: the costs' balance.

``absolute`` (the seed's costs as they are):

    J = α · ½‖a(C) − a(G)‖² + β · Σ_l λ_l · d_l(S, G)

``relative`` (each cost divided by its size at "nothing", all-zero activations of G):

    J = α · ½‖a(C) − a(G)‖² / ‖a(C)‖² + β · Σ_l λ_l · d_l(S, G) / d_l(S, 0)

With the Gram loss d_l(S, 0) = ‖Ĝ_l(S)‖², so each style layer counts by its *relative*
Gram error and the content by its relative activation error. In the seed's terms this is
the same J with α' = α / ‖a(C)‖² and λ'_l = λ_l / ‖Ĝ_l(S)‖²: the formulas are untouched,
the weights are read off the data. Why: a Gram distance grows with the fourth power of
the features' size and the content cost with the square, so under ``absolute`` a loud,
tonal style (a ring tone's few strong bins) outweighs a quiet speech's content by orders
of magnitude and erases it, while the same β under a soft noise style keeps it (README,
"Sound and time series"). Under ``relative`` both costs are 1/2 resp. Σλ at G = 0 whatever
the signals' loudness or spectrum, and one β means one trade-off.
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
