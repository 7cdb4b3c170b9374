"""Hostile and careless input (issue "Hostile input"): every case that once destroyed a
file, hung, allocated without limit or ended in a traceback, reproduced.

Each refusal must be one line, exit status 2, before any optimisation, with every file
that existed before unchanged and nothing new left behind. Inputs: scikit-image's
astronaut and the immunohistochemistry slide (nstyle's samples), nibabel's anatomical.nii,
pydicom's CT_small.dcm, matplotlib's sample EEG, Debian alsa-utils' speech clip.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

import nstyle
import nstyle.pipeline
from nstyle.errors import NStyleError, NStyleTypeError
from nstyle.modalities.image import open_image
from nstyle.outputs.guard import OUTPUT_MARKER, all_or_nothing
from nstyle.samples import sample_path
from tests.cli.test_cli import assert_one_error_line, run, snapshot_folder

NIB_DATA = Path(os.path.dirname(nib.__file__)) / "tests" / "data"
SPEECH = Path("/usr/share/sounds/alsa/Front_Center.wav")
TINY_IMAGE = ["--size", "32", "--steps", "1", "--quiet"]


@pytest.fixture
def no_optimisation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the optimisation started although the run should have been refused")

    monkeypatch.setattr(nstyle.pipeline, "optimize", refuse)


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    """Copies of the two sample images in a folder of their own."""
    c, s = tmp_path / "photo.png", tmp_path / "painting.png"
    c.write_bytes(sample_path("astronaut.png").read_bytes())
    s.write_bytes(sample_path("ihc.png").read_bytes())
    return c, s


def refused(argv: list, capsys, folder: Path, *needles: str) -> str:
    """Run; it must be refused with one line naming ``needles`` and leave ``folder`` as it was."""
    before = snapshot_folder(folder)
    rc, _, err = run(argv, capsys)
    assert rc == 2, err
    line = assert_one_error_line(err, *needles)
    assert snapshot_folder(folder) == before
    return line


# ---- data loss: an output over an input, over another output, over a folder --------------


@pytest.mark.parametrize("how", ["same", "hard link", "symlink to the style"])
def test_image_output_naming_an_input_is_refused(how, pair, capsys, no_optimisation):
    c, s = pair
    out = {"same": c, "hard link": c.with_name("link.png"), "symlink to the style": c.with_name("sym.png")}[how]
    if how == "hard link":
        os.link(c, out)
    elif how != "same":
        out.symlink_to(s.name)
    refused(["image", c, s, "-o", out, *TINY_IMAGE], capsys, c.parent, "would overwrite", "--overwrite-input")


def test_every_kind_refuses_an_output_over_its_content(tmp_path, capsys, no_optimisation):
    eeg = tmp_path / "eeg.npy"
    import matplotlib

    np.save(eeg, np.fromfile(Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat").reshape(800, 4))
    anat = tmp_path / "anat.nii"
    anat.write_bytes((NIB_DATA / "anatomical.nii").read_bytes())
    refused(["series", eeg, eeg, "-o", eeg, "--steps", "1"], capsys, tmp_path, "eeg.npy", "would overwrite the content")
    refused(["volume", anat, anat, "-o", anat, "--steps", "1"], capsys, tmp_path, "would overwrite the content")
    if SPEECH.is_file():
        wav = tmp_path / "speech.wav"
        wav.write_bytes(SPEECH.read_bytes())
        refused(["audio", wav, wav, "-o", wav, "--steps", "1"], capsys, tmp_path, "would overwrite the content")


@pytest.mark.slow
def test_overwrite_input_replaces_the_content_on_purpose_and_is_not_repeated(pair, capsys):
    c, s = pair
    old = c.read_bytes()
    rc, _, err = run(["image", c, s, "-o", c, *TINY_IMAGE, "--overwrite-input"], capsys)
    assert rc == 0, err
    assert c.read_bytes() != old and Image.open(c).size == (32, 32)
    assert "overwrite_input =" not in c.with_suffix(".toml").read_text()  # a permission for one run only


@pytest.mark.parametrize("extra", [["--plot", "{o}"], ["--plot", "{c}"], ["--film", "{s}"]])
def test_outputs_may_not_name_each_other_or_an_input(extra, pair, capsys, no_optimisation):
    c, s = pair
    o = c.with_name("out.png")
    argv = ["image", c, s, "-o", o, *TINY_IMAGE, *[e.format(o=o, c=c, s=s) for e in extra]]
    line = refused(argv, capsys, c.parent, "would overwrite")
    assert ("the plot" in line) or ("the film" in line)


def test_a_settings_file_name_taken_by_a_folder_refuses_the_run_before_writing(pair, capsys, no_optimisation):
    c, s = pair
    (c.parent / "out.toml").mkdir()
    refused(["image", c, s, "-o", c.parent / "out.png", *TINY_IMAGE], capsys, c.parent, "out.toml", "settings file")


def test_a_failed_write_leaves_no_new_output(tmp_path):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("kept")
    with pytest.raises(NStyleError), all_or_nothing([old, new]):
        new.write_text("half of a run")
        raise NStyleError("the second output could not be written")
    assert not new.exists() and old.read_text() == "kept"


def _ct_series(folder: Path, n: int = 6) -> Path:
    """``n`` copies of pydicom's CT_small.dcm, 2.5 mm apart: a DICOM series folder."""
    folder.mkdir()
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for k in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.ImagePositionPatient = [float(base.ImagePositionPatient[0]), float(base.ImagePositionPatient[1]), 2.5 * k]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"ct{k:02d}.dcm")
    return folder


DICOM_RUN = ["--steps", "1", "--quiet", "--net", "random", "--branches", "3:4", "--window=-1000,1000"]


def test_a_dicom_series_is_never_written_over_its_own_folder(tmp_path, capsys, no_optimisation):
    series = _ct_series(tmp_path / "series")
    refused(["volume", series, NIB_DATA / "anatomical.nii", "-o", f"{series}/", *DICOM_RUN], capsys, tmp_path,
            "holds the content")


def test_a_folder_nstyle_did_not_write_is_never_replaced(tmp_path, capsys, no_optimisation):
    series = _ct_series(tmp_path / "series")
    other = _ct_series(tmp_path / "somebody_elses_slices", 2)
    refused(["volume", series, NIB_DATA / "anatomical.nii", "-o", f"{other}/", *DICOM_RUN], capsys, tmp_path,
            "not written by nstyle")


@pytest.mark.slow
def test_nstyle_replaces_its_own_slice_folder(tmp_path, capsys):
    series = _ct_series(tmp_path / "series")
    out = tmp_path / "styled"
    for _ in range(2):  # the second run replaces the first's folder (it holds the marker)
        rc, _, err = run(["volume", series, NIB_DATA / "anatomical.nii", "-o", f"{out}/", *DICOM_RUN], capsys)
        assert rc == 0, err
    assert (out / OUTPUT_MARKER).is_file()
    assert len([p for p in out.iterdir() if p.suffix == ".dcm"]) == 6
    assert len(list((tmp_path / "series").iterdir())) == 6


# ---- hangs: pipes and devices are refused before anything opens them -------------------


def _in_thread(argv: list, capsys, seconds: float = 60) -> tuple[int, str]:
    """main(argv) in a daemon thread: a regression that blocks on a pipe fails, not hangs."""
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(out=run(argv, capsys)), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"nstyle blocked on {argv}"
    rc, _, err = box["out"]
    return rc, err


@pytest.mark.parametrize("where", ["content", "style", "mask", "config", "weights", "explain", "video", "batch"])
def test_a_named_pipe_is_refused_not_waited_on(where, pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    o = tmp_path / "o.png"
    argv = {
        "content": ["image", fifo, s, "-o", o], "style": ["image", c, fifo, "-o", o],
        "mask": ["image", c, s, "-o", o, "--mask", fifo], "config": ["image", c, s, "-o", o, "--config", fifo],
        "weights": ["image", c, s, "-o", o, "--weights", fifo], "explain": ["explain", fifo, "-o", o],
        "video": ["video", fifo, s, "-o", tmp_path / "o.gif"], "batch": ["batch", fifo],
    }[where]
    rc, err = _in_thread([*argv, "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, "pipe.png", "not a regular file")


def test_a_symlink_to_a_device_is_refused(pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    rc, err = _in_thread(["image", tmp_path / "zero.png", s, "-o", tmp_path / "o.png"], capsys)
    assert rc == 2
    assert_one_error_line(err, "zero.png", "not a regular file")


# ---- memory and size: refused from headers and estimates, before allocating ------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height and which holds no pixels (a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def test_a_decompression_bomb_is_refused_from_its_header(pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    bomb = _png_header_only(tmp_path / "bomb.png", 13_000, 13_000)
    refused(["image", bomb, s, "-o", tmp_path / "o.png"], capsys, tmp_path, "bomb.png", "169 MP", "--max-pixels")
    refused(["image", c, s, "-o", tmp_path / "o.png", "--max-pixels", "100000"], capsys, tmp_path,
            "photo.png", "512x512", "--max-pixels")


def test_a_large_image_is_decoded_near_the_working_size(tmp_path):
    """The astronaut (512 px) as a JPEG read for a 64 px run: decoded by DCT scaling and
    box reduction to at most 128 px, never as the full 512 px."""
    path = tmp_path / "astronaut.jpg"
    Image.open(sample_path("astronaut.png")).convert("RGB").save(path, quality=95)
    small = open_image(path, 64)
    assert 64 <= max(small.size) <= 128
    assert max(open_image(path).size) == 512


def test_the_memory_guard_refuses_a_run_with_the_figure_and_the_option(pair, capsys, no_optimisation):
    c, s = pair
    line = refused(["image", c, s, "-o", c.with_name("o.png"), "--size", "64", "--tile", "none",
                    "--max-memory", "0.01"], capsys, c.parent, "GiB", "--max-memory", "--size")
    assert "over the limit of 0.0 GiB" in line


def test_a_huge_random_network_is_refused_before_its_weights_exist(tmp_path, capsys, no_optimisation):
    import matplotlib

    eeg = tmp_path / "eeg.npy"
    np.save(eeg, np.fromfile(Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat").reshape(800, 4))
    refused(["series", eeg, eeg, "-o", tmp_path / "o.npy", "--branches", "3:1000000000"], capsys, tmp_path,
            "random network's weights", "--branches")


def test_an_npy_header_claiming_more_than_the_file_holds_is_refused(tmp_path, capsys, no_optimisation):
    claim = tmp_path / "claim.npy"
    with open(claim, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    refused(["series", claim, claim, "-o", tmp_path / "o.npy"], capsys, tmp_path, "claim.npy", "truncated")
    real = tmp_path / "real.npy"
    np.save(real, np.zeros((200_000, 2)))
    with pytest.raises(NStyleError, match="real.npy.*GiB.*shorter series"):
        nstyle.stylize_series(real, real, max_memory=0.001)


def test_explain_refuses_a_size_that_cannot_fit(pair, tmp_path, capsys):
    c, _ = pair
    refused(["explain", c, "-o", tmp_path / "e.png", "--size", "200000"], capsys, tmp_path, "--size", "GiB")


@pytest.mark.parametrize("argv_tail, needle", [
    (["--rate", "200000000"], "sample rate"),
    (["--hop", "1", "--max-memory", "0.001"], "STFT"),
    (["--n-fft", "1024.5"], "invalid int"),
])
def test_audio_options_that_would_allocate_without_limit(argv_tail, needle, tmp_path, capsys, no_optimisation):
    if not SPEECH.is_file():
        pytest.skip("needs Debian's alsa-utils sounds")
    refused(["audio", SPEECH, SPEECH, "-o", tmp_path / "o.wav", *argv_tail], capsys, tmp_path, needle)


# ---- one line instead of a traceback ----------------------------------------------------


def test_a_file_name_that_is_not_utf8_gets_one_line(pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    name = os.fsdecode(b"photo\xff.png")
    (tmp_path / name).write_bytes(c.read_bytes())
    refused(["image", tmp_path / name, s, "-o", tmp_path / "o.png"], capsys, tmp_path, "not valid UTF-8")


def test_an_output_name_too_long_for_the_file_system(pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    refused(["image", c, s, "-o", tmp_path / ("x" * 250 + ".png")], capsys, tmp_path, "file name too long")


@pytest.mark.parametrize("option, needle", [
    (["--lr", "1e308"], "learning rate"), (["--scales", ""], "scales"), (["--scales", ","], "scales"),
    (["--seed", str(2**64)], "seed"), (["--device", "mps"], "not supported"), (["--device", "meta"], "not supported"),
])
def test_bad_option_values_are_one_line(option, needle, pair, capsys, no_optimisation):
    c, s = pair
    refused(["image", c, s, "-o", c.with_name("o.png"), *option], capsys, c.parent, needle)


@pytest.mark.parametrize("text, needle", [
    ("steps = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("init = nan\n", "nan"),
    ("style_weight = inf\n", "style weight"),
])
def test_hostile_config_files_are_one_line(text, needle, pair, capsys, no_optimisation):
    c, s = pair
    (c.parent / "run.toml").write_text(text)
    refused(["image", c, s, "-o", c.with_name("o.png"), "--config", c.parent / "run.toml"], capsys, c.parent, needle)


def test_non_finite_inputs_and_damaged_headers_are_refused(pair, tmp_path, capsys, no_optimisation):
    c, s = pair
    floats = np.asarray(Image.open(c).convert("L"), dtype=np.float32) / 255
    floats[3, 4] = np.nan
    Image.fromarray(floats, mode="F").save(tmp_path / "nan.tif")
    refused(["image", tmp_path / "nan.tif", s, "-o", tmp_path / "o.png"], capsys, tmp_path, "nan.tif", "NaN")
    raw = bytearray((NIB_DATA / "anatomical.nii").read_bytes())
    raw[0:4] = (999).to_bytes(4, "little")
    (tmp_path / "hdr.nii").write_bytes(bytes(raw))
    refused(["volume", tmp_path / "hdr.nii", NIB_DATA / "anatomical.nii", "-o", tmp_path / "o.nii"], capsys, tmp_path,
            "hdr.nii", "damaged NIfTI header")


def test_weights_holding_nan_are_refused(tmp_path):
    from tests.nets.test_nets import torchvision_state

    state = torchvision_state("vgg19")
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "vgg19.pth")
    with pytest.raises(NStyleError, match="features.0.*NaN"):
        nstyle.build_net("vgg19", weights=tmp_path / "vgg19.pth")


def test_public_functions_check_their_arguments():
    with pytest.raises(NStyleTypeError, match="size"):
        nstyle.stylize(sample_path("astronaut.png"), sample_path("ihc.png"), size="big")
    with pytest.raises(NStyleTypeError, match="n fft must be int"):
        nstyle.stylize_audio(SPEECH, SPEECH, n_fft=1024.5)
    with pytest.raises(TypeError, match="steps"):  # NStyleTypeError is a TypeError too
        nstyle.stylize_series(SPEECH, SPEECH, steps="2")
    with pytest.raises(NStyleError, match="spatial"):
        nstyle.gram_matrix(torch.ones(5))
    with pytest.raises(NStyleError, match="at least one style layer"):
        nstyle.style_cost({}, {}, {})
    with pytest.raises(NStyleError, match="scales"):
        nstyle.stylize(sample_path("astronaut.png"), sample_path("ihc.png"), scales=[])
    assert callable(nstyle.explain) and "explain" in nstyle.__all__
    assert issubclass(NStyleError, ValueError)


def test_the_api_result_will_not_save_over_its_inputs_unless_asked(pair):
    c, s = pair
    old = c.read_bytes()
    result = nstyle.stylize(c, s, size=32, steps=1, scales="none")
    for target in (c, s):
        with pytest.raises(NStyleError, match="would overwrite"):
            result.save(target)
    assert c.read_bytes() == old
    result.save(c, overwrite_input=True)
    assert Image.open(c).size == (32, 32)


# ---- part 2: every file a run writes, and checks made before the optimisation -----------


def test_derived_names_never_replace_the_users_own_files(pair, capsys, no_optimisation):
    c, s = pair
    o = c.with_name("o.png")
    c.with_name("o.toml").write_text("my own notes, not nstyle's\n")
    refused(["image", c, s, "-o", o, *TINY_IMAGE], capsys, c.parent, "o.toml", "did not write", "--force")
    c.with_name("o.toml").unlink()
    c.with_name("o.step0001.png").write_bytes(b"a picture of mine")
    refused(["image", c, s, "-o", o, *TINY_IMAGE, "--save-every", "1"], capsys, c.parent, "o.step0001.png", "--force")


@pytest.mark.slow
def test_force_and_nstyles_own_settings_file(pair, capsys):
    c, s = pair
    o = c.with_name("o.png")
    c.with_name("o.toml").write_text("my own notes\n")
    rc, _, err = run(["image", c, s, "-o", o, *TINY_IMAGE, "--force"], capsys)
    assert rc == 0, err
    assert c.with_name("o.toml").read_text().startswith("# nstyle ")
    rc, _, err = run(["image", c, s, "-o", o, *TINY_IMAGE], capsys)  # its own file: replaced without --force
    assert rc == 0, err
    assert "force =" not in c.with_name("o.toml").read_text()


def test_relative_names_in_a_config_file_are_relative_to_its_folder(pair, capsys, no_optimisation):
    from nstyle.cli import build_parser
    from nstyle.outputs.config import parse_args_with_config

    c, s = pair
    sub = c.parent / "runs" / "a"
    sub.mkdir(parents=True)
    (sub / "run.toml").write_text('command = "image"\ncontent = "../../photo.png"\nstyle = ["../../painting.png"]\n'
                                  'output = "x.png"\n')
    args = parse_args_with_config(build_parser(), ["--config", str(sub / "run.toml")])
    assert Path(args.output) == sub / "x.png" and Path(args.content) == c and [Path(p) for p in args.style] == [s]


@pytest.mark.slow
def test_a_newline_in_the_output_name_still_gives_a_readable_settings_file(pair, capsys):
    from nstyle.cli import build_parser
    from nstyle.outputs.config import parse_args_with_config

    c, s = pair
    o = c.parent / "two\nlines.png"
    rc, _, err = run(["image", c, s, "-o", o, *TINY_IMAGE], capsys)
    assert rc == 0, err
    args = parse_args_with_config(build_parser(), ["--config", str(c.parent / "two\nlines.toml")])
    assert Path(args.output) == o


def test_an_output_format_that_cannot_hold_the_source_codec_falls_back(tmp_path):
    from nstyle.modalities.audio import _pick_subtype, load_audio, save_audio

    assert _pick_subtype("WAV", "PCM_16", "MPEG_LAYER_III", 22050) == "PCM_16"
    assert _pick_subtype("WAV", "PCM_16", "GSM610", 8000) == "PCM_16"
    assert _pick_subtype("WAV", "PCM_16", "FLOAT", 8000) == "FLOAT"
    if not SPEECH.is_file():
        pytest.skip("needs Debian's alsa-utils sounds")
    import soundfile as sf
    import soxr

    speech, rate = sf.read(SPEECH)
    sf.write(tmp_path / "gsm.wav", soxr.resample(speech, rate, 8000), 8000, format="WAV", subtype="GSM610")
    sf.write(tmp_path / "speech.mp3", speech, rate, format="MP3")
    for name in ("gsm.wav", "speech.mp3"):  # not seekable (GSM 6.10); a codec WAV cannot hold (MP3)
        sig = load_audio(tmp_path / name)
        assert sig.tensor.shape[-1] > 1000
        out = save_audio(sig.tensor, tmp_path / f"{name}.out.wav", sig.rate, sig.subtype)
        assert sf.info(out).subtype == "PCM_16"


def test_series_values_that_would_overflow_and_giant_csv_fields(tmp_path, capsys, no_optimisation):
    t = np.arange(300)
    (tmp_path / "big.csv").write_text("a,b\n" + "".join(f"{3e38 * (-1) ** i},{np.sin(i)}\n" for i in t))
    refused(["series", tmp_path / "big.csv", tmp_path / "big.csv", "-o", tmp_path / "o.csv"], capsys, tmp_path,
            "big.csv", "overflow")
    (tmp_path / "field.csv").write_text("a,b\n1," + "9" * 200_000 + "\n2,3\n")
    refused(["series", tmp_path / "field.csv", tmp_path / "field.csv", "-o", tmp_path / "o.csv"], capsys, tmp_path,
            "field.csv", "not a readable table")


@pytest.mark.parametrize("argv", [
    ["volume", "{a}", "{a}", "-o", "{d}/o.nii", "--slices", "0"],
    ["volume", "{a}", "{a}", "-o", "{d}/o.nii", "--slices", "-1"],
    ["volume", "{a}", "{a}", "-o", "{d}/o.nii", "--net-seed", str(2**64)],
    ["image", "{c}", "{c}", "-o", "{d}/o.png/"],
    ["series", "{e}", "{e}", "-o", "{d}/o.npy", "--branches="],
    ["explain", "{c}", "-o", "{d}/e.png", "--channels", "0"],
    ["volume", "{a}", "{a}", "-o", "{d}/o.nii", "--preview", "{d}/p.txt"],
])
def test_values_once_accepted_though_wrong(argv, pair, tmp_path, capsys, no_optimisation):
    c, _ = pair
    eeg = tmp_path / "eeg.npy"
    np.save(eeg, np.sin(np.linspace(0, 60, 2000))[:, None])
    folder = tmp_path / "out"
    folder.mkdir()
    refused([a.format(a=NIB_DATA / "anatomical.nii", c=c, d=folder, e=eeg) for a in argv], capsys, folder)


def test_a_refusal_stays_one_line_when_libraries_warn(pair, capsys, monkeypatch):
    import warnings

    import nstyle.cli

    def warn_then_refuse(*args, **kwargs):
        warnings.warn("a library's notice", UserWarning, stacklevel=1)
        raise NStyleError("the input is bad")

    monkeypatch.setattr(nstyle.cli, "run", warn_then_refuse)
    c, s = pair
    rc, _, err = run(["image", c, s, "-o", c.with_name("o.png"), "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, "the input is bad")


def test_api_arguments_of_the_wrong_kind_are_named():
    from nstyle.core.functional import Terms

    photo, painting = sample_path("astronaut.png"), sample_path("ihc.png")
    for kw, needle in [({"size": 32.5}, "size"), ({"seed": 1.5}, "seed"),
                       ({"steps": "2"}, "steps"), ({"steps": 2.5}, "steps"), ({"device": None}, "device"),
                       ({"seed": "abc"}, "seed")]:
        with pytest.raises(NStyleError, match=needle):
            nstyle.stylize(photo, painting, **kw)
    with pytest.raises(NStyleTypeError, match="content must be a file name"):
        nstyle.stylize_audio(None, SPEECH)
    with pytest.raises(NStyleTypeError, match="Terms"):
        nstyle.optimize(lambda g: 1, torch.zeros(1, 1, 8), 2)
    zero = torch.zeros(())
    assert nstyle.optimize(lambda g: Terms((g**2).sum(), zero, zero, zero), torch.ones(1, 1, 8), 2).best_step >= 0
