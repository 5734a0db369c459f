"""`mmcli transcribe` on the bundled tiny.en model: formats, options, bad inputs, fidelity."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests import speech_helpers
from tests.speech_helpers import (
    SENTENCES,
    WHISPER,
    assert_monotonic,
    model_files,
    parse_srt,
    parse_vtt,
    require_models,
    wav,
    wer,
)

speech_dir = speech_helpers.speech_dir  # the session fixture, shared

SEGMENT_KEYS = {"id", "start", "end", "text", "avg_logprob", "no_speech_prob", "temperature",
                "words"}


@pytest.fixture(scope="module")
def newsreel_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`--format all --output-dir` on newsreel.mp3, run once for the module."""
    from typer.testing import CliRunner

    from mmcli.cli.app import app
    from tests.conftest import MEDIA

    require_models()
    out = tmp_path_factory.mktemp("newsreel")
    result = CliRunner().invoke(app, ["--offline", "transcribe", str(MEDIA / "newsreel.mp3"),
                                      "--format", "all", "--output-dir", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def test_newsreel_every_format(newsreel_all: Path) -> None:
    names = sorted(p.name for p in newsreel_all.iterdir() if not p.name.startswith("."))
    assert names == [f"newsreel.mp3.{ext}" for ext in ("json", "srt", "tsv", "txt", "vtt")]
    text = (newsreel_all / "newsreel.mp3.txt").read_text()
    assert "New York Times" in text
    doc = json.loads((newsreel_all / "newsreel.mp3.json").read_text())
    assert {"input", "task", "model", "device", "timings", "error", "language",
            "language_probability", "duration_s", "text", "segments"} <= set(doc)
    assert doc["error"] is None and doc["task"] == "transcribe" and doc["language"] == "en"
    assert doc["text"] == text.strip() and 0 < doc["language_probability"] <= 1
    assert doc["model"]["name"] == WHISPER and doc["timings"]["run_s"] > 0
    assert 10 < doc["duration_s"] < 600
    for seg in doc["segments"]:
        assert set(seg) == SEGMENT_KEYS and seg["start"] <= seg["end"] <= doc["duration_s"]
    srt = parse_srt((newsreel_all / "newsreel.mp3.srt").read_text())
    vtt = parse_vtt((newsreel_all / "newsreel.mp3.vtt").read_text())
    assert_monotonic(srt)
    assert_monotonic(vtt)
    # Cue ends never pass the audio (Whisper's last timestamp does: 18.04 s for 17.44 s).
    assert doc["segments"][-1]["end"] == doc["duration_s"]
    end_ms = round(doc["duration_s"] * 1000)
    assert srt[-1][1] == vtt[-1][1] == end_ms / 1000 < doc["duration_s"] + 0.0005
    assert len(srt) == len(vtt) == len(doc["segments"])
    texts = [s["text"].strip() for s in doc["segments"]]
    assert [c[2] for c in srt] == [c[2] for c in vtt] == texts
    tsv = (newsreel_all / "newsreel.mp3.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and len(tsv) == len(srt) + 1
    assert tsv[1].split("\t")[0] == str(round(srt[0][0] * 1000))
    assert tsv[-1].split("\t")[1] == str(end_ms)


def test_newsreel_word_ends_within_the_audio(cli, media: Path) -> None:
    """Word ends past the audio are clamped (also when inputs are batched: --batch-size)."""
    require_models()
    result = cli("transcribe", str(media / "newsreel.mp3"), "-f", "json", "--word-timestamps",
                 "--batch-size", "2")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    words = [w for s in doc["segments"] for w in s["words"]]
    assert words and all(w["start"] <= w["end"] <= doc["duration_s"] for w in words)
    assert all(s["end"] <= doc["duration_s"] for s in doc["segments"])
    assert words[-1]["word"].strip().startswith("one") and "cosmic significance" in doc["text"]


@pytest.mark.smoke
def test_text_equals_direct_faster_whisper(newsreel_all: Path, media: Path) -> None:
    """Fidelity: same file, model and settings as a bare faster-whisper call -> same text."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_files(WHISPER)["model"].parent), device="cpu",
                         compute_type="auto", local_files_only=True)
    # The same samples faster-whisper decodes (test_media_decode checks that on PyAV < 19; its
    # own decode_audio does not run on PyAV 19).
    from mmcli.backends.media import decode_audio

    segments, _ = model.transcribe(decode_audio(media / "newsreel.mp3"), beam_size=5,
                                   vad_filter=True)
    direct = "".join(s.text for s in segments).strip()
    mine = json.loads((newsreel_all / "newsreel.mp3.json").read_text())["text"]
    assert mine == direct


@pytest.mark.smoke
def test_stdin_audio_bytes_and_word_timestamps(cli, speech_dir: Path) -> None:
    result = cli("transcribe", "-", "--format", "json", "--word-timestamps",
                 input=(speech_dir / "s0.wav").read_bytes())
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["input"] == "-" and wer(SENTENCES[0], doc["text"]) <= 0.15
    words = [w for s in doc["segments"] for w in s["words"]]
    assert len(words) >= 8 and all(set(w) == {"start", "end", "word", "probability"}
                                   for w in words)
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))


def test_folder_of_formats_jsonl_one_record_each(cli, speech_dir: Path, tmp_path: Path) -> None:
    import av

    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(speech_dir / "s1.wav", folder / "a.wav")
    _convert(speech_dir / "s1.wav", folder / "b.flac", "flac")
    _convert(speech_dir / "s1.wav", folder / "c.mp4", "aac")
    (folder / "notes.txt").write_text("not audio, not picked from a folder")
    result = cli("transcribe", str(folder), "--format", "jsonl", "--beam-size", "1")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(d["input"]).name for d in docs] == ["a.wav", "b.flac", "c.mp4"]
    assert all(wer(SENTENCES[1], d["text"]) <= 0.15 for d in docs), docs
    assert av  # PyAV made the flac and mp4


def _convert(src: Path, dst: Path, codec: str) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=22050)
        for frame in inp.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_bad_inputs_are_per_input_errors(cli, speech_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(speech_dir / "s2.wav", folder / "good.wav")
    (folder / "corrupt.mp3").write_bytes(b"this is not audio at all" * 50)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "zero.wav").write_bytes(wav(b""))
    (folder / "silent.wav").write_bytes(wav(b"\x00\x00" * 16000 * 3))
    os.symlink(tmp_path / "gone.wav", folder / "dangling.wav")
    out = tmp_path / "out"
    args = [str(folder / n) for n in ("corrupt.mp3", "dangling.wav", "empty.wav", "good.wav",
                                      "silent.wav", "zero.wav")]
    result = cli("transcribe", *args, str(tmp_path / "missing.wav"), "--output-dir", str(out))
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert sum("corrupt.mp3: not a decodable audio or video file" in e for e in errors) == 1
    assert sum("dangling.wav: cannot read the file" in e for e in errors) == 1
    assert sum("empty.wav: file is empty" in e for e in errors) == 1
    assert sum("missing.wav: no such file or directory" in e for e in errors) == 1
    assert "3 done, 4 failed" in errors[-1]
    assert wer(SENTENCES[2], (out / "good.wav.txt").read_text()) <= 0.15
    assert (out / "silent.wav.txt").read_text() == "\n"  # VAD: no hallucinated sentence
    assert (out / "zero.wav.txt").read_text() == "\n"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "good.wav.txt", "silent.wav.txt", "zero.wav.txt"]


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "translate"], "needs a multilingual model"),
    (["--language", "fr"], "English-only"),
    (["--format", "all"], "needs --output-dir"),
    (["--format", "docx"], "is not one of"),
    (["--compute-type", "int3"], "--compute-type int3"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_usage_errors_exit_2(cli, speech_dir: Path, args: list[str], message: str) -> None:
    result = cli("transcribe", str(speech_dir / "s0.wav"), *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stdout == ""


def test_explicit_cuda_without_cuda_is_an_error(cli, speech_dir: Path) -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has CUDA")
    result = cli("--device", "cuda", "transcribe", str(speech_dir / "s0.wav"))
    assert result.exit_code == 3 and "no CUDA device" in result.stderr and result.stdout == ""


def test_batched_pipeline_and_srt_to_stdout(cli, speech_dir: Path) -> None:
    result = cli("transcribe", str(speech_dir / "s1.wav"), "--batch-size", "2", "-f", "srt")
    assert result.exit_code == 0, result.stderr
    cues = parse_srt(result.stdout)
    assert_monotonic(cues)
    assert wer(SENTENCES[1], " ".join(c[2] for c in cues)) <= 0.15


def test_text_streams_segment_by_segment_on_a_tty(speech_dir: Path,
                                                  subprocess_env: dict[str, str]) -> None:
    pexpect = pytest.importorskip("pexpect")
    from tests.conftest import REPO

    child = pexpect.spawn(sys.executable, ["-m", "mmcli", "transcribe", str(speech_dir / "s1.wav")],
                          cwd=str(REPO), env=subprocess_env, timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    pyte = pytest.importorskip("pyte")  # read the screen as a person sees it
    screen = pyte.Screen(200, 40)
    pyte.ByteStream(screen).feed(child.before)
    shown = [line.rstrip() for line in screen.display if line.strip()]
    assert shown[-1].startswith("transcribe tiny.en-bundled")  # the bar stays below the text
    assert wer(SENTENCES[1], " ".join(shown[:-1])) <= 0.15
