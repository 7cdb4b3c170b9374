"""Server-sent events to every open page: the list of runs, progress, live frames.

``Hub.publish`` may be called from any thread (the run threads publish progress); each
page's stream is an asyncio queue on the server's loop. ``Hub.frames`` turns the newest G
of each running job into a picture at most a few times a second, once for all pages, and
only while a page is watching: with no page open, a run pays nothing for the studio.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from .frames import view
from .runner import Runner

# Seconds between looks for a new frame (a run's Live takes one at most every 0.5 s).
FRAME_POLL = 0.25
# A page that stops reading loses old events rather than holding the server's memory.
QUEUE_EVENTS = 256
HEARTBEAT = 15.0


class Hub:
    def __init__(self, listing: Callable[[], list[dict[str, Any]]]) -> None:
        self.listing = listing
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pages: set[asyncio.Queue[str]] = set()
        self.sent: dict[str, int] = {}
        self.frames_sent = 0

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to every page (thread-safe); ``runs`` events carry the whole list."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if event == "runs":
            data = {"runs": self.listing()}
        message = f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
        try:
            loop.call_soon_threadsafe(self._put, message)
        except RuntimeError:  # the loop closed meanwhile (shutting down)
            pass

    def _put(self, message: str) -> None:
        for page in list(self.pages):
            if page.full():
                page.get_nowait()
            page.put_nowait(message)

    async def stream(self) -> AsyncIterator[str]:
        """One page's events: the list of runs first, then whatever happens."""
        page: asyncio.Queue[str] = asyncio.Queue(QUEUE_EVENTS)
        self.pages.add(page)
        try:
            yield f"event: runs\ndata: {json.dumps({'runs': self.listing()}, default=str)}\n\n"
            while True:
                try:
                    yield await asyncio.wait_for(page.get(), HEARTBEAT)
                except asyncio.TimeoutError:
                    yield ": still here\n\n"
        finally:
            self.pages.discard(page)

    async def frames(self, runner: Runner) -> None:
        """Forever: each running job's newest G, as a picture, to every page."""
        while True:
            await asyncio.sleep(FRAME_POLL)
            if not self.pages:
                continue
            for run_id, live in list(runner.lives.items()):
                frame, version = live.frame, live.version
                if frame is None or self.sent.get(run_id) == version:
                    continue
                self.sent[run_id] = version
                shown = await asyncio.to_thread(view, live.record.kind, frame, live.settings)
                data = (f"data:{shown.mime};base64,{base64.b64encode(shown.data).decode()}"
                        if isinstance(shown.data, bytes) else shown.data)
                self.frames_sent += 1
                self.publish("frame", {"id": run_id, "version": version, "mime": shown.mime, "data": data})
