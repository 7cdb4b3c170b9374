"""Fixtures for the studio: an app on a temporary data folder, driven in process.

Inputs are real files that installed packages ship: scikit-image's photos (chelsea.png,
Stefan van der Walt's cat, CC0; ihc.png, an immunohistochemistry stain, public domain)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from nstyle.samples import sample_path  # noqa: E402
from nstyle.studio.server import create_app  # noqa: E402

FINISHED = ("done", "stopped", "failed")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "studio"


@pytest.fixture
def client(data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(data)) as c:
        yield c


def send(client: TestClient, path: str | Path, kind: str = "image", name: str | None = None) -> dict[str, Any]:
    """Upload a file as the page does (the bytes as the body); the upload's record."""
    r = client.post(f"/api/uploads?kind={kind}&name={name or Path(path).name}", content=Path(path).read_bytes())
    assert r.status_code == 201, r.text
    return r.json()


def image_pair(client: TestClient) -> tuple[str, str]:
    return send(client, sample_path("chelsea.png"))["id"], send(client, sample_path("ihc.png"))["id"]


def start(client: TestClient, content: str, styles: list[str], kind: str = "image", **settings: Any) -> str:
    r = client.post("/api/runs", json={"kind": kind, "content": content, "styles": styles, "settings": settings})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait(client: TestClient, run_id: str, until: tuple[str, ...] = FINISHED, timeout: float = 120,
         steps: int = 0) -> dict[str, Any]:
    """The run's record once its status is one of ``until`` (and ``steps`` steps are done)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        record = client.get(f"/api/runs/{run_id}").json()
        if record["status"] in until and record["steps_done"] >= steps:
            return record
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {record['status']} after {timeout} s: {record}")
