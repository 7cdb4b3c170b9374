"""Pictures of 1D results drawn by the program: spectrograms (audio) and traces (series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .atomic import write_atomic


def _figure(rows: int):
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.4 * rows), squeeze=False, constrained_layout=True)
    return plt, fig, [a[0] for a in axes]


def _save(plt, fig, path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".").lower())

    try:
        return write_atomic(path, write)
    finally:
        plt.close(fig)


def plot_audio(content: str | Path, style: str | Path, result: str | Path, path: str | Path, options: dict[str, Any]) -> Path:
    """Log-magnitude spectrograms of C, S and G (first channel), one above the other."""
    from .modalities.audio import load_audio, log_magnitude

    rate, n_fft, hop = options["rate"], options["n_fft"], options["hop"]
    plt, fig, axes = _figure(3)
    for ax, (label, src) in zip(axes, (("content C", content), ("style S", style), ("result G", result))):
        sig = load_audio(src, rate=rate, mono=True, max_seconds=options.get("max_seconds"))
        spec = log_magnitude(sig.tensor, n_fft, hop)[0].numpy()
        seconds = sig.tensor.shape[-1] / rate
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, rate / 2000))
        ax.set_title(f"{label}: {Path(src).name}", loc="left", fontsize=9)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    return _save(plt, fig, path)


def plot_series(content: str | Path, style: str | Path, result: str | Path, path: str | Path, options: dict[str, Any]) -> Path:
    """The first leads of C, S and G as traces (at most 3 leads, the first 5000 samples)."""
    from .modalities.series import load_series

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
    return _save(plt, fig, path)
