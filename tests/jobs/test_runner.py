"""``nstyle batch`` on a real Dask cluster: a scheduler and two worker processes on
localhost (``LocalCluster(processes=True)``), tiny jobs of every kind and bad inputs, one
worker killed in the middle of a job.

Inputs: nstyle's sample images (scikit-image), matplotlib's sample EEG, nibabel's
anatomical.nii, alsa-utils' speech clip (the sound job is left out where it is missing).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from nstyle.jobs import batch
from nstyle.jobs.ledger import ledger_path, records
from nstyle.samples import sample_path
from tests.cli.test_cli import run

pytestmark = pytest.mark.slow

NIB_DATA = Path(os.path.dirname(nib.__file__)) / "tests" / "data"
SPEECH = Path("/usr/share/sounds/alsa/Front_Center.wav")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as client:
        yield c, client


def _plan(folder: Path, slow_steps: int = 150) -> Path:
    (folder / "in").mkdir(exist_ok=True)
    for name in ("astronaut", "coffee", "ihc"):
        (folder / "in" / f"{name}.png").write_bytes(sample_path(f"{name}.png").read_bytes())
    eeg = np.fromfile(Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat").reshape(800, 4)
    np.save(folder / "in" / "eeg.npy", eeg[:, :2])
    (folder / "in" / "anat.nii").write_bytes((NIB_DATA / "anatomical.nii").read_bytes())
    (folder / "in" / "broken.png").write_bytes(b"not a picture")
    sound = ""
    if SPEECH.is_file():
        (folder / "in" / "speech.wav").write_bytes(SPEECH.read_bytes())
        sound = ('[[job]]\nkind = "audio"\ncontent = "in/speech.wav"\nstyle = "in/speech.wav"\noutput = "out/s.wav"\n'
                 'steps = 2\nbranches = "3:8"\nmax_seconds = 0.5\n')
    text = (
        'kind = "image"\nsize = 32\nsteps = 2\nscales = "none"\n'
        # first in the plan, so it is running when a worker is killed
        f'[[job]]\ncontent = "in/astronaut.png"\nstyle = "in/ihc.png"\noutput = "out/slow.png"\nsize = 96\n'
        f'steps = {slow_steps}\n'
        '[[product]]\ncontent = "in/*.png"\nstyle = ["in/ihc.png"]\noutput = "out/{content}_{style_weight}.png"\n'
        'grid = { style_weight = [1e4, 1e6] }\n'
        '[[job]]\nkind = "series"\ncontent = "in/eeg.npy"\nstyle = "in/eeg.npy"\noutput = "out/eeg.npy"\n'
        'steps = 2\nbranches = "3:4"\n'
        '[[job]]\nkind = "volume"\ncontent = "in/anat.nii"\nstyle = "in/anat.nii"\noutput = "out/anat.nii.gz"\n'
        'steps = 2\nnet = "random"\nbranches = "3:4"\n'
        '[[job]]\ncontent = "in/missing.png"\nstyle = "in/ihc.png"\noutput = "out/missing.png"\n'
        + sound
    )
    (folder / "plan.toml").write_text(text)
    return folder / "plan.toml"


def _kill_the_slow_jobs_worker(client, killed: list) -> None:
    """SIGKILL the worker process running out/slow.png (the nanny starts a new one)."""
    for _ in range(600):
        for address, keys in client.processing().items():
            if any("-0-0" in str(k) for k in keys) and not killed:
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        threading.Event().wait(0.05)


def test_every_kind_bad_inputs_a_killed_worker_and_resuming(tmp_path, cluster):
    c, client = cluster
    plan = _plan(tmp_path)
    killed: list = []
    results = batch(plan, scheduler=c.scheduler_address,
                    on_start=lambda n, cl: threading.Thread(target=_kill_the_slow_jobs_worker,
                                                            args=(client, killed), daemon=True).start())
    assert killed, "no worker was killed mid-job"
    by = {r.output: r for r in results}
    good = ["out/slow.png", "out/astronaut_10000.png", "out/coffee_1e+06.png", "out/ihc_10000.png", "out/eeg.npy",
            "out/anat.nii.gz"] + (["out/s.wav"] if SPEECH.is_file() else [])
    for name in good:
        assert by[name].status == "done", by[name]
    # every good output exists once, complete and correct
    assert Image.open(tmp_path / "out" / "slow.png").size == (96, 96)
    assert Image.open(tmp_path / "out" / "coffee_1e+06.png").size[0] == 32
    assert np.load(tmp_path / "out" / "eeg.npy").shape == (800, 2)
    assert nib.load(tmp_path / "out" / "anat.nii.gz").shape == (33, 41, 25)
    if SPEECH.is_file():
        assert sf.info(tmp_path / "out" / "s.wav").frames > 0
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary files
    # every bad one is in the ledger with its one-line error
    assert "broken.png" in by["out/broken_10000.png"].error and by["out/broken_1e+06.png"].status == "failed"
    assert "missing.png: no such file" in by["out/missing.png"].error
    ledger = list(records(ledger_path(plan)))
    assert sum(r.output == "out/slow.png" and r.status == "done" for r in ledger) == 1

    # a rerun does nothing: no job is sent to a worker, the ledger does not grow
    lines = ledger_path(plan).read_text()
    again = batch(plan, scheduler=c.scheduler_address, on_start=lambda n, cl: pytest.fail(f"{n} jobs resubmitted"))
    assert {r.output: r.status for r in again} == {
        r.output: "skipped" if r.status == "done" else r.status for r in results}
    assert ledger_path(plan).read_text() == lines

    # a changed option reruns only the jobs it touches
    plan.write_text(plan.read_text().replace("grid = { style_weight = [1e4, 1e6] }",
                                             "grid = { style_weight = [1e4, 3e6] }"))
    third = {r.output: r for r in batch(plan, scheduler=c.scheduler_address)}
    ran = {n for n, r in third.items() if r.status == "done"}
    assert ran == {"out/astronaut_3e+06.png", "out/coffee_3e+06.png", "out/ihc_3e+06.png"}
    assert third["out/slow.png"].status == "skipped" and third["out/eeg.npy"].status == "skipped"


def test_the_command_line_exit_status_and_summary(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    (tmp_path / "c.png").write_bytes(sample_path("coffee.png").read_bytes())
    plan.write_text('size = 24\nsteps = 1\nscales = "none"\n'
                    '[[job]]\ncontent = "c.png"\nstyle = "c.png"\noutput = "o.png"\n')
    rc, _, err = run(["batch", plan, "--workers", "1", "--quiet"], capsys)
    assert rc == 0, err
    assert "1 done" in err and (tmp_path / "o.png").is_file()
    plan.write_text(plan.read_text() + '[[job]]\ncontent = "gone.png"\nstyle = "c.png"\noutput = "p.png"\n')
    rc, _, err = run(["batch", plan, "--workers", "1", "--quiet"], capsys)
    assert rc == 1 and "1 skipped, 1 failed" in err and "gone.png: no such file" in err
    plan.write_text("steps = -1\n" + plan.read_text())
    rc, _, err = run(["batch", plan, "--quiet"], capsys)
    assert rc == 2 and err.strip().startswith("nstyle: error:") and len(err.strip().splitlines()) == 1


def test_ctrl_c_keeps_what_finished_and_the_next_run_resumes(tmp_path, cluster):
    c, _ = cluster
    (tmp_path / "c.png").write_bytes(sample_path("coffee.png").read_bytes())
    plan = tmp_path / "plan.toml"
    plan.write_text('size = 24\nsteps = 1\nscales = "none"\n[[product]]\ncontent = "c.png"\nstyle = "c.png"\n'
                    'output = "o_{style_weight}.png"\ngrid = { style_weight = [1, 2, 3, 4] }\n')

    def ctrl_c(result, counts):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch(plan, scheduler=c.scheduler_address, on_result=ctrl_c)
    first = [r for r in records(ledger_path(plan)) if r.status == "done"]
    assert len(first) == 1  # recorded before the interruption
    resumed = batch(plan, scheduler=c.scheduler_address)
    assert sorted(r.status for r in resumed) == ["done", "done", "done", "skipped"]
    assert all((tmp_path / f"o_{w}.png").is_file() for w in (1, 2, 3, 4))


def test_shared_paths_instead_of_bytes(tmp_path, cluster):
    """--shared: the workers read the inputs from their paths (here, this machine's)."""
    c, _ = cluster
    (tmp_path / "c.png").write_bytes(sample_path("chelsea.png").read_bytes())
    plan = tmp_path / "plan.csv"
    plan.write_text("kind,content,style,output,size,steps,scales\nimage,c.png,c.png,o.png,24,1,none\n")
    (result,) = batch(plan, scheduler=c.scheduler_address, shared=True)
    assert result.status == "done" and Image.open(tmp_path / "o.png").size[0] == 24
