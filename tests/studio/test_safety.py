"""Safe by default: loopback unless told, a token beyond it, every request checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nstyle.cli import main as cli_main
from nstyle.errors import NStyleError
from nstyle.studio import address, is_loopback, serve
from nstyle.studio.server import TokenGate, create_app


def test_every_request_needs_the_token_once_one_is_set(data: Path) -> None:
    with TestClient(create_app(data, token="s3cret")) as client:
        for path in ("/", "/api/runs", "/api/events", "/static/app.js", "/?token=wrong"):
            r = client.get(path)
            assert r.status_code == 401 and "token" in r.json()["detail"], path
        page = client.get("/?token=s3cret")
        assert page.status_code == 200 and "nstyle studio" in page.text
        assert "nstyle_token=s3cret" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
        assert client.get("/api/runs").status_code == 200  # the cookie carries it from now on
    with TestClient(create_app(data, token="s3cret")) as client:
        assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/runs", headers={"Authorization": "Bearer s3cre"}).status_code == 401


def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kw: Any) -> tuple[Any, list[str]]:
    """What serve() would hand to uvicorn, and what it printed."""
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(app=app, **options))
    lines: list[str] = []
    serve(data=tmp_path / "d", say=lines.append, **kw)
    return seen, lines


def test_loopback_needs_no_token_and_other_addresses_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen, lines = started(monkeypatch, tmp_path)
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765 and not isinstance(seen["app"], TokenGate)
    assert lines[0].startswith("nstyle studio: http://127.0.0.1:8765/ ")
    seen, lines = started(monkeypatch, tmp_path, host="0.0.0.0", port=9000)
    assert isinstance(seen["app"], TokenGate) and len(seen["app"].token) >= 24
    assert f"http://0.0.0.0:9000/?token={seen['app'].token}" in lines[0]
    assert "needs the token" in lines[1]
    seen, _ = started(monkeypatch, tmp_path, token="mine")  # a given token is required on loopback too
    assert seen["app"].token == "mine"


def test_addresses_and_bad_options() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")
    assert address("::1", 80, None) == "http://[::1]:80/"
    with pytest.raises(NStyleError, match="port 70000"):
        serve(port=70000)
    with pytest.raises(NStyleError, match="workers"):
        serve(workers=0)


def test_the_cli_refuses_bad_studio_options_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli_main(["studio", "--port", "0", "--data", str(tmp_path)]) == 2
    assert cli_main(["studio", "--max-upload", "-1", "--data", str(tmp_path)]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli_main(["studio", "--data", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("nstyle: error: ") for line in err)
    assert "port 0" in err[0] and "max upload" in err[1] and "data folder" in err[2]
