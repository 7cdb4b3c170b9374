"""Winograd F(4x4, 3x3) convolutions (nstyle.nets.winograd) against torch's direct ones."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.nets.winograd import (
    Conv3x3Chooser,
    _faster,
    conv3x3,
    transposed_filters,
    winograd_conv3x3,
    winograd_filters,
)
from nstyle.samples import sample_path


def _direct_numpy(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """3x3 cross-correlation, zero padding 1, as nine shifted sums in float64 NumPy."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,nchw->nohw", w[:, :, i, j], xp[:, :, i : i + h, j : j + wd])
    return out


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2),
    c_in=st.integers(1, 5),
    c_out=st.integers(1, 5),
    h=st.integers(1, 11),
    w=st.integers(1, 11),
    seed=st.integers(0, 2**16),
)
def test_winograd_equals_the_direct_convolution_in_float64(n, c_in, c_out, h, w, seed):
    """Any size, including ones that are not whole 4x4 tiles (the edges are padded and cropped)."""
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, 3, 3))
    got = winograd_conv3x3(torch.from_numpy(x), winograd_filters(torch.from_numpy(k)))
    assert got.shape == (n, c_out, h, w)
    np.testing.assert_allclose(got.numpy(), _direct_numpy(x, k), rtol=1e-10, atol=1e-10)


def test_the_input_gradient_is_the_transposed_convolution():
    """d/dx of <conv(x), r> by the Winograd backward equals torch's conv2d autograd (float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=g)
    b = torch.randn(4, dtype=torch.float64, generator=g)
    r = torch.randn(2, 4, 9, 6, dtype=torch.float64, generator=g)
    (grad_direct,) = torch.autograd.grad((F.conv2d(x, w, b, padding=1) * r).sum(), x)
    y = conv3x3(x, winograd_filters(w), winograd_filters(transposed_filters(w)), b)
    (grad_winograd,) = torch.autograd.grad((y * r).sum(), x)
    torch.testing.assert_close(grad_winograd, grad_direct, rtol=1e-10, atol=1e-10)
    torch.autograd.gradcheck(
        lambda t: conv3x3(t, winograd_filters(w), winograd_filters(transposed_filters(w)), b), (x,)
    )


def test_fp32_rounding_stays_near_the_direct_result_on_a_real_photo(vgg16_norm):
    """conv3_1 of scikit-image's astronaut at 64 px: fp32 Winograd within 1e-4 of fp32 direct,
    relative to the largest activation (F(4x4, 3x3)'s transforms cost about one decimal digit)."""
    x = load_image(sample_path("astronaut.png"), size=64).tensor
    h = vgg16_norm(x, ["pool2"])["pool2"]
    conv = vgg16_norm.layers[vgg16_norm.index["conv3_1"]]
    direct = F.conv2d(h, conv.weight, None, padding=1)
    fast = winograd_conv3x3(h, winograd_filters(conv.weight))
    assert fast.is_contiguous(memory_format=torch.channels_last)
    err = (fast - direct).abs().max() / direct.abs().max()
    assert err < 1e-4, err


def test_the_vgg_gives_the_same_activations_and_gradient_with_winograd(vgg16_norm):
    """Every convolution by Winograd (mode always) against every one direct (mode never).

    Activations on a real photo (scikit-image's coffee); the gradient on seeded uniform noise.
    A photo's flat, clipped regions give exactly equal neighbours, and max pooling sends the
    gradient to whichever of equal values the rounding makes largest: direct and Winograd
    round differently, so there the gradient legitimately jumps to a neighbour (measured:
    5 % of the largest gradient at a few pixels of coffee's white saucer). Noise has no ties.
    """
    net = copy.deepcopy(vgg16_norm)
    photo = load_image(sample_path("coffee.png"), size=48).tensor
    noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)).requires_grad_()
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2"]
    out = {}
    for mode in ("never", "always"):
        net.winograd = Conv3x3Chooser(mode)
        with torch.no_grad():
            acts = net(photo, layers)
        (grad,) = torch.autograd.grad(sum((a**2).mean() for a in net(noise, layers).values()), noise)
        out[mode] = acts, grad
    for name in layers:
        a, b = out["never"][0][name], out["always"][0][name]
        assert (a - b).abs().max() <= 1e-4 * a.abs().max(), name
    g0, g1 = out["never"][1], out["always"][1]
    assert (g0 - g1).abs().max() <= 1e-4 * g0.abs().max()
    assert net._filters, "mode always must have run the Winograd path"


def test_changed_weights_are_transformed_again(vgg16_norm):
    """Weights scaled in place after a forward (as activation normalisation does) must not
    leave stale transformed filters behind."""
    net = copy.deepcopy(vgg16_norm)
    net.winograd = Conv3x3Chooser("always")
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    before = net(x, ["conv1_1"])["conv1_1"]
    conv = net.layers[net.index["conv1_1"]]
    conv.weight.mul_(2.0)
    after = net(x, ["conv1_1"])["conv1_1"]
    torch.testing.assert_close(after - conv.bias.view(1, -1, 1, 1), 2 * (before - conv.bias.view(1, -1, 1, 1)),
                               rtol=1e-5, atol=1e-5)


def test_the_chooser_only_takes_what_winograd_computes_exactly():
    conv = torch.nn.Conv2d(4, 4, 3, padding=1).requires_grad_(False)
    x = torch.rand(1, 4, 8, 8)
    always = Conv3x3Chooser("always")
    assert always.eligible(x, conv)
    assert not always.eligible(x.bfloat16(), conv)
    assert not always.eligible(x, torch.nn.Conv2d(4, 4, 3, padding=1))  # weights need a gradient
    assert not always.eligible(x, torch.nn.Conv2d(4, 4, 3, padding=1, stride=2).requires_grad_(False))
    assert not always.eligible(x, torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect").requires_grad_(False))
    assert not always.eligible(x, torch.nn.Conv2d(4, 4, 5, padding=2).requires_grad_(False))
    hook = conv.register_forward_hook(lambda *args: None)
    assert not always.eligible(x, conv)  # a hooked layer runs as its module
    hook.remove()
    assert not Conv3x3Chooser("never").eligible(x, conv)
    with pytest.raises(NStyleError, match="Winograd mode"):
        Conv3x3Chooser("sometimes")


def test_timing_the_choice_leaves_the_global_rng_alone():
    """Seeded runs must repeat whether or not a shape was timed on the way."""
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).requires_grad_(False)
    w = conv.weight
    chooser = Conv3x3Chooser("timed")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    x = torch.rand(1, 8, 12, 12, requires_grad=True)
    torch.manual_seed(5)
    filters = lambda: (winograd_filters(w), winograd_filters(transposed_filters(w)))  # noqa: E731
    choice = chooser.use_winograd(x, conv, filters)
    torch.testing.assert_close(torch.rand(3), expected)
    assert isinstance(choice, bool) and len(chooser.choices) == 1
    chooser.use_winograd(x, conv, filters)
    assert len(chooser.choices) == 1  # timed once per shape


def test_a_candidate_far_slower_on_its_first_run_is_not_timed_again():
    """The early out that keeps choosing cheap: 64-channel layers at 512 px lose by 2-3x."""
    calls = {"slow": 0, "quick": 0}

    def slow() -> None:
        calls["slow"] += 1
        time.sleep(0.1)

    def quick() -> None:
        calls["quick"] += 1
        time.sleep(0.002)

    assert not _faster(slow, quick, margin=0.85)
    assert calls == {"slow": 1, "quick": 2}
    assert _faster(quick, slow, margin=0.85)
    assert calls["quick"] == 4  # warm-up within bounds: timed a second time


def test_auto_decides_by_shape_alone_so_every_process_chooses_alike():
    """Mode auto: Winograd for 128+ channels on both sides at 64x64 positions or fewer, no
    timing (a timed choice can differ between two processes of one seeded run)."""
    auto = Conv3x3Chooser("auto")
    small = torch.nn.Conv2d(128, 256, 3, padding=1).requires_grad_(False)
    thin = torch.nn.Conv2d(64, 128, 3, padding=1).requires_grad_(False)
    def filters():
        raise AssertionError("mode auto must not need the transformed filters")

    assert auto.use_winograd(torch.rand(1, 128, 64, 64), small, filters)
    assert not auto.use_winograd(torch.rand(1, 128, 64, 65), small, filters)
    assert not auto.use_winograd(torch.rand(1, 64, 8, 8), thin, filters)
    assert not auto.choices  # nothing was timed
