"""Pictures drawn by the program: spectrograms (audio) and traces (series) of 1D results,
and the loss curves of any run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.engine import StepInfo
from ..errors import NStyleError
from .atomic import check_writable, write_atomic


def _figure(rows: int, row_height: float = 2.4):
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(10, row_height * rows), squeeze=False, constrained_layout=True)
    return plt, fig, [a[0] for a in axes]


def save_figure(plt, fig, path: str | Path) -> Path:
    """Write a matplotlib figure atomically (format from the extension) and close it."""
    def write(tmp: Path) -> None:
        fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".").lower())

    try:
        return write_atomic(path, write)
    finally:
        plt.close(fig)


def plot_audio(
    content: str | Path, style: str | Path, result: str | Path, path: str | Path, options: dict[str, Any],
    more: Sequence[tuple[str, str | Path]] = (), result_label: str = "result G",
) -> Path:
    """Log-magnitude spectrograms of C, S and G (a mono mix), one above the other; ``more``
    adds (label, file) rows below, e.g. the same pair under other settings."""
    from ..modalities.audio import load_audio, log_magnitude

    rate, n_fft, hop = options["rate"], options["n_fft"], options["hop"]
    rows = [("content C", content), ("style S", style), (result_label, result), *more]
    plt, fig, axes = _figure(len(rows))
    for ax, (label, src) in zip(axes, rows):
        sig = load_audio(src, rate=rate, mono=True, max_seconds=options.get("max_seconds"))
        spec = log_magnitude(sig.tensor, n_fft, hop)[0].numpy()
        seconds = sig.tensor.shape[-1] / rate
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, rate / 2000))
        ax.set_title(f"{label}: {Path(src).name}", loc="left", fontsize=9)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    return save_figure(plt, fig, path)


def plot_series(
    content: str | Path, style: str | Path, result: str | Path, path: str | Path, options: dict[str, Any]
) -> Path:
    """The first leads of C, S and G as traces (at most 3 leads, the first 5000 samples)."""
    from ..modalities.series import load_series

    cols, tcol = options.get("columns"), options.get("time_column")
    style_cols = options.get("style_columns") or cols
    sigs = [
        load_series(content, columns=cols, time_column=tcol),
        load_series(style, columns=style_cols, time_column=tcol),
        load_series(result, columns=cols, time_column=tcol),
    ]
    plt, fig, axes = _figure(3)
    for ax, label, sig in zip(axes, ("content C", "style S", "result G"), sigs):
        x: torch.Tensor = sig.tensor[0, :3, :5000]
        t = torch.arange(x.shape[-1]) / (sig.rate or 1.0)
        for i in range(x.shape[0]):
            ax.plot(t.numpy(), x[i].numpy(), lw=0.7, label=sig.names[i] if i < len(sig.names) else f"lead {i}")
        ax.set_title(f"{label}: {Path(sig.source).name}", loc="left", fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("seconds" if sigs[0].rate else "samples")
    return save_figure(plt, fig, path)


PLOT_EXTENSIONS = (".png", ".pdf", ".svg")
# J and its terms come from float32 sums, each good to ~1e-7 of its size, so α·J_content
# recovered as J − β·J_style − tv·TV is noise when it is below this share of J (e.g.
# J_content = 0 at a content start); such values are left off the log axis, not drawn as 1e-9.
CANCELLATION = 1e-6


def loss_terms(history: Sequence[StepInfo], beta: float, tv_weight: float = 0.0) -> dict[str, np.ndarray]:
    """The curves of ``plot_losses`` as float64 arrays over the history: ``step``, ``J``,
    ``content`` = α·J_content, ``style`` = β·J_style, ``tv`` = tv_weight·TV, ``scale``.

    α·J_content is J − β·J_style − tv_weight·TV rather than α times J_content: α differs
    between the scales of a coarse-to-fine run (it follows the pixel count), and J
    already holds the α each step used. NaN where it is not positive or lost to rounding
    (below ``CANCELLATION``·J).
    """
    steps = np.array([h.step for h in history], dtype=np.int64)
    total = np.array([h.total for h in history], dtype=np.float64)
    style = float(beta) * np.array([h.style for h in history], dtype=np.float64)
    tv = float(tv_weight) * np.array([h.tv for h in history], dtype=np.float64)
    content = total - style - tv
    content[~(content > CANCELLATION * np.abs(total))] = np.nan
    scale = np.array([h.scale for h in history], dtype=np.int64)
    return {"step": steps, "J": total, "content": content, "style": style, "tv": tv, "scale": scale}


def plot_losses(
    history: Sequence[StepInfo], path: str | Path, beta: float, tv_weight: float = 0.0, title: str | None = None
) -> Path:
    """J, α·J_content and β·J_style (and tv_weight·TV if non-zero) against the step, on a
    log axis, with a dashed line where each new scale of a coarse-to-fine run starts.
    Written atomically as .png, .pdf or .svg; see ``loss_terms`` for the curves."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_EXTENSIONS:
        raise NStyleError(f"{path}: plots are written as {', '.join(PLOT_EXTENSIONS)}")
    if not history:
        raise NStyleError(f"{path}: no steps to plot (the run took no steps)")
    check_writable(path)
    t = loss_terms(history, beta, tv_weight)
    plt, fig, (ax,) = _figure(1, row_height=4.0)
    starts = [0] + [i for i in range(1, len(history)) if t["scale"][i] != t["scale"][i - 1]]
    curves = [
        ("J", "black", 1.4, "J"), ("content", "tab:blue", 1.0, "α·J_content"), ("style", "tab:red", 1.0, "β·J_style")
    ]
    if tv_weight:
        curves.append(("tv", "tab:green", 1.0, "tv·TV"))
    for key, colour, lw, label in curves:
        # One line per scale: the jump where G is upsampled is not a step of the descent.
        for n, (a, b) in enumerate(zip(starts, [*starts[1:], len(history)])):
            ax.plot(t["step"][a:b], t[key][a:b], color=colour, lw=lw, label=label if n == 0 else None)
    ax.set_yscale("log", nonpositive="mask")
    if len(starts) > 1:
        for i in starts:
            if i:
                ax.axvline(t["step"][i] - 0.5, color="grey", ls="--", lw=0.8)
            ax.text(t["step"][i], 1.0, f" scale {t['scale'][i]}", transform=ax.get_xaxis_transform(),
                    va="top", ha="left", fontsize=8, color="grey")
    ax.set_xlabel("step")
    ax.set_ylabel("cost")
    ax.set_title(title or "J = α·J_content + β·J_style", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(plt, fig, path)
