"""The public one-call functions: ``stylize`` (images), ``stylize_audio``, ``stylize_series``,
``stylize_volume``. Each is ``nstyle.pipeline.run`` with its kind's adapter and settings; their
keyword options and defaults are the fields of ``nstyle.options`` (see each settings
type, or ``help(nstyle.stylize)``), the same as the CLI's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from .core.engine import Callback
from .kinds import MODALITIES, ImageResult, Result, VolumeResult
from .options import SETTINGS, Settings
from .pipeline import run

# The names results had before the one pipeline; kept for code that imports them.
StylizeResult = ImageResult
SignalResult = Result


def _stylize(kind: str, content: Any, style: Any, callback: Callback | None, options: dict[str, Any]) -> Result:
    settings = SETTINGS[kind].from_options(options)
    return run(MODALITIES[kind], content, style, settings, callback)


def stylize(
    content: Any, style: Any | Sequence[Any], *, callback: Callback | None = None, **options: Any
) -> ImageResult:
    """Re-render the image ``content`` in the style of ``style`` (one image or several) by
    minimising α·J_content + β·J_style; options as in ``nstyle.options.ImageSettings``.

    ``content``/``style``/``init`` accept paths, PIL images, NumPy arrays (H, W[, C]) and
    tensors (C, H, W). ``size`` is the output's long side in pixels (None keeps the
    content's size); coarse-to-fine from 128 px by default (``scales``).
    """
    return _stylize("image", content, style, callback, options)  # type: ignore[return-value]


def stylize_audio(
    content: Any, style: Any | Sequence[Any], *, callback: Callback | None = None, **options: Any
) -> Result:
    """Re-render the sound ``content`` in the style (timbre, texture) of ``style``; options as
    in ``nstyle.options.AudioSettings`` (see ``nstyle.kinds.audio``)."""
    return _stylize("audio", content, style, callback, options)


def stylize_series(
    content: Any, style: Any | Sequence[Any], *, callback: Callback | None = None, **options: Any
) -> Result:
    """Re-render the multichannel series ``content`` in the style of ``style``; options as in
    ``nstyle.options.SeriesSettings`` (see ``nstyle.kinds.series``)."""
    return _stylize("series", content, style, callback, options)


def stylize_volume(
    content: Any, style: Any | Sequence[Any], *, callback: Callback | None = None, **options: Any
) -> VolumeResult:
    """Re-render the volume ``content`` in the style of ``style``, keeping C's geometry; options
    as in ``nstyle.options.VolumeSettings`` (see ``nstyle.kinds.volume``)."""
    return _stylize("volume", content, style, callback, options)  # type: ignore[return-value]


def _signature(settings: type[Settings], returns: type) -> inspect.Signature:
    """``(content, style, *, <every setting with its default>, callback=None)`` for help() and IDEs."""
    params = [
        inspect.Parameter("content", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("style", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default) for f in fields(settings)]
    params.append(inspect.Parameter("callback", inspect.Parameter.KEYWORD_ONLY, default=None))
    return inspect.Signature(params, return_annotation=returns)


_FUNCTIONS: dict[str, tuple[Callable[..., Result], type]] = {
    "image": (stylize, ImageResult), "audio": (stylize_audio, Result), "series": (stylize_series, Result),
    "volume": (stylize_volume, VolumeResult),
}
for _kind, (_function, _returns) in _FUNCTIONS.items():
    _function.__signature__ = _signature(SETTINGS[_kind], _returns)  # type: ignore[attr-defined]
