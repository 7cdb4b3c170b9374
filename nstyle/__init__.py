"""nstyle: neural style transfer for images, sounds, series and volumes through one N-D engine.

    import nstyle
    result = nstyle.stylize("photo.jpg", "painting.jpg", steps=200)
    result.save("out.png")

The names below load on first use (PEP 562), so ``import nstyle`` and the ``nstyle``
command start without torch until they need it; that lets the command line install its
Ctrl-C/SIGTERM handling before the slow imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "SignalResult": "api", "StylizeResult": "api", "stylize": "api", "stylize_audio": "api",
    "stylize_series": "api", "stylize_volume": "api",
    "RunResult": "core.engine", "StepInfo": "core.engine", "initial_signal": "core.engine", "optimize": "core.engine",
    "content_cost": "core.functional", "gram_matrix": "core.functional", "layer_style_cost": "core.functional",
    "style_cost": "core.functional", "total_cost": "core.functional", "total_variation": "core.functional",
    "StyleObjective": "core.objective",
    "NStyleError": "errors", "NStyleTypeError": "errors",
    "explain": "explainer",
    "batch": "jobs", "Job": "jobs", "JobResult": "jobs", "read_plan": "jobs",
    "MODALITIES": "kinds", "ImageResult": "kinds", "Modality": "kinds", "Result": "kinds", "VolumeResult": "kinds",
    "VGG": "nets", "build_net": "nets",
    "AudioSettings": "options", "ImageSettings": "options", "SeriesSettings": "options", "Settings": "options",
    "VolumeSettings": "options",
    "run": "pipeline",
    "stylize_video": "video", "VideoResult": "video", "VideoSettings": "options",
}

__all__ = [
    "AudioSettings", "ImageResult", "ImageSettings", "Job", "JobResult", "MODALITIES", "Modality",
    "NStyleError", "NStyleTypeError", "Result", "RunResult", "SeriesSettings", "Settings", "SignalResult",
    "StepInfo", "StyleObjective", "StylizeResult", "VGG", "VideoResult", "VideoSettings", "VolumeResult",
    "VolumeSettings", "__version__", "batch", "build_net", "content_cost", "explain", "gram_matrix",
    "initial_signal", "layer_style_cost", "optimize", "read_plan", "run", "style_cost", "stylize",
    "stylize_audio", "stylize_series", "stylize_video", "stylize_volume", "total_cost", "total_variation",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nstyle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what the names are, for type checkers and IDEs
    from .api import SignalResult, StylizeResult, stylize, stylize_audio, stylize_series, stylize_volume
    from .core.engine import RunResult, StepInfo, initial_signal, optimize
    from .core.functional import (
        content_cost,
        gram_matrix,
        layer_style_cost,
        style_cost,
        total_cost,
        total_variation,
    )
    from .core.objective import StyleObjective
    from .errors import NStyleError, NStyleTypeError
    from .explainer import explain
    from .jobs import Job, JobResult, batch, read_plan
    from .kinds import MODALITIES, ImageResult, Modality, Result, VolumeResult
    from .nets import VGG, build_net
    from .options import AudioSettings, ImageSettings, SeriesSettings, Settings, VideoSettings, VolumeSettings
    from .pipeline import run
    from .video import VideoResult, stylize_video
