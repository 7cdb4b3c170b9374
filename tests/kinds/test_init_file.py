"""A run can start from a file of its own kind (e.g. an earlier result), read as the content is.

Each kind: run A a few steps and save its best G; run B from that file. B's first J is
measured at its start, so it must equal A's best J up to the file's rounding (8-bit PNG,
16-bit WAV, the series' decimals, the volume's dtype), and lie far below a fresh start's.
Inputs: scikit-image's chelsea.png and ihc.png; Debian alsa-utils' speech; pydicom's ECG
test file; nibabel's anatomical and example4d MR test volumes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nstyle
from nstyle.errors import NStyleError
from nstyle.samples import sample_path

ALSA = Path("/usr/share/sounds/alsa")


def ecg() -> str:
    from pydicom.data import get_testdata_file

    return str(get_testdata_file("waveform_ecg.dcm"))


def nibabel_file(name: str) -> str:
    import nibabel

    return str(Path(nibabel.__file__).parent / "tests" / "data" / name)


CASES = {
    "image": (nstyle.stylize, lambda: (sample_path("chelsea.png"), sample_path("ihc.png")), ".png",
              {"size": 32, "scales": "none", "steps": 4}),
    "audio": (nstyle.stylize_audio, lambda: (ALSA / "Front_Center.wav", ALSA / "Noise.wav"), ".wav",
              {"max_seconds": 0.6, "steps": 10}),
    "series": (nstyle.stylize_series, lambda: (ecg(), ecg()), ".csv", {"columns": "II,V1", "steps": 10}),
    "volume": (nstyle.stylize_volume, lambda: (nibabel_file("anatomical.nii"), nibabel_file("example4d.nii.gz")),
               ".nii.gz", {"steps": 2, "slices": 64}),  # every slice: J is exact, not sampled
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_run_continues_from_a_saved_result(kind: str, tmp_path: Path) -> None:
    function, inputs, ext, options = CASES[kind]
    if kind == "audio" and not (ALSA / "Noise.wav").is_file():
        pytest.skip("Debian's alsa-utils sounds not installed")
    content, style = (str(x) for x in inputs())
    first = function(content, style, **options)
    saved = first.save(tmp_path / f"first{ext}")
    again = function(content, style, **{**options, "steps": 1, "init": str(saved)})
    fresh = function(content, style, **{**options, "steps": 1})
    assert again.history[0].total == pytest.approx(first.best.total, rel=0.03)
    assert again.history[0].total < 0.9 * fresh.history[0].total


def test_a_start_of_another_shape_or_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NStyleError, match="has 1 leads but .* has 12"):
        nstyle.stylize_series(ecg(), ecg(), steps=1, init=_one_lead_csv(tmp_path))
    with pytest.raises(NStyleError, match="chelsea.png"):
        nstyle.stylize_series(ecg(), ecg(), columns="II", steps=1, init=str(sample_path("chelsea.png")))
    with pytest.raises(NStyleError, match="unknown --init 'zeros'"):
        nstyle.stylize_series(ecg(), ecg(), columns="II", steps=1, init="zeros")


def _one_lead_csv(tmp_path: Path) -> str:
    path = tmp_path / "one.csv"
    path.write_text("II\n" + "\n".join(str(i % 7) for i in range(3000)) + "\n")
    return str(path)
