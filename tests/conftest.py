"""Shared fixtures: the bundled VGG16 nets, built once per session (build_net is cached,
but its cache is small, so the fixtures hold their own references)."""

from __future__ import annotations

import pytest
import torch

from nstyle.nets import build_net


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tests' tensors are tiny and gain nothing from intra-op threads; on a busy
    2-core machine torch's spinning workers make them many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def vgg16_norm():
    """Bundled HED/VGG16, activation-normalised (the default net)."""
    return build_net("vgg16")


@pytest.fixture(scope="session")
def vgg16_raw():
    """Bundled HED/VGG16 exactly as stored in the h5 file (no normalisation)."""
    return build_net("vgg16", normalize=False)
