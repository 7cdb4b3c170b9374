"""Sounds, series and volumes through the same studio: upload, view, run, result, preview.

Inputs: Debian alsa-utils' speech recordings (/usr/share/sounds/alsa), pydicom's 12-lead
ECG test file (waveform_ecg.dcm), nibabel's anatomical MR test volume (anatomical.nii)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from nstyle.samples import sample_path
from nstyle.studio.samples import sample_files

from .conftest import send, start, wait

ALSA = Path("/usr/share/sounds/alsa")


def run_kind(client: TestClient, kind: str, content: Path, style: Path, **settings: str) -> dict:
    c, s = send(client, content, kind), send(client, style, kind)
    view = client.get(f"/api/uploads/{c['id']}/view")
    assert view.status_code == 200
    record = wait(client, start(client, c["id"], [s["id"]], kind=kind, **settings))
    assert record["status"] == "done", record
    assert record["best"]["total"] <= record["history"][0][1]
    return record


@pytest.mark.skipif(not (ALSA / "Front_Center.wav").is_file(), reason="Debian's alsa-utils sounds not installed")
def test_a_sound_run_gives_a_wav_and_a_spectrogram(client: TestClient, data: Path) -> None:
    import soundfile

    record = run_kind(client, "audio", ALSA / "Front_Center.wav", ALSA / "Noise.wav", max_seconds="0.6", steps="3")
    wav = client.get(f"/api/runs/{record['id']}/result")
    assert wav.headers["content-type"] == "audio/wav"
    samples, rate = soundfile.read(io.BytesIO(wav.content))
    assert rate == 22050 and abs(len(samples) / rate - 0.6) < 0.02
    picture = Image.open(io.BytesIO(client.get(f"/api/runs/{record['id']}/view").content))
    assert picture.height == 256  # the spectrogram
    played = client.get(f"/api/uploads/{record['content']}/file")
    assert played.content == (ALSA / "Front_Center.wav").read_bytes()  # the page's player gets the file as sent


def test_a_series_run_gives_the_content_format_and_traces(client: TestClient) -> None:
    ecg = sample_files("series").get("waveform_ecg.dcm")
    if ecg is None:
        pytest.skip("pydicom's ECG test file is not installed")
    record = run_kind(client, "series", ecg, ecg, columns="II", steps="3")
    assert record["result"] == "result.dcm"
    traces = client.get(f"/api/runs/{record['id']}/view").json()
    assert len(traces) == 1 and 100 < len(traces[0]) <= 800  # one lead, thinned for drawing
    upload = client.get(f"/api/uploads/{record['content']}/view").json()
    assert len(upload) == 12  # the upload is shown with all its leads
    # continue from it: the next run starts where this one ended
    body = {"kind": "series", "content": record["content"], "styles": record["styles"],
            "settings": {"columns": "II", "steps": "1"}, "parent": record["id"]}
    again = wait(client, client.post("/api/runs", json=body).json()["id"])
    assert again["status"] == "done" and again["history"][0][1] == pytest.approx(record["best"]["total"], rel=0.03)
    picture = send(client, sample_path("chelsea.png"))["id"]
    body = {"kind": "image", "content": picture, "styles": [picture], "parent": record["id"]}
    refused = client.post("/api/runs", json=body)
    assert refused.status_code == 400 and "is a series run" in refused.json()["detail"]


def test_a_volume_run_gives_nifti_mid_slices_and_any_slice(client: TestClient) -> None:
    import nibabel

    anatomical = sample_files("volume").get("anatomical.nii")
    if anatomical is None:
        pytest.skip("nibabel's test volumes are not installed")
    record = run_kind(client, "volume", anatomical, anatomical, steps="2", slices="4")
    result = client.get(f"/api/runs/{record['id']}/result")
    shape = nibabel.load(anatomical).shape
    out = nibabel.Nifti1Image.from_bytes(__import__("gzip").decompress(result.content))
    assert out.shape == shape
    sheet = Image.open(io.BytesIO(client.get(f"/api/runs/{record['id']}/view").content))
    assert sheet.size == (3 * 256, 256)  # three mid-slices side by side
    one = np.asarray(Image.open(io.BytesIO(client.get(f"/api/runs/{record['id']}/slice?axis=2&index=3").content)))
    other = np.asarray(Image.open(io.BytesIO(client.get(f"/api/runs/{record['id']}/slice?axis=2&index=9").content)))
    assert one.shape == (256, 256, 3) and not np.array_equal(one, other)
    assert client.get(f"/api/runs/{record['id']}/slice?axis=5").status_code == 400


@pytest.mark.skipif(not (ALSA / "Front_Center.wav").is_file(), reason="Debian's alsa-utils sounds not installed")
def test_a_run_error_names_the_file_as_the_page_called_it(client: TestClient, data: Path) -> None:
    c = send(client, ALSA / "Front_Center.wav", "audio", name="my speech.wav")
    record = wait(client, start(client, c["id"], [c["id"]], kind="audio", max_seconds="0.3"))
    assert record["status"] == "failed" and record["error"].startswith("my speech.wav: ")
    assert "shorter than the widest branch" in record["error"] and str(data) not in record["error"]


def test_samples_are_offered_and_copied_in_as_uploads(client: TestClient) -> None:
    kinds = client.get("/api/kinds").json()
    assert "astronaut.png" in kinds["image"]["samples"]
    up = client.post("/api/samples", json={"kind": "image", "name": "astronaut.png"})
    assert up.status_code == 201 and up.json()["shape"] == [3, 512, 512]
    for body in ({"kind": "image", "name": "../../etc/passwd"}, {"kind": "image", "name": "nope.png"}):
        r = client.post("/api/samples", json=body)
        assert r.status_code == 400 and "no image sample" in r.json()["detail"]
    assert json.loads(client.get(f"/api/uploads/{up.json()['id']}").text)["sample"] == "astronaut.png"
