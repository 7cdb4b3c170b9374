"""Time-series I/O: load_series / save_series for CSV-like tables, .npy and DICOM ECG.

Expected values come from NumPy (loadtxt, np.load) or pydicom reading the same files,
not from nstyle, so a wrong column, orientation, scale or quantisation shows up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nstyle.errors import NStyleError
from nstyle.modalities.series import SeriesSignal, load_series, save_series

try:
    import pydicom
    from pydicom.data import get_testdata_file
except ImportError:  # the table and .npy tests still run
    pydicom = None
needs_pydicom = pytest.mark.skipif(pydicom is None, reason="pydicom is not installed")

RNG = np.random.default_rng(4321)


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg.strip(), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def leads_of(sig: SeriesSignal) -> np.ndarray:
    """(T, n_leads) float64 view of a loaded signal's tensor, after checking its shape."""
    t = sig.tensor
    assert t.dtype == torch.float32 and t.dim() == 3 and t.shape[0] == 1
    assert t.shape[1] == len(sig.names)
    return t[0].T.double().numpy()


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    lines = [delimiter.join(header)] + [delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def header_of(path: Path, delimiter: str = ",") -> list[str]:
    return path.read_text().splitlines()[0].split(delimiter)


def temp_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def ecg_table(tmp_path) -> tuple[Path, np.ndarray]:
    """time (500 Hz, 3 decimals), a, label (text), b, c; 40 rows."""
    n = 40
    vals = np.round(RNG.normal(0, 100, (n, 3)), 4)
    rows = [[f"{i * 0.002:.3f}", vals[i, 0], f"beat{i % 3}", vals[i, 1], vals[i, 2]] for i in range(n)]
    return write_csv(tmp_path / "ecg.csv", ["time", "a", "label", "b", "c"], rows), vals


# --------------------------------------------------------------------------- CSV


def test_csv_chosen_columns_round_trip(ecg_table, tmp_path):
    path, _ = ecg_table
    sig = load_series(path, columns=["a", "c"], time_column="time")
    want = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 4))
    assert sig.names == ["a", "c"]
    np.testing.assert_allclose(leads_of(sig), want, rtol=1e-6)
    assert sig.rate == pytest.approx(500.0)
    assert sig.source == str(path)

    out = save_series(sig.tensor * 2 - 1, tmp_path / "out.csv", sig)
    assert out == tmp_path / "out.csv"
    assert header_of(out) == ["time", "a", "c"]
    got = np.loadtxt(out, delimiter=",", skiprows=1)
    src_time = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    out_time = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert out_time == src_time  # copied as text, same formatting
    np.testing.assert_allclose(got[:, 1:], want * 2 - 1, rtol=1e-6, atol=1e-4)
    # and the written file reads back to the same float32 samples
    back = load_series(out)
    assert back.names == ["a", "c"]
    assert torch.equal(back.tensor, sig.tensor * 2 - 1)


def test_csv_default_columns_skip_text_and_time(ecg_table):
    path, vals = ecg_table
    sig = load_series(path)  # "time" auto-detected, "label" is not numeric
    assert sig.names == ["a", "b", "c"]
    np.testing.assert_allclose(leads_of(sig), vals, rtol=1e-6)
    assert sig.rate == pytest.approx(500.0)


def test_csv_time_column_extended_and_cut(ecg_table, tmp_path):
    path, _ = ecg_table
    sig = load_series(path, columns=["b"])
    longer = torch.arange(55, dtype=torch.float32).reshape(1, 1, 55)
    out = save_series(longer, tmp_path / "long.csv", sig)
    got = np.loadtxt(out, delimiter=",", skiprows=1)
    assert got.shape == (55, 2)
    np.testing.assert_allclose(got[:, 0], np.arange(55) * 0.002, atol=1e-12)
    np.testing.assert_array_equal(got[:, 1], np.arange(55))
    lines = out.read_text().splitlines()
    assert lines[0] == "time,b"
    assert lines[41].split(",")[0] == "0.080"  # the 41st sample: the same 3 decimals
    assert lines[55].split(",")[0] == "0.108"

    shorter = save_series(torch.ones(1, 1, 7), tmp_path / "short.csv", sig)
    got = np.loadtxt(shorter, delimiter=",", skiprows=1)
    assert got.shape == (7, 2)
    np.testing.assert_allclose(got[:, 0], np.arange(7) * 0.002, atol=1e-12)


def test_csv_uneven_or_text_time_becomes_row_index(tmp_path):
    path = write_csv(tmp_path / "u.csv", ["t", "x"], [[0, 1], [1, 2], [3, 3], [4, 4]])
    sig = load_series(path)
    assert sig.names == ["x"] and sig.rate is None
    out = save_series(torch.zeros(1, 1, 6), tmp_path / "o.csv", sig)
    got = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(got[:, 0], np.arange(6))

    path = write_csv(tmp_path / "d.csv", ["date", "x"], [["2024-05-01T10:00:00.000", 1], ["2024-05-01T10:00:00.250", 2],
                                                         ["2024-05-01T10:00:00.500", 3]])
    sig = load_series(path)
    assert sig.names == ["x"] and sig.rate == pytest.approx(4.0)  # ISO stamps 0.25 s apart
    same = save_series(sig.tensor + 1, tmp_path / "same.csv", sig)
    assert [ln.split(",")[0] for ln in same.read_text().splitlines()] == [
        "date", "2024-05-01T10:00:00.000", "2024-05-01T10:00:00.250", "2024-05-01T10:00:00.500"]
    other = save_series(torch.zeros(1, 1, 4), tmp_path / "other.csv", sig)
    assert [ln.split(",")[0] for ln in other.read_text().splitlines()[1:]] == ["0", "1", "2", "3"]


def test_csv_auto_time_column_in_ms(tmp_path):
    path = write_csv(tmp_path / "ms.csv", ["Time (ms)", "v1", "v2"], [[4 * i, i, -i] for i in range(10)])
    sig = load_series(path)
    assert sig.names == ["v1", "v2"]
    assert sig.rate == pytest.approx(250.0)  # 4 ms steps
    np.testing.assert_array_equal(leads_of(sig), np.stack([np.arange(10), -np.arange(10)], 1))
    out = save_series(torch.zeros(1, 2, 12), tmp_path / "o.csv", sig)
    assert header_of(out) == ["Time (ms)", "v1", "v2"]
    assert [ln.split(",")[0] for ln in out.read_text().splitlines()[-2:]] == ["40", "44"]


def test_csv_first_column_not_time_is_data(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["temp", "x"], [[1, 2], [3, 4]])
    sig = load_series(path)
    assert sig.names == ["temp", "x"] and sig.rate is None
    # a time-like first column asked for as data is data
    path = write_csv(tmp_path / "t.csv", ["t", "x"], [[1, 2], [3, 4]])
    sig = load_series(path, columns=["t", "x"])
    np.testing.assert_array_equal(leads_of(sig), [[1, 2], [3, 4]])


def test_time_column_in_the_middle_keeps_its_place(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["a", "clock", "b"], [[1, 0.5, 2], [3, 1.0, 4], [5, 1.5, 6]])
    sig = load_series(path, time_column="clock")
    assert sig.names == ["a", "b"] and sig.rate == pytest.approx(2.0)
    out = save_series(sig.tensor * 10, tmp_path / "o.csv", sig)
    assert header_of(out) == ["a", "clock", "b"]
    np.testing.assert_array_equal(
        np.loadtxt(out, delimiter=",", skiprows=1), [[10, 0.5, 20], [30, 1.0, 40], [50, 1.5, 60]]
    )


@pytest.mark.parametrize("ext, delimiter", [(".tsv", "\t"), (".txt", ";"), (".txt", " "), (".csv", ";")])
def test_delimiters_sniffed_and_kept(tmp_path, ext, delimiter):
    vals = RNG.integers(-50, 50, (6, 2))
    path = write_csv(tmp_path / f"s{ext}", ["sec", "p", "q"], [[i * 0.5, *vals[i]] for i in range(6)], delimiter)
    sig = load_series(path)
    assert sig.names == ["p", "q"] and sig.rate == pytest.approx(2.0)
    np.testing.assert_array_equal(leads_of(sig), vals)
    out = save_series(sig.tensor, tmp_path / f"o{ext}", sig)
    want_delim = delimiter if delimiter != " " else "\t"  # whitespace tables are written with tabs
    assert header_of(out, want_delim) == ["sec", "p", "q"]
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=want_delim, skiprows=1)[:, 1:], vals)


def test_float32_values_written_exactly(tmp_path):
    x = torch.from_numpy(RNG.normal(0, 1e3, (1, 3, 50)).astype(np.float32))
    like = load_series(write_csv(tmp_path / "in.csv", ["a", "b", "c"], [[1, 2, 3]]))
    out = save_series(x, tmp_path / "o.csv", like)
    got = np.loadtxt(out, delimiter=",", skiprows=1).astype(np.float32)
    np.testing.assert_array_equal(got, x[0].T.numpy())  # every sample reads back bit-exact


# --------------------------------------------------------------------------- .npy


@pytest.mark.parametrize("shape, transposed", [((300, 3), False), ((3, 300), True), ((20, 17), False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_npy_orientations_round_trip(tmp_path, shape, transposed, dtype):
    arr = RNG.normal(0, 5, shape).astype(dtype)
    np.save(tmp_path / "in.npy", arr)
    sig = load_series(tmp_path / "in.npy")
    leads = arr.T if transposed else arr
    assert sig.names == [f"lead{i}" for i in range(leads.shape[1])]
    assert sig.rate is None
    np.testing.assert_array_equal(leads_of(sig), leads.astype(np.float32))
    out = save_series(sig.tensor[..., :-2] * 3, tmp_path / "out.npy", sig)
    got = np.load(out)
    assert got.dtype == dtype
    want = (arr[:, :-2] if transposed else arr[:-2]).astype(np.float32) * 3
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_npy_one_dimensional_and_integer(tmp_path):
    arr = np.arange(-20, 30, dtype=np.int16)
    np.save(tmp_path / "in.npy", arr)
    sig = load_series(tmp_path / "in.npy")
    assert sig.tensor.shape == (1, 1, 50) and sig.names == ["lead0"]
    np.testing.assert_array_equal(leads_of(sig)[:, 0], arr)
    got = np.load(save_series(sig.tensor / 2, tmp_path / "o.npy", sig))
    assert got.dtype == np.float32 and got.shape == (50,)  # ints come back as float32
    np.testing.assert_array_equal(got, arr / 2)


def test_npy_columns_pick_leads(tmp_path):
    arr = RNG.normal(size=(40, 4))
    np.save(tmp_path / "in.npy", arr)
    sig = load_series(tmp_path / "in.npy", columns=["lead3", "lead1"])
    assert sig.names == ["lead3", "lead1"]
    np.testing.assert_array_equal(leads_of(sig), arr[:, [3, 1]].astype(np.float32))


def test_cross_format_npy_to_csv_and_back(tmp_path):
    arr = RNG.normal(0, 10, (64, 2)).astype(np.float32)
    np.save(tmp_path / "in.npy", arr)
    sig = load_series(tmp_path / "in.npy")
    out = save_series(sig.tensor, tmp_path / "o.csv", sig)
    assert header_of(out) == ["lead0", "lead1"]  # no rate, no time column
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=",", skiprows=1).astype(np.float32), arr)
    csv_sig = load_series(out)
    got = np.load(save_series(csv_sig.tensor, tmp_path / "o.npy", csv_sig))
    assert got.shape == (64, 2) and got.dtype == np.float32
    np.testing.assert_array_equal(got, arr)


# --------------------------------------------------------------------------- DICOM

@pytest.fixture(scope="module")
def ecg_path() -> str:
    if pydicom is None:
        pytest.skip("pydicom is not installed")
    return get_testdata_file("waveform_ecg.dcm")


LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@needs_pydicom
def test_dicom_load(ecg_path):
    sig = load_series(ecg_path)
    want = pydicom.dcmread(ecg_path).waveform_array(0)
    assert want.shape == (10000, 12)
    assert sig.tensor.shape == (1, 12, 10000)
    np.testing.assert_array_equal(leads_of(sig), want)  # exact: multiples of 1.25 uV fit float32
    assert sig.names == LEADS
    assert sig.rate == 1000.0


@needs_pydicom
def test_dicom_write_modified(ecg_path, tmp_path):
    sig = load_series(ecg_path)
    src = pydicom.dcmread(ecg_path)
    target = leads_of(sig) * 0.5 + 3.3  # not on the 1.25 grid: must be rounded to it
    out = save_series(torch.from_numpy(target.T.copy()).float()[None], tmp_path / "o.dcm", sig)
    ds = pydicom.dcmread(out)
    got = ds.waveform_array(0)
    sens = np.array([float(ch.ChannelSensitivity) * float(ch.ChannelSensitivityCorrectionFactor)
                     for ch in src.WaveformSequence[0].ChannelDefinitionSequence])
    assert got.shape == (10000, 12)
    err = np.abs(got - target)
    assert (err <= sens / 2 + 1e-4).all(), err.max()
    assert err.max() > 0.1  # really re-quantised, not the content's samples
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "Modality"):
        assert ds.get(kw) == src.get(kw), kw
    assert ds.SOPInstanceUID != src.SOPInstanceUID  # a modified instance gets its own UID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    np.testing.assert_array_equal(ds.waveform_array(1), src.waveform_array(1))  # second group untouched
    assert ds.WaveformSequence[0].WaveformSampleInterpretation == "SS"
    assert load_series(out).names == LEADS
    assert sig.meta["dataset"].SOPInstanceUID == src.SOPInstanceUID  # the content's dataset is not changed
    np.testing.assert_array_equal(sig.meta["dataset"].waveform_array(0), src.waveform_array(0))


@needs_pydicom
def test_dicom_correction_factor_and_baseline(ecg_path, tmp_path):
    ds = pydicom.dcmread(ecg_path)
    chans = ds.WaveformSequence[0].ChannelDefinitionSequence
    chans[0].ChannelSensitivityCorrectionFactor = "2"
    chans[0].ChannelBaseline = "10"
    chans[1].ChannelSensitivity = "0.5"
    ds.save_as(tmp_path / "in.dcm")
    sig = load_series(tmp_path / "in.dcm")
    want = pydicom.dcmread(tmp_path / "in.dcm").waveform_array(0)
    np.testing.assert_array_equal(leads_of(sig)[:, :2], want[:, :2])
    assert want[0, 0] == 80 * 1.25 * 2 + 10 and want[0, 1] == 90 * 0.5  # raw 80 and 90 in the file
    target = want + 7.0
    out = save_series(torch.from_numpy(target.T.copy()).float()[None], tmp_path / "o.dcm", sig)
    got = pydicom.dcmread(out).waveform_array(0)
    steps = np.array([2.5, 0.5] + [1.25] * 10)
    assert (np.abs(got - target) <= steps / 2 + 1e-4).all()
    np.testing.assert_allclose(got[:, 0] - want[:, 0], 7.5)  # +7 is 2.8 steps of 2.5: rounds to 3 steps


@needs_pydicom
def test_dicom_write_other_length(ecg_path, tmp_path):
    sig = load_series(ecg_path)
    out = save_series(sig.tensor[..., :2500] * -1, tmp_path / "o.dcm", sig)
    ds = pydicom.dcmread(out)
    assert ds.WaveformSequence[0].NumberOfWaveformSamples == 2500
    np.testing.assert_array_equal(ds.waveform_array(0), -leads_of(sig)[:2500])  # on the grid: exact


@needs_pydicom
def test_dicom_clips_out_of_range(ecg_path, tmp_path):
    sig = load_series(ecg_path)
    x = sig.tensor.clone()
    x[0, 0, :5] = 1e9
    with pytest.warns(UserWarning, match="5 samples"):
        out = save_series(x, tmp_path / "o.dcm", sig)
    got = pydicom.dcmread(out).waveform_array(0)
    np.testing.assert_array_equal(got[:5, 0], 32767 * 1.25)
    np.testing.assert_array_equal(got[5:], leads_of(sig)[5:])


@needs_pydicom
def test_dicom_subset_of_leads(ecg_path, tmp_path):
    sig = load_series(ecg_path, columns=["II", "V1"])
    full = pydicom.dcmread(ecg_path).waveform_array(0)
    np.testing.assert_array_equal(leads_of(sig), full[:, [1, 6]])
    ds = pydicom.dcmread(save_series(sig.tensor * 0, tmp_path / "o.dcm", sig))
    got = ds.waveform_array(0)
    np.testing.assert_array_equal(got[:, [1, 6]], 0)
    others = [j for j in range(12) if j not in (1, 6)]
    np.testing.assert_array_equal(got[:, others], full[:, others])  # unread leads kept
    with pytest.raises(NStyleError) as e:
        save_series(sig.tensor[..., :100], tmp_path / "short.dcm", sig)
    assert_one_line(e, str(tmp_path / "short.dcm"), "2 of 12")


@needs_pydicom
def test_dicom_to_csv_has_time_in_seconds(ecg_path, tmp_path):
    sig = load_series(ecg_path)
    out = save_series(sig.tensor[..., :30], tmp_path / "o.csv", sig)
    assert header_of(out) == ["time"] + LEADS
    got = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_allclose(got[:, 0], np.arange(30) / 1000.0, atol=1e-12)
    np.testing.assert_array_equal(got[:, 1:], leads_of(sig)[:30])
    assert load_series(out).rate == pytest.approx(1000.0)


# --------------------------------------------------------------------------- errors


def raises(path, *needles, **kw) -> None:
    with pytest.raises(NStyleError) as e:
        load_series(path, **kw)
    assert_one_line(e, str(path), *needles)


def test_missing_folder_and_unknown_extension(tmp_path):
    raises(tmp_path / "nope.csv", "no such file")
    (tmp_path / "dir.csv").mkdir()
    raises(tmp_path / "dir.csv", "folder")
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    raises(tmp_path / "x.wav", "unknown", ".csv", ".npy", ".dcm")


def test_csv_errors(tmp_path):
    raises(write_csv(tmp_path / "nohead.csv", ["1", "2"], [[3, 4]]), "no header")
    raises(write_csv(tmp_path / "text.csv", ["time", "name"], [[0, "a"], [1, "b"]]), "no numeric column")
    with pytest.raises(NStyleError) as e:
        load_series(write_csv(tmp_path / "cols.csv", ["a", "b"], [[1, 2]]), columns=["a", "zz"])
    assert_one_line(e, str(tmp_path / "cols.csv"), "'zz'", "'a'", "'b'")
    raises(tmp_path / "cols.csv", "'when'", "'a'", "'b'", time_column="when")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n6,7\n")
    raises(tmp_path / "ragged.csv", "ragged", "row 2", "3 fields")
    (tmp_path / "nan.csv").write_text("a,b\n1,nan\n2,inf\n3,4\nnan,5\n-inf,6\n")
    raises(tmp_path / "nan.csv", "4 NaN/Inf", "2 in 'a'", "2 in 'b'")
    (tmp_path / "empty.csv").write_text("a,b\n")
    raises(tmp_path / "empty.csv", "empty series")
    (tmp_path / "blank.csv").write_text("\n\n")
    raises(tmp_path / "blank.csv", "empty file")
    (tmp_path / "hole.csv").write_text("a,b\n1,2\n3,\n")
    raises(tmp_path / "hole.csv", "'b'", "row 2", "empty cell")
    with pytest.raises(NStyleError) as e:
        load_series(write_csv(tmp_path / "lbl.csv", ["a", "lab"], [[1, "x"]]), columns=["lab"])
    assert_one_line(e, str(tmp_path / "lbl.csv"), "'lab'", "'x'", "not a number")


def test_npy_errors(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 3)))
    raises(tmp_path / "e.npy", "is empty")
    np.save(tmp_path / "e1.npy", np.zeros(0))
    raises(tmp_path / "e1.npy", "is empty")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    raises(tmp_path / "cube.npy", "(2, 3, 4)")
    np.save(tmp_path / "good.npy", np.arange(1000.0))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:500])
    raises(tmp_path / "cut.npy", "corrupt")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file at all")
    raises(tmp_path / "junk.npy", "corrupt")
    np.save(tmp_path / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    raises(tmp_path / "obj.npy", "pickle")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, np.nan]]))
    raises(tmp_path / "nan.npy", "3 NaN/Inf", "1 in 'lead0'", "2 in 'lead1'")
    raises(tmp_path / "good.npy", "time column", time_column="t")


@needs_pydicom
def test_dicom_errors(tmp_path):
    ct = Path(get_testdata_file("CT_small.dcm"))
    (tmp_path / "ct.dcm").write_bytes(ct.read_bytes())
    raises(tmp_path / "ct.dcm", "no waveform data")
    (tmp_path / "fake.dcm").write_text("hello")
    raises(tmp_path / "fake.dcm", "DICOM")


def test_save_errors(ecg_table, tmp_path):
    path, _ = ecg_table
    sig = load_series(path)
    for bad, needle in [(torch.zeros(1, 3, 0), "nothing to write"), (torch.zeros(2, 3, 5), "shape"),
                        (torch.full((1, 3, 4), float("nan")), "12 NaN/Inf")]:
        with pytest.raises(NStyleError) as e:
            save_series(bad, tmp_path / "o.csv", sig)
        assert_one_line(e, str(tmp_path / "o.csv"), needle)
    with pytest.raises(NStyleError) as e:
        save_series(sig.tensor, tmp_path / "o.wav", sig)
    assert_one_line(e, str(tmp_path / "o.wav"), "unknown")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.wav").exists()


def test_failed_save_leaves_existing_file(ecg_table, tmp_path):
    path, _ = ecg_table
    sig = load_series(path)
    target = tmp_path / "keep.dcm"
    target.write_bytes(b"old bytes")
    with pytest.raises(NStyleError) as e:
        save_series(sig.tensor, target, sig)  # .dcm needs a DICOM content
    assert_one_line(e, str(target), str(path), "DICOM")
    assert target.read_bytes() == b"old bytes"
    assert temp_leftovers(tmp_path) == []


@needs_pydicom
def test_failed_dicom_save_leaves_existing_file(ecg_table, tmp_path, ecg_path):
    sig = load_series(ecg_table[0])
    target = tmp_path / "keep.dcm"
    target.write_bytes(b"old bytes")
    dcm = load_series(ecg_path)
    with pytest.raises(NStyleError) as e:
        save_series(sig.tensor, target, dcm)  # 3 leads into a 12-channel waveform
    assert_one_line(e, str(target), "3 leads", "12")
    assert target.read_bytes() == b"old bytes"
    assert temp_leftovers(tmp_path) == []
