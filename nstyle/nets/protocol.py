"""What the objective and the run need of a feature network, as small protocols.

Every network is a callable ``net(x, layers) -> {layer: activations}`` on a signal of
shape (N, C, *spatial) (``nstyle.core.functional.FeatureNet``). A network that sees
only a random part of its input per evaluation (``nets.volume.Triplanar``: a few slices
per axis) says so through ``SampledNet``, so that the objective can build its targets
from the whole input and cut the content target to what each evaluation saw, and the
run can pick an optimiser suited to a stochastic J (Adam rather than L-BFGS).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SampledNet(Protocol):
    """A network whose evaluations may see a random part of the input."""

    #: True for a network of this kind (targets are then made with ``use_all_slices``).
    sampled: bool

    @property
    def stochastic(self) -> bool:
        """True when each evaluation draws a new random part (J is then a noisy estimate)."""
        ...

    def use_all_slices(self) -> None:
        """Let the next evaluations see the whole input (for targets and measurements)."""

    def resample(self, shape: tuple[int, ...]) -> None:
        """Draw the part of a signal of ``shape`` that the next evaluation sees."""

    def sampled_share(self, shape: tuple[int, ...]) -> float:
        """The share of a signal of ``shape`` one evaluation sees (1 when it sees all of it)."""
        ...

    def select(self, name: str, target: torch.Tensor) -> torch.Tensor:
        """The part of an all-input activation ``target`` of layer ``name`` that was drawn."""
        ...


def is_stochastic(net: object) -> bool:
    """True for a network whose J is a random estimate at each evaluation."""
    return isinstance(net, SampledNet) and net.sampled and net.stochastic
