"""Real images that installed packages ship, for the demo, tests and net calibration.

All come from scikit-image's ``skimage/data`` folder (installed with the package, no
download): ``astronaut.png`` (Eileen Collins, NASA, public domain), ``chelsea.png``
(Stefan van der Walt's cat, CC0), ``coffee.png`` (Rachel Michetti, CC0), ``rocket.jpg``
(SpaceX, CC0), ``ihc.png`` (immunohistochemistry stain, Guillermo Bordignon's data,
public domain), ``hubble_deep_field.jpg`` (NASA, public domain).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import NStyleError

# Photos used to measure mean activations when normalising a network.
CALIBRATION_IMAGES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def sample_path(name: str) -> Path:
    """Path of one of scikit-image's bundled sample images (no network, no import of skimage)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise NStyleError("scikit-image is not installed; it ships the sample images (pip install scikit-image)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.is_file():
        raise NStyleError(f"{path}: scikit-image sample image missing")
    return path

