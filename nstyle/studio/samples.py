"""Samples a page offers for a first try: files that installed packages ship (no download).

Images: scikit-image's photos and textures (``nstyle.samples``). Sounds: Debian's
alsa-utils speech and sound-theme-freedesktop tones, where installed. Series: pydicom's
12-lead ECG test file. Volumes: nibabel's test MR volumes.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

IMAGES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "ihc.png", "hubble_deep_field.jpg")
SOUNDS = (
    "/usr/share/sounds/alsa/Front_Center.wav", "/usr/share/sounds/alsa/Noise.wav",
    "/usr/share/sounds/freedesktop/stereo/phone-outgoing-calling.oga",
    "/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga",
)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@cache
def sample_files(kind: str) -> dict[str, Path]:
    """{name shown: file} of the samples of ``kind`` present on this machine."""
    found: list[Path] = []
    if kind == "image" and (skimage := _package_dir("skimage")) is not None:
        found = [skimage / "data" / n for n in IMAGES]
    elif kind == "audio":
        found = [Path(p) for p in SOUNDS]
    elif kind == "series" and (pydicom := _package_dir("pydicom")) is not None:
        found = [pydicom / "data" / "test_files" / "waveform_ecg.dcm"]
    elif kind == "volume" and (nibabel := _package_dir("nibabel")) is not None:
        found = [nibabel / "tests" / "data" / n for n in ("anatomical.nii", "example4d.nii.gz")]
    return {p.name: p for p in found if p.is_file()}
