"""Video's temporal maths (nstyle.core.temporal) against exact answers and float64 NumPy.

Real data: a crop of scikit-image's astronaut (nstyle's sample), shifted by whole pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nstyle.core.temporal import certainty, long_term_weights, temporal_cost, warp
from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_image(sample_path("astronaut.png"), size=64).tensor.double()


def _flow(h: int, w: int, dx: float, dy: float) -> torch.Tensor:
    f = torch.zeros(1, 2, h, w, dtype=torch.float64)
    f[:, 0], f[:, 1] = dx, dy
    return f


@pytest.mark.parametrize("dx, dy", [(3, 0), (0, -2), (4, 5)])
def test_warping_by_a_known_whole_pixel_shift_is_exact_away_from_borders(photo, dx, dy):
    """Frame t is frame t−1 moved by (dx, dy): the backward flow is (−dx, −dy) and the
    warped earlier frame equals frame t wherever the source pixel was in the frame."""
    _, _, h, w = photo.shape
    moved = torch.roll(photo, shifts=(dy, dx), dims=(2, 3))
    back = _flow(h, w, -dx, -dy)
    warped = warp(photo, back)
    m = 6
    torch.testing.assert_close(warped[..., m:-m, m:-m], moved[..., m:-m, m:-m], rtol=0, atol=1e-12)


def test_fractional_warps_interpolate_linearly(photo):
    half = warp(photo, _flow(*photo.shape[2:], 0.5, 0))
    expected = 0.5 * (photo[..., :, :-1] + photo[..., :, 1:])
    torch.testing.assert_close(half[..., :, :-1], expected, rtol=0, atol=1e-12)


def test_certainty_is_one_where_the_flows_agree_and_zero_where_they_do_not():
    h, w = 24, 32
    back, forward = _flow(h, w, -3, 0), _flow(h, w, 3, 0)
    assert bool((certainty(back, forward) == 1).all())
    forward[..., 8:16, 10:20] = 0  # these pixels do not come back: occluded in frame t
    c = certainty(back, forward)
    assert bool((c[..., 8:16, 13:20] == 0).all())  # x + ŵ(x) lands in the bad block
    assert bool((c[..., :4, :] == 1).all())


def test_certainty_marks_motion_boundaries():
    h, w = 20, 20
    back = _flow(h, w, 0, 0)
    back[:, 0, :, 10:] = -6.0  # the right half moves, the left half does not
    forward = -back.clone()
    forward[:, 0, :, 4:] = 6.0  # consistent for the moving half (x − 6 lands at x ≥ 4)
    c = certainty(back, forward)
    assert bool((c[..., :, 9] == 0).all())  # the step between the halves


def test_long_term_weights_take_the_closest_certain_frame():
    c1 = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    c2 = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    c4 = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w1, w2, w4 = long_term_weights([c1, c2, c4])
    assert w1.tolist() == [[1, 0, 0, 1]] and w2.tolist() == [[0, 1, 0, 0]] and w4.tolist() == [[0, 0, 1, 0]]


def test_temporal_cost_matches_numpy():
    rng = np.random.default_rng(0)
    g, a, b = (torch.from_numpy(rng.random((1, 3, 5, 6))) for _ in range(3))
    ca, cb = (torch.from_numpy((rng.random((1, 1, 5, 6)) > 0.3).astype(np.float64)) for _ in range(2))
    expected = sum(np.mean(c.numpy() * (g.numpy() - x.numpy()) ** 2) for x, c in ((a, ca), (b, cb)))
    assert float(temporal_cost(g, [(a, ca), (b, cb)])) == pytest.approx(expected, rel=1e-12)


def test_bad_flow_shapes_are_named():
    with pytest.raises(NStyleError, match="flow"):
        warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(NStyleError, match="differ in size"):
        warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 5, 4))
