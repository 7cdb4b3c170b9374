"""``run``: one pipeline for every kind of signal.

    settings validated -> signals loaded -> net -> scale plan -> per scale: objective
    (plain or tiled) and optimiser -> finish -> result (which saves itself)

The steps are the same for an image, a sound, a series or a volume; what differs is
asked of the kind's adapter (``nstyle.modalities.base.Modality``). Coarse-to-fine
(``nstyle.core.multiscale``) works over every spatial axis: G is optimised on a coarse
grid first, then upsampled (plus the detail band of the initial signal the coarser grid
could not hold) and refined; C and S are shrunk to each scale and their targets computed
once per scale; α follows the grid (the kind's default rule is applied per scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .core.engine import Callback, RunResult, StepInfo, lbfgs_history, optimize
from .core.multiscale import parse_scales, resize, scaled_shape, upscale
from .core.objective import PlusCost, StyleObjective
from .core.precision import check_precision
from .core.tiling import TiledObjective, auto_tile
from .errors import NStyleError, NStyleTypeError
from .kinds.base import Modality, Network, Result, Signals
from .nets.protocol import SampledNet, is_stochastic
from .options import Settings
from .outputs.guard import input_paths
from .resources import BACKWARD_FACTOR, activation_bytes, check_bytes, keep_freed_memory, limits, parameter_bytes
from .steering.masks import composite, region_weights
from .validators import parse_blend, resolve_device

#: One scale of a run: the long side of its grid and the steps taken there.
Plan = list[tuple[int, int]]


def run(
    modality: Modality,
    content: Any,
    style: Any | Sequence[Any],
    settings: Settings,
    callback: Callback | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    extra_cost: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Result:
    """Re-render ``content`` in the style of ``style`` (one or several) with ``settings``.

    ``callback(info, g)`` is called after every step; ``on_plan(plan)`` once the scale
    plan is known (before the first step), e.g. to size a progress bar; ``extra_cost(G)``
    is one more term of J at the output's scale (e.g. ``nstyle.video``'s temporal cost).
    """
    settings.validate()
    keep_freed_memory()  # evaluations reuse their pages instead of faulting them in anew
    device = resolve_device(settings.device)
    settings = settings.resolved(device)  # what --quality decides, precision for this device
    check_precision(str(settings.precision), device)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise NStyleError("no style given")
    for what, x in [("content", content), *(("style", s) for s in styles)]:
        if x is None or isinstance(x, (bool, int, float, complex, dict, set)):
            raise NStyleTypeError(f"{what} must be a file name or an array, got {x!r}")
    with limits(settings.max_memory, getattr(settings, "max_pixels", None)):
        signals = modality.load(content, styles, settings, device)
        network = modality.network(signals, settings, device)
        check_memory(modality, signals, network, settings)
    plan = scale_plan(max(signals.content.shape[2:]), settings, coarsest_fit(signals, network, modality.coarsest))
    check_scales_fit(plan, signals, network)
    if on_plan is not None:
        on_plan(plan)
    runs, alpha = optimise_scales(modality, signals, network, plan, settings, callback, extra_cost)
    last = runs[-1]
    final = finish(modality, last.g, signals, settings)
    options = {
        **settings.as_dict(), **network.options, "content_weight": alpha,
        "style_weight": modality.style_weight(settings), "optimizer": choose_optimizer(settings, network),
    }
    history = [h for r in runs for h in r.history]
    inputs = input_paths(content, styles, mask=settings.mask)
    return modality.result_type(
        final.cpu(), history, last.best_step, last.interrupted, options, modality, signals.meta, inputs
    )


def scale_plan(long_side: int, settings: Settings, coarsest: int) -> Plan:
    """(long side, most steps) of each scale: ``scale_steps`` at every coarse scale and
    ``steps`` at the output's size (as ``settings.resolved()`` fills them in); the plateau
    rule may end a scale before."""
    settings = settings.resolved(settings.device)
    sides = parse_scales(settings.scales, long_side, start=coarsest)
    return [(side, int(settings.scale_steps or 0)) for side in sides[:-1]] + [(sides[-1], int(settings.steps or 0))]


def steps_before(plan: Sequence[Sequence[int]], scale: int) -> int:
    """Steps planned before scale ``scale``: where a progress count stands when that scale
    starts (a scale that the plateau rule ended early leaves its rest unused)."""
    return sum(int(steps) for _, steps in plan[:scale])


def check_memory(modality: Modality, signals: Signals, network: Network, settings: Settings) -> None:
    """Refuse a run whose largest scale would not fit the memory limit: the network's
    activations (measured on the meta device) twice over for backward, its weights, C,
    the styles, G and the optimiser's state. A tiled image run is bounded by its tiles."""
    g = signals.content
    layers = [*network.content_layers, *network.style_weights]
    acts = None if network.tile is not None else activation_bytes(network.model, tuple(g.shape), layers)
    model = network.model
    if acts is not None and isinstance(model, SampledNet) and is_stochastic(model):
        acts = round(acts * model.sampled_share(tuple(g.shape)))  # an evaluation runs only its sample of slices
    numel = g.numel()
    if choose_optimizer(settings, network) == "lbfgs":
        state = 2 * lbfgs_history(numel) * numel * 4
    else:
        state = 3 * numel * 4
    signal_bytes = sum(x.numel() * x.element_size() for _, x in signals.named())
    need = BACKWARD_FACTOR * (acts or 0) + parameter_bytes(network.model) + 2 * signal_bytes + state
    check_bytes(f"this {modality.kind} run", need, modality.memory_hint)


def coarsest_fit(signals: Signals, network: Network, coarsest: int) -> int:
    """Where ``scales="auto"`` starts: the kind's ``coarsest`` long side, raised until C and
    every S keep ``network.min_side`` samples on their shortest axis (a series net whose
    dilations span one heartbeat needs more than the default 256 samples)."""
    long = max(signals.content.shape[2:])
    start = coarsest
    for _, x in signals.named():
        # x's shortest axis at the scale whose content long side is `side` is about
        # side * short / long; one more sample absorbs the rounding of scaled_shape.
        start = max(start, -(-network.min_side * long // min(x.shape[2:])) + 1)
    return start


def check_scales_fit(plan: Plan, signals: Signals, network: Network) -> None:
    """Every scale's C and S must keep ``network.min_side`` samples along every axis."""
    long = max(signals.content.shape[2:])
    for side, _ in plan:
        for what, x in signals.named():
            short = min(scaled_shape(x.shape[2:], _style_side(x, side, long)))
            if short < network.min_side:
                raise NStyleError(
                    f"{what} is too small at the {side} scale ({short} on its shortest axis; the network "
                    f"needs at least {network.min_side}): raise --size or the first of --scales"
                )


def _style_side(x: torch.Tensor, side: int, long: int) -> int:
    """Long side of a signal at the scale whose content long side is ``side`` (of ``long``)."""
    return max(1, round(max(x.shape[2:]) * side / long))


def optimise_scales(
    modality: Modality, signals: Signals, network: Network, plan: Plan, settings: Settings,
    callback: Callback | None, extra_cost: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[list[RunResult], float]:
    """Optimise G at each scale of ``plan`` in turn; the runs, and α at the last scale.
    ``extra_cost(G)`` is added to J at the output's scale (video's temporal term)."""
    long = max(signals.content.shape[2:])
    runs: list[RunResult] = []
    offset, alpha = 0, 0.0
    for index, (side, steps) in enumerate(plan):
        at = _at_scale(modality, signals, side, long)
        objective, alpha = build_objective(modality, network, at, settings)
        if extra_cost is not None and index == len(plan) - 1:
            objective = PlusCost(objective, extra_cost)
        g0 = start_at_scale(modality, at, settings, runs[-1].g if runs else None)
        state = _carry_state(runs[-1].opt_state if runs else None, at.content.shape[2:])
        # A learning rate that L-BFGS had to lower at a coarse scale is kept at the finer ones.
        lr = runs[-1].lr if runs else settings.lr
        result = optimize(
            objective, g0, steps, optimizer=choose_optimizer(settings, network), lr=lr,
            callback=callback, opt_state=state, step_offset=offset, scale=index, plateau=settings.plateau_rule(),
            bounds=modality.bounds,
        )
        runs.append(result)
        offset += steps + 1  # each scale also measures J after its last step
        if result.interrupted or result.diverged:
            break
    return runs, alpha


def _at_scale(modality: Modality, signals: Signals, side: int, long: int) -> Signals:
    """C and the styles shrunk to the scale whose long side is ``side``."""
    if side == long:
        return signals
    content = modality.resize(signals.content, scaled_shape(signals.content.shape[2:], side))
    styles = [modality.resize(s, scaled_shape(s.shape[2:], _style_side(s, side, long))) for s in signals.styles]
    init = None if signals.init is None else modality.resize(signals.init, content.shape[2:])
    return Signals(content, styles, signals.meta, None, signals.mask, signals.mask_styles, signals.source, init=init)


def build_objective(
    modality: Modality, network: Network, at: Signals, settings: Settings
) -> tuple[StyleObjective | TiledObjective, float]:
    """J at one scale, whole or tiled (tiles only for the Gram loss of one style, no mask), and its α."""
    settings = settings.resolved(at.content.device)  # the precision --quality picks, if none was given
    alpha = settings.content_weight
    if alpha is None:
        alpha = default_alpha(modality, network, at, settings)
    beta = modality.style_weight(settings)
    c, styles = at.content, at.styles
    tile = network.tile
    if tile is not None and settings.style_loss == "gram" and len(styles) == 1 and at.mask is None:
        shape = tuple(max(a, styles[0].shape[2 + i]) for i, a in enumerate(c.shape[2:]))
        if tile == "auto":  # only where one whole evaluation would not fit in memory
            side = auto_tile(shape, c.device, settings.precision, network.min_side)
        else:  # an explicit side tiles whenever the signal is larger than one tile
            side = tile if max(shape) > tile else None
        if side is not None:
            objective: StyleObjective | TiledObjective = TiledObjective(
                network.model, c, styles[0], network.content_layers, network.style_weights, alpha, beta,
                settings.tv_weight, precision=settings.precision, tile=side, balance=balance_of(settings),
            )
            return objective, alpha
    regions = None
    if at.mask is not None and at.mask_styles is not None:
        w = region_weights(at.mask, tuple(c.shape[2:]), device=c.device)
        regions = [(w[r : r + 1], k) for r, k in enumerate(at.mask_styles) if k is not None]
    objective = StyleObjective(
        network.model, c, styles, network.content_layers, network.style_weights, alpha, beta, settings.tv_weight,
        precision=settings.precision, style_blend=parse_blend(settings.style_blend, len(styles)),
        style_loss=settings.style_loss, regions=regions, balance=balance_of(settings),
    )
    return objective, alpha


def default_alpha(modality: Modality, network: Network, at: Signals, settings: Settings) -> float:
    """α when none is given: 1 under the relative balance (J_content is already a relative
    error, whatever the size of the signal), else the kind's rule for the absolute costs."""
    return 1.0 if balance_of(settings) == "relative" else modality.content_weight(network, at.content)


def balance_of(settings: Settings) -> str:
    """The run's balance: the kinds with random or volume nets choose (``--balance``);
    images keep the seed's absolute costs, on which their layers and β were calibrated."""
    return str(getattr(settings, "balance", "absolute"))


def start_at_scale(modality: Modality, at: Signals, settings: Settings, previous: torch.Tensor | None) -> torch.Tensor:
    """The first scale's initial G; at a finer scale, the previous G upsampled plus the detail
    band of the initial signal (none for a noise start, whose detail is worth nothing). A
    start read from a file (``Signals.init``, e.g. an earlier result) replaces the kind's own."""

    def initial() -> torch.Tensor:
        if at.init is not None:
            return at.init.clone()
        return modality.start(at.content, at.styles[0], settings)

    if previous is None:
        return initial()
    detail = None if settings.init == "noise" else initial()
    return upscale(previous, tuple(at.content.shape[2:]), detail, modality.bounds)


def _carry_state(state: dict[str, torch.Tensor] | None, shape: Sequence[int]) -> dict[str, torch.Tensor] | None:
    """Adam's moments on the new grid (linear resize keeps them >= 0)."""
    if state is None:
        return None
    return {k: resize(v, shape, smooth=False) if v.dim() > 1 else v for k, v in state.items()}


def choose_optimizer(settings: Settings, network: Network) -> str:
    """The settings' optimiser; by default L-BFGS, or Adam where the net samples its input
    (each evaluation then sees other slices: a noisy J, which L-BFGS mishandles)."""
    if settings.optimizer is not None:
        return settings.optimizer
    return "adam" if is_stochastic(network.model) else "lbfgs"


def finish(modality: Modality, g: torch.Tensor, signals: Signals, settings: Settings) -> torch.Tensor:
    """G at the output's grid and in its units; untouched mask regions keep the content."""
    if g.shape[2:] != signals.content.shape[2:]:
        g = resize(g, signals.content.shape[2:])
    out = modality.finish(g.detach(), signals, settings)
    if signals.mask is not None and signals.mask_styles is not None:
        original = signals.original if signals.original is not None else signals.content
        untouched = [k is None for k in signals.mask_styles]
        out = composite(out, original.to(out.device), signals.mask, untouched, modality.feather)
    return out


__all__ = ["Plan", "StepInfo", "run", "scale_plan", "steps_before"]
