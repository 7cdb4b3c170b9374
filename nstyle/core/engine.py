"""Gradient descent on G, independent of what G is (image, sound, volume).

``optimize`` minimises any objective ``J(G) -> Terms`` from an initial G with L-BFGS or
Adam, one objective evaluation per step, calls back after each step, keeps the best G
seen, and stops cleanly on Ctrl-C (KeyboardInterrupt) or a non-finite J.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..errors import NStyleError, NStyleTypeError
from .functional import Terms

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content", "style")
# Default learning rates. L-BFGS scales its own steps (its first step is normalised by
# the gradient), so 1 is the natural value; Adam moves each sample by about lr per step,
# and 0.02 of the [0, 1] range is the value crowsonkb's tool uses for images.
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass(frozen=True)
class StepInfo:
    """J and its parts at the start of one step (floats, for logs and plots)."""

    step: int
    total: float
    content: float
    style: float
    tv: float
    scale: int = 0  # index of the scale in a coarse-to-fine run (0 for single-scale)


class BestStep:
    """Mixin for results with ``history`` and ``best_step``: the StepInfo of the returned G."""

    history: list[StepInfo]
    best_step: int

    @property
    def best(self) -> StepInfo | None:
        return next((h for h in self.history if h.step == self.best_step), None)


@dataclass
class RunResult(BestStep):
    """The best G found, the loss history, and how the run ended."""

    g: torch.Tensor
    history: list[StepInfo] = field(default_factory=list)
    best_step: int = -1
    interrupted: bool = False
    diverged: bool = False
    # The learning rate at the end: lower than the one given where L-BFGS overshot and restarted.
    lr: float = 0.0
    # Adam's moment estimates at the end (for carrying them to the next scale); None for L-BFGS.
    opt_state: dict[str, torch.Tensor] | None = None
    # Ended by the plateau rule before its last step.
    plateaued: bool = False


Callback = Callable[[StepInfo, torch.Tensor], None]


@dataclass(frozen=True)
class Plateau:
    """Stop a run once the best J has fallen by less than ``tol`` (relative) over the last
    ``window`` steps: ``best[k − window] − best[k] < tol · best[k]``.

    Late L-BFGS steps at one scale buy less and less (on the image defaults the last half
    of a 200-step run lowered J by a few per cent while costing half the time); a plateau
    rule spends steps where they still pay and hands the rest to the next scale or ends.
    """

    tol: float
    window: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tol) and self.tol >= 0):
            raise NStyleError(f"plateau tolerance must be a number >= 0, got {self.tol}")
        if self.window < 1:
            raise NStyleError(f"plateau window must be at least 1 step, got {self.window}")

    def reached(self, best: list[float]) -> bool:
        """True when ``best`` (the best J after each step so far) has flattened out."""
        if len(best) <= self.window or not math.isfinite(best[-1]):
            return False
        return best[-1 - self.window] - best[-1] < self.tol * abs(best[-1])


def initial_signal(
    init: str,
    content: torch.Tensor | None,
    style: torch.Tensor | None = None,
    seed: int = 0,
    shape: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """The starting G: ``noise`` (the seed's default), ``content`` or ``style``.

    Noise is uniform over [0, 1], the full range of the signal's own domain, drawn from a
    generator seeded with ``seed`` so that a run is repeatable. (Tiny noise around a
    constant stalls: the network's gradients at a flat input are near zero.) ``style``
    is resized to the content's spatial size.
    """
    if init == "content":
        if content is None:
            raise NStyleError("init 'content' needs a content signal")
        return content.detach().clone()
    if init == "style":
        if style is None:
            raise NStyleError("init 'style' needs a style signal")
        target = tuple(content.shape[2:]) if content is not None else tuple(style.shape[2:])
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[style.dim() - 2]
        return torch.nn.functional.interpolate(style.detach(), size=target, mode=mode, align_corners=False)
    if init == "noise":
        ref = content if content is not None else style
        if not shape:
            if ref is None:
                raise NStyleError("init 'noise' needs a content or style signal, or a shape")
            shape = tuple(ref.shape)
        gen = torch.Generator().manual_seed(int(seed))
        return torch.rand(shape, generator=gen).to(ref.device if ref is not None else "cpu")
    raise NStyleError(f"unknown init {init!r}; choose one of {', '.join(INITS)} or an image file")


def noise_like(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian noise with ``x``'s per-channel mean and standard deviation over its last axis.

    The start for sounds and series: at the data's own scale on purpose, since tiny noise
    around a constant stalls (the ReLU features, and their gradients, of a near-flat signal
    are near zero). Drawn on the CPU, so a seed gives the same noise on any device.
    """
    gen = torch.Generator().manual_seed(int(seed))
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True).clamp_min(1e-8)
    return mean + std * torch.randn(x.shape, generator=gen).to(x.device)


def fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Tile or cut ``x`` along its last axis to ``length`` (a style start for a 1D G)."""
    reps = math.ceil(length / x.shape[-1])
    return x.repeat(*([1] * (x.dim() - 1)), reps)[..., :length].clone()


def optimize(
    objective: Callable[[torch.Tensor], Terms],
    g0: torch.Tensor,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    callback: Callback | None = None,
    *,
    history_size: int | None = None,
    opt_state: dict[str, torch.Tensor] | None = None,
    step_offset: int = 0,
    scale: int = 0,
    plateau: Plateau | None = None,
    bounds: tuple[float, float] | None = None,
) -> RunResult:
    """Minimise ``objective`` over G starting at ``g0`` for ``steps`` evaluations.

    Each step evaluates J once: L-BFGS runs without line search (one function evaluation
    per iteration, its history kept across steps); Adam takes one step per evaluation.
    The G with the lowest J seen is returned, so Ctrl-C or divergence never loses work.
    ``history_size`` (L-BFGS) defaults to what fits ``LBFGS_HISTORY_BYTES``;
    ``opt_state`` starts Adam from given moments (``RunResult.opt_state`` of a previous
    run, resized); steps are numbered from ``step_offset`` and tagged with ``scale``.
    With ``plateau`` the run ends early once J has flattened out (``Plateau``); ``steps``
    is then the most it takes. With ``bounds`` (lo, hi) G is projected into that box after
    every step, so every J measured, and the G returned, is one the output can hold, and
    no step moves a sample by more than ``STEP_LIMIT`` of the box's width (``_limit``).
    """
    lr = _checked_lr(optimizer, steps, lr)
    g = g0.detach().clone().contiguous()  # L-BFGS views the gradient flat
    if bounds is not None:
        g = g.clamp(*bounds)
    g.requires_grad_(True)
    opt = _make_optimizer(optimizer, g, lr, history_size, opt_state)

    result = RunResult(g=g0.detach().clone())
    best_total = math.inf
    best_so_far: list[float] = []  # the best J after each step, for the plateau rule
    last: dict[str, object] = {}

    def closure() -> float:
        opt.zero_grad(set_to_none=True)
        terms = _evaluate(objective, g, bounds)
        last["terms"], last["g"] = terms, g.detach().clone()  # J is measured at this G
        return float(terms.total.detach())  # optimizers only read J's value (the gradient is set)

    def record(terms: Terms, g_at: torch.Tensor, step: int) -> StepInfo:
        """Log J at ``g_at`` and keep that G if J is the lowest so far."""
        nonlocal best_total
        total, content, style, tv = (float(v.detach()) for v in (terms.total, terms.content, terms.style, terms.tv))
        info = StepInfo(step_offset + step, total, content, style, tv, scale=scale)
        if math.isfinite(info.total):
            result.history.append(info)
            if info.total < best_total:
                best_total, result.best_step, result.g = info.total, info.step, g_at
        return info

    try:
        for step in range(steps):
            _step(opt, closure, g, bounds)  # evaluates J at the current G, then moves G
            info = record(last["terms"], last["g"], step)  # type: ignore[arg-type]
            if not math.isfinite(info.total):
                result.diverged = True
                break
            if optimizer == "lbfgs" and info.total > OVERSHOOT * best_total:
                # A step without line search overshot (J far above the best seen; the
                # curvature pairs it came from are misleading): go back to the best G and
                # rebuild L-BFGS's memory from there, at a smaller step.
                lr *= 0.5
                with torch.no_grad():
                    g.copy_(result.g)
                opt = _make_optimizer(optimizer, g, lr, history_size, None)
            if callback is not None:
                callback(info, g.detach())
            best_so_far.append(best_total)
            if plateau is not None and plateau.reached(best_so_far):
                result.plateaued = True
                break
        else:
            if steps:  # the last update has not been measured yet
                with torch.no_grad():
                    record(objective(g), g.detach().clone(), steps)
    except KeyboardInterrupt:
        result.interrupted = True
    result.lr = lr
    result.opt_state = _adam_state(opt, g)
    return result


def _checked_lr(optimizer: str, steps: int, lr: float | None) -> float:
    """``optimize``'s arguments checked; the learning rate to use."""
    if optimizer not in OPTIMIZERS:
        raise NStyleError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if steps < 0:
        raise NStyleError(f"steps must be >= 0, got {steps}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise NStyleError(f"learning rate must be a positive number, got {lr}")
    return lr


def _evaluate(objective: Callable[[torch.Tensor], Terms], g: torch.Tensor, bounds: tuple[float, float] | None) -> Terms:
    """J at G and dJ/dG in ``g.grad`` (the projected gradient where G is bounded)."""
    terms = objective(g)
    if not isinstance(terms, Terms):
        raise NStyleTypeError(
            f"the objective must return nstyle's Terms (total, content, style, tv), got {type(terms).__name__}"
        )
    terms.total.backward()
    if bounds is not None and g.grad is not None:
        _free_gradient(g, bounds)
    return terms


def _step(opt: torch.optim.Optimizer, closure: Callable[[], float], g: torch.Tensor,
          bounds: tuple[float, float] | None) -> None:
    """One optimiser step (one evaluation of J), then the step limited (``_limit``) and G
    back into ``bounds``."""
    before = g.detach().clone() if bounds is not None else None
    opt.step(closure)  # type: ignore[arg-type]
    if before is not None and bounds is not None:
        _limit(g, before, STEP_LIMIT * (bounds[1] - bounds[0]))
        _project(opt, g, before, bounds)


def _limit(g: torch.Tensor, before: torch.Tensor, largest: float) -> None:
    """Shorten the step G - ``before`` so that no sample moves by more than ``largest``.

    L-BFGS without a line search takes the step its curvature pairs predict; in its first
    steps (one or two pairs) that prediction can be off by orders of magnitude, and a step
    that sends every pixel to the box's walls raises J 200-fold (Tübingen x The Starry Night,
    the second step of every scale). A cap on the step, a trust region in the max norm, keeps
    those steps bounded; the direction is kept, and ``_project`` records the shortened step
    in L-BFGS's state, so its next curvature pair is a true one.
    """
    with torch.no_grad():
        step = g - before
        biggest = float(step.abs().max())
        if biggest > largest:
            g.copy_(before + step * (largest / biggest))


def _free_gradient(g: torch.Tensor, bounds: tuple[float, float]) -> None:
    """Zero dJ/dG where G sits on a bound and descent would push it further out (the
    projected gradient): those samples cannot move, and a gradient the optimizer cannot
    follow would only mislead its step size and curvature estimates."""
    with torch.no_grad():
        lo, hi = bounds
        grad = g.grad
        assert grad is not None
        grad.masked_fill_(((g <= lo) & (grad > 0)) | ((g >= hi) & (grad < 0)), 0.0)


def _project(opt: torch.optim.Optimizer, g: torch.Tensor, before: torch.Tensor, bounds: tuple[float, float]) -> None:
    """Clip G into ``bounds`` after a step (projected gradient descent).

    Unconstrained image runs drifted to [-0.3, 1.3], and the saved, clipped picture's J was
    2.5-9x the J the run had reached. L-BFGS builds its curvature pairs from the step it
    *meant* to take (s = t·d, stored in its state); after a clip the step taken is shorter,
    so ``d`` is set to the step taken over ``t``, and the next pair (s, y) is a true secant
    pair. (Without this the pairs lie and L-BFGS keeps overshooting.)
    """
    with torch.no_grad():
        g.clamp_(*bounds)
        if isinstance(opt, torch.optim.LBFGS):
            state = opt.state[opt.param_groups[0]["params"][0]]
            if "d" in state and state.get("t"):
                state["d"] = (g - before).flatten() / state["t"]


def _adam_state(opt: torch.optim.Optimizer, g: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """Adam's moments for ``g`` (to carry them to the next scale); None for L-BFGS."""
    if not isinstance(opt, torch.optim.Adam) or g not in opt.state:
        return None
    return {k: v.detach() for k, v in opt.state[g].items()}


def _make_optimizer(
    optimizer: str,
    g: torch.Tensor,
    lr: float,
    history_size: int | None,
    opt_state: dict[str, torch.Tensor] | None,
) -> torch.optim.Optimizer:
    """``optimize``'s optimizer over ``g``: L-BFGS (one evaluation per step, history sized
    by ``lbfgs_history`` unless given) or Adam (started from ``opt_state`` if given)."""
    if optimizer == "lbfgs":
        history = lbfgs_history(g.numel()) if history_size is None else int(history_size)
        return torch.optim.LBFGS(
            [g], lr=lr, max_iter=1, history_size=history, tolerance_grad=0.0, tolerance_change=0.0
        )
    opt = torch.optim.Adam([g], lr=lr)
    if opt_state is not None:
        opt.state[g] = {k: v.to(g.device).clone() for k, v in opt_state.items()}
    return opt


# No step moves a bounded sample by more than this share of its range (see _limit). Past
# the first steps of a scale, image runs at 256 px move no pixel by more than 0.1 per step
# (Tübingen x The Starry Night: 2 of 150 steps were longer); caps of 0.1, 0.2 and 1.0 ended
# within 1.5 % of each other's J on four pairs, a run without a cap 50 % higher.
STEP_LIMIT = 0.25

# A step that raises J above this multiple of the best J so far restarts L-BFGS (see optimize).
OVERSHOOT = 10.0

# L-BFGS keeps two vectors the size of G per history entry. 50 entries cost 300 MB for
# a 1024 px image but 20 GB at 4096 px, so the history is cut to fit this budget
# (at least 5 entries, which is still a quasi-Newton method).
LBFGS_HISTORY_BYTES = 4 * 2**30
LBFGS_MAX_HISTORY = 50


def lbfgs_history(numel: int, budget: int = LBFGS_HISTORY_BYTES) -> int:
    """History entries that fit ``budget`` bytes for a G of ``numel`` float32 values (5 to 50)."""
    return max(5, min(LBFGS_MAX_HISTORY, budget // (2 * 4 * max(1, numel))))
