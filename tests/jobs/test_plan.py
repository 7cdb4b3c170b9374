"""Batch plans (TOML and CSV), settings hashes and the ledger, without a cluster.

Inputs: copies of nstyle's sample images (scikit-image's astronaut, coffee and
immunohistochemistry slide).
"""

from __future__ import annotations

import json

import pytest

from nstyle.errors import NStyleError
from nstyle.jobs import read_plan
from nstyle.jobs.ledger import JobResult, append, file_digest, read_ledger, settings_hash
from nstyle.samples import sample_path


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "photos").mkdir()
    for name in ("astronaut", "coffee"):
        (tmp_path / "photos" / f"{name}.png").write_bytes(sample_path(f"{name}.png").read_bytes())
    (tmp_path / "ihc.png").write_bytes(sample_path("ihc.png").read_bytes())
    return tmp_path


def test_jobs_and_products_expand_with_shared_settings(folder):
    (folder / "plan.toml").write_text(
        'kind = "image"\nsize = 64\nsteps = 3\n'
        '[[job]]\ncontent = "photos/coffee.png"\nstyle = "ihc.png"\noutput = "out/one.png"\nsteps = 9\n'
        '[[product]]\ncontent = "photos/*.png"\nstyle = ["ihc.png", "photos/coffee.png"]\n'
        'output = "out/{content}_{style}_{style_weight}.png"\ngrid = { style_weight = [1e4, 2.5e5] }\n'
    )
    jobs = read_plan(folder / "plan.toml")
    assert len(jobs) == 1 + 2 * 2 * 2
    assert jobs[0].options == {"size": 64, "steps": 9} and jobs[0].name == "out/one.png"
    assert jobs[0].content == folder / "photos" / "coffee.png" and jobs[0].styles == [folder / "ihc.png"]
    names = [j.name for j in jobs[1:]]
    assert names[:2] == ["out/astronaut_ihc_10000.png", "out/astronaut_ihc_250000.png"]
    assert "out/coffee_coffee_250000.png" in names
    assert all(j.options["steps"] == 3 and j.options["style_weight"] in (1e4, 2.5e5) for j in jobs[1:])
    assert jobs[1].output == str(folder / "out" / "astronaut_ihc_10000.png")


def test_a_csv_plan(folder):
    (folder / "plan.csv").write_text(
        "kind,content,style,output,steps,style_weight\n"
        "image,photos/coffee.png,ihc.png;photos/astronaut.png,a.png,4,\n"
        "image,photos/astronaut.png,ihc.png,b.png,,1e5\n"
    )
    a, b = read_plan(folder / "plan.csv")
    assert a.styles == [folder / "ihc.png", folder / "photos" / "astronaut.png"] and a.options == {"steps": 4}
    assert b.options == {"style_weight": 1e5}


@pytest.mark.parametrize("text, needle", [
    ('[[job]]\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\n'
     '[[job]]\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\n', "both write x.png"),
    ('[[job]]\nkind = "movie"\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\n', "unknown kind"),
    ('[[job]]\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\nsteps = -2\n', r"job 1 \(x.png\): steps"),
    ('[[job]]\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\nstep = 2\n', "unknown image option"),
    ('[[product]]\ncontent = "none/*.png"\nstyle = "ihc.png"\noutput = "{content}.png"\n', "no file matches"),
    ('[[product]]\ncontent = "*.png"\nstyle = "ihc.png"\noutput = "{colour}.png"\n', "unknown placeholder"),
    ('steps = 2\n', "no jobs"),
])
def test_a_bad_plan_is_refused_before_anything_runs(text, needle, folder):
    (folder / "plan.toml").write_text(text)
    with pytest.raises(NStyleError, match=needle):
        read_plan(folder / "plan.toml")


def test_the_hash_follows_options_and_input_bytes_only(folder):
    job = read_plan(_write(folder, "steps = 3\n"))[0]
    digests = {"content": file_digest(job.content)}
    h = settings_hash(job, {"steps": 3}, digests, "0.1.0")
    assert h == settings_hash(job, {"steps": 3}, dict(digests), "0.1.0")
    assert h != settings_hash(job, {"steps": 4}, digests, "0.1.0")
    (folder / "ihc.png").write_bytes((folder / "ihc.png").read_bytes() + b"\0")
    assert file_digest(job.content) != digests["content"]


def _write(folder, extra):
    (folder / "plan.toml").write_text(extra + '[[job]]\ncontent = "ihc.png"\nstyle = "ihc.png"\noutput = "x.png"\n')
    return folder / "plan.toml"


def test_the_ledger_keeps_the_last_record_and_skips_damaged_lines(tmp_path):
    ledger = tmp_path / "p.ledger.jsonl"
    append(ledger, JobResult("a.png", "failed", "h1", error="boom"))
    append(ledger, JobResult("a.png", "done", "h2", j=1.5))
    with open(ledger, "a") as f:
        f.write('{"output": "b.png", "sta')  # a crash mid-line
    last = read_ledger(ledger)
    assert list(last) == ["a.png"] and last["a.png"].status == "done" and last["a.png"].j == 1.5
    assert json.loads(ledger.read_text().splitlines()[0])["error"] == "boom"


def test_default_workers_never_oversubscribe_cores_or_memory():
    from nstyle.jobs import default_workers

    gib = 2**30
    assert default_workers(2, 24 * gib) == (2, 1)
    assert default_workers(16, 8 * gib) == (2, 8)  # memory for two workers only
    assert default_workers(1, 1 * gib) == (1, 1)
    for cores in (1, 2, 3, 8, 64):
        workers, threads = default_workers(cores, 1000 * gib)
        assert workers * threads <= cores


def test_a_job_may_not_write_another_jobs_input(folder):
    (folder / "plan.toml").write_text(
        '[[job]]\ncontent = "ihc.png"\nstyle = "photos/coffee.png"\noutput = "photos/astronaut.png"\n'
        '[[job]]\ncontent = "photos/astronaut.png"\nstyle = "ihc.png"\noutput = "out.png"\n')
    with pytest.raises(NStyleError, match="job 1 would write photos/astronaut.png, which is an input"):
        read_plan(folder / "plan.toml")
