"""nstyle: neural style transfer for images, sounds, series and volumes through one N-D engine.

    import nstyle
    result = nstyle.stylize("photo.jpg", "painting.jpg", steps=200)
    result.save("out.png")
"""

from .api import SignalResult, StylizeResult, stylize, stylize_audio, stylize_series, stylize_volume
from .core.engine import RunResult, StepInfo, initial_signal, optimize
from .core.functional import content_cost, gram_matrix, layer_style_cost, style_cost, total_cost, total_variation
from .core.objective import StyleObjective
from .errors import NStyleError
from .kinds import MODALITIES, ImageResult, Modality, Result, VolumeResult
from .nets import VGG, build_net
from .options import AudioSettings, ImageSettings, SeriesSettings, Settings, VolumeSettings
from .pipeline import run

__version__ = "0.1.0"

__all__ = [
    "MODALITIES",
    "AudioSettings",
    "ImageResult",
    "ImageSettings",
    "Modality",
    "NStyleError",
    "Result",
    "RunResult",
    "SeriesSettings",
    "Settings",
    "SignalResult",
    "StepInfo",
    "StyleObjective",
    "StylizeResult",
    "VGG",
    "VolumeResult",
    "VolumeSettings",
    "__version__",
    "build_net",
    "content_cost",
    "gram_matrix",
    "initial_signal",
    "layer_style_cost",
    "optimize",
    "run",
    "style_cost",
    "stylize",
    "stylize_audio",
    "stylize_series",
    "stylize_volume",
    "total_cost",
    "total_variation",
]
