"""What the page is shown of a signal, checked against the signal itself."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

from nstyle.options import AudioSettings
from nstyle.studio.frames import TRACE_POINTS, mid_slices, rgb, spectrogram, traces, view, volume_slice


def test_image_frames_are_the_pixels() -> None:
    x = torch.rand(1, 3, 5, 7)
    assert np.abs(rgb(x) / 255.0 - x[0].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    grey = rgb(torch.full((1, 1, 2, 2), 0.5))
    assert grey.shape == (2, 2, 3) and (grey == 128).all()
    shown = view("image", torch.rand(1, 3, 32, 48), None)
    assert shown.mime == "image/jpeg" and Image.open(io.BytesIO(shown.data)).size == (48, 32)


def test_a_tone_is_drawn_at_its_frequency() -> None:
    rate, hz, n_fft = 22050, 2000.0, 1024
    t = torch.arange(rate // 2) / rate
    x = torch.sin(2 * math.pi * hz * t).reshape(1, 1, -1)
    picture = spectrogram(x, n_fft, 256).astype(float).sum(axis=2)  # brightness
    row = picture.mean(axis=1).argmax()  # low frequencies at the bottom
    expected = (1 - hz / (rate / 2)) * (picture.shape[0] - 1)
    assert abs(row - expected) < 3
    magnitude = view("audio", torch.log1p(torch.rand(1, n_fft // 2 + 1, 40)), AudioSettings(mode="magnitude"))
    assert magnitude.mime == "image/png"


def test_volume_slices_and_series_traces() -> None:
    v = torch.zeros(1, 1, 8, 10, 12)
    v[0, 0, 4] = 1.0  # the mid-slice along the first axis is white
    sheet = mid_slices(v)
    assert sheet.shape == (256, 3 * 256, 3)
    assert sheet[:, :256].max() == 255 and sheet[:, 256:].mean() < sheet[:, :256].mean()
    a, b = volume_slice(v, 0, 4), volume_slice(v, 0, 99)  # an index past the end is the last slice
    assert a.max() == 255 and b.max() == 0
    x = torch.randn(1, 3, 5000)
    lines = traces(x)
    step = -(-5000 // TRACE_POINTS)
    assert len(lines) == 3 and len(lines[0]) <= TRACE_POINTS
    assert np.allclose(lines[1], x[0, 1, ::step].numpy(), atol=1e-4)
