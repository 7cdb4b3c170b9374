"""nstyle.colors: YIQ conversions, luminance-only transfer and colour-histogram matching.

References are float64 NumPy on small tensors; the real pairs are scikit-image's
astronaut (content) with ihc or coffee (style) at 48-64 px; the end-to-end runs are 48 px,
10 steps, single-scale.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

import nstyle
from nstyle import NStyleError
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path
from nstyle.steering.colors import (
    COLOR_MODES,
    check_color_mode,
    finish,
    luminance_rgb,
    match_colors,
    match_luminance,
    prepare,
    rgb_to_yiq,
    with_chrominance,
    yiq_to_rgb,
)

# The NTSC YIQ matrix and its inverse as commonly published to 4 digits (e.g. Wikipedia,
# "YIQ"): an independent check of the module's 6-digit matrix and computed inverse.
PUBLISHED_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
PUBLISHED_YIQ_TO_RGB = np.array([[1.0, 0.956, 0.619], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def np_stats(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour and population covariance of one image (1, 3, *spatial), in NumPy float64."""
    flat = x.detach().double().flatten(2)[0].numpy()
    return flat.mean(axis=1), np.cov(flat, bias=True)


def correlated_colours(shape: tuple[int, ...], mix: list[list[float]], centre: list[float], seed: int) -> torch.Tensor:
    """Float64 colours centre + mix · z (z standard normal per sample), kept well inside [0, 1]."""
    z = torch.randn((1, 3, *shape), generator=gen(seed), dtype=torch.float64)
    x = torch.einsum("ij,nj...->ni...", torch.tensor(mix, dtype=torch.float64), z)
    return x + torch.tensor(centre, dtype=torch.float64).view(1, 3, *([1] * len(shape)))


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return load_image(sample_path("astronaut.png"), size=64).tensor


# --------------------------------------------------------------------------- YIQ


def test_yiq_matches_published_matrices() -> None:
    x = torch.rand(2, 3, 5, 7, generator=gen(1), dtype=torch.float64)
    ref = np.einsum("ij,njhw->nihw", PUBLISHED_RGB_TO_YIQ, x.numpy())
    # 4-digit rounding: each coefficient is off by <= 5e-5 (x3 channels, |x| <= 1).
    np.testing.assert_allclose(rgb_to_yiq(x).numpy(), ref, atol=2e-4)
    yiq = rgb_to_yiq(x)
    back = np.einsum("ij,njhw->nihw", PUBLISHED_YIQ_TO_RGB, yiq.numpy())
    np.testing.assert_allclose(back, x.numpy(), atol=3e-3)  # the 3-digit inverse table
    np.testing.assert_allclose(yiq_to_rgb(yiq).numpy(), back, atol=3e-3)


def ref_matrix() -> np.ndarray:
    """The FCC 6-digit matrix, typed in again here rather than imported."""
    return np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


@pytest.mark.parametrize("spatial", [(11,), (4, 6), (3, 4, 5)])
def test_yiq_round_trip_float64_any_spatial_axes(spatial: tuple[int, ...]) -> None:
    x = torch.rand((2, 3, *spatial), generator=gen(2), dtype=torch.float64)
    y = rgb_to_yiq(x)
    assert y.dtype == torch.float64 and y.shape == x.shape
    torch.testing.assert_close(yiq_to_rgb(y), x, atol=1e-14, rtol=0)
    torch.testing.assert_close(rgb_to_yiq(yiq_to_rgb(x)), x, atol=1e-14, rtol=0)
    np.testing.assert_allclose(
        y.numpy(), np.einsum("ij,nj...->ni...", ref_matrix(), x.numpy()), atol=1e-15
    )


def test_grey_has_no_chrominance_and_is_its_own_luminance() -> None:
    v = torch.rand(1, 1, 6, 5, generator=gen(3), dtype=torch.float64)
    grey = v.expand(1, 3, 6, 5)
    yiq = rgb_to_yiq(grey)
    torch.testing.assert_close(yiq[:, 0:1], v, atol=1e-15, rtol=0)
    assert float(yiq[:, 1:].abs().max()) < 1e-15
    torch.testing.assert_close(luminance_rgb(grey), grey, atol=1e-15, rtol=0)


def test_luminance_rgb_is_the_weighted_sum_in_three_equal_channels(astronaut: torch.Tensor) -> None:
    lum = luminance_rgb(astronaut)
    ref = np.einsum("j,njhw->nhw", [0.299, 0.587, 0.114], astronaut.double().numpy())
    for k in range(3):
        np.testing.assert_allclose(lum[:, k].numpy(), ref, atol=1e-6)
    assert float(lum.min()) >= 0 and float(lum.max()) <= 1


# --------------------------------------------------------------------------- with_chrominance


def test_with_chrominance_keeps_g_luminance_and_c_chrominance() -> None:
    # In gamut: both around mid-grey with small colour spread, so the clamp does nothing.
    g = 0.5 + 0.15 * (torch.rand(1, 3, 6, 8, generator=gen(4), dtype=torch.float64) - 0.5)
    c = 0.5 + 0.15 * (torch.rand(1, 3, 6, 8, generator=gen(5), dtype=torch.float64) - 0.5)
    out = with_chrominance(g, c)
    assert 0 < float(out.min()) and float(out.max()) < 1  # the clamp did not act
    yo, yg, yc = rgb_to_yiq(out), rgb_to_yiq(g), rgb_to_yiq(c)
    torch.testing.assert_close(yo[:, :1], yg[:, :1], atol=1e-14, rtol=0)
    torch.testing.assert_close(yo[:, 1:], yc[:, 1:], atol=1e-14, rtol=0)
    assert float((out - g).abs().max()) > 0.01 and float((out - c).abs().max()) > 0.01  # really a mix


def test_with_chrominance_resizes_the_content_chrominance_and_clamps() -> None:
    # C twice G's size with a colour that is constant (so resizing changes nothing) but
    # saturated: G's bright luminance with it leaves the RGB cube and must be clamped.
    g = torch.full((1, 3, 5, 6), 0.5, dtype=torch.float64)
    g[..., :2, :] = 0.95
    c = torch.tensor([0.7, 0.3, 0.2], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 10, 12)
    out = with_chrominance(g, c)
    assert out.shape == g.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    mid = out[..., 2:, :]  # Y = 0.5: in gamut, so exact up to the resize (done in float32)
    torch.testing.assert_close(rgb_to_yiq(mid)[:, 1:], rgb_to_yiq(c)[:, 1:, :3, :6], atol=1e-6, rtol=0)
    torch.testing.assert_close(rgb_to_yiq(mid)[:, :1], torch.full_like(mid[:, :1], 0.5), atol=1e-12, rtol=0)
    assert float(out[..., :2, :].max()) == 1.0  # the bright rows were clamped


# --------------------------------------------------------------------------- match_colors


def in_gamut_pair(spatial: tuple[int, ...] = (12, 10)) -> tuple[torch.Tensor, torch.Tensor]:
    s = correlated_colours(spatial, [[0.05, 0.01, 0.0], [0.02, 0.03, 0.0], [0.0, 0.01, 0.02]], [0.5, 0.45, 0.4], 6)
    c = correlated_colours(spatial, [[0.03, 0.0, 0.01], [0.0, 0.04, 0.02], [0.01, 0.0, 0.05]], [0.45, 0.5, 0.55], 7)
    return s, c


@pytest.mark.parametrize("spatial", [(12, 10), (40,), (4, 5, 6)])
def test_match_colors_gives_content_mean_and_covariance(spatial: tuple[int, ...]) -> None:
    s, c = in_gamut_pair(spatial)
    out = match_colors(s, c)
    assert out.dtype == torch.float64 and out.shape == s.shape
    assert 0 < float(out.min()) and float(out.max()) < 1  # the clamp did not act
    mu_o, cov_o = np_stats(out)
    mu_c, cov_c = np_stats(c)
    _, cov_s = np_stats(s)
    assert np.abs(cov_s - cov_c).max() > 1e-3  # a real change of covariance
    np.testing.assert_allclose(mu_o, mu_c, atol=1e-10)
    np.testing.assert_allclose(cov_o, cov_c, atol=1e-9)  # entries ~1e-3: relative ~1e-6


def test_match_colors_is_the_symmetric_root_map() -> None:
    """x' = Σ_C^½ Σ_S^-½ (x − μ_S) + μ_C with SciPy's matrix square roots."""
    s, c = in_gamut_pair()
    mu_s, cov_s = np_stats(s)
    mu_c, cov_c = np_stats(c)
    a = np.real(scipy.linalg.sqrtm(cov_c)) @ np.linalg.inv(np.real(scipy.linalg.sqrtm(cov_s)))
    flat = s[0].flatten(1).numpy()
    ref = a @ (flat - mu_s[:, None]) + mu_c[:, None]
    np.testing.assert_allclose(match_colors(s, c)[0].flatten(1).numpy(), ref, atol=1e-10)


def test_match_colors_does_not_depend_on_channel_order() -> None:
    # The reason for the symmetric form: a Cholesky map would differ under B, G, R order.
    s, c = in_gamut_pair()
    perm = [2, 0, 1]
    torch.testing.assert_close(match_colors(s[:, perm], c[:, perm]), match_colors(s, c)[:, perm], atol=1e-12, rtol=0)


def test_match_colors_identity_when_style_is_content(astronaut: torch.Tensor) -> None:
    s, _ = in_gamut_pair()
    torch.testing.assert_close(match_colors(s, s), s, atol=1e-12, rtol=0)
    out = match_colors(astronaut, astronaut)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, astronaut, atol=2e-5, rtol=0)


@pytest.mark.parametrize("style_name", ["ihc.png", "coffee.png"])
def test_match_colors_brings_a_real_style_close_to_the_content(astronaut: torch.Tensor, style_name: str) -> None:
    style = load_image(sample_path(style_name), size=64).tensor
    out = match_colors(style, astronaut)
    mu_c, cov_c = np_stats(astronaut)

    def distances(x: torch.Tensor) -> tuple[float, float]:
        mu, cov = np_stats(x)
        return float(np.linalg.norm(mu - mu_c)), float(np.linalg.norm(cov - cov_c) / np.linalg.norm(cov_c))

    (mean_before, cov_before), (mean_after, cov_after) = distances(style), distances(out)
    # Measured at 64 px: mean 0.314 -> 0.007 (ihc), 0.205 -> 0.017 (coffee); covariance
    # (relative Frobenius) 0.60 -> 0.07, 0.45 -> 0.17 — not 0 because of the clamp to [0, 1].
    assert mean_before > 0.15 and cov_before > 0.3
    assert mean_after < 0.15 * mean_before
    assert cov_after < 0.5 * cov_before
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_match_colors_grey_style_and_batches() -> None:
    # A grey style has a rank-1 covariance: the eps floor keeps the map finite.
    v = torch.rand(1, 1, 8, 8, generator=gen(8), dtype=torch.float64)
    grey = (0.3 + 0.4 * v).expand(1, 3, 8, 8)
    _, c = in_gamut_pair((8, 8))
    out = match_colors(grey, c)
    assert torch.isfinite(out).all() and 0 <= float(out.min()) and float(out.max()) <= 1
    np.testing.assert_allclose(np_stats(out)[0], np_stats(c)[0], atol=1e-10)  # mean still C's
    # One content for a batch of styles: each style matched on its own.
    s, _ = in_gamut_pair((8, 8))
    both = match_colors(torch.cat([s, grey]), c)
    torch.testing.assert_close(both, torch.cat([match_colors(s, c), out]), atol=1e-12, rtol=0)
    with pytest.raises(NStyleError, match="colors: 2 content images for 3 style images"):
        match_colors(torch.cat([s, s, s]), torch.cat([c, c]))


# --------------------------------------------------------------------------- prepare / finish


def test_match_luminance_gives_content_mean_and_std() -> None:
    y_s = 0.4 + 0.1 * torch.rand(1, 3, 6, 6, generator=gen(9), dtype=torch.float64)
    y_c = 0.5 + 0.2 * torch.rand(1, 3, 6, 6, generator=gen(10), dtype=torch.float64)
    out = match_luminance(y_s, y_c)
    assert 0 < float(out.min()) and float(out.max()) < 1
    np.testing.assert_allclose(float(out.mean()), float(y_c.mean()), atol=1e-12)
    np.testing.assert_allclose(float(out.std(unbiased=False)), float(y_c.std(unbiased=False)), atol=1e-12)
    # The shape of S's luminance is kept: out is an increasing affine map of y_s.
    np.testing.assert_allclose(np.corrcoef(out.flatten().numpy(), y_s.flatten().numpy())[0, 1], 1.0, atol=1e-12)
    flat = torch.full_like(y_s, 0.3)
    torch.testing.assert_close(match_luminance(flat, y_c), torch.full_like(y_s, float(y_c.mean())))


def test_prepare_and_finish_per_mode(astronaut: torch.Tensor) -> None:
    style = load_image(sample_path("ihc.png"), size=48).tensor
    c, s = prepare(None, astronaut, style)
    assert c is astronaut and s is style
    assert finish(None, style, astronaut) is style

    c, s = prepare("keep-luminance", astronaut, style)
    assert c.shape == astronaut.shape and s.shape == style.shape and s.dtype == style.dtype
    torch.testing.assert_close(c, luminance_rgb(astronaut))
    assert float((s[:, 0] - s[:, 2]).abs().max()) == 0  # grey: equal channels
    torch.testing.assert_close(s.mean(), c.mean(), atol=2e-3, rtol=0)  # C's mean and spread (up to clamping)
    torch.testing.assert_close(s.std(), c.std(), atol=5e-3, rtol=0)
    _, s_raw = prepare("keep-luminance", astronaut, style, luminance_stats=False)
    torch.testing.assert_close(s_raw, luminance_rgb(style))
    g = luminance_rgb(astronaut.flip(-1))
    torch.testing.assert_close(finish("keep-luminance", g, astronaut), with_chrominance(g, astronaut))

    c, s = prepare("match-histogram", astronaut, [style, style.flip(-1)])
    assert c is astronaut and isinstance(s, list) and len(s) == 2
    torch.testing.assert_close(s[0], match_colors(style, astronaut))
    assert finish("match-histogram", style, astronaut) is style


def test_unknown_mode_and_non_rgb_inputs_are_refused(astronaut: torch.Tensor) -> None:
    assert check_color_mode(None) is None and all(check_color_mode(m) == m for m in COLOR_MODES)
    with pytest.raises(NStyleError, match="colors: unknown mode 'sepia'; choose keep-luminance or match-histogram"):
        prepare("sepia", astronaut, astronaut)
    with pytest.raises(NStyleError, match="unknown mode"):
        finish("keep-colours", astronaut, astronaut)
    with pytest.raises(NStyleError, match=r"colors: the style image must be RGB.*\(1, 1, 9\)"):
        prepare("match-histogram", astronaut, torch.rand(1, 1, 9))


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_stylize_with_colour_modes_keeps_the_content_colours(vgg16_norm) -> None:
    """Plain vs keep-luminance vs match-histogram on astronaut + ihc (pink/brown stain)."""
    content = load_image(sample_path("astronaut.png"), size=48).tensor
    style = load_image(sample_path("ihc.png"), size=48).tensor
    iq_c, mean_c = rgb_to_yiq(content)[:, 1:], content.mean((2, 3))

    def run(mode: str | None) -> torch.Tensor:
        c, s = prepare(mode, content, style)
        r = nstyle.stylize(c, s, size=48, steps=10, scales=None)
        assert r.best is not None and r.best.total < 0.9 * r.history[0].total  # the transfer did work
        return finish(mode, r.tensor, content)

    plain, lum, hist = run(None), run("keep-luminance"), run("match-histogram")

    def iq_error(x: torch.Tensor) -> float:
        return float((rgb_to_yiq(x)[:, 1:] - iq_c).abs().mean())

    def mean_error(x: torch.Tensor) -> float:
        return float((x.mean((2, 3)) - mean_c).norm())

    # Measured: I,Q error 0.035 (plain) vs < 1e-4 (keep-luminance, the clamp's share);
    # mean colour error 0.055 (plain) vs 0.011 (match-histogram).
    assert iq_error(plain) > 0.015  # the plain run really moved the colours
    assert iq_error(lum) < 0.1 * iq_error(plain)
    assert float((luminance_rgb(lum) - luminance_rgb(content)).abs().mean()) > 0.01  # texture did change Y
    assert mean_error(hist) < 0.5 * mean_error(plain)
