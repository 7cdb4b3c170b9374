"""Spatial masks: regions read from files and arrays, their per-layer weights, the
region -> style mapping and the final composite.

Expected labels and weights are computed here with NumPy (float64) from the pixels the
files hold, not through nstyle, so a wrong sort order, merge, resize or pooling shows up.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image
from nstyle.samples import sample_path
from nstyle.steering.masks import (
    MAX_REGIONS,
    RARE_FRACTION,
    RegionMask,
    blend_weight,
    composite,
    layer_region_weights,
    load_mask,
    parse_mask_styles,
    region_weights,
)

RNG = np.random.default_rng(55)


def one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def chessboard_distance(untouched: np.ndarray) -> np.ndarray:
    """Brute force: max(|dy|, |dx|) from each pixel to the nearest True pixel."""
    ys, xs = np.nonzero(untouched)
    h, w = untouched.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.maximum(np.abs(yy[..., None] - ys), np.abs(xx[..., None] - xs))
    return d.min(axis=-1)


def contour(b: np.ndarray) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood (clipped at the image border) holds both values of ``b``."""
    p = np.pad(b, 1, mode="edge")
    h, w = b.shape
    views = [p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return np.any(views, axis=0) & ~np.all(views, axis=0)


# --------------------------------------------------------------------------- reading masks


def test_binary_png_two_regions_sorted(tmp_path):
    px = np.full((20, 30), 255, np.uint8)
    px[5:15, 8:20] = 0  # a black window in a white mask: the darker region comes first anyway
    Image.fromarray(px, "L").save(tmp_path / "m.png")
    m = load_mask(tmp_path / "m.png", (20, 30))
    assert m.values == [0, 255] and m.n_regions == 2 and m.source == str(tmp_path / "m.png")
    assert m.labels.dtype == torch.int64 and m.shape == (20, 30)
    np.testing.assert_array_equal(m.labels.numpy(), (px == 255).astype(np.int64))
    assert m.fractions() == pytest.approx([120 / 600, 480 / 600])
    # The same mask saved as RGB (equal channels) or as a 1-bit image is the same grey mask.
    Image.fromarray(np.dstack([px] * 3), "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(px > 0).convert("1").save(tmp_path / "bit.png")
    for name in ("rgb.png", "bit.png"):
        other = load_mask(tmp_path / name, (20, 30))
        assert other.values == [0, 255]
        assert torch.equal(other.labels, m.labels)


def test_colour_mask_three_regions_sorted_by_rgb(tmp_path):
    colours = [(255, 0, 0), (0, 0, 255), (0, 200, 0)]
    which = RNG.integers(0, 3, (6, 8)).repeat(4, axis=0).repeat(4, axis=1)  # 24 x 32, 4 x 4 blocks
    px = np.array(colours, np.uint8)[which]
    Image.fromarray(px, "RGB").save(tmp_path / "c.png")
    m = load_mask(tmp_path / "c.png", (24, 32))
    assert m.values == sorted(colours) == [(0, 0, 255), (0, 200, 0), (255, 0, 0)]
    rank = {c: i for i, c in enumerate(sorted(colours))}
    expected = np.vectorize(lambda k: rank[colours[k]])(which)
    np.testing.assert_array_equal(m.labels.numpy(), expected)
    assert m.describe(2) == "colour (255, 0, 0)"


def test_antialiased_edges_merge_into_nearest_frequent_value(tmp_path):
    im = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(im).ellipse((30, 20, 100, 110), fill=255)
    im = im.filter(ImageFilter.GaussianBlur(1.5))
    im.save(tmp_path / "soft.png")
    raw = np.asarray(Image.open(tmp_path / "soft.png"))
    values, counts = np.unique(raw, return_counts=True)
    # The premise: the blurred edge holds dozens of in-between values, nearly all rare
    # (the few near 0 and 255 that are not, the Gaussian's tails, are thin rings).
    between = (values > 0) & (values < 255)
    assert between.sum() > 100 and (counts[between] < RARE_FRACTION * raw.size).mean() > 0.9
    m = load_mask(tmp_path / "soft.png", (128, 128))
    assert m.values == [0, 255]
    labels = m.labels.numpy()
    assert (labels[raw == 0] == 0).all() and (labels[raw == 255] == 1).all()
    # The blurred band is split near its middle: as thresholding at 128 would, up to a
    # pixel next to the 128 contour.
    white = raw >= 128
    wrong = (labels == 1) != white
    assert not (wrong & ~contour(white)).any()
    assert wrong.sum() <= 0.01 * ((raw > 0) & (raw < 255)).sum()


def test_edges_between_two_regions_do_not_join_a_third():
    """Black | ramp | white, and a grey square elsewhere: the ramp's mid-greys are nearer
    the grey square's value than black or white, but the ramp does not touch it."""
    px = np.zeros((60, 80), np.uint8)
    px[:, 43:] = 255
    px[:, 37:43] = np.linspace(0, 255, 8)[1:-1].round().astype(np.uint8)  # 6 columns: 36..219
    px[5:25, 5:25] = 128
    m = load_mask(px, (60, 80))
    assert m.values == [0, 128, 255]
    labels = m.labels.numpy()
    assert (labels[5:25, 5:25] == 1).all() and (labels == 1).sum() == 400
    np.testing.assert_array_equal(labels[:, 37:40], 0)  # 36, 73, 109: the black side's half
    np.testing.assert_array_equal(labels[:, 40:43], 2)  # 146, 182, 219: the white side's half


def test_thin_straight_edge_merged_but_small_painted_region_kept():
    px = np.zeros((100, 100), np.uint8)
    px[:, 50:] = 255
    px[:, 50] = 128  # an anti-aliased straight border: 1% of the pixels, one pixel wide
    m = load_mask(px, (100, 100))
    assert m.values == [0, 255]
    assert (m.labels[:, 50] == 1).all()  # 128 is nearer 255 than 0
    px[10:20, 10:20] = 100  # a painted 10 x 10 square of grey: 1% too, but with an interior
    m = load_mask(px, (100, 100))
    assert m.values == [0, 100, 255]
    assert (m.labels[10:20, 10:20] == 1).all() and (m.labels[:, 50] == 2).all()


def test_resize_keeps_only_original_values(tmp_path):
    values = np.array([0, 100, 255], np.uint8)
    px = values[RNG.integers(0, 3, (12, 18)).repeat(5, axis=0).repeat(5, axis=1)]  # 60 x 90
    Image.fromarray(px, "L").save(tmp_path / "m.png")
    for shape in [(23, 35), (40, 60), (131, 197)]:
        m = load_mask(tmp_path / "m.png", shape)
        assert m.shape == shape and m.values == [0, 100, 255]
        got = np.asarray(m.values, np.uint8)[m.labels.numpy()]
        want = np.asarray(Image.fromarray(px, "L").resize(shape[::-1], Image.Resampling.NEAREST))
        np.testing.assert_array_equal(got, want)
        assert set(np.unique(got)) <= {0, 100, 255}


def test_arrays_tensors_and_alpha():
    labels = RNG.integers(0, 3, (4, 6)).repeat(3, axis=0).repeat(3, axis=1)  # 12 x 18 integer labels
    m = load_mask(labels, (12, 18))
    assert m.values == [0, 1, 2] and np.array_equal(m.labels.numpy(), labels)
    assert m.source == "<ndarray>"
    t = load_mask(torch.from_numpy(labels == 2), (12, 18), name="sky")
    assert t.values == [0, 1] and t.source == "sky"
    np.testing.assert_array_equal(t.labels.numpy(), (labels == 2).astype(np.int64))
    chw = load_mask(torch.from_numpy(np.stack([labels * 0.5, labels * 0.0, labels * 0.25])).float(), (12, 18))
    assert chw.values == [(0.0, 0.0, 0.0), (0.5, 0.0, 0.25), (1.0, 0.0, 0.5)]
    np.testing.assert_array_equal(chw.labels.numpy(), labels)
    # Painted on a transparent layer: transparent pixels count as black.
    rgba = np.zeros((12, 18, 4), np.uint8)
    rgba[..., :3] = 200  # colour under the transparency is ignored
    rgba[:, 9:, :] = 255
    alpha = load_mask(Image.fromarray(rgba, "RGBA"), (12, 18))
    assert alpha.values == [0, 255]
    assert (alpha.labels[:, :9] == 0).all() and (alpha.labels[:, 9:] == 1).all()


def test_real_image_threshold(tmp_path):
    """Skimage's astronaut, thresholded on luminance at 512 px, used at 64 px."""
    rgb = np.asarray(Image.open(sample_path("astronaut.png")).convert("RGB"), np.float64)
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    px = np.where(lum > 128, 255, 0).astype(np.uint8)
    Image.fromarray(px, "L").save(tmp_path / "astro_mask.png")
    m = load_mask(tmp_path / "astro_mask.png", (64, 64))
    assert m.values == [0, 255]
    want = np.asarray(Image.fromarray(px, "L").resize((64, 64), Image.Resampling.NEAREST)) == 255
    np.testing.assert_array_equal(m.labels.numpy() == 1, want)
    assert 0.1 < m.fractions()[1] < 0.9  # a real two-region split, not a degenerate one
    # The photo itself is no mask.
    with pytest.raises(NStyleError) as e:
        load_mask(sample_path("astronaut.png"), (64, 64))
    one_line(e, "astronaut.png", "not a mask")


# --------------------------------------------------------------------------- errors


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(NStyleError) as e:
        load_mask(tmp_path / "nope.png", (8, 8))
    one_line(e, "nope.png", "no such file")
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(NStyleError) as e:
        load_mask(tmp_path / "notes.png", (8, 8))
    one_line(e, "notes.png", "not an image")
    nine = np.array([(30 * i, 255 - 20 * i, (70 * i) % 256) for i in range(9)], np.uint8)
    px = nine[np.arange(9).repeat(4)[None, :].repeat(12, axis=0)]  # 12 x 36, nine 4-pixel stripes
    Image.fromarray(px, "RGB").save(tmp_path / "nine.png")
    with pytest.raises(NStyleError) as e:
        load_mask(tmp_path / "nine.png", (12, 36))
    one_line(e, "nine.png", "9 regions", f"at most {MAX_REGIONS}")
    Image.fromarray(px[:, :32], "RGB").save(tmp_path / "eight.png")
    assert load_mask(tmp_path / "eight.png", (12, 32)).n_regions == 8
    Image.new("L", (16, 16), 255).save(tmp_path / "white.png")
    with pytest.raises(NStyleError) as e:
        load_mask(tmp_path / "white.png", (16, 16))
    one_line(e, "white.png", "one region", "value 255")
    Image.fromarray(px[:, :32], "RGB").save(tmp_path / "wide.png")
    with pytest.raises(NStyleError) as e:
        load_mask(tmp_path / "wide.png", (32, 12))  # transposed: the aspect ratio differs
    one_line(e, "wide.png", "aspect")
    with pytest.raises(NStyleError) as e:
        load_mask(np.zeros((4, 4, 2)), (4, 4))
    one_line(e, "<ndarray>", "(H, W)")
    with pytest.raises(NStyleError) as e:
        load_mask(np.array([[0.0, np.nan], [1.0, 1.0]]), (2, 2))
    one_line(e, "NaN")


# --------------------------------------------------------------------------- weights per layer


def test_region_weights_are_exact_area_fractions():
    labels = np.array(
        [
            [0, 0, 1, 1, 2, 2],
            [0, 1, 1, 1, 2, 0],
            [2, 2, 0, 0, 1, 1],
            [2, 2, 0, 1, 1, 1],
        ]
    )
    m = RegionMask(torch.from_numpy(labels), [0, 1, 2], "hand")
    w = region_weights(m, (2, 3), dtype=torch.float64)
    assert w.shape == (3, 1, 2, 3) and w.dtype == torch.float64
    blocks = labels.reshape(2, 2, 3, 2).transpose(0, 2, 1, 3).reshape(2, 3, 4)  # each cell's 4 pixels
    want = np.stack([(blocks == r).mean(axis=-1) for r in range(3)])[:, None]
    np.testing.assert_array_equal(w.numpy(), want)
    np.testing.assert_allclose(w.sum(0).numpy(), 1.0, rtol=0, atol=1e-15)
    # Cells that do not divide the mask: [floor(i·H/h), ceil((i+1)·H/h)) along each axis.
    labels = RNG.integers(0, 3, (7, 5))
    m = RegionMask(torch.from_numpy(labels), [0, 1, 2], "odd")
    w = region_weights(m, (3, 2), dtype=torch.float64).numpy()
    for i in range(3):
        for j in range(2):
            cell = labels[(i * 7) // 3 : -(-(i + 1) * 7 // 3), (j * 5) // 2 : -(-(j + 1) * 5 // 2)]
            for r in range(3):
                assert w[r, 0, i, j] == pytest.approx((cell == r).mean(), abs=1e-15)
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-15)


def test_layer_weights_on_real_activations(tmp_path, vgg16_norm):
    content = load_image(sample_path("astronaut.png"), size=64).tensor
    lum = (content[0] * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    m = load_mask((lum > 0.5).numpy(), (64, 64))
    acts = vgg16_norm(content, ["relu1_1", "relu2_1", "relu3_1", "relu4_1"])
    weights = layer_region_weights(m, acts)
    share = m.fractions()[1]
    for name, a in acts.items():
        w = weights[name]
        assert w.shape == (2, 1, *a.shape[2:])
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(0), torch.ones_like(w[0]), rtol=0, atol=1e-6)
        # 64 divides evenly at every one of these grids, so the mean share is the pixel share.
        assert w[1].double().mean().item() == pytest.approx(share, abs=1e-6)
        assert (w[1:2] * a).shape == a.shape  # broadcasts against the layer's activations
    assert torch.equal(weights["relu1_1"][1, 0], (m.labels == 1).float())


# --------------------------------------------------------------------------- region -> style


def test_parse_mask_styles_defaults():
    assert parse_mask_styles(None, 3, 3) == [0, 1, 2]
    assert parse_mask_styles(None, 2, 1) == [None, 0]  # binary: black kept, white stylised
    with pytest.raises(NStyleError) as e:
        parse_mask_styles(None, 3, 2)
    one_line(e, "3 regions", "2 style images", "--mask-styles", "1,2,-")
    with pytest.raises(NStyleError) as e:
        parse_mask_styles(None, 2, 3)
    one_line(e, "2 regions", "3 style images")


def test_parse_mask_styles_strings_and_sequences():
    assert parse_mask_styles("2, -,1", 3, 2) == [1, None, 0]
    assert parse_mask_styles("-,1", 2, 1) == [None, 0]
    assert parse_mask_styles("1,1", 2, 1) == [0, 0]
    assert parse_mask_styles([None, 1, 0], 3, 2) == [None, 1, 0]
    cases = {
        "1,2": ("2 entries", "3 regions"),
        "1,2,-,-": ("4 entries", "3 regions"),
        "0,1,2": ("entry 1 is 0", "1 to 2"),
        "1,3,-": ("entry 2 is 3", "1 to 2"),
        "1,x,2": ("entry 2 is 'x'", "'-'"),
        "1,,2": ("entry 2 is ''",),
        "-,-,-": ("every region untouched",),
        "1,1,-": ("style image 2",),
    }
    for spec, needles in cases.items():
        with pytest.raises(NStyleError) as e:
            parse_mask_styles(spec, 3, 2)
        one_line(e, *needles)
    for bad in ([0, 2, None], [0, True, None], [0, 1.0, None]):
        with pytest.raises(NStyleError) as e:
            parse_mask_styles(bad, 3, 2)
        one_line(e, "entry 1", "0 to 1")


# --------------------------------------------------------------------------- composite


def test_composite_keeps_content_where_untouched_and_g_where_styled():
    labels = np.zeros((12, 14), np.int64)
    labels[:, 6:] = 1
    labels[8:, 10:] = 2  # two styled regions meet: no blend between them
    m = RegionMask(torch.from_numpy(labels), [0, 128, 255], "hand")
    g = torch.from_numpy(RNG.random((2, 3, 12, 14)))
    c = torch.from_numpy(RNG.random((2, 3, 12, 14)))
    untouched = [True, False, False]
    d = chessboard_distance(labels == 0)
    for feather in (0, 1, 3):
        out = composite(g, c, m, untouched, feather=feather)
        assert out.dtype == torch.float64 and out.shape == g.shape
        keep, styled = d == 0, d > feather
        assert torch.equal(out[:, :, keep], c[:, :, keep])  # bit for bit
        assert torch.equal(out[:, :, styled], g[:, :, styled])
        ramp = torch.from_numpy(np.minimum(d, feather + 1) / (feather + 1))
        torch.testing.assert_close(out, ramp * g + (1 - ramp) * c, rtol=0, atol=1e-15)
    assert torch.equal(composite(g, c, m, [False, False, False]), g)  # nothing untouched: G
    assert torch.equal(composite(g, c, m, [True, True, True]), c)
    with pytest.raises(NStyleError) as e:
        blend_weight(m, untouched, feather=-1)
    one_line(e, "feather")


def test_composite_on_real_images():
    content = load_image(sample_path("astronaut.png"), size=48).tensor
    g = load_image(sample_path("coffee.png"), size=72).tensor[..., :48]  # 48 x 72 cropped to 48 x 48
    lum = (content[0] * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    m = load_mask(lum.numpy() > 0.5, tuple(content.shape[-2:]))
    styles = parse_mask_styles(None, m.n_regions, 1)  # binary default: dark kept, bright stylised
    out = composite(g, content, m, [s is None for s in styles], feather=2)
    d = chessboard_distance(m.labels.numpy() == 0)
    assert torch.equal(out[:, :, d == 0], content[:, :, d == 0])
    assert torch.equal(out[:, :, d > 2], g[:, :, d > 2])
    between = (d > 0) & (d <= 2)
    assert between.any()
    lo, hi = torch.minimum(content, g)[:, :, between], torch.maximum(content, g)[:, :, between]
    assert ((out[:, :, between] >= lo - 1e-6) & (out[:, :, between] <= hi + 1e-6)).all()
