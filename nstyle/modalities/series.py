"""Multichannel time series in and out: CSV/TSV/TXT tables, ``.npy`` arrays, DICOM ECG.

Every input becomes a float32 tensor (1, n_leads, T) in the file's own units (no
normalisation), with the sampling rate when the file says it, the lead names, and in
``meta`` whatever ``save_series`` needs to write the same format back:

* tables (``.csv``, ``.tsv``, ``.txt``; delimiter sniffed): a header row names the
  columns; a time column (given, or a first column named like time/t/sec/ms/timestamp/
  date) is kept as text and written back, extended by its even step when the output is
  longer, or replaced by the row index when it is not numeric and evenly spaced.
* ``.npy``: (T,), (T, n_leads), or (n_leads, T) when n_leads <= 16 < T; written back
  in the same orientation, float64 if the input was float64, else float32.
* DICOM waveforms (``.dcm``): the first multiplex group, in the channels' units
  (sensitivity, correction and baseline applied, as ``Dataset.waveform_array``); written
  back as a copy of the dataset with that group's samples re-quantised to its integer
  type (values beyond the type's range are clipped, with a warning).

The output format follows the output extension; ``.dcm`` output needs a DICOM content.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NStyleError
from ..outputs.atomic import write_atomic
from ..validators import check_input_file
from .dicom import pydicom_for, read_dataset
from .npyfile import read_npy

TEXT_EXTS = (".csv", ".tsv", ".txt")
NPY_EXTS = (".npy",)
DICOM_EXTS = (".dcm", ".dicom")
ALL_EXTS = TEXT_EXTS + NPY_EXTS + DICOM_EXTS

# A (a, b) array with a <= this < b is read as (n_leads, T).
MAX_SHORT_AXIS_LEADS = 16
# Words that, as the first word of the first column's name, make it the time column.
TIME_WORDS = {
    "time", "t", "s", "sec", "secs", "second", "seconds", "ms", "msec", "msecs",
    "millisecond", "milliseconds", "timestamp", "timestamps", "date", "datetime",
}
# Time units by the words of the column name (seconds unless one of these appears).
TIME_UNITS = {"ms": 1e-3, "msec": 1e-3, "msecs": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
              "us": 1e-6, "usec": 1e-6, "µs": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
              "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
# Relative spread of the time steps still taken as "evenly spaced".
EVEN_RTOL = 1e-4
# DICOM (WaveformBitsAllocated, WaveformSampleInterpretation) -> integer dtype.
WAVEFORM_DTYPES = {
    (8, "SB"): np.int8, (8, "UB"): np.uint8,
    (16, "SS"): np.int16, (16, "US"): np.uint16,
    (32, "SL"): np.int32, (32, "UL"): np.uint32,
    (64, "SV"): np.int64, (64, "UV"): np.uint64,
}


@dataclass
class SeriesSignal:
    """A multichannel series as the engine sees it, plus what is needed to write it back."""

    tensor: torch.Tensor  # (1, n_leads, T) float32, in the file's own units
    rate: float | None  # samples per second, if known
    names: list[str]  # lead / column names, one per lead
    source: str  # path, for error messages
    meta: dict = field(default_factory=dict)  # format-specific: see the loaders


# =========================================================================== loading


def load_series(
    path: str | Path, columns: list[str] | None = None, time_column: str | None = None
) -> SeriesSignal:
    """Read a series file; the format follows the extension.

    ``columns`` picks leads by name (default: all; for tables, every numeric column but
    the time column). ``time_column`` names a table's time column (default: the first
    column if its name reads like a time; a first column that ``columns`` asks for as
    data is not taken as time).
    """
    path = Path(path)
    check_input_file(path, "series file")
    ext = path.suffix.lower()
    if ext not in ALL_EXTS:
        raise NStyleError(f"{path}: unknown series extension {ext or '(none)'!r}; use one of {', '.join(ALL_EXTS)}")
    if columns is not None:
        columns = [str(c) for c in columns]
        if not columns:
            raise NStyleError(f"{path}: the list of columns to read is empty")
    if ext in TEXT_EXTS:
        return _load_table(path, columns, time_column)
    if time_column is not None:
        raise NStyleError(f"{path}: a time column applies only to {', '.join(TEXT_EXTS)} tables")
    if ext in NPY_EXTS:
        data, names, rate, meta = _load_npy(path)
    else:
        data, names, rate, meta = _load_dicom(path)
    if columns is not None:
        idx = [_column_index(path, names, c, "lead") for c in columns]
        data, names = data[:, idx], [names[i] for i in idx]
        meta["channels"] = idx
    _check_samples(path, data, names)
    return SeriesSignal(_to_tensor(data), rate, names, str(path), meta)


# float32 ends at 3.4e38: values near it overflow when G is mapped back (g · std + mean).
MAX_ABS_SAMPLE = 1e30


def _to_tensor(data: np.ndarray) -> torch.Tensor:
    """(T, n) array -> (1, n, T) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(data.T, dtype=np.float32))[None]


def _check_samples(path: Path, data: np.ndarray, names: list[str]) -> None:
    """Refuse empty series and NaN/Inf samples (after the float32 cast, which can overflow)."""
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise NStyleError(f"{path}: empty series ({data.shape[0]} samples, {data.shape[1]} leads)")
    bad = ~np.isfinite(data.astype(np.float32))
    if bad.any():
        per_col = bad.sum(axis=0)
        worst = [f"{int(n)} in {names[j]!r}" for j, n in enumerate(per_col) if n]
        raise NStyleError(f"{path}: {int(per_col.sum())} NaN/Inf samples ({', '.join(worst)})")
    top = float(np.abs(data).max())
    if top > MAX_ABS_SAMPLE:
        raise NStyleError(
            f"{path}: holds values up to {top:.3g}; beyond ±{MAX_ABS_SAMPLE:.0e} the standardisation and the "
            "result overflow single precision (rescale the data)"
        )


def _column_index(path: Path, names: list[str], name: str, what: str = "column") -> int:
    hits = [i for i, n in enumerate(names) if n == name]
    if not hits:
        raise NStyleError(f"{path}: no {what} {name!r}; available: {', '.join(map(repr, names))}")
    if len(hits) > 1:
        raise NStyleError(f"{path}: {len(hits)} {what}s are named {name!r}; rename them to pick one")
    return hits[0]


# --------------------------------------------------------------------------- tables


def _read_text(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise NStyleError(f"{path}: cannot read it (permission denied)") from None
    except OSError as e:
        raise NStyleError(f"{path}: cannot read it ({e.strerror or e})") from None
    if b"\0" in raw[:4096]:
        raise NStyleError(f"{path}: not a text table (binary data)")
    for enc in ("utf-8-sig", "latin-1"):
        try:
            text = raw.decode(enc)
            if enc == "utf-8-sig" and raw.startswith(b"\xef\xbb\xbf"):
                return text, "utf-8-sig"
            return text, "utf-8" if enc == "utf-8-sig" else enc
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")


def _sniff_delimiter(lines: list[str], ext: str) -> str | None:
    """The delimiter that splits the header and the next rows into the same count (> 1)."""
    candidates = ["\t", ",", ";", "|"] if ext == ".tsv" else [",", "\t", ";", "|"]
    head = lines[:20]
    for d in candidates:
        counts = {len(r) for r in csv.reader(head, delimiter=d)}
        if len(counts) == 1 and counts.pop() > 1:
            return d
    for d in candidates:  # ragged rows: still the delimiter the header uses
        if len(next(csv.reader(head[:1], delimiter=d))) > 1:
            return d
    return None  # whitespace-separated, or a single column


def _rows(path: Path, lines: list[str], ext: str) -> tuple[str | None, list[list[str]]]:
    """The delimiter and the cells of every line."""
    try:
        delimiter = _sniff_delimiter(lines, ext)
        return delimiter, _split(lines, delimiter)
    except csv.Error as e:  # e.g. a field larger than the csv module's limit (128 kB)
        raise NStyleError(f"{path}: not a readable table ({e})") from None


def _split(lines: list[str], delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        return [line.split() for line in lines]
    return [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]


def _parse_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _is_time_name(name: str) -> bool:
    words = _words(name)
    return bool(words) and words[0] in TIME_WORDS


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-zµ]+", name.lower()) if w]


def _time_step(values: list[str]) -> tuple[float, float] | None:
    """(first value, step) of a numeric, strictly increasing, evenly spaced column."""
    nums = [_parse_float(v) for v in values]
    if len(nums) < 2 or any(v is None or not math.isfinite(v) for v in nums):
        return None
    t = np.asarray(nums, dtype=np.float64)
    step = (t[-1] - t[0]) / (len(t) - 1)
    if not step > 0 or np.abs(np.diff(t) - step).max() > EVEN_RTOL * step:
        return None
    return float(t[0]), float(step)


def _seconds_per_unit(name: str) -> float:
    for w in _words(name):
        if w in TIME_UNITS:
            return TIME_UNITS[w]
    return 1.0


def _rate_from_times(values: list[str], name: str) -> float | None:
    ts = _time_step(values)
    if ts is not None:
        return 1.0 / (ts[1] * _seconds_per_unit(name))
    try:  # ISO dates and times, e.g. 2024-05-01T10:00:00.004
        stamps = [datetime.fromisoformat(v) for v in values]
    except (ValueError, TypeError):
        return None
    if len(stamps) < 2:
        return None
    secs = np.array([(s - stamps[0]).total_seconds() for s in stamps])
    step = secs[-1] / (len(secs) - 1)
    if not step > 0 or np.abs(np.diff(secs) - step).max() > EVEN_RTOL * step:
        return None
    return 1.0 / step


def _load_table(path: Path, columns: list[str] | None, time_column: str | None) -> SeriesSignal:
    text, encoding = _read_text(path)
    newline = "\r\n" if "\r\n" in text[:65536] else "\n"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise NStyleError(f"{path}: empty file (no header row, no samples)")
    ext = path.suffix.lower()
    delimiter, rows = _rows(path, lines, ext)
    header, body = rows[0], rows[1:]
    if all(_parse_float(c) is not None for c in header):
        raise NStyleError(f"{path}: no header row (the first line is numbers); add a line of column names")
    width = len(header)
    for i, row in enumerate(body):
        if len(row) != width:
            raise NStyleError(
                f"{path}: ragged rows: data row {i + 1} has {len(row)} fields, the header has {width}"
            )
    if not body:
        raise NStyleError(f"{path}: empty series (a header but no samples)")

    # the time column
    t_idx: int | None = None
    if time_column is not None:
        t_idx = _column_index(path, header, str(time_column))
        if columns is not None and header[t_idx] in columns:
            raise NStyleError(f"{path}: column {header[t_idx]!r} is asked for both as time and as data")
    elif _is_time_name(header[0]) and width > 1 and not (columns is not None and header[0] in columns):
        t_idx = 0

    # the data columns
    def numeric(j: int) -> bool:
        cells = [row[j] for row in body]
        return all(_parse_float(c) is not None for c in cells if c) and any(cells)

    if columns is None:
        idx = [j for j in range(width) if j != t_idx and numeric(j)]
        if not idx:
            raise NStyleError(
                f"{path}: no numeric column (columns: {', '.join(map(repr, header))}"
                + (f"; {header[t_idx]!r} is the time column" if t_idx is not None else "")
                + ")"
            )
    else:
        idx = [_column_index(path, header, c) for c in columns]
    data = np.empty((len(body), len(idx)), dtype=np.float64)
    for k, j in enumerate(idx):
        for i, row in enumerate(body):
            v = _parse_float(row[j])
            if v is None:
                what = "an empty cell" if not row[j] else f"{row[j]!r}, not a number"
                raise NStyleError(f"{path}: column {header[j]!r}, data row {i + 1}: {what}")
            data[i, k] = v
    names = [header[j] for j in idx]
    _check_samples(path, data, names)

    times = [row[t_idx] for row in body] if t_idx is not None else None
    rate = _rate_from_times(times, header[t_idx]) if times is not None else None
    meta: dict[str, Any] = {
        "format": "table",
        "ext": ext,
        "delimiter": delimiter,
        "encoding": encoding,
        "newline": newline,
        "time_name": header[t_idx] if t_idx is not None else None,
        "times": times,
        # where the time column goes among the data columns when written back
        "time_pos": sum(j < t_idx for j in idx) if t_idx is not None else 0,
    }
    return SeriesSignal(_to_tensor(data), rate, names, str(path), meta)


# --------------------------------------------------------------------------- .npy


def _load_npy(path: Path) -> tuple[np.ndarray, list[str], float | None, dict]:
    arr = read_npy(path, "use a shorter series")
    if arr.ndim == 0 or arr.ndim > 2:
        raise NStyleError(
            f"{path}: array has shape {arr.shape}; need (T,), (T, n_leads) or (n_leads, T)"
        )
    transposed = arr.ndim == 2 and arr.shape[0] <= MAX_SHORT_AXIS_LEADS < arr.shape[1]
    data = arr[:, None] if arr.ndim == 1 else (arr.T if transposed else arr)
    data = data.astype(np.float64)
    names = [f"lead{i}" for i in range(data.shape[1])]
    meta = {"format": "npy", "ndim": arr.ndim, "transposed": transposed, "dtype": str(arr.dtype)}
    return data, names, None, meta


# --------------------------------------------------------------------------- DICOM


def _lead_name(meaning: str) -> str:
    """'Lead I (Einthoven)' -> 'I', 'Lead aVR' -> 'aVR'; other meanings are kept."""
    name = re.sub(r"\s*\([^)]*\)\s*$", "", meaning.strip())
    name = re.sub(r"^lead\s+", "", name, flags=re.IGNORECASE).strip()
    return name or meaning.strip()


def _load_dicom(path: Path) -> tuple[np.ndarray, list[str], float | None, dict]:
    ds = read_dataset(path)
    seq = ds.get("WaveformSequence")
    if not seq:
        raise NStyleError(f"{path}: DICOM file has no waveform data (no Waveform Sequence)")
    item = seq[0]
    if "WaveformData" not in item:
        raise NStyleError(f"{path}: DICOM file has no waveform data (no Waveform Data in the first group)")
    key = (item.get("WaveformBitsAllocated"), item.get("WaveformSampleInterpretation"))
    if key not in WAVEFORM_DTYPES:
        raise NStyleError(
            f"{path}: unsupported waveform encoding (bits {key[0]}, interpretation {key[1]}); "
            "need linear signed or unsigned integers"
        )
    try:
        data = np.asarray(ds.waveform_array(0), dtype=np.float64)
    except Exception as e:  # noqa: BLE001 -- the handler raises many kinds on bad data
        raise NStyleError(f"{path}: cannot decode the waveform data ({type(e).__name__}: {e})") from None
    n = data.shape[1] if data.ndim == 2 else 0
    chans = list(item.get("ChannelDefinitionSequence") or [])
    names = []
    for i in range(n):
        name = None
        if i < len(chans):
            src = chans[i].get("ChannelSourceSequence")
            if src and src[0].get("CodeMeaning"):
                name = _lead_name(str(src[0].CodeMeaning))
            elif chans[i].get("ChannelLabel"):
                name = str(chans[i].ChannelLabel)
        names.append(name or f"lead{i}")
    rate = float(item.SamplingFrequency) if item.get("SamplingFrequency") else None
    meta = {"format": "dicom", "dataset": ds, "channels": list(range(n))}
    return data, names, rate, meta


# =========================================================================== saving


def save_series(x: torch.Tensor, path: str | Path, like: SeriesSignal) -> Path:
    """Write ``x`` (1, n_leads, T') atomically in the format of ``path``'s extension,
    with ``like``'s header, time column, orientation or DICOM dataset where they apply."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ALL_EXTS:
        raise NStyleError(f"{path}: unknown series extension {ext or '(none)'!r}; use one of {', '.join(ALL_EXTS)}")
    data = _output_array(x, path)  # (T', n)
    if ext in TEXT_EXTS:
        payload = _table_bytes(data, path, like)
        return write_atomic(path, lambda tmp: tmp.write_bytes(payload))
    if ext in NPY_EXTS:
        arr = _npy_array(data, like)

        def write_npy(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)

        return write_atomic(path, write_npy)
    ds = _dicom_dataset(data, path, like)
    pydicom = pydicom_for(path)
    return write_atomic(path, lambda tmp: pydicom.dcmwrite(tmp, ds))


def _output_array(x: torch.Tensor, path: Path) -> np.ndarray:
    if not isinstance(x, torch.Tensor):
        raise NStyleError(f"{path}: expected a tensor (1, n_leads, T) to write, got a {type(x).__name__}")
    t = x.detach().cpu()
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise NStyleError(f"{path}: expected a tensor (1, n_leads, T) to write, got shape {tuple(x.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise NStyleError(f"{path}: nothing to write (shape {tuple(x.shape)})")
    data = t.numpy().T
    data = data.astype(np.float64 if data.dtype == np.float64 else np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        raise NStyleError(f"{path}: the result holds {int(bad.sum())} NaN/Inf samples; nothing written")
    return data


def _names_for(like: SeriesSignal, n: int) -> list[str]:
    return list(like.names) if len(like.names) == n else [f"lead{i}" for i in range(n)]


# --------------------------------------------------------------------------- tables


def _format_numbers(col: np.ndarray) -> list[str]:
    """Shortest '%g' text (6 digits up) that reads back as the same float32/float64."""
    out = np.char.mod("%.6g", col).astype(object)
    back = out.astype(np.float64).astype(col.dtype)
    todo = back != col
    top = 9 if col.dtype == np.float32 else 17
    for prec in range(7, top + 1):
        if not todo.any():
            break
        out[todo] = np.char.mod(f"%.{prec}g", col[todo])
        todo = out.astype(np.float64).astype(col.dtype) != col
    return list(out)


def _decimals(values: list[str]) -> int | None:
    """Digits after the point the time strings use (None if any is in exponent form)."""
    d = 0
    for v in values:
        if "e" in v.lower():
            return None
        if "." in v:
            d = max(d, len(v.split(".", 1)[1]))
    return d


def _time_strings(like: SeriesSignal, n: int) -> list[str] | None:
    meta = like.meta
    times = meta.get("times") if meta.get("format") == "table" else None
    if times is None:
        if like.rate:  # a time column in seconds from the rate
            return list(np.char.mod("%.10g", np.arange(n, dtype=np.float64) / like.rate))
        return None
    if n == len(times):
        return list(times)
    ts = _time_step(times)
    if ts is None:
        return [str(i) for i in range(n)]
    if n < len(times):
        return list(times[:n])
    t0, step = ts
    d = _decimals(times)
    extra = t0 + step * np.arange(len(times), n, dtype=np.float64)
    tail = [f"{v:.{d}f}" for v in extra] if d is not None else list(np.char.mod("%.12g", extra))
    return list(times) + tail


def _table_bytes(data: np.ndarray, path: Path, like: SeriesSignal) -> bytes:
    ext = path.suffix.lower()
    meta = like.meta if like.meta.get("format") == "table" else {}
    if meta and meta.get("ext") == ext and meta.get("delimiter"):
        delimiter = meta["delimiter"]
    else:
        delimiter = {".csv": ",", ".tsv": "\t"}.get(ext, meta.get("delimiter") or "\t")
    newline = meta.get("newline", "\n")
    n_t, n = data.shape
    names = _names_for(like, n)
    times = _time_strings(like, n_t)
    header = list(names)
    cols = [_format_numbers(data[:, j]) for j in range(n)]
    if times is not None:
        pos = meta.get("time_pos", 0) if len(like.names) == n else 0
        header.insert(pos, meta.get("time_name") or "time")
        cols.insert(pos, times)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(zip(*cols))
    return buf.getvalue().encode(meta.get("encoding", "utf-8"))


# --------------------------------------------------------------------------- .npy


def _npy_array(data: np.ndarray, like: SeriesSignal) -> np.ndarray:
    meta = like.meta if like.meta.get("format") == "npy" else {}
    dtype = np.float64 if meta.get("dtype") == "float64" else np.float32
    arr = data.astype(dtype)
    if meta.get("ndim") == 1 and arr.shape[1] == 1:
        return np.ascontiguousarray(arr[:, 0])
    if meta.get("transposed"):
        return np.ascontiguousarray(arr.T)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- DICOM


def _dicom_dataset(data: np.ndarray, path: Path, like: SeriesSignal):
    if like.meta.get("format") != "dicom":
        raise NStyleError(f"{path}: writing DICOM needs a DICOM content; {like.source} is not one")
    pydicom = pydicom_for(path)
    src = like.meta["dataset"]
    item0 = src.WaveformSequence[0]
    n_ch = int(item0.NumberOfWaveformChannels)
    chosen = like.meta.get("channels", list(range(n_ch)))
    n_t, n = data.shape
    if n != len(chosen):
        raise NStyleError(f"{path}: {n} leads to write, but the DICOM content {like.source} has {len(chosen)}")
    if len(chosen) != n_ch and n_t != int(item0.NumberOfWaveformSamples):
        raise NStyleError(
            f"{path}: only {len(chosen)} of {n_ch} channels were read and the length changed; "
            "read all channels to write DICOM"
        )
    ds = copy.deepcopy(src)
    item = ds.WaveformSequence[0]
    dtype = np.dtype(WAVEFORM_DTYPES[(item.WaveformBitsAllocated, item.WaveformSampleInterpretation)])
    if len(chosen) != n_ch:  # the leads not read keep their stored samples
        count = n_t * n_ch
        out = np.frombuffer(item.WaveformData, dtype=dtype, count=count).reshape(n_t, n_ch).astype(np.float64)
    else:
        out = np.zeros((n_t, n_ch), dtype=np.float64)
    chans = list(item.get("ChannelDefinitionSequence") or [])
    for k, jj in enumerate(chosen):
        sens = _dicom_number(chans, jj, "ChannelSensitivity", 1.0)
        corr = _dicom_number(chans, jj, "ChannelSensitivityCorrectionFactor", 1.0)
        base = _dicom_number(chans, jj, "ChannelBaseline", 0.0)
        if sens * corr == 0:
            raise NStyleError(f"{path}: channel {jj} of {like.source} has sensitivity 0; cannot re-encode")
        out[:, jj] = np.rint((data[:, k].astype(np.float64) - base) / (sens * corr))
    info = np.iinfo(dtype)
    clipped = int(((out < info.min) | (out > info.max)).sum())
    if clipped:
        warnings.warn(
            f"{path}: {clipped} samples beyond the {dtype} range of the DICOM waveform were clipped",
            stacklevel=3,
        )
    payload = np.clip(out, info.min, info.max).astype(dtype).tobytes()
    if len(payload) % 2:
        payload += b"\0"  # DICOM values have even length
    item.WaveformData = payload
    item.NumberOfWaveformSamples = n_t
    if "WaveformOriginality" in item:
        item.WaveformOriginality = "DERIVED"
    # a modified instance must not reuse the content's SOP Instance UID
    uid = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = uid
    if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = uid
    return ds


def _dicom_number(chans: list, jj: int, keyword: str, default: float) -> float:
    """A channel's numeric attribute as waveform_array applies it (default if absent)."""
    if jj >= len(chans):
        return default
    v = chans[jj].get(keyword)
    return default if v is None or v == "" else float(v)
