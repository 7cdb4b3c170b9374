"""The studio in a real browser: Debian's headless Chromium, driven through its ChromeDriver.

One session walks what a user does: upload content and style → Start → watch at least two
different live frames → Stop → download the result and its settings → continue from the
result with more style → the server is killed mid-run and started again → both runs are
listed, the cut-off one with its best G → compare the two side by side; and a bad file gets
a message on the page. With NSTYLE_SCREENSHOT=PATH it also saves the README's screenshot
(``make studio-screenshot``). Inputs: scikit-image's chelsea.png and ihc.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from nstyle.outputs.config import read_config
from nstyle.samples import sample_path

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.slow

if not (CHROMIUM.exists() and DRIVER.exists()):
    if os.environ.get("CI"):  # .ci/run installs them: a CI run must not skip the browser
        raise RuntimeError("Debian's chromium and chromium-driver are missing (.ci/run installs them)")
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``nstyle studio`` in its own process, as a user starts it."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port, self.proc = data, port, None
        self.url = f"http://127.0.0.1:{port}/"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nstyle", "studio", "--port", str(self.port), "--data", str(self.data)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "api/runs", timeout=2).read()
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.stdout.read()
                time.sleep(0.2)
        raise AssertionError("the studio did not start")

    def kill(self) -> None:
        """As a crash or a power cut would: no chance to save anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", free_port())
    s.start()
    yield s
    s.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--window-size=1440,980"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def until(driver, condition, timeout: float = 60, what: str = ""):
    """``condition(driver)`` once true; the page redraws parts of itself, so an element found a
    moment ago may be gone (stale): then look again."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(lambda d: condition(d), message=what)


def status(driver) -> str:
    return driver.find_element(By.ID, "run-status").text


def run_ids(driver) -> list[str]:
    return [li.get_attribute("data-run") for li in driver.find_elements(By.CSS_SELECTOR, "#runs li")]


def downloaded(driver, suffix: str) -> Path:
    def found(_):
        files = [p for p in driver.downloads.iterdir() if p.name.endswith(suffix)]
        return files[0] if files else False

    return until(driver, found, 30, f"a downloaded {suffix}")


def test_a_user_session_in_chromium(server: Server, browser, tmp_path: Path) -> None:
    d = browser
    content = tmp_path / "my cat.png"
    shutil.copy(sample_path("chelsea.png"), content)
    d.get(server.url)
    until(d, lambda d: d.find_elements(By.ID, "kind-image"), what="the page")

    # a bad file gets a message on the page
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    d.find_element(By.ID, "content-file").send_keys(str(bad))
    until(d, lambda d: "not a file type nstyle reads as image" in d.find_element(By.ID, "message").text)

    # upload content and style, start
    d.find_element(By.ID, "content-file").send_keys(str(content))
    d.find_element(By.ID, "style-file").send_keys(str(sample_path("ihc.png")))
    until(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#content-chosen .item")
          and d.find_elements(By.CSS_SELECTOR, "#style-chosen .item"), what="both uploads")
    assert "my cat.png" in d.find_element(By.ID, "content-chosen").text
    d.find_element(By.ID, "opt-size").send_keys("192")
    d.find_element(By.ID, "opt-steps").send_keys("100")
    clicked = time.time()
    d.find_element(By.ID, "start").click()

    # at least two different live frames
    frames: dict[str, str] = {}

    def two_frames(d) -> bool:
        img = d.find_element(By.ID, "frame")
        version = img.get_attribute("data-version")
        if version:
            frames.setdefault(version, img.get_attribute("src"))
            frames.setdefault("first", str(time.time() - clicked))
        return len(set(frames.values()) - {frames.get("first")}) >= 3

    until(d, two_frames, 90, "live frames")
    print(f"first live frame {float(frames['first']):.2f} s after Start")
    until(d, lambda d: "step" in d.find_element(By.ID, "status-line").text, what="progress")
    first_run = d.find_element(By.CSS_SELECTOR, "#runs li.selected").get_attribute("data-run")
    if os.environ.get("NSTYLE_SCREENSHOT"):  # at the output's size, with a longer curve
        until(d, lambda d: d.find_element(By.ID, "status-line").text.startswith("scale 2/2"), 90)
        time.sleep(1)
        d.save_screenshot(os.environ["NSTYLE_SCREENSHOT"])

    # stop: the best G is the result; download it and its settings
    d.find_element(By.ID, "stop").click()
    until(d, lambda d: status(d) == "stopped", 60, "stopped")
    until(d, lambda d: d.find_element(By.ID, "download-result").get_attribute("aria-disabled") == "false")
    d.find_element(By.ID, "download-result").click()
    result = downloaded(d, ".png")
    assert max(Image.open(result).size) == 192
    d.find_element(By.ID, "download-config").click()
    config = read_config(downloaded(d, ".toml"))
    assert config["command"] == "image" and config["size"] == 192 and config["steps"] == 100

    # continue from the result with more style; kill the server mid-run
    until(d, lambda d: d.find_element(By.ID, "continue").is_enabled())
    d.find_element(By.ID, "continue").click()
    until(d, lambda d: d.find_element(By.ID, "continue-note").is_displayed(), what="the continue note")
    assert first_run in d.find_element(By.ID, "continue-note").text
    assert d.find_element(By.ID, "opt-size").get_attribute("value") == "192"  # the settings carried over
    d.execute_script("const s = document.getElementById('style-strength'); s.value = 1;"
                     "s.dispatchEvent(new Event('input'));")
    steps = d.find_element(By.ID, "opt-steps")
    steps.clear()
    steps.send_keys("2000")
    d.find_element(By.ID, "start").click()
    until(d, lambda d: len(run_ids(d)) == 2 and status(d) == "running", 60, "the second run")
    second_run = d.find_element(By.CSS_SELECTOR, "#runs li.selected").get_attribute("data-run")
    until(d, lambda d: d.find_element(By.ID, "status-line").text.startswith("scale"), 60, "a step of the second run")
    server.kill()
    server.start()

    # both runs are listed again; the cut-off one is stopped, with its best G as a result
    d.get(server.url)
    until(d, lambda d: set(run_ids(d)) == {first_run, second_run}, what="the runs after the restart")
    cut = f'#runs li[data-run="{second_run}"]'
    until(d, lambda d: d.find_element(By.CSS_SELECTOR, cut).get_attribute("data-status") == "stopped")
    until(d, lambda d: d.execute_script(f"return document.querySelector('{cut} img').naturalWidth") > 0, 60,
          "the cut-off run's picture")
    d.find_element(By.CSS_SELECTOR, cut).click()
    until(d, lambda d: "restart" in d.find_element(By.ID, "run-title").text)

    # compare the two side by side
    d.find_element(By.CSS_SELECTOR, f'#runs li[data-run="{first_run}"] input[data-compare="A"]').click()
    d.find_element(By.CSS_SELECTOR, f'{cut} input[data-compare="B"]').click()
    until(d, lambda d: d.find_element(By.ID, "compare").is_displayed())
    until(d, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#compare img')].filter(i => i.naturalWidth > 0).length") == 2)
    assert second_run in d.find_element(By.ID, "compare-b").text


def choose_samples(d, kind: str, content: str, style: str) -> None:
    from selenium.webdriver.support.ui import Select

    d.find_element(By.ID, f"kind-{kind}").click()
    Select(d.find_element(By.ID, "content-sample")).select_by_value(content)
    until(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#content-chosen .item"), what=f"the {kind} content")
    Select(d.find_element(By.ID, "style-sample")).select_by_value(style)
    until(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#style-chosen .item"), what=f"the {kind} style")


def test_sounds_and_volumes_in_the_same_page(server: Server, browser) -> None:
    from nstyle.studio.samples import sample_files

    d = browser
    d.get(server.url)
    until(d, lambda d: d.find_elements(By.ID, "kind-audio"), what="the page")
    sounds, volumes = sample_files("audio"), sample_files("volume")
    if "Front_Center.wav" in sounds:  # Debian's alsa-utils
        choose_samples(d, "audio", "Front_Center.wav", "Noise.wav")
        assert d.find_elements(By.CSS_SELECTOR, "#content-chosen audio")  # C can be played before the run
        d.find_element(By.ID, "opt-max_seconds").send_keys("0.8")
        d.find_element(By.ID, "opt-steps").send_keys("8")
        d.find_element(By.ID, "start").click()
        until(d, lambda d: status(d) == "done", 120, "the sound run")
        players = d.find_elements(By.CSS_SELECTOR, "#players audio")
        assert len(players) == 3 and players[2].get_attribute("src").endswith("/result")  # C, S and G
        until(d, lambda d: d.execute_script("return document.getElementById('frame').naturalHeight") == 256)
    choose_samples(d, "volume", "anatomical.nii", "example4d.nii.gz")
    d.find_element(By.ID, "opt-steps").send_keys("3")
    d.find_element(By.ID, "start").click()
    until(d, lambda d: status(d) == "done", 120, "the volume run")
    until(d, lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") == 768,
          what="the three mid-slices")
    # The result's event may come a moment after "done" (a 3-step run is fast): wait for the slicer.
    until(d, lambda d: d.find_element(By.ID, "slicer").is_displayed(), what="the slicer")
    d.execute_script("const s = document.getElementById('slice-index'); s.value = 3;"
                     "s.dispatchEvent(new Event('input'));")
    until(d, lambda d: "index=3" in d.find_element(By.ID, "frame").get_attribute("src"))
    until(d, lambda d: d.execute_script("return document.getElementById('frame').naturalWidth") == 256, what="slice 3")
    assert "slice 3 /" in d.find_element(By.ID, "slice-label").text
    assert set(volumes) >= {"anatomical.nii", "example4d.nii.gz"}
