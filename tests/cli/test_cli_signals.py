"""`nstyle audio` and `nstyle series`: one-line errors with exit status 2 for bad inputs,
refused before any optimisation step and with nothing written or clobbered, and tiny
successful runs on real recordings.

Audio: Debian alsa-utils' speech clips (Front_Center.wav as content, Noise.wav as style,
48 kHz mono). Series: pydicom's bundled 12-lead ECG (waveform_ecg.dcm, 1000 Hz, 10 s) and
matplotlib's bundled EEG traces (sample_data/eeg.dat, 800 x 4).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import nstyle.pipeline
from nstyle.modalities.audio import load_audio
from nstyle.modalities.series import load_series
from tests.cli.test_cli import OLD_BYTES, assert_one_error_line, run, snapshot_folder
from tests.kinds.test_signals import alsa_clip

# --------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def speech() -> Path:
    return alsa_clip("Front_Center.wav")


@pytest.fixture(scope="module")
def noise() -> Path:
    return alsa_clip("Noise.wav")


@pytest.fixture(scope="module")
def ecg_dcm() -> Path:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("waveform_ecg.dcm"))


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("series")


@pytest.fixture(scope="module")
def eeg_npy(series_dir) -> Path:
    import matplotlib

    raw = Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat"
    eeg = np.fromfile(raw, dtype=np.float64).reshape(800, 4)  # as matplotlib's own example reads it
    path = series_dir / "eeg.npy"
    np.save(path, eeg)
    return path


@pytest.fixture(scope="module")
def ecg_csv(series_dir, ecg_dcm) -> Path:
    """Leads I, II, V1, V5 of the DICOM ECG, the first 2000 samples, with a time column."""
    leads = load_series(ecg_dcm).tensor[0, [0, 1, 6, 10], :2000].numpy()
    rows = np.column_stack([np.arange(2000) / 1000.0, leads.T])
    path = series_dir / "ecg.csv"
    np.savetxt(path, rows, delimiter=",", header="time,I,II,V1,V5", comments="", fmt="%.6g")
    return path


@pytest.fixture
def no_optimisation(monkeypatch):
    """Every refusal below must come before the first optimisation step."""

    def refuse(*args, **kwargs):
        raise AssertionError("the optimisation started although the input was bad")

    monkeypatch.setattr(nstyle.pipeline, "optimize", refuse)


def _write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def _noise_samples(n: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)


# --------------------------------------------------------------------------- audio: bad inputs


def _text_wav(d: Path) -> Path:
    (d / "x.wav").write_text("hello, I am text, not a RIFF header\n")
    return d / "x.wav"


def _empty_wav(d: Path) -> Path:
    return _write_wav(d / "empty.wav", np.zeros((0, 1), dtype=np.float32), 48000)


def _nan_wav(d: Path) -> Path:
    x = _noise_samples(48000)
    x[1000:1010] = np.nan
    path = _write_wav(d / "nan.wav", x, 48000, subtype="FLOAT")
    assert np.isnan(sf.read(path)[0]).sum() == 10  # the NaNs really are in the file
    return path


def _short_wav(d: Path) -> Path:
    # 0.05 s at the default 22050 Hz and hop 256: 5 STFT frames; the 11x4 branch spans 41
    return _write_wav(d / "short.wav", _noise_samples(1102), 22050)


def _tiny_wav(d: Path) -> Path:
    # 0.01 s: fewer samples than the STFT's reflect padding (n_fft / 2 = 512) needs
    return _write_wav(d / "tiny.wav", _noise_samples(220), 22050)


def _folder_wav(d: Path) -> Path:
    (d / "afolder.wav").mkdir()
    return d / "afolder.wav"


# (which argument is bad, its maker, extra options, output name, what the line must name)
AUDIO_BAD = {
    "content-missing": ("content", lambda d: d / "missing.wav", [], "out.wav", ["missing.wav", "no such file"]),
    "style-missing": ("style", lambda d: d / "nostyle.flac", [], "out.wav", ["nostyle.flac", "no such file"]),
    "content-text": ("content", _text_wav, [], "out.wav", ["x.wav", "not an audio file"]),
    "content-folder": ("content", _folder_wav, [], "out.wav", ["afolder.wav", "folder"]),
    "content-empty": ("content", _empty_wav, [], "out.wav", ["empty.wav", "empty", "0 frames"]),
    "style-nan": ("style", _nan_wav, [], "out.wav", ["nan.wav", "NaN"]),
    "content-shorter-than-branch": ("content", _short_wav, [], "out.wav", ["short.wav", "5 STFT frames", "41"]),
    "style-tiny-waveform": (
        "style", _tiny_wav, ["--branches", "1:8"], "out.wav", ["tiny.wav", "too short", "n_fft=1024"]
    ),
    "content-tiny-magnitude": ("content", _tiny_wav, ["--mode", "magnitude"], "out.wav", ["tiny.wav", "too short"]),
    "branches-too-wide": (
        None, None, ["--branches", "11x64:8"], "out.wav", ["Front_Center.wav", "widest branch", "641"]
    ),
    "branches-garbage": (None, None, ["--branches", "11-8"], "out.wav", ["11-8", "width"]),
    "output-mp3": (None, None, [], "out.mp3", ["out.mp3", "extension"]),
    "plot-jpg": (None, None, ["--plot", "{o}/spec.jpg"], "out.wav", ["spec.jpg", ".png"]),
    "mode-bogus": (None, None, ["--mode", "bogus"], "out.wav", ["--mode", "bogus"]),
    "style-weight-negative": (None, None, ["--style-weight=-1"], "out.wav", ["style weight", "-1"]),
    "content-weight-nan": (None, None, ["--content-weight", "nan"], "out.wav", ["content weight", "nan"]),
    "n-fft-8": (None, None, ["--n-fft", "8"], "out.wav", ["n_fft=8"]),
    "hop-0": (None, None, ["--hop", "0"], "out.wav", ["hop=0"]),
    "rate-0": (None, None, ["--rate", "0"], "out.wav", ["sample rate", "0"]),
    "max-seconds-negative": (None, None, ["--max-seconds=-2"], "out.wav", ["max_seconds", "-2"]),
    "content-layer-unknown": (None, None, ["--content-layer", "relu4_2"], "out.wav", ["relu4_2"]),
}


@pytest.mark.parametrize("case", list(AUDIO_BAD))
def test_audio_bad_input_is_one_line_exit_2_and_nothing_written(
    case, tmp_path, capsys, speech, noise, no_optimisation
):
    which, make, extra, out_name, needles = AUDIO_BAD[case]
    inputs, outdir = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outdir.mkdir()
    c, s = speech, noise
    if which == "content":
        c = make(inputs)
    elif which == "style":
        s = make(inputs)
    out = outdir / out_name
    out.write_bytes(OLD_BYTES)
    (outdir / "spec.png").write_bytes(OLD_BYTES)
    extra = [a.replace("{o}", str(outdir)) for a in extra]
    if "--plot" not in extra:
        extra += ["--plot", str(outdir / "spec.png")]
    before = snapshot_folder(tmp_path)

    rc, stdout, err = run(
        ["audio", c, s, "-o", out, "--steps", "2", "--quiet", "--branches", "11x4:16", *extra], capsys
    )
    assert rc == 2, err
    assert_one_error_line(err, *needles)
    assert stdout == ""
    assert snapshot_folder(tmp_path) == before  # OUT and the plot unchanged, no temporary files


# --------------------------------------------------------------------------- series: bad inputs


def _no_numeric_csv(d: Path) -> Path:
    (d / "words.csv").write_text("time,name,unit\n0,alpha,mV\n0.001,beta,mV\n0.002,gamma,mV\n")
    return d / "words.csv"


def _nan_inf_csv(d: Path) -> Path:
    rows = ["time,I,II,V1,V5"] + [f"{i / 1000:g},{i},{2 * i},{3 * i},{4 * i}" for i in range(300)]
    rows[10] = "0.009,nan,18,27,36"
    rows[20] = "0.019,19,inf,57,-inf"
    (d / "naninf.csv").write_text("\n".join(rows) + "\n")
    return d / "naninf.csv"


def _inf_npy(d: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((800, 4))
    x[5, 2] = np.inf
    np.save(d / "inf.npy", x)
    return d / "inf.npy"


def _short_csv(d: Path) -> Path:
    rows = np.column_stack([np.arange(20) / 1000.0, np.random.default_rng(0).standard_normal((20, 4))])
    np.savetxt(d / "short.csv", rows, delimiter=",", header="time,I,II,V1,V5", comments="", fmt="%.6g")
    return d / "short.csv"


# (which argument is bad, its maker or a fixture name, extra options, output name, needles)
SERIES_BAD = {
    "content-missing": ("content", lambda d: d / "missing.csv", [], "out.csv", ["missing.csv", "no such file"]),
    "content-no-numeric-column": ("content", _no_numeric_csv, [], "out.csv", ["words.csv", "no numeric column"]),
    "content-nan-inf": ("content", _nan_inf_csv, [], "out.csv", ["naninf.csv", "3 NaN/Inf", "'I'", "'II'", "'V5'"]),
    "style-inf": ("style", _inf_npy, [], "out.csv", ["inf.npy", "1 NaN/Inf"]),
    "content-shorter-than-branch": (
        "content", _short_csv, ["--branches", "11x4:8"], "out.csv", ["short.csv", "20 samples", "widest branch (41)"]
    ),
    "lead-counts-differ": ("content", "ecg_dcm", [], "out.csv", ["eeg.npy", "4 leads", "waveform_ecg.dcm", "12"]),
    "columns-missing": (None, None, ["--columns", "I,X"], "out.csv", ["ecg.csv", "'X'"]),
    "dicom-out-from-csv": (None, None, [], "out.dcm", ["out.dcm", "DICOM", "ecg.csv"]),
    "output-xlsx": (None, None, [], "out.xlsx", ["out.xlsx", "extension"]),
    "plot-no-extension": (None, None, ["--plot", "{o}/traces"], "out.csv", ["traces", ".png"]),
    "style-weight-negative": (None, None, ["--style-weight=-10"], "out.csv", ["style weight", "-10"]),
    "branches-garbage": (None, None, ["--branches", "5:"], "out.csv", ["'5:'"]),
    "init-bogus": (None, None, ["--init", "zeros"], "out.csv", ["--init", "zeros"]),
}


@pytest.mark.parametrize("case", list(SERIES_BAD))
def test_series_bad_input_is_one_line_exit_2_and_nothing_written(
    case, tmp_path, capsys, request, ecg_csv, eeg_npy, no_optimisation
):
    which, make, extra, out_name, needles = SERIES_BAD[case]
    inputs, outdir = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outdir.mkdir()
    c, s = ecg_csv, eeg_npy
    if which is not None:
        bad = request.getfixturevalue(make) if isinstance(make, str) else make(inputs)
        c, s = (bad, s) if which == "content" else (c, bad)
    out = outdir / out_name
    out.write_bytes(OLD_BYTES)
    (outdir / "traces.png").write_bytes(OLD_BYTES)
    extra = [a.replace("{o}", str(outdir)) for a in extra]
    if "--plot" not in extra:
        extra += ["--plot", str(outdir / "traces.png")]
    before = snapshot_folder(tmp_path)

    # no --steps for a DICOM output: the default 300 steps would show a late refusal as a slow test
    steps = [] if out_name.endswith(".dcm") else ["--steps", "2"]
    rc, stdout, err = run(["series", c, s, "-o", out, *steps, "--quiet", *extra], capsys)
    assert rc == 2, err
    assert_one_error_line(err, *needles)
    assert stdout == ""
    assert snapshot_folder(tmp_path) == before


def test_output_folder_missing(tmp_path, capsys, ecg_csv, eeg_npy, no_optimisation):
    out = tmp_path / "no_such_dir" / "out.csv"
    rc, _, err = run(["series", ecg_csv, eeg_npy, "-o", out, "--steps", "1", "--quiet"], capsys)
    assert rc == 2
    assert_one_error_line(err, "no_such_dir", "does not exist")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_real_exit_status_and_stderr_in_a_subprocess(tmp_path, noise):
    out = tmp_path / "out.wav"
    out.write_bytes(OLD_BYTES)
    missing = tmp_path / "gone.wav"
    proc = subprocess.run(
        [
            sys.executable, "-m", "nstyle.cli", "audio", str(missing), str(noise),
            "-o", str(out), "--steps", "1", "--quiet",
        ],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, str(missing), "no such file")
    assert out.read_bytes() == OLD_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


# --------------------------------------------------------------------------- success


def _assert_png(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) > 100
        im.verify()


def _assert_success(rc: int, stdout: str, err: str, *written: Path) -> None:
    assert rc == 0, err
    assert stdout == ""
    assert "error" not in err.lower()
    for path in written:
        assert f"wrote {path}" in err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["waveform", "magnitude"])
def test_audio_tiny_run_writes_wav_and_spectrogram_plot(mode, tmp_path, capsys, speech, noise):
    out, plot = tmp_path / "out.wav", tmp_path / "spec.png"
    out.write_bytes(OLD_BYTES)  # a successful run does replace it
    rc, stdout, err = run(
        ["audio", speech, noise, "-o", out, "--rate", "8000", "--n-fft", "256", "--hop", "64", "--branches", "11:64",
         "--steps", "3", "--quiet", "--plot", plot, "--mode", mode],
        capsys,
    )
    _assert_success(rc, stdout, err, out, plot)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.toml", "out.wav", "spec.png"]
    info = sf.info(out)
    assert (info.format, info.samplerate, info.channels) == ("WAV", 8000, 1)
    assert info.subtype == sf.info(speech).subtype  # the content's PCM_16
    expected = load_audio(speech, rate=8000).tensor.shape[-1]  # the content's duration at 8 kHz
    assert info.frames == expected
    assert abs(info.duration - sf.info(speech).duration) < 2 / 8000
    data, _ = sf.read(out, dtype="float32")
    assert np.isfinite(data).all() and data.std() > 1e-3  # a sound, not silence
    _assert_png(plot)


@pytest.mark.slow
def test_series_csv_run_keeps_header_and_time_column(tmp_path, capsys, ecg_csv, eeg_npy):
    out, plot = tmp_path / "out.csv", tmp_path / "traces.png"
    rc, stdout, err = run(["series", ecg_csv, eeg_npy, "-o", out, "--steps", "3", "--quiet", "--plot", plot], capsys)
    _assert_success(rc, stdout, err, out, plot)
    with open(ecg_csv, newline="") as f:
        c_rows = list(csv.reader(f))
    with open(out, newline="") as f:
        g_rows = list(csv.reader(f))
    assert g_rows[0] == c_rows[0] == ["time", "I", "II", "V1", "V5"]
    assert len(g_rows) == len(c_rows) == 2001
    assert [r[0] for r in g_rows] == [r[0] for r in c_rows]  # the time column, as text
    g = np.array([[float(v) for v in r[1:]] for r in g_rows[1:]])
    c = np.array([[float(v) for v in r[1:]] for r in c_rows[1:]])
    assert np.isfinite(g).all() and not np.allclose(g, c)
    assert load_series(out).rate == pytest.approx(1000.0)
    _assert_png(plot)


def test_series_dicom_in_dicom_out(tmp_path, capsys, ecg_dcm):
    import pydicom

    src = pydicom.dcmread(ecg_dcm)
    leads = src.waveform_array(0)  # (10000, 12)
    style = tmp_path / "reversed.npy"
    np.save(style, np.ascontiguousarray(leads[::-1]))
    out = tmp_path / "out.dcm"
    rc, stdout, err = run(
        ["series", ecg_dcm, style, "-o", out, "--steps", "1", "--branches", "5:16", "--quiet"], capsys
    )
    _assert_success(rc, stdout, err, out)
    ds = pydicom.dcmread(out)
    item = ds.WaveformSequence[0]
    assert int(item.NumberOfWaveformChannels) == 12
    assert int(item.NumberOfWaveformSamples) == 10000
    g = ds.waveform_array(0)
    assert g.shape == (10000, 12) and np.isfinite(g).all()
    assert not np.array_equal(g, leads)
    assert ds.SOPInstanceUID != src.SOPInstanceUID
    back = load_series(out)
    assert back.names == load_series(ecg_dcm).names and back.rate == pytest.approx(1000.0)


@pytest.mark.parametrize("command", ["audio", "series"])
def test_help_mentions_branches_and_plot(command, capsys):
    rc, out, _ = run([command, "--help"], capsys)
    assert rc == 0
    for opt in ("--branches", "--plot", "--steps", "--style-weight", "--content-weight"):
        assert opt in out, opt


def test_top_level_help_lists_the_signal_commands(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    assert "audio" in out and "series" in out
