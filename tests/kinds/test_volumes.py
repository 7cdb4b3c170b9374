"""3D style transfer on real MR volumes, under each network: G's Gram statistics move
towards S's, G keeps C's geometry, and G is as smooth across slices as C.

Content: nibabel's bundled anatomical.nii (33 x 41 x 25 MR); style: volume 0 of its
example4d.nii.gz (128 x 96 x 24 MR), both read from nibabel/tests/data.
"""

from __future__ import annotations

import os

import nibabel
import pytest
import torch

from nstyle import stylize_volume
from nstyle.core.functional import scaled_gram
from nstyle.modalities.volume import load_volume
from nstyle.nets import build_net
from nstyle.nets.random import RandomBranches, parse_branches
from nstyle.nets.volume import Inflated, Triplanar

DATA = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
CONTENT, STYLE = os.path.join(DATA, "anatomical.nii"), os.path.join(DATA, "example4d.nii.gz")

# Every test here is an end-to-end 3D run.
pytestmark = pytest.mark.slow


def style_distance(net, layers, x: torch.Tensor, s: torch.Tensor) -> float:
    """Σ_l ‖Ĝ_l(x) − Ĝ_l(S)‖² under ``net``."""
    with torch.no_grad():
        ax, as_ = net(x, layers), net(s, layers)
    return sum(float((scaled_gram(ax[n]) - scaled_gram(as_[n])).pow(2).sum()) for n in layers)


def flicker(x: torch.Tensor) -> float:
    """Mean squared difference between neighbouring slices, over the three axes."""
    return sum(float(torch.diff(x, dim=d).pow(2).mean()) for d in (2, 3, 4)) / 3


@pytest.fixture(scope="module")
def volumes():
    return load_volume(CONTENT).tensor, load_volume(STYLE).tensor


def judge(kind: str):
    """A measuring net built independently of the run's (for random: another seed)."""
    if kind == "random":
        net = RandomBranches(1, parse_branches("3:64,3x2:64,3x4:64"), dims=3, seed=4242)
        return net, net.default_layers()
    vgg = build_net("vgg16")
    if kind == "triplanar":
        return Triplanar(vgg), Triplanar.expand_layers(["relu1_1", "relu2_1", "relu3_1"])
    return Inflated(vgg), ["relu1_1", "relu2_1", "relu3_1"]


@pytest.mark.parametrize("kind", ["triplanar", "inflated", "random"])
def test_volume_moves_to_style_keeps_geometry_and_smoothness(kind, volumes, tmp_path):
    c, s = volumes
    r = stylize_volume(CONTENT, STYLE, net=kind, steps=25)
    g = r.tensor
    assert g.shape == c.shape
    assert r.best.total < 0.7 * r.history[0].total  # from the content start, J trades content for style
    net, layers = judge(kind)
    d_c, d_g = style_distance(net, layers, c, s), style_distance(net, layers, g, s)
    assert d_g < 0.7 * d_c, (d_g, d_c)
    # No slice-to-slice flicker: G's neighbouring slices differ no more than 1.5x C's do.
    assert flicker(g) < 1.5 * flicker(c), (flicker(g), flicker(c))

    out = r.save(tmp_path / "g.nii.gz")
    src, res = nibabel.load(CONTENT), nibabel.load(out)
    assert res.shape == src.shape and res.get_data_dtype() == src.get_data_dtype()
    assert (res.affine == src.affine).all()


def test_mask_keeps_the_background(volumes, tmp_path):
    c, _ = volumes
    import numpy as np

    mask = np.zeros(c.shape[2:], dtype=np.uint8)
    mask[8:24, 10:30, 6:18] = 1
    mask_path = tmp_path / "mask.nii"
    nibabel.save(nibabel.Nifti1Image(mask, nibabel.load(CONTENT).affine), mask_path)
    r = stylize_volume(CONTENT, STYLE, net="random", steps=10, mask=mask_path)
    inside = torch.from_numpy(mask).bool()[None, None]
    assert torch.equal(r.tensor[~inside], c[~inside])
    assert float((r.tensor[inside] - c[inside]).abs().mean()) > 1e-3
