"""What watching a run in nstyle studio costs: time to the first live frame, optimisation speed
with and without a watching page, and the server's memory.

    python benchmarks/studio.py [--size 256] [--steps 100] [--repeats 2] [--memory-size 512]

The studio runs as users start it (``nstyle studio``, its own process); the inputs are
scikit-image's chelsea.png (content) and ihc.png (style). For each repeat the same run is
made three ways, in turn: through the studio with no page open (frames are then never drawn),
through the studio with a real page watching it (Debian's headless Chromium on the studio's
page, the run selected, so every frame is drawn and decoded on this machine too), and the
plain reference: ``nstyle.stylize`` with the same options in this process, no server at all.
Speed is seconds per step from the end of the first step to the end of the last one, timed
the same way for all three (loading, building the net and saving excluded). The first frame
is timed from the POST that starts a run to the first ``frame`` event an event-stream
client receives, with the server warmed up (median of 3). Memory is the server's resident
set: idle after its warm-up, and the peak while a ``--memory-size`` px run takes its steps
at that size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import torch
from _common import header, markdown_table

from nstyle import stylize
from nstyle.samples import sample_path

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Studio:
    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen([sys.executable, "-m", "nstyle", "studio", "--port", str(self.port),
                                      "--data", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = httpx.Client(base_url=self.url, timeout=60)
        for _ in range(300):
            try:
                self.client.get("api/runs")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        self.ps = psutil.Process(self.proc.pid)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def upload(self, path: Path) -> str:
        r = self.client.post("api/uploads", params={"kind": "image", "name": path.name}, content=path.read_bytes())
        r.raise_for_status()
        return r.json()["id"]

    def start(self, content: str, style: str, settings: dict) -> str:
        r = self.client.post("api/runs", json={"kind": "image", "content": content, "styles": [style],
                                                "settings": settings})
        r.raise_for_status()
        return r.json()["id"]

    def wait(self, run_id: str, every: float = 0.2, probe=None) -> dict:
        while True:
            record = self.client.get(f"api/runs/{run_id}").json()
            if probe is not None:
                probe(record)
            if record["status"] in ("done", "stopped", "failed"):
                return record
            time.sleep(every)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def seconds_per_step(record: dict) -> float:
    assert record["status"] == "done", record
    return (record["last_step"] - record["first_step"]) / (record["steps_done"] - 1)


class Page:
    """A real page in headless Chromium, watching the run it is told to select."""

    def __init__(self, url: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--window-size=1440,980"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        self.driver.get(url)
        time.sleep(2)

    def watch(self, run_id: str) -> None:
        for _ in range(200):  # the list is redrawn as events come: click it in the page itself
            script = f"const li = document.querySelector('#runs li[data-run=\"{run_id}\"]'); if (li) li.click();"
            if self.driver.execute_script(script + " return !!li;"):
                return
            time.sleep(0.05)
        raise RuntimeError("the page never listed the run")

    def frames_shown(self) -> int:
        return int(self.driver.execute_script("return Number(document.getElementById('frame').dataset.version||0)"))

    def close(self) -> None:
        self.driver.quit()


def first_frame(studio: Studio, content: str, style: str) -> float:
    """Seconds from the POST that starts a run to the first frame event of that run."""
    got: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", studio.url + "api/events", timeout=None) as events:
            event = None
            for line in events.iter_lines():
                ready.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "frame":  # the only run going: ours
                    got[json.loads(line[6:])["id"]] = time.time()
                    return  # and the stream closes: no page is left watching the next runs

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(10)
    posted = time.time()
    run_id = studio.start(content, style, {"size": "256", "steps": "2000"})
    deadline = time.time() + 60
    while run_id not in got and time.time() < deadline:
        time.sleep(0.01)
    studio.client.post(f"api/runs/{run_id}/stop")
    studio.wait(run_id)
    return got[run_id] - posted


def plain_seconds_per_step(content: Path, style: Path, size: int, steps: int) -> float:
    """The same run through ``nstyle.stylize`` in this process: no server, no page."""
    ends: list[float] = []
    stylize(str(content), str(style), size=size, steps=steps, callback=lambda info, g: ends.append(time.time()))
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--memory-size", type=int, default=512)
    p.add_argument("--no-browser", action="store_true", help="skip the run watched by Chromium")
    a = p.parse_args()
    c_path, s_path = Path(sample_path("chelsea.png")), Path(sample_path("ihc.png"))
    settings = {"size": str(a.size), "steps": str(a.steps)}
    print("\n".join(header(torch.device("cpu"), torch.get_num_threads())))
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "data")
        try:
            time.sleep(8)  # the warm-up (net, torch.optim) is over
            idle = studio.rss()
            content, style = studio.upload(c_path), studio.upload(s_path)
            firsts = [first_frame(studio, content, style) for _ in range(3)]
            speeds: dict[str, list[float]] = {"studio, no page": [], "studio, Chromium watching": [],
                                              "plain stylize (no server)": []}
            shown = []
            for _ in range(a.repeats):
                speeds["studio, no page"].append(seconds_per_step(studio.wait(studio.start(content, style, settings))))
                if not a.no_browser:
                    page = Page(studio.url)
                    run_id = studio.start(content, style, settings)
                    page.watch(run_id)
                    speeds["studio, Chromium watching"].append(seconds_per_step(studio.wait(run_id)))
                    shown.append(page.frames_shown())
                    page.close()
                speeds["plain stylize (no server)"].append(plain_seconds_per_step(c_path, s_path, a.size, a.steps))
            peak = [studio.rss()]
            run_id = studio.start(content, style, {"size": str(a.memory_size), "steps": "15", "scale_steps": "3"})
            studio.wait(run_id, every=0.1, probe=lambda r: peak.append(studio.rss()))
        finally:
            studio.close()
    plain = min(speeds["plain stylize (no server)"])
    rows = [[name, f"{min(v):.3f}", f"{min(v) / plain:.3f}", " ".join(f"{x:.3f}" for x in v)]
            for name, v in speeds.items() if v]
    print(f"\nimage {c_path.name} x {s_path.name}, --size {a.size} --steps {a.steps} (default schedule), "
          f"{a.repeats} repeats, fastest kept")
    print(markdown_table(["run", "s/step", "vs plain", "each repeat"], rows, left=[0]))
    if shown:
        print(f"frames the watching page showed: {shown}")
    print(f"\nfirst live frame after Start (warm server, median of 3): {statistics.median(firsts):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in firsts)})")
    print(f"server memory: idle {idle / 2**20:.0f} MiB; peak during a {a.memory_size} px run "
          f"{max(peak) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
