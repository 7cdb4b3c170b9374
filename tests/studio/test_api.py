"""The studio's API in process: runs made, watched, stopped, repeated; every bad input refused
with a one-line 4xx, never a server error, and nothing written outside the data folder."""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from nstyle.cli import main as cli_main
from nstyle.errors import NStyleError
from nstyle.kinds import MODALITIES
from nstyle.modalities.image import load_image
from nstyle.options import SETTINGS, ImageSettings
from nstyle.samples import sample_path
from nstyle.studio.server import create_app
from nstyle.studio.store import RunRecord, Store, new_id

from .conftest import image_pair, send, start, wait

TINY = {"size": "40", "steps": "6"}


def png_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_kinds_offer_the_settings_defaults(client: TestClient) -> None:
    kinds = client.get("/api/kinds").json()
    assert set(kinds) == set(SETTINGS)
    for kind, info in kinds.items():
        declared = {f: getattr(SETTINGS[kind](), f) for f in SETTINGS[kind].__dataclass_fields__}
        for opt in info["options"]:
            assert opt["default"] == declared[opt["name"]], (kind, opt["name"])
        names = {o["name"] for o in info["options"]}
        assert not names & {"mask", "weights", "device", "max_memory"}  # files and resources of the server
        beta = next(o for o in info["options"] if o["name"] == "style_weight")["effective_default"]
        assert beta == MODALITIES[kind].style_weight(SETTINGS[kind]())


def test_an_image_run_lowers_J_and_its_TOML_repeats_it(client: TestClient, data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    content, style = image_pair(client)
    run_id = start(client, content, [style], **TINY)
    record = wait(client, run_id)
    assert record["status"] == "done", record
    history = np.array(record["history"])
    assert record["best"]["total"] < history[0, 1]  # J fell from the first step
    assert np.allclose(history[:, 2] + history[:, 3], history[:, 1])  # J's parts as they add up
    best = history[history[:, 0] == record["best"]["step"]][0]
    assert best[3] == pytest.approx(ImageSettings().style_weight * record["best"]["style"])  # β·J_style
    result = client.get(f"/api/runs/{run_id}/result")
    assert result.status_code == 200 and "attachment" in result.headers["content-disposition"]
    g = np.asarray(Image.open(__import__("io").BytesIO(result.content)).convert("RGB"))
    assert g.shape == (*load_image(sample_path("chelsea.png"), size=40).tensor.shape[-2:], 3)
    toml = client.get(f"/api/runs/{run_id}/config")
    assert toml.status_code == 200 and 'command = "image"' in toml.text
    config = tmp_path / "run.toml"  # (again.toml is the settings file the repeat writes)
    config.write_text(toml.text)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["image", "--config", str(config), "-o", "again.png", "--quiet"]) == 0
    again = np.asarray(Image.open(tmp_path / "again.png").convert("RGB"))
    assert np.array_equal(again, g)  # the same settings, inputs and seed: the same pixels
    preview = client.get(f"/api/runs/{run_id}/view")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"


def test_stop_keeps_the_best_G(client: TestClient) -> None:
    content, style = image_pair(client)
    run_id = start(client, content, [style], size="64", steps="2000", scales="none")
    wait(client, run_id, ("running",), steps=4)
    assert client.post(f"/api/runs/{run_id}/stop").status_code == 200
    record = wait(client, run_id)
    assert record["status"] == "stopped" and record["result"] == "result.png"
    assert record["steps_done"] < 2000
    assert record["best"]["total"] == min(h[1] for h in record["history"])
    assert client.get(f"/api/runs/{run_id}/result").status_code == 200


def test_runs_wait_their_turn_and_two_tabs_lose_nothing(client: TestClient) -> None:
    content, style = image_pair(client)
    ids: list[str] = []

    def tab() -> None:
        ids.append(start(client, content, [style], **TINY))

    tabs = [threading.Thread(target=tab) for _ in range(2)]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    records = sorted((wait(client, i) for i in ids), key=lambda r: r["started"])
    assert [r["status"] for r in records] == ["done", "done"]
    assert records[1]["started"] >= records[0]["finished"]  # one at a time on this machine
    assert {r["id"] for r in client.get("/api/runs").json()} >= set(ids)


def test_a_waiting_run_can_be_taken_off_the_queue(client: TestClient) -> None:
    content, style = image_pair(client)
    first = start(client, content, [style], size="64", steps="2000", scales="none")
    second = start(client, content, [style], **TINY)
    assert client.post(f"/api/runs/{second}/stop").json()["status"] == "stopped"
    client.post(f"/api/runs/{first}/stop")
    wait(client, first)
    record = client.get(f"/api/runs/{second}").json()
    assert record["status"] == "stopped" and record["steps_done"] == 0 and record["result"] is None
    assert client.get(f"/api/runs/{second}/result").status_code == 404


def test_continue_from_a_result_starts_from_it(client: TestClient) -> None:
    content, style = image_pair(client)
    first = wait(client, start(client, content, [style], **TINY))
    r = client.post("/api/runs", json={"kind": "image", "content": content, "styles": [style],
                                       "settings": {"size": "40", "steps": "1", "style_weight": "5e8"},
                                       "parent": first["id"]})
    assert r.status_code == 201, r.text
    second = wait(client, r.json()["id"])
    assert second["status"] == "done" and second["parent"] == first["id"]
    toml = client.get(f"/api/runs/{second['id']}/config").text
    assert f"runs/{first['id']}/result.png" in toml  # init = the first run's result
    # its first J is the first run's final J under the new β, far below a start from the content
    fresh = wait(client, start(client, content, [style], size="40", steps="1", style_weight="5e8"))
    assert second["history"][0][1] < 0.5 * fresh["history"][0][1]


def test_runs_are_listed_again_after_a_restart_and_a_cut_off_run_keeps_its_best_G(data: Path) -> None:
    with TestClient(create_app(data)) as client:
        content, style = image_pair(client)
        done = wait(client, start(client, content, [style], **TINY))
    # A run cut off by a kill: its record says running, its best G was saved at a coarse scale.
    store = Store(data)
    cut = RunRecord(new_id(), "image", content, [style], dict(TINY), status="running", started=time.time(),
                    best={"step": 3, "total": 1.0, "content": 1.0, "style": 1.0})
    store.add(cut)
    g = torch.rand(1, 3, 20, 30)
    torch.save(g, store.file(cut, "best.pt"))
    with TestClient(create_app(data)) as client:
        listed = {r["id"]: r for r in client.get("/api/runs").json()}
        assert listed[done["id"]]["status"] == "done"
        record = wait(client, cut.id)
        deadline = time.time() + 60
        while record["result"] is None and time.time() < deadline:
            time.sleep(0.1)
            record = client.get(f"/api/runs/{cut.id}").json()
        assert record["status"] == "stopped" and "restart" in record["note"]
        result = client.get(f"/api/runs/{cut.id}/result")
        got = np.asarray(Image.open(__import__("io").BytesIO(result.content)).convert("RGB")) / 255
        done_g = Image.open(data / "runs" / done["id"] / "result.png")
        assert got.shape == (done_g.height, done_g.width, 3)  # finished on the content's grid
        want = torch.nn.functional.interpolate(g, size=got.shape[:2], mode="bicubic", antialias=True).clamp(0, 1)
        assert np.abs(got - want[0].permute(1, 2, 0).numpy()).mean() < 0.03
        assert not store.file(cut, "best.pt").exists()


def test_events_stream_progress_and_live_frames(client: TestClient) -> None:
    content, style = image_pair(client)
    seen: dict[str, list] = {"runs": [], "progress": [], "frame": []}
    with client.stream("GET", "/api/events") as stream:
        run_id = start(client, content, [style], size="64", steps="60", scales="none")
        event = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                seen[event].append(json.loads(line[6:]))
                if len({f["version"] for f in seen["frame"] if f["id"] == run_id}) >= 2:
                    break
    client.post(f"/api/runs/{run_id}/stop")
    assert seen["runs"][0]["runs"] is not None
    frames = [f for f in seen["frame"] if f["id"] == run_id]
    assert frames[0]["mime"] == "image/jpeg" and frames[0]["data"].startswith("data:image/jpeg;base64,")
    assert frames[0]["version"] < frames[-1]["version"]
    progress = [p for p in seen["progress"] if p["id"] == run_id]
    assert progress and progress[-1]["total_steps"] == 60 and progress[-1]["J"] > 0
    wait(client, run_id)


# ---------------------------------------------------------------- bad input


def test_uploads_refuse_bad_files_with_one_line(data: Path) -> None:
    with TestClient(create_app(data, max_upload_mb=0.5)) as client:
        real = Path(sample_path("chelsea.png")).read_bytes()  # 0.3 MB
        big = Path(sample_path("astronaut.png")).read_bytes()  # 0.8 MB
        cases = {
            "oversized": (413, "image", "a.png", big, "over the upload limit of 0.5 MB"),
            "wrong type": (400, "image", "a.exe", real, "not a file type nstyle reads as image"),
            "truncated": (400, "image", "a.png", real[: len(real) // 2], "corrupt or truncated"),
            "not an image": (400, "image", "a.png", b"hello world" * 10, "not an image"),
            "empty": (400, "image", "a.png", b"", "empty"),
            "unknown kind": (400, "picture", "a.png", real, "unknown kind"),
            "sound as image": (400, "audio", "a.wav", real, "a.wav"),
        }
        for what, (status, kind, name, body, message) in cases.items():
            r = client.post(f"/api/uploads?kind={kind}&name={name}", content=body)
            assert r.status_code == status, (what, r.text)
            assert message in r.json()["detail"] and "\n" not in r.json()["detail"], what
            assert str(data) not in r.json()["detail"], what  # the server's paths stay its own
        assert not [p for p in (data / "uploads").iterdir()]  # nothing half-written is left


def test_a_decompression_bomb_is_refused_from_its_header(client: TestClient) -> None:
    png = png_bytes(np.zeros((1, 1, 3), np.uint8))
    # IHDR claims 30000 x 30000 (900 MP, over the default 100 MP limit); its CRC fixed up
    ihdr = b"IHDR" + struct.pack(">II", 30000, 30000) + png[24:29]
    bomb = png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]
    r = client.post("/api/uploads?kind=image&name=bomb.png", content=bomb)
    assert r.status_code == 400 and "over the limit" in r.json()["detail"]


def test_client_names_never_become_paths(client: TestClient, data: Path, tmp_path: Path) -> None:
    body = Path(sample_path("chelsea.png")).read_bytes()
    for name in ("../../escape.png", "..\\..\\escape.png", "/etc/cron.d/x.png", "a/../../b.png"):
        r = client.post("/api/uploads", params={"kind": "image", "name": name}, content=body)
        assert r.status_code == 201, r.text
        up = r.json()
        assert "/" not in up["name"] and "\\" not in up["name"]
        assert (data / "uploads" / f"{up['id']}.png").is_file()
    assert not (tmp_path / "escape.png").exists() and not (data / "escape.png").exists()
    assert sorted(p.name for p in data.iterdir()) == ["runs", "uploads"]


def test_malformed_requests_get_one_line_too(client: TestClient) -> None:
    for method, path, kw, status, message in [
        ("post", "/api/uploads", {"content": b"x"}, 400, "kind: Field required"),
        ("post", "/api/runs", {"content": b"{" + b" " * 70000 + b"}"}, 413, "over 64 kB"),
        ("get", "/api/runs/0123456789abcdef/slice?axis=abc", {}, 400, "axis"),
        ("post", "/api/samples", {"json": {"kind": "image"}}, 400, "no image sample ''"),
    ]:
        r = getattr(client, method)(path, **kw)
        assert r.status_code == status, (path, r.text)
        assert isinstance(r.json()["detail"], str) and message in r.json()["detail"], (path, r.json())


def test_unknown_and_path_like_ids_are_404(client: TestClient) -> None:
    for path in ("/api/runs/0123456789abcdef", "/api/runs/..", "/api/runs/..%2F..%2Fetc%2Fpasswd",
                 "/api/runs/0123456789abcdef/result", "/api/runs/0123456789abcdef/config",
                 "/api/uploads/0123456789abcdef/file", "/api/uploads/..%2Fruns/view", "/api/runs/XYZ/view"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.text)
    assert client.post("/api/runs/0123456789abcdef/stop").status_code == 404


def test_run_requests_are_checked_as_the_cli_checks(client: TestClient) -> None:
    content, style = image_pair(client)
    with pytest.raises(NStyleError) as cli:
        ImageSettings(steps=-1).validate()
    sound = send(client, "/usr/share/sounds/alsa/Front_Center.wav", "audio")["id"] if Path(
        "/usr/share/sounds/alsa/Front_Center.wav").is_file() else None
    cases = [
        (b"not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        ({"kind": "image", "styles": [style]}, 400, "choose a content"),
        ({"kind": "image", "content": content, "styles": []}, 400, "at least one style"),
        ({"kind": "image", "content": content, "styles": ["0123456789abcdef"]}, 404, "no upload"),
        ({"kind": "image", "content": "../../etc/passwd", "styles": [style]}, 404, "no upload"),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"steps": "-1"}}, 400, str(cli.value)),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"stepz": "1"}}, 400, "unknown image"),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"mask": "/etc/passwd"}}, 400,
         "unknown image option: mask"),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"init": "/etc/passwd"}}, 400,
         "unknown init"),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"size": [1]}}, 400, "single value"),
        ({"kind": "image", "content": content, "styles": [style], "settings": {"style_weight": "nan"}}, 400,
         "style weight"),
        ({"kind": "image", "content": content, "styles": [style], "parent": "0123456789abcdef"}, 404, "no run"),
        ({"kind": "image", "content": content, "styles": [style, style], "blend": ["a", 1]}, 400, "blend"),
    ]
    if sound:
        cases.append(({"kind": "image", "content": content, "styles": [sound]}, 400, "is not a image"))
    for body, status, message in cases:
        kw = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = client.post("/api/runs", **kw)
        assert r.status_code == status, (body, r.text)
        assert message in r.json()["detail"], (body, r.json())
    assert client.get("/api/runs").json() == []  # none of them was queued


def test_a_run_that_fails_says_why(client: TestClient) -> None:
    content, style = image_pair(client)
    run_id = start(client, content, [style], size="40", steps="2", style_layers="relu9_9:1")  # known once the net is
    record = wait(client, run_id)
    assert record["status"] == "failed" and "relu9_9" in record["error"] and "\n" not in record["error"]


def test_a_run_whose_input_is_gone_fails_instead_of_waiting_forever(data: Path) -> None:
    app = create_app(data)
    with TestClient(app) as client:
        content, style = image_pair(client)
        record = RunRecord(new_id(), "image", content, [style], dict(TINY))
        app.state.store.add(record)
        (data / "uploads" / f"{content}.json").unlink()  # removed by hand from the data folder
        app.state.runner.submit(record)
        done = wait(client, record.id)
        assert done["status"] == "failed" and f"no upload '{content}'" in done["error"]


def test_the_best_G_kept_for_a_restart_is_the_current_scales(data: Path) -> None:
    """J jumps when a run moves to a finer grid; the G saved for a restart must not stay the
    coarse scale's (lower J, smaller grid) once the run works at the output's size."""
    from nstyle.core.engine import StepInfo
    from nstyle.studio.runner import Live

    store = Store(data)
    record = store.add(RunRecord(new_id(), "image", "0" * 16, ["1" * 16], {}))
    live = Live(record, ImageSettings(), store, lambda event, body: None)
    live.step(StepInfo(0, 1.0, 1.0, 0.0, 0.0, scale=0), torch.zeros(1, 3, 8, 8))
    live.step(StepInfo(2, 5.0, 5.0, 0.0, 0.0, scale=1), torch.ones(1, 3, 16, 16))
    assert live.best_g is not None and live.best_g.shape[-1] == 16 and record.best["total"] == 5.0
