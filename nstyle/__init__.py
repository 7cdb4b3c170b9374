"""nstyle: neural style transfer for images, sounds and volumes through one N-D engine.

    import nstyle
    result = nstyle.stylize("photo.jpg", "painting.jpg", steps=200)
    result.save("out.png")
"""

from .api import StylizeResult, stylize
from .engine import RunResult, StepInfo, initial_signal, optimize
from .errors import NStyleError
from .nets import VGG, build_net
from .objective import (
    StyleObjective,
    content_cost,
    gram_matrix,
    layer_style_cost,
    style_cost,
    total_cost,
    total_variation,
)
from .signals import SignalResult, stylize_audio, stylize_series
from .volumes import VolumeResult, stylize_volume

__version__ = "0.1.0"

__all__ = [
    "NStyleError",
    "RunResult",
    "StepInfo",
    "StyleObjective",
    "SignalResult",
    "StylizeResult",
    "VGG",
    "VolumeResult",
    "__version__",
    "build_net",
    "content_cost",
    "gram_matrix",
    "initial_signal",
    "layer_style_cost",
    "optimize",
    "style_cost",
    "stylize",
    "stylize_audio",
    "stylize_series",
    "stylize_volume",
    "total_cost",
    "total_variation",
]
