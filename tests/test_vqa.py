"""`mmcli vqa` end to end on the real llama.cpp engine with the tiny generated VLM."""
# ruff: noqa: F811  (pytest fixtures imported from tests.vision_fixtures are used as arguments)

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.vision_fixtures import make_image, tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401


def jsonl(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_every_question_of_every_image(cli, tiny_vlm_manifest, tmp_path):
    a, b = make_image(tmp_path / "a.png", 1), make_image(tmp_path / "b.png", 2)
    r = cli("--models", str(tiny_vlm_manifest), "vqa", str(a), str(b), "-q", "What is it?",
            "-q", "Which colour?", "-f", "jsonl", "--max-tokens", "6")
    assert r.exit_code == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [(Path(x["image"]).name, x["question"]) for x in recs] == [
        ("a.png", "What is it?"), ("a.png", "Which colour?"),
        ("b.png", "What is it?"), ("b.png", "Which colour?")]
    for x in recs:
        assert x["task"] == "vqa" and x["error"] is None and x["images"] == [x["image"]]
        assert 1 <= x["completion_tokens"] <= 6 and x["answer"]
        assert "number" not in x and "several" not in x
    assert recs[0]["answer"] != recs[2]["answer"]  # different pixels, different answer
    text = cli("--models", str(tiny_vlm_manifest), "vqa", str(a), "-q", "What is it?",
               "--max-tokens", "6")
    assert text.stdout.strip() == recs[0]["answer"]


def test_sidecar_per_question(cli, tiny_vlm_manifest, tmp_path):
    folder = tmp_path / "imgs"
    make_image(folder / "x.png", 3)
    out = tmp_path / "out"
    r = cli("--models", str(tiny_vlm_manifest), "vqa", str(folder), "-q", "One?", "-q", "Two?",
            "--output-dir", str(out), "-f", "json", "--max-tokens", "4")
    assert r.exit_code == 0, r.stderr
    q1 = json.loads((out / "x.png.q1.json").read_text())
    q2 = json.loads((out / "x.png.q2.json").read_text())
    assert (q1["question"], q2["question"]) == ("One?", "Two?")


def test_questions_file_relative_paths(cli, tiny_vlm_manifest, tmp_path):
    data = tmp_path / "eval"
    make_image(data / "img" / "p.png", 4)
    make_image(data / "img" / "q.png", 5)
    qfile = data / "questions.jsonl"
    qfile.write_text(
        '{"image": "img/p.png", "question": "Is it red?"}\n\n'
        '{"image": "img/q.png", "question": "Is it blue?"}\n'
        '{"image": "img/p.png", "question": "Is it big?"}\n')
    r = cli("--models", str(tiny_vlm_manifest), "vqa", "--questions", str(qfile), "-f", "jsonl",
            "--max-tokens", "4")
    assert r.exit_code == 0, r.stderr
    got = sorted((Path(x["image"]).name, x["question"]) for x in jsonl(r.stdout))
    assert got == [("p.png", "Is it big?"), ("p.png", "Is it red?"), ("q.png", "Is it blue?")]
    qfile.write_text('{"image": "img/p.png"}\n')
    bad = cli("--models", str(tiny_vlm_manifest), "vqa", "--questions", str(qfile))
    assert bad.exit_code == 2 and "questions.jsonl:1" in bad.stderr
    none = cli("--models", str(tiny_vlm_manifest), "vqa", str(data))
    assert none.exit_code == 2 and "no question" in none.stderr


@pytest.mark.smoke
def test_together_sends_all_images(cli, tiny_vlm_manifest, tmp_path):
    a, b = make_image(tmp_path / "a.png", 6), make_image(tmp_path / "b.png", 7)
    shutil.copy(a, tmp_path / "a2.png")
    base = ["--models", str(tiny_vlm_manifest), "vqa", "-q", "Which one?", "-f", "jsonl",
            "--max-tokens", "5"]
    one = jsonl(cli(*base, str(a)).stdout)[0]
    r = cli(*base, "--together", str(a), str(b))
    assert r.exit_code == 0, r.stderr
    both = jsonl(r.stdout)
    assert len(both) == 1 and both[0]["images"] == [str(a), str(b)]
    assert both[0]["prompt_tokens"] == one["prompt_tokens"] + 16  # a second image's tokens
    swapped = jsonl(cli(*base, "--together", str(b), str(tmp_path / "a2.png")).stdout)[0]
    assert swapped["answer"] != both[0]["answer"]  # order of images matters to the model
    bad = cli(*base, "--together", str(a), str(tmp_path / "missing.png"))
    assert bad.exit_code == 1 and "missing.png" in bad.stderr
    od = cli(*base, "--together", str(a), "--output-dir", str(tmp_path / "o"))
    assert od.exit_code == 2


def test_together_is_one_unit_of_the_batch_flow(cli, tiny_vlm_manifest, tmp_path):
    """--together goes through run_batch: --dry-run, --journal/resume and --max-duration apply
    to the group (they were silently ignored when --together bypassed the batch flow)."""
    a, b = make_image(tmp_path / "a.png", 4), make_image(tmp_path / "b.png", 5)
    base = ["--models", str(tiny_vlm_manifest), "vqa", "-q", "Which?", "--together",
            "--max-tokens", "4", str(a), str(b)]
    dry = cli(*base, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines()[1] == f"process\t{a} + {b}"
    journal = tmp_path / "job.jsonl"
    first = cli(*base, "-f", "jsonl", "--journal", str(journal))
    assert first.exit_code == 0, first.stderr
    assert len(jsonl(first.stdout)) == 1
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [x["status"] for x in lines if "status" in x] == ["done"]
    again = cli(*base, "-f", "jsonl", "--journal", str(journal))
    assert again.exit_code == 0 and again.stdout == ""  # resumed: the group is done
    assert "1 skipped" in again.stderr or again.stderr == ""
    later = cli(*base, "-f", "jsonl", "--dry-run", "--journal", str(journal))
    assert later.stdout.splitlines()[1].startswith("skip (done)")
    b.write_bytes(make_image(tmp_path / "c.png", 6).read_bytes())  # a part changed: redo
    redo = cli(*base, "-f", "jsonl", "--dry-run", "--journal", str(journal))
    assert redo.stdout.splitlines()[1].startswith("process")
