"""`mmcli speak` with the bundled piper voice: sinks, options, reproducibility, fidelity, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.speech_helpers import VOICE, model_files, pcm_of, require_models

TEXT = "Hello there. This is a short test of the speech command."


@pytest.fixture(autouse=True)
def _models() -> None:
    require_models()


@pytest.mark.smoke
def test_output_file_and_json_record(cli, tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    result = cli("speak", TEXT, "-o", str(out), "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    rate, pcm = pcm_of(out.read_bytes())
    assert rate == doc["sample_rate"] == 22050 and len(pcm) > rate  # more than half a second
    assert doc["output"] == str(out) and doc["voice"] == VOICE and doc["error"] is None
    assert doc["characters"] == len(TEXT) and doc["sentences"] == 2 and doc["seed"] == 0
    assert abs(doc["duration_s"] - len(pcm) / 2 / rate) < 1e-3
    assert {"load_s", "run_s"} <= set(doc["timings"]) and "audio" not in doc
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temp file left


def test_same_seed_same_bytes_other_seed_differs(cli, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "7")):
        result = cli("speak", TEXT, "--seed", seed, "-o", str(tmp_path / f"{name}.wav"))
        assert result.exit_code == 0, result.stderr
        runs[name] = (tmp_path / f"{name}.wav").read_bytes()
    assert runs["a"] == runs["b"] and runs["a"] != runs["c"]


def test_samples_equal_a_direct_piper_call(cli, tmp_path: Path) -> None:
    """Fidelity: with the noise off (piper's only random part) the samples are piper's own."""
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    files = model_files(VOICE)
    voice = PiperVoice.load(files["model"], config_path=files["config"])
    syn = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=1.2, volume=0.5)
    direct = b"".join(c.audio_int16_bytes for c in voice.synthesize(TEXT, syn_config=syn))
    out = tmp_path / "m.wav"
    result = cli("speak", TEXT, "--noise-scale", "0", "--noise-w", "0", "--length-scale", "1.2",
                 "--volume", "0.5", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert pcm_of(out.read_bytes()) == (voice.config.sample_rate, direct)


def test_raw_streams_the_same_pcm_and_names_the_rate(cli, tmp_path: Path) -> None:
    cli("speak", TEXT, "-o", str(tmp_path / "a.wav"))
    result = cli("speak", TEXT, "--raw")
    assert result.exit_code == 0
    assert result.stdout_bytes == pcm_of((tmp_path / "a.wav").read_bytes())[1]
    assert "22050 Hz" in result.stderr


def test_sentence_silence_and_stdin_text(cli) -> None:
    plain = cli("speak", "-", "--raw", input=TEXT.encode())
    spaced = cli("speak", "--raw", "--sentence-silence", "0.5", input=TEXT.encode())
    assert plain.exit_code == spaced.exit_code == 0
    assert len(spaced.stdout_bytes) - len(plain.stdout_bytes) == 2 * 11025  # one gap, 0.5 s


def test_lines_batch_numbered_with_duplicates(cli, tmp_path: Path) -> None:
    from mmcli.inputs import text_name

    src = tmp_path / "script.txt"
    src.write_text("First line.\nSecond line.\nFirst line.\n")
    out = tmp_path / "out"
    result = cli("speak", "--input-file", str(src), "--lines", "--output-dir", str(out))
    assert result.exit_code == 0, result.stderr
    names = [f"0001-{text_name('First line.')}.wav", f"0002-{text_name('Second line.')}.wav",
             f"0003-{text_name('First line.')}.wav"]
    assert names[0].startswith("0001-first-line-")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names
    assert (out / names[0]).read_bytes() == (out / names[2]).read_bytes()
    assert result.stdout.splitlines() == [str((out / n).resolve()) for n in names]
    again = cli("speak", "--input-file", str(src), "--lines", "--output-dir", str(out))
    assert again.exit_code == 0 and "0 done, 0 failed, 3 skipped" in again.stderr


def test_texts_never_share_an_output_name(cli, tmp_path: Path) -> None:
    """`speak TEXT --output-dir D` used to write D/speech.wav for every text: a second text
    replaced the first (or, with --skip-existing, was skipped with exit 0)."""
    out = tmp_path / "out"
    for text in ("Good morning.", "Good night."):
        r = cli("speak", text, "--output-dir", str(out), "--skip-existing")
        assert r.exit_code == 0 and "skipped" not in r.stderr, r.stderr
    wavs = sorted(p.name for p in out.glob("*.wav"))
    assert len(wavs) == 2 and wavs[0].startswith("good-morning-")
    again = cli("speak", "Good night.", "--output-dir", str(out), "--skip-existing")
    assert again.exit_code == 0 and "1 skipped" in again.stderr  # same text, same name


def test_a_binary_file_is_not_text(cli, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\xff\xfe")
    r = cli("speak", "-i", str(clip), "--output-dir", str(tmp_path / "o"))
    assert r.exit_code == 1 and "is not text" in r.stderr and "UTF-8" in r.stderr
    assert "embedded null" not in r.stderr


def test_one_audio_per_input_file_with_json_sidecars(cli, tmp_path: Path) -> None:
    for name in ("intro", "outro"):
        (tmp_path / f"{name}.txt").write_text(f"This is the {name}.")
    out = tmp_path / "out"
    result = cli("speak", "-i", str(tmp_path / "intro.txt"), "-i", str(tmp_path / "outro.txt"),
                 "--output-dir", str(out), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "intro.json", "intro.wav", "outro.json", "outro.wav"]
    assert json.loads((out / "intro.json").read_text())["output"] == "intro.wav"
    printed = json.loads(result.stdout)  # the records, naming their sidecars (not bare paths)
    assert [r["input"] for r in printed] == [str(tmp_path / "intro.txt"),
                                              str(tmp_path / "outro.txt")]
    assert printed[0]["outputs"] == [str((out / "intro.wav").resolve()),
                                     str((out / "intro.json").resolve())]


def test_output_must_be_wav(cli, tmp_path: Path) -> None:
    r = cli("speak", "hello", "-o", str(tmp_path / "out.mp3"))
    assert r.exit_code == 2 and "speak writes WAV audio" in r.stderr
    assert not (tmp_path / "out.mp3").exists()


def test_emoji_and_odd_characters_do_not_crash(cli, tmp_path: Path) -> None:
    result = cli("speak", "Good news 🎉 ∑ → ½ — naïve café 日本", "-o", str(tmp_path / "e.wav"))
    assert result.exit_code == 0, result.stderr
    assert len(pcm_of((tmp_path / "e.wav").read_bytes())[1]) > 0


@pytest.mark.parametrize(("args", "message"), [
    ([""], "no text to speak"),
    (["   "], "no text to speak"),
    (["hi", "-o", "nodir/x.wav"], "does not exist"),
    (["hi", "-o", "file.txt/x.wav"], "does not exist"),
    (["hi", "--format", "json"], "the audio needs a place"),
    (["hi", "--raw", "-o", "x.wav"], "cannot be used together"),
    (["hi", "--speaker", "5", "--raw"], "--speaker '5'"),
])
def test_usage_errors_exit_2(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    result = cli("speak", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing half-written


def test_play_without_a_player_names_them(cli, tmp_path: Path) -> None:
    result = cli("speak", "hi", "--play", env={"PATH": str(tmp_path)})
    assert result.exit_code == 2
    assert "aplay, paplay, afplay, ffplay" in result.stderr


def test_explicit_cuda_without_cuda_is_an_error(cli) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    result = cli("--device", "cuda", "speak", "hi", "--raw")
    assert result.exit_code == 3 and "no CUDA provider" in result.stderr
    assert result.stdout_bytes == b""


def test_refuses_binary_audio_on_a_terminal(subprocess_env: dict[str, str]) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "mmcli", "speak", "hi"], cwd=str(REPO),
                          env=subprocess_env, timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert b"refusing to write WAV audio to a terminal" in child.before


def test_wav_on_stdout_when_piped(subprocess_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "mmcli", "speak", "Hi."], cwd=REPO,
                          env=subprocess_env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout[:4] == b"RIFF" and pcm_of(done.stdout)[0] == 22050


def test_speaker_by_name_or_id_for_multi_speaker_voices() -> None:
    from types import SimpleNamespace

    from mmcli.backends.piper import PiperEngine
    from mmcli.errors import UsageError

    config = SimpleNamespace(sample_rate=22050, num_speakers=3,
                             speaker_id_map={"alice": 0, "bob": 1, "carol": 2})
    engine = PiperEngine(SimpleNamespace(config=config), None, "cpu")  # type: ignore[arg-type]
    assert engine.speaker_id(None) is None
    assert engine.speaker_id("bob") == 1 and engine.speaker_id("2") == 2
    for bad in ("3", "dave"):
        with pytest.raises(UsageError, match="3 speaker"):
            engine.speaker_id(bad)
