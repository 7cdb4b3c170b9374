"""The kinds of signal nstyle restyles, one adapter each (``base.Modality``).

``MODALITIES`` maps a kind's name (the CLI's subcommand) to its adapter. Adapters hold
no state between runs, so one instance of each serves every run.
"""

from __future__ import annotations

from .audio import AudioModality
from .base import Modality, Network, Result, Signals
from .image import ImageModality, ImageResult
from .series import SeriesModality
from .volume import VolumeModality, VolumeResult

MODALITIES: dict[str, Modality] = {
    "image": ImageModality(),
    "audio": AudioModality(),
    "series": SeriesModality(),
    "volume": VolumeModality(),
}

__all__ = [
    "MODALITIES", "AudioModality", "ImageModality", "ImageResult", "Modality", "Network", "Result", "SeriesModality",
    "Signals", "VolumeModality", "VolumeResult",
]
