"""Image I/O: load_image for every mode and container, resizing, atomic save_image.

Expected values are computed here with NumPy from the same pixels the file holds, not
through nstyle, so a wrong scale, channel order or palette lookup shows up.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nstyle.errors import NStyleError
from nstyle.modalities.image import load_image, resize_long_side, save_image, to_pil
from nstyle.outputs import atomic

RNG = np.random.default_rng(1234)


def rgb_of(sig) -> np.ndarray:
    """(H, W, 3) float64 view of a loaded signal's tensor."""
    t = sig.tensor
    assert t.dtype == torch.float32 and t.dim() == 4 and t.shape[:2] == (1, 3)
    return t[0].permute(1, 2, 0).double().numpy()


def alpha_of(sig) -> np.ndarray:
    assert sig.alpha is not None and sig.alpha.shape[:2] == (1, 1)
    return sig.alpha[0, 0].double().numpy()


def temp_leftovers(folder: Path, name: str) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]


def assert_one_line(err: Exception, *needles: str) -> None:
    msg = str(err)
    assert "\n" not in msg.strip(), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


# --------------------------------------------------------------------------- files by mode


def test_rgb_png(tmp_path):
    px = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(px, "RGB").save(tmp_path / "a.png")
    sig = load_image(tmp_path / "a.png")
    assert sig.tensor.shape == (1, 3, 5, 7)
    assert sig.alpha is None
    np.testing.assert_allclose(rgb_of(sig), px / 255.0, atol=1e-6)
    assert sig.source == str(tmp_path / "a.png")


def test_grey_is_replicated_to_three_channels(tmp_path):
    px = RNG.integers(0, 256, (6, 4), dtype=np.uint8)
    Image.fromarray(px, "L").save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    sig = load_image(str(tmp_path / "g.png"))
    assert sig.alpha is None
    np.testing.assert_allclose(rgb_of(sig), np.repeat(px[..., None] / 255.0, 3, axis=2), atol=1e-6)


def test_rgba_keeps_alpha(tmp_path):
    px = RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    Image.fromarray(px, "RGBA").save(tmp_path / "a.png")
    sig = load_image(tmp_path / "a.png")
    np.testing.assert_allclose(rgb_of(sig), px[..., :3] / 255.0, atol=1e-6)
    np.testing.assert_allclose(alpha_of(sig), px[..., 3] / 255.0, atol=1e-6)


def test_grey_alpha_la(tmp_path):
    px = RNG.integers(0, 256, (3, 5, 2), dtype=np.uint8)
    Image.fromarray(px, "LA").save(tmp_path / "la.png")
    sig = load_image(tmp_path / "la.png")
    np.testing.assert_allclose(rgb_of(sig), np.repeat(px[..., :1] / 255.0, 3, axis=2), atol=1e-6)
    np.testing.assert_allclose(alpha_of(sig), px[..., 1] / 255.0, atol=1e-6)


def _palette_image(idx: np.ndarray, palette: np.ndarray) -> Image.Image:
    im = Image.fromarray(idx, "P")
    im.putpalette(palette.reshape(-1).tolist())
    return im


def test_palette_colours_resolved(tmp_path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    idx = RNG.integers(0, 8, (5, 6), dtype=np.uint8)
    _palette_image(idx, palette).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    sig = load_image(tmp_path / "p.png")
    assert sig.alpha is None
    np.testing.assert_allclose(rgb_of(sig), palette[idx] / 255.0, atol=1e-6)


def test_palette_with_transparency(tmp_path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    idx = RNG.integers(0, 4, (6, 5), dtype=np.uint8)
    idx[0, 0] = 2
    _palette_image(idx, palette).save(tmp_path / "pt.png", transparency=2)
    reopened = Image.open(tmp_path / "pt.png")
    assert reopened.mode == "P" and reopened.info.get("transparency") == 2
    sig = load_image(tmp_path / "pt.png")
    np.testing.assert_allclose(alpha_of(sig), (idx != 2).astype(float), atol=1e-6)
    opaque = idx != 2
    np.testing.assert_allclose(rgb_of(sig)[opaque], palette[idx][opaque] / 255.0, atol=1e-6)


def test_palette_with_per_entry_alpha(tmp_path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    trns = bytes([0, 64, 128, 255])
    idx = RNG.integers(0, 4, (5, 5), dtype=np.uint8)
    _palette_image(idx, palette).save(tmp_path / "pa.png", transparency=trns)
    assert isinstance(Image.open(tmp_path / "pa.png").info.get("transparency"), bytes)
    sig = load_image(tmp_path / "pa.png")
    np.testing.assert_allclose(alpha_of(sig), np.frombuffer(trns, np.uint8)[idx] / 255.0, atol=1e-6)
    seen = idx != 0  # fully transparent pixels may lose their colour
    np.testing.assert_allclose(rgb_of(sig)[seen], palette[idx][seen] / 255.0, atol=1e-6)


def test_16bit_png_full_range(tmp_path):
    px = RNG.integers(0, 65536, (4, 5), dtype=np.uint16)
    px[0, :3] = [65535, 32768, 0]
    Image.fromarray(px).save(tmp_path / "w.png")
    assert Image.open(tmp_path / "w.png").mode == "I;16"
    sig = load_image(tmp_path / "w.png")
    grey = rgb_of(sig)
    assert grey[0, 0, 0] == 1.0
    assert grey[0, 1, 0] == pytest.approx(32768 / 65535, abs=1e-7)
    assert grey[0, 2, 0] == 0.0
    np.testing.assert_allclose(grey, np.repeat(px[..., None] / 65535.0, 3, axis=2), atol=1e-6)


def test_dark_16bit_png_is_still_scaled_by_65535(tmp_path):
    px = np.array([[0, 100], [200, 255]], dtype=np.uint16)  # max <= 255 but 16-bit
    Image.fromarray(px).save(tmp_path / "dark.png")
    grey = rgb_of(load_image(tmp_path / "dark.png"))
    np.testing.assert_allclose(grey[..., 0], px / 65535.0, atol=1e-7)


def test_cmyk_jpeg(tmp_path):
    px = RNG.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    Image.fromarray(px, "CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
        cmyk = np.asarray(im).astype(np.float64)  # the decoded pixels, lossy or not
    c, k = cmyk[..., :3], cmyk[..., 3:]
    expected = (255 - c) * (255 - k) / 255.0 / 255.0  # Pillow's CMYK -> RGB
    np.testing.assert_allclose(rgb_of(load_image(tmp_path / "c.jpg")), expected, atol=1.01 / 255)


def test_exif_orientation_is_applied(tmp_path):
    px = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # H=20, W=30
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(px, "RGB").save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.getexif().get(0x0112) == 6
        raw = np.asarray(im.convert("RGB")).astype(np.float64) / 255.0
    sig = load_image(tmp_path / "o.jpg")
    assert sig.tensor.shape == (1, 3, 30, 20)
    np.testing.assert_allclose(rgb_of(sig), np.rot90(raw, k=-1), atol=1e-6)
    # a PIL image handed in directly is transposed the same way
    with Image.open(tmp_path / "o.jpg") as im:
        assert load_image(im).tensor.shape == (1, 3, 30, 20)


def test_pil_float_image_in_unit_range():
    px = RNG.random((3, 4)).astype(np.float32)
    sig = load_image(Image.fromarray(px, "F"))
    np.testing.assert_allclose(rgb_of(sig)[..., 1], px, atol=1e-6)


def test_pil_mode_that_cannot_become_rgb_is_a_clear_error():
    with pytest.raises(NStyleError) as e:
        load_image(Image.new("La", (3, 3)), name="weird.png")
    assert_one_line(e.value, "weird.png", "La")


# --------------------------------------------------------------------------- bad files


def _truncated_png(tmp_path: Path) -> Path:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    return tmp_path / "half.png"


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: (d / "x.png").write_text("this is not an image\n") and d / "x.png", "not an image"),
        (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", "not an image"),
        (_truncated_png, "truncated"),
        (lambda d: (d / "adir.png").mkdir() or d / "adir.png", "folder"),
    ],
    ids=["missing", "text", "zero-bytes", "truncated", "folder"],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(NStyleError) as e:
        load_image(path)
    assert_one_line(e.value, str(path), problem)


# --------------------------------------------------------------------------- arrays, tensors


def test_array_grey_hw_uint8():
    px = RNG.integers(0, 256, (5, 4), dtype=np.uint8)
    sig = load_image(px)
    assert sig.tensor.shape == (1, 3, 5, 4) and sig.alpha is None
    np.testing.assert_allclose(rgb_of(sig), np.repeat(px[..., None] / 255.0, 3, axis=2), atol=1e-6)


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.uint8, 255.0), (np.uint16, 65535.0), (np.float32, 1.0), (np.float64, 1.0)],
)
def test_array_hw3(dtype, scale):
    if scale == 1.0:
        px = RNG.random((4, 6, 3)).astype(dtype)
    else:
        px = RNG.integers(0, int(scale) + 1, (4, 6, 3)).astype(dtype)
    sig = load_image(px)
    assert sig.tensor.shape == (1, 3, 4, 6) and sig.alpha is None
    np.testing.assert_allclose(rgb_of(sig), px.astype(np.float64) / scale, atol=1e-6)


def test_array_hw4_has_alpha():
    px = RNG.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    sig = load_image(px)
    np.testing.assert_allclose(rgb_of(sig), px[..., :3] / 255.0, atol=1e-6)
    np.testing.assert_allclose(alpha_of(sig), px[..., 3] / 255.0, atol=1e-6)


def test_signed_int_array_in_byte_range_is_8bit():
    px = RNG.integers(0, 256, (3, 4, 3))  # int64, as np.array of Python ints gives
    np.testing.assert_allclose(rgb_of(load_image(px)), px / 255.0, atol=1e-6)


def test_tensor_chw_and_nchw():
    t = torch.rand(3, 5, 7)
    for src in (t, t[None], t.clone().requires_grad_(True)):
        sig = load_image(src)
        assert sig.tensor.shape == (1, 3, 5, 7)
        torch.testing.assert_close(sig.tensor, t[None])


def test_float_overshoot_is_clipped():
    px = np.full((2, 2, 3), 0.5, dtype=np.float32)
    px[0, 0] = 1.05
    px[1, 1] = -0.05
    x = rgb_of(load_image(px))
    assert x.max() == 1.0 and x.min() == 0.0


@pytest.mark.parametrize(
    "arr, needle",
    [
        (np.full((4, 4, 3), np.nan, dtype=np.float32), "NaN"),
        (np.where(np.eye(4, dtype=bool)[..., None], np.inf, 0.5).repeat(3, 2), "infinite"),
        (np.zeros((0, 5, 3), dtype=np.uint8), "empty"),
        (np.zeros((5, 0), dtype=np.uint8), "empty"),
        (np.zeros((2, 3, 4, 5), dtype=np.uint8), "shape"),
        (np.zeros((4, 4, 7), dtype=np.uint8), "shape"),
        (np.full((4, 4, 3), 200.0), "not in [0, 1]"),  # 0-255 data as floats
        (np.full((4, 4, 3), 300), "outside 0..255"),
        (np.full((4, 4, 3), -1), "outside 0..255"),
        (np.array([[object()]]), "dtype"),
    ],
    ids=["nan", "inf", "empty-0x5", "empty-5x0", "4d", "7-channels", "float-0-255", "int-300", "int-neg", "object"],
)
def test_bad_arrays(arr, needle):
    with pytest.raises(NStyleError) as e:
        load_image(arr, name="my-array")
    assert_one_line(e.value, "my-array", needle)


def test_unsupported_source_type():
    with pytest.raises(NStyleError, match="list"):
        load_image([[0, 1], [1, 0]])


# --------------------------------------------------------------------------- resizing


@pytest.mark.parametrize("h, w", [(40, 20), (30, 90), (64, 64), (17, 200)])
def test_resize_long_side_keeps_aspect(h, w):
    y = resize_long_side(torch.rand(1, 3, h, w), 32)
    oh, ow = y.shape[-2:]
    assert max(oh, ow) == 32
    assert oh / ow == pytest.approx(h / w, rel=0.1, abs=1 / 32)
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_resize_too_small_is_refused():
    with pytest.raises(NStyleError, match="too small"):
        resize_long_side(torch.rand(1, 3, 8, 8), 8)


def test_load_with_size_resizes_rgb_and_alpha_together():
    px = RNG.integers(0, 256, (50, 100, 4), dtype=np.uint8)
    sig = load_image(px, size=32)
    assert sig.tensor.shape == (1, 3, 16, 32)
    assert sig.alpha.shape == (1, 1, 16, 32)


def test_constant_image_survives_resize():
    sig = load_image(np.full((40, 80, 3), 0.25), size=20)
    np.testing.assert_allclose(rgb_of(sig), 0.25, atol=1e-5)


# --------------------------------------------------------------------------- saving


def _exact_tensor(h: int, w: int) -> tuple[torch.Tensor, np.ndarray]:
    px = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return torch.from_numpy(px / 255.0).float().permute(2, 0, 1)[None], px


def test_png_round_trip_is_lossless(tmp_path):
    x, px = _exact_tensor(9, 13)
    out = save_image(x, tmp_path / "r.png")
    assert out == tmp_path / "r.png"
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (13, 9)
        np.testing.assert_array_equal(np.asarray(im), px)
    np.testing.assert_array_equal(np.round(rgb_of(load_image(out)) * 255).astype(np.uint8), px)


def test_rgba_round_trip(tmp_path):
    x, px = _exact_tensor(6, 5)
    a8 = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    alpha = torch.from_numpy(a8 / 255.0).float()[None, None]
    save_image(x, tmp_path / "a.png", alpha)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "RGBA"
        got = np.asarray(im)
    np.testing.assert_array_equal(got[..., :3], px)
    np.testing.assert_array_equal(got[..., 3], a8)
    back = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(alpha_of(back) * 255).astype(np.uint8), a8)


def test_to_pil_clamps():
    im = to_pil(torch.tensor([-1.0, 0.5, 2.0]).view(1, 3, 1, 1))
    assert im.getpixel((0, 0)) == (0, 128, 255)


# JPEG has no alpha; Pillow writes 32-bit BMPs but reads them back as RGB.
@pytest.mark.parametrize(
    "ext, modes",
    [(".jpg", {"RGB"}), (".JPEG", {"RGB"}), (".tif", {"RGBA"}), (".bmp", {"RGB", "RGBA"}), (".webp", {"RGBA"})],
)
def test_other_formats(tmp_path, ext, modes):
    x, _ = _exact_tensor(8, 12)
    alpha = torch.ones(1, 1, 8, 12)
    alpha[..., :4] = 0.0  # not all opaque, or WebP drops the channel
    save_image(x, tmp_path / f"o{ext}", alpha=alpha)
    with Image.open(tmp_path / f"o{ext}") as im:
        assert im.size == (12, 8) and im.mode in modes
    assert load_image(tmp_path / f"o{ext}").tensor.shape == (1, 3, 8, 12)


def test_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(NStyleError) as e:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "o.xyz")
    assert_one_line(e.value, "o.xyz", "extension")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder(tmp_path):
    with pytest.raises(NStyleError) as e:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "nope" / "o.png")
    assert_one_line(e.value, str(tmp_path / "nope"), "does not exist")


def test_output_is_a_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(NStyleError) as e:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "d.png")
    assert_one_line(e.value, "d.png", "folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(NStyleError) as e:
            save_image(torch.rand(1, 3, 4, 4), ro / "o.png")
        assert_one_line(e.value, str(ro), "not writable")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_unwritable_output_folder_reported_by_os_access(tmp_path, monkeypatch):
    """The same check where the test runs as root: os.access says no."""
    real = os.access
    monkeypatch.setattr(atomic.os, "access", lambda p, m: False if Path(p) == tmp_path else real(p, m))
    with pytest.raises(NStyleError) as e:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "o.png")
    assert_one_line(e.value, str(tmp_path), "not writable")
    assert list(tmp_path.iterdir()) == []


def test_os_refusing_the_temp_file_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(NStyleError) as e:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "o.png")
    assert_one_line(e.value, "o.png", "Permission denied")


@pytest.mark.parametrize(
    "exc, raised",
    [
        (OSError(28, "No space left on device"), NStyleError),
        (KeyboardInterrupt(), KeyboardInterrupt),
        (RuntimeError("boom"), RuntimeError),
    ],
    ids=["disk-full", "ctrl-c", "bug"],
)
def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, exc, raised):
    target = tmp_path / "out.png"
    target.write_bytes(b"the previous result")
    before = sorted(p.name for p in tmp_path.iterdir())
    seen = []

    def half_write(self, fp, format=None, **params):
        Path(fp).write_bytes(b"\x89PNG half of it")  # some bytes reach the temp file...
        seen.append(Path(fp))
        raise exc  # ...then the writer dies

    monkeypatch.setattr(Image.Image, "save", half_write)
    with pytest.raises(raised) as e:
        save_image(torch.rand(1, 3, 4, 4), target)
    if raised is NStyleError:
        assert_one_line(e.value, str(target), "No space left")
    assert seen and seen[0].parent == tmp_path and seen[0] != target  # it wrote beside, not onto
    assert target.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert temp_leftovers(tmp_path, "out.png") == []


def test_replace_is_the_last_step(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def fail_replace(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(atomic.os, "replace", fail_replace)
    with pytest.raises(NStyleError):
        save_image(torch.rand(1, 3, 4, 4), target)
    assert target.read_bytes() == b"old"
    assert temp_leftovers(tmp_path, "out.png") == []


def test_overwrite_replaces_existing_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    x, px = _exact_tensor(4, 4)
    save_image(x, target)
    np.testing.assert_array_equal(np.asarray(Image.open(target)), px)
    assert temp_leftovers(tmp_path, "out.png") == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_output_mode_follows_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "m.png")
        assert atomic.current_umask() == umask
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "m.png").stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode != 0o600
    assert os.umask(old) == old  # and the process umask was left as it was
    os.umask(old)
