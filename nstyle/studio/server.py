"""The studio's web app (FastAPI on uvicorn): the page, its API and its event stream.

    GET  /                          the page (static/index.html)
    GET  /api/kinds                 every kind's options (defaults, help, choices) and samples
    POST /api/uploads?kind=&name=   a file as the request body -> {id, shape, ...}
    POST /api/samples               {kind, name}: a bundled sample as an upload
    GET  /api/uploads/{id}          what was sent: kind, name, shape
    GET  /api/uploads/{id}/file     the file as sent (for the page's audio player)
    GET  /api/uploads/{id}/view     a picture of it (or traces for a series)
    POST /api/runs                  {kind, content, styles, blend?, settings, parent?} -> the queued run
    GET  /api/runs                  every run, oldest first
    GET  /api/runs/{id}             one run with J's history
    POST /api/runs/{id}/stop        stop it (the best G so far is the result) or take it off the queue
    GET  /api/runs/{id}/result      the result file;  /config: its TOML;  /view: its picture
    GET  /api/runs/{id}/slice       ?axis=0..2&index=k: one slice of a volume result
    GET  /api/events                server-sent events: runs, progress, frame

Bad input is a 4xx with ``{"detail": one line}``, never a server error.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import shutil
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ..errors import NStyleError
from ..kinds import MODALITIES
from ..resources import limits
from ..runtime import one_line
from .events import Hub
from .forms import KINDS, check_kind, schema, settings_from_form
from .frames import encode, view, volume_slice
from .runner import Runner
from .samples import sample_files
from .store import EXTENSIONS, NotFound, RunRecord, Store, Upload, display_name, extension_of, new_id

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_MB = 64
COOKIE = "nstyle_token"
MAX_JSON = 1 << 16
CHUNK = 1 << 16


class Refused(NStyleError):
    """A request refused with an HTTP status other than 400."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(
    data: str | Path, workers: int = 1, token: str | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
) -> FastAPI:
    """The studio for the data folder ``data``; ``token``: required of every request if set."""
    store = Store(data)
    hub = Hub(store.listing)
    runner = Runner(store, hub.publish, workers=workers)
    max_bytes = int(max_upload_mb * 2**20)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        hub.loop = asyncio.get_running_loop()
        framer = asyncio.create_task(hub.frames(runner))
        yield
        framer.cancel()
        runner.close()

    app = FastAPI(title="nstyle studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.runner, app.state.hub = store, runner, hub

    @app.exception_handler(NStyleError)
    async def refused(request: Request, e: NStyleError) -> JSONResponse:
        status = e.status if isinstance(e, Refused) else 404 if isinstance(e, NotFound) else 400
        return JSONResponse({"detail": one_line(str(e))}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, e: RequestValidationError) -> JSONResponse:
        """FastAPI's own check of a query parameter, as one line like every other refusal."""
        problems = [f"{' '.join(str(p) for p in err.get('loc', ())[1:]) or 'request'}: {err.get('msg', '')}"
                    for err in e.errors()]
        return JSONResponse({"detail": one_line("; ".join(problems) or "malformed request")}, status_code=400)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    add_upload_routes(app, store, max_bytes)
    add_run_routes(app, store, runner, hub)
    return TokenGate(app, token) if token else app  # type: ignore[return-value]


def add_upload_routes(app: FastAPI, store: Store, max_bytes: int) -> None:
    """The kinds' options and samples; files sent by a page, and what they look like."""

    @app.get("/api/kinds")
    async def kinds() -> dict[str, Any]:
        return {k: {"options": schema(k), "samples": list(sample_files(k)), "extensions": EXTENSIONS[k]}
                for k in KINDS}

    @app.post("/api/uploads", status_code=201)
    async def upload(request: Request, kind: str, name: str = "file") -> dict[str, Any]:
        check_kind(kind)
        ext = extension_of(name, kind)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise Refused(413, f"{display_name(name)}: {int(declared) / 2**20:.1f} MB is over the upload limit of "
                               f"{max_bytes / 2**20:g} MB")
        upload_id = new_id()
        incoming = store.uploads / f".incoming-{upload_id}{ext}"
        size = 0
        try:
            with open(incoming, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_bytes:
                        raise Refused(413, f"{display_name(name)}: over the upload limit of {max_bytes / 2**20:g} MB")
                    f.write(chunk)
            if size == 0:
                raise NStyleError(f"{display_name(name)}: the file is empty")
            shape = await asyncio.to_thread(check_upload, kind, incoming, display_name(name))
            incoming.rename(store.uploads / f"{upload_id}{ext}")
        finally:
            incoming.unlink(missing_ok=True)
        return vars(store.add_upload(Upload(upload_id, kind, display_name(name), ext, size, shape)))

    @app.post("/api/samples", status_code=201)
    async def sample(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        kind, name = str(body.get("kind", "")), str(body.get("name", ""))
        check_kind(kind)
        files = sample_files(kind)
        if name not in files:
            raise NStyleError(f"no {kind} sample {name!r}; choose one of {', '.join(files) or 'none here'}")
        upload_id, ext = new_id(), extension_of(files[name].name, kind)
        target = store.uploads / f"{upload_id}{ext}"
        shutil.copyfile(files[name], target)
        try:
            shape = await asyncio.to_thread(check_upload, kind, target, name)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        up = Upload(upload_id, kind, name, ext, target.stat().st_size, shape, sample=name)
        return vars(store.add_upload(up))

    @app.get("/api/uploads/{upload_id}")
    async def upload_meta(upload_id: str) -> dict[str, Any]:
        return vars(store.upload(upload_id))

    @app.get("/api/uploads/{upload_id}/file")
    async def upload_file(upload_id: str) -> FileResponse:
        return FileResponse(store.upload_path(upload_id), media_type=media_type(store.upload(upload_id).ext))

    @app.get("/api/uploads/{upload_id}/view")
    async def upload_view(upload_id: str) -> Response:
        up = store.upload(upload_id)
        return await asyncio.to_thread(view_file, up.kind, store.upload_path(upload_id))


def add_run_routes(app: FastAPI, store: Store, runner: Runner, hub: Hub) -> None:
    """Runs: start, list, stop, results, pictures; and the event stream."""

    @app.post("/api/runs", status_code=201)
    async def start(request: Request) -> dict[str, Any]:
        record = new_run(store, await json_body(request))
        store.add(record)
        runner.submit(record)
        return record.summary()

    @app.get("/api/runs")
    async def runs() -> list[dict[str, Any]]:
        return store.listing()

    @app.get("/api/runs/{run_id}")
    async def one_run(run_id: str) -> dict[str, Any]:
        record = store.get(run_id)
        return {**record.summary(), "history": record.history}

    @app.post("/api/runs/{run_id}/stop")
    async def stop(run_id: str) -> dict[str, Any]:
        record = store.get(run_id)
        runner.stop(record)
        return record.summary()

    @app.get("/api/runs/{run_id}/result")
    async def result(run_id: str) -> FileResponse:
        record, path = finished_file(store, run_id, "result")
        return FileResponse(path, filename=f"nstyle-{record.kind}-{record.id}{path.name[len('result'):]}",
                            media_type=media_type(path.name))

    @app.get("/api/runs/{run_id}/config")
    async def config(run_id: str) -> FileResponse:
        record, path = finished_file(store, run_id, "config")
        return FileResponse(path, filename=f"nstyle-{record.kind}-{record.id}.toml", media_type="application/toml")

    @app.get("/api/runs/{run_id}/view")
    async def run_view(run_id: str) -> Response:
        record = store.get(run_id)
        for name, mime in (("preview.png", "image/png"), ("preview.json", "application/json")):
            path = store.file(record, name)
            if path.is_file():
                return FileResponse(path, media_type=mime, headers={"Cache-Control": "no-cache"})
        raise Refused(404, f"run {run_id} has no result to show yet")

    @app.get("/api/runs/{run_id}/slice")
    async def run_slice(run_id: str, axis: int = 0, index: int = 0) -> Response:
        record, path = finished_file(store, run_id, "result")
        if record.kind != "volume" or axis not in (0, 1, 2):
            raise NStyleError("slices are for volume results, along axis 0, 1 or 2")
        picture = await asyncio.to_thread(volume_picture, path, axis, index)
        return Response(picture, media_type="image/png")

    @app.get("/api/events")
    async def events() -> StreamingResponse:
        return StreamingResponse(hub.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (at most MAX_JSON bytes: a run's settings are a few hundred)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON:
            raise Refused(413, f"the request body is over {MAX_JSON // 1024} kB; a run's settings are far smaller")
    try:
        body = json.loads(raw)
    except ValueError:
        raise NStyleError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise NStyleError("the request body must be a JSON object")
    return body


def new_run(store: Store, body: dict[str, Any]) -> RunRecord:
    """A run from a page's request, checked as far as it can be before it is queued."""
    kind = str(body.get("kind", ""))
    check_kind(kind)
    content = body.get("content")
    styles = body.get("styles")
    if not isinstance(content, str):
        raise NStyleError("choose a content first")
    if not isinstance(styles, list) or not styles or not all(isinstance(s, str) for s in styles):
        raise NStyleError("choose at least one style")
    for upload_id in [content, *styles]:
        if store.upload(upload_id).kind != kind:
            raise NStyleError(f"upload {upload_id} is not a {kind}")
    settings = body.get("settings") or {}
    if not isinstance(settings, dict):
        raise NStyleError("settings must be an object of option names and values")
    blend = body.get("blend")
    if blend is not None and len(styles) > 1:
        if not isinstance(blend, list) or not all(isinstance(w, (int, float, str)) for w in blend):
            raise NStyleError("blend must be a list of weights, one per style")
        settings = {**settings, "style_blend": ",".join(str(w) for w in blend)}
    parent = body.get("parent")
    server: dict[str, Any] = {}
    if parent is not None:
        origin = store.get(str(parent))
        if origin.result is None:
            raise NStyleError(f"run {origin.id} has no result to continue from")
        if origin.kind != kind:
            raise NStyleError(f"run {origin.id} is a {origin.kind} run; a {kind} run cannot start from its result")
        server["init"] = str(store.file(origin, origin.result))
        settings = {k: v for k, v in settings.items() if k != "init"}
    settings_from_form(kind, settings, server)  # the CLI's checks, before the run is queued
    return RunRecord(new_id(), kind, content, list(styles), dict(settings), parent=parent)


def check_upload(kind: str, path: Path, name: str) -> list[int]:
    """Decode an upload as a run would (the CLI's readers and limits); its shape, or an error
    that names the client's file, not the server's path."""
    try:
        content, _ = read_upload(kind, path)
    except NStyleError as e:
        raise NStyleError(str(e).replace(str(path), name)) from None
    except (MemoryError, torch.OutOfMemoryError):
        raise NStyleError(f"{name}: too large to decode here") from None
    except Exception as e:  # a decoder's own failure on hostile bytes
        raise NStyleError(f"{name}: cannot read it as {kind} ({type(e).__name__})") from None
    return list(content.shape[1:])


def read_upload(kind: str, path: Path) -> tuple[torch.Tensor, Any]:
    """The upload as a run with the kind's defaults reads it (its readers, its pixel limit):
    the content signal in G's domain, and those default settings."""
    modality = MODALITIES[kind]
    settings = modality.settings_type()
    with limits(None, getattr(settings, "max_pixels", None)):
        signals = modality.load(str(path), [str(path)], settings, torch.device("cpu"))
    return signals.content, settings


def view_file(kind: str, path: Path) -> Response:
    """A picture (or traces) of an uploaded file, read as a run reads it."""
    content, settings = read_upload(kind, path)
    shown = view(kind, content, settings)  # as read for a run: the domain G lives in
    if isinstance(shown.data, bytes):
        return Response(shown.data, media_type=shown.mime)
    return JSONResponse(shown.data)


def volume_picture(path: Path, axis: int, index: int) -> bytes:
    from ..modalities.volume import load_volume

    picture = volume_slice(load_volume(path).tensor, axis, index)
    return encode(picture, "PNG")[1]


def finished_file(store: Store, run_id: str, which: str) -> tuple[RunRecord, Path]:
    record = store.get(run_id)
    if record.result is None:
        raise Refused(404, f"run {run_id} has no result yet ({record.status})")
    path = store.file(record, record.result if which == "result" else "run.toml")
    if not path.is_file():
        raise Refused(404, f"run {run_id}: its {which} file is missing")
    return record, path


MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".wav": "audio/wav",
         ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".csv": "text/csv", ".gz": "application/gzip"}


def media_type(name: str) -> str:
    return MEDIA.get(Path(name).suffix.lower(), "application/octet-stream")


class TokenGate:
    """Every request must carry the studio's token: ``?token=`` (which also sets a cookie, so
    the page's own requests carry it), the cookie, or ``Authorization: Bearer``. For a
    studio bound beyond loopback, as Jupyter does."""

    def __init__(self, app: FastAPI, token: str) -> None:
        self.app, self.token = app, token
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            pass
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        given = [query, cookie[COOKIE].value if COOKIE in cookie else "", bearer]
        if not any(g and hmac.compare_digest(g, self.token) for g in given):
            response = JSONResponse({"detail": "this studio needs its token: open the address it printed at start "
                                               "(…/?token=…)"}, status_code=401)
            await response(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start" and query:
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", value.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
