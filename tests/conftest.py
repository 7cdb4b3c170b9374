"""Shared fixtures: the bundled VGG16 nets, built once per session (build_net is cached,
but its cache is small, so the fixtures hold their own references)."""

from __future__ import annotations

import pytest

from nstyle.nets import build_net


@pytest.fixture(scope="session")
def vgg16_norm():
    """Bundled HED/VGG16, activation-normalised (the default net)."""
    return build_net("vgg16")


@pytest.fixture(scope="session")
def vgg16_raw():
    """Bundled HED/VGG16 exactly as stored in the h5 file (no normalisation)."""
    return build_net("vgg16", normalize=False)
