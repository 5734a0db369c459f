"""`transcribe --batch-size N`: inputs transcribed together give the sequential transcripts.

The engine half (``mmcli.backends.whisperbatch.Gatherer``) is tested on a fake CTranslate2
model (what each batched call receives, errors, sampling, CUDA encoder outputs); the whole
path on the bundled tiny.en model against ``--batch-size 1`` (every format, word timestamps,
bad files, warnings, the journal).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests import speech_helpers
from tests.conftest import REPO
from tests.speech_helpers import require_models, wav, wer

speech_dir = speech_helpers.speech_dir  # the session fixture, shared


# -- the gatherer on a fake CTranslate2 Whisper ------------------------------------------------

class FakeWhisper:
    """Records every call; a row's "encoding" is its features' first value, so each input's
    results can be traced to its own row. Rows whose value is negative make calls fail."""

    device = "cpu"
    is_multilingual = False

    def __init__(self, name: str = "main") -> None:
        self.name, self.calls = name, []

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        import ctranslate2

        rows = np.asarray(features)
        self.calls.append(("encode", len(rows)))
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(rows[:, :1, :2] * 10))

    def generate(self, features: Any, prompts: list[list[int]], **kw: Any) -> list[Any]:
        rows = np.asarray(features)
        self.calls.append(("generate", len(rows), [len(p) for p in prompts], kw))
        if (rows < 0).any():
            raise RuntimeError("bad row")
        return [SimpleNamespace(value=float(r[0, 0]), prompt=p, model=self.name)
                for r, p in zip(rows, prompts)]

    def detect_language(self, features: Any) -> list[list[tuple[str, float]]]:
        rows = np.asarray(features)
        self.calls.append(("detect_language", len(rows)))
        return [[(f"<|{'de' if r[0, 0] > 15 else 'en'}|>", float(r[0, 0]))] for r in rows]

    def align(self, features: Any, start: list[int], tokens: list[list[int]], frames: Any,
              **kw: Any) -> list[Any]:
        self.calls.append(("align", len(np.asarray(features)), tokens, frames))
        return [SimpleNamespace(tokens=t) for t in tokens]


def _features(value: float) -> Any:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.full((1, 4, 6), value, dtype=np.float32))


def _gather(fake: FakeWhisper, fresh: Any = None) -> Any:
    from mmcli.backends.whisperbatch import Gatherer

    return Gatherer(fake, fresh or (lambda: FakeWhisper("fresh")))


def _drive(gatherer: Any, fns: list[Any]) -> list[Any]:
    jobs = [gatherer.start(fn) for fn in fns]
    while gatherer.step():
        pass
    assert all(j.done for j in jobs)
    return jobs


def test_each_step_runs_every_waiting_call_as_one_batch() -> None:
    fake = FakeWhisper()
    gatherer = _gather(fake)
    proxy = gatherer.proxy()

    def one(value: float) -> Any:
        encoded = proxy.encode(_features(value), to_cpu=False)
        (result,) = proxy.generate(encoded, [[50257]], beam_size=5)
        return result.value

    jobs = _drive(gatherer, [lambda v=v: one(v) for v in (1.0, 2.0, 3.0)])
    assert [j.result for j in jobs] == [10.0, 20.0, 30.0]  # each input got its own row
    assert fake.calls[0] == ("encode", 3)
    assert fake.calls[1] == ("generate", 3, [1, 1, 1], {"beam_size": 5})
    assert gatherer.steps == [{"encode": 3}, {"generate": 3}]
    assert proxy.is_multilingual is False  # attributes come from the real model


def test_prompts_of_another_shape_or_options_are_separate_calls() -> None:
    fake = FakeWhisper()
    gatherer = _gather(fake)
    proxy = gatherer.proxy()

    def one(value: float, prompt: list[int], beam: int) -> Any:
        encoded = proxy.encode(_features(value))
        return proxy.generate(encoded, [prompt], beam_size=beam)[0].value

    jobs = _drive(gatherer, [lambda: one(1.0, [50257], 5), lambda: one(2.0, [50360, 7, 50257], 5),
                             lambda: one(3.0, [50257], 5), lambda: one(4.0, [50257], 2)])
    assert [j.result for j in jobs] == [10.0, 20.0, 30.0, 40.0]
    generates = [c for c in fake.calls if c[0] == "generate"]
    assert sorted(c[1] for c in generates) == [1, 1, 2]  # rows 1 and 3 shared one call


def test_a_failing_row_fails_only_its_input() -> None:
    fake = FakeWhisper()
    gatherer = _gather(fake)
    proxy = gatherer.proxy()

    def one(value: float) -> Any:
        return proxy.generate(proxy.encode(_features(value)), [[50257]])[0].value

    jobs = _drive(gatherer, [lambda v=v: one(v) for v in (1.0, -1.0, 3.0)])
    assert [j.result for j in jobs] == [10.0, None, 30.0]
    assert isinstance(jobs[1].error, RuntimeError) and jobs[0].error is None


def test_sampling_calls_run_alone_on_a_fresh_model_one_input_at_a_time() -> None:
    """Temperature fallback: each input samples on its own fresh instance (CTranslate2's
    sampler starts from the seed, as in the sequential path), never batched with others."""
    fake, fresh = FakeWhisper(), []

    def make() -> FakeWhisper:
        fresh.append(FakeWhisper(f"fresh{len(fresh)}"))
        return fresh[-1]

    gatherer = _gather(fake, make)
    proxy = gatherer.proxy()

    def one(value: float) -> Any:
        encoded = proxy.encode(_features(value))
        beam = proxy.generate(encoded, [[50257]], beam_size=5)[0]
        sampled = [proxy.generate(encoded, [[50257]], beam_size=1, sampling_topk=0,
                                  sampling_temperature=t)[0] for t in (0.2, 0.4)]
        return beam.model, [(s.model, s.value) for s in sampled]

    jobs = _drive(gatherer, [lambda v=v: one(v) for v in (1.0, 2.0)])
    assert jobs[0].result == ("main", [("fresh0", 10.0), ("fresh0", 10.0)])
    assert jobs[1].result == ("main", [("fresh1", 20.0), ("fresh1", 20.0)])
    assert all(c[1] == 1 for m in fresh for c in m.calls)  # alone
    # the second input sampled only after the first was done with its sampler
    assert [len(m.calls) for m in fresh] == [2, 2]


def test_align_rows_and_frames_stay_with_their_input() -> None:
    fake = FakeWhisper()
    gatherer = _gather(fake)
    proxy = gatherer.proxy()

    def one(value: float, tokens: list[int], frames: int) -> Any:
        encoded = proxy.encode(_features(value))
        return [r.tokens for r in proxy.align(encoded, [50257], [tokens], frames,
                                              median_filter_width=7)]

    jobs = _drive(gatherer, [lambda: one(1.0, [1, 2], 100), lambda: one(2.0, [3], 200)])
    assert [j.result for j in jobs] == [[[1, 2]], [[3]]]
    assert fake.calls[-1] == ("align", 2, [[1, 2], [3]], [100, 200])


def test_each_input_detects_its_own_language() -> None:
    """A multilingual model detects the language per window: one batched call, own rows."""
    fake = FakeWhisper()
    gatherer = _gather(fake)
    proxy = gatherer.proxy()

    def one(value: float) -> Any:
        return proxy.detect_language(proxy.encode(_features(value)))[0][0][0]

    jobs = _drive(gatherer, [lambda v=v: one(v) for v in (1.0, 2.0, 1.0)])
    assert [j.result for j in jobs] == ["<|en|>", "<|de|>", "<|en|>"]
    assert fake.calls[-1] == ("detect_language", 3)


class CudaRows:
    """An encoder output held on a GPU: no host view until copied with ``to_device``."""

    device = "cuda"

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.copied = rows, 0

    def to_device(self, device: Any) -> Any:
        import ctranslate2

        assert device == ctranslate2.Device.cpu
        self.copied += 1
        return ctranslate2.StorageView.from_array(self.rows)


def test_cuda_encoder_outputs_regroup_through_the_host() -> None:
    """On a GPU the batch's encoder output is used as is when the rows match; rows from
    different encoder batches are copied to the host and stacked (no numpy view of GPU data)."""
    from mmcli.backends.whisperbatch import _features, _Rows

    out = CudaRows(np.arange(12, dtype=np.float32).reshape(3, 2, 2))
    whole = [_Rows(out, i, 3) for i in range(3)]
    assert _features(whole) is out and out.copied == 0
    picked = np.asarray(_features([whole[2], whole[0]]))
    assert out.copied == 2 and picked.tolist() == [out.rows[2].tolist(), out.rows[0].tolist()]


def test_cuda_batch_loads_and_samples_on_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device cuda`` reaches the model, the batch and the fresh sampling instance."""
    import ctranslate2

    from mmcli import devices
    from mmcli.backends import whisper
    from mmcli.records import ModelInfo, ResolvedModel
    from mmcli.settings import Settings

    made: list[dict[str, Any]] = []

    class Model:
        def __init__(self, path: str, **kw: Any) -> None:
            made.append(kw)
            self.model = FakeWhisper()

    class Ct2Whisper(FakeWhisper):
        def __init__(self, path: str, **kw: Any) -> None:
            super().__init__("fresh")
            made.append(kw)

    monkeypatch.setattr(whisper, "available", lambda: devices.Available(cuda_devices=1))
    monkeypatch.setattr(whisper, "WhisperModel", Model)
    monkeypatch.setattr(ctranslate2.models, "Whisper", Ct2Whisper)
    model = ResolvedModel(name="m", engine="whisper", tasks=("transcribe",),
                          files={"model": Path("/m/model.bin")},
                          info=ModelInfo(name="m", source="path:/m"),
                          options={"compute_type": "float16"})
    engine = whisper.WhisperEngine.load(model, Settings(device="cuda", threads=3))
    batch = engine.batch(None)
    assert engine.device == batch.device == "cuda"
    assert made[0] == {"device": "cuda", "compute_type": "float16", "cpu_threads": 3,
                       "local_files_only": True}
    sampler = batch._gatherer._fresh()
    assert made[1] == {"device": "cuda", "compute_type": "float16", "intra_threads": 3,
                       "inter_threads": 1}
    assert isinstance(sampler, Ct2Whisper)


def test_batch_size_one_is_the_sequential_path() -> None:
    from mmcli.tasks.transcribe import TASK, Options

    work = SimpleNamespace(options=Options(batch_size=1))
    assert TASK.runner(work) is None  # type: ignore[arg-type]
    assert TASK.runner(SimpleNamespace(options=Options(batch_size=4))) is not None  # type: ignore[arg-type]
    assert Options().batch_size == 8


# -- the bundled model: batched vs one at a time ----------------------------------------------

def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("throughput", REPO / "bench" / "throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[str, ...]]:
    """The benchmark's 24 generated clips (3.7-5.5 s, the bundled voice) and their texts."""
    require_models()
    bench = _bench()
    folder = tmp_path_factory.mktemp("clips")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMCLI_CACHE", str(tmp_path_factory.mktemp("cache")))
        bench.make_clips(folder / "clips")
    return folder / "clips", bench.TEXTS


def _records(stdout: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in stdout.splitlines()]
    for doc in docs:
        doc.pop("timings")
    return docs


@pytest.mark.slow
def test_batched_transcripts_equal_sequential_ones(cli, clips: tuple[Path, tuple[str, ...]],
                                                   media: Path) -> None:
    """24 clips + newsreel.mp3, word timestamps on: --batch-size 8 vs --batch-size 1.

    Measured here: 25/25 records identical (text, segments, word times and probabilities),
    WER difference 0. CTranslate2's int8 CPU kernels compute each row alone; a CPU whose
    kernels change with the batch could flip a near-tie in the beam, so one record in 25 may
    differ and the mean WER may move by 0.01 at most.
    """
    folder, texts = clips
    args = ("transcribe", str(folder), str(media / "newsreel.mp3"), "-f", "jsonl",
            "--word-timestamps")
    one, eight = cli(*args, "--batch-size", "1"), cli(*args, "--batch-size", "8")
    assert one.exit_code == eight.exit_code == 0, eight.stderr
    a, b = _records(one.stdout), _records(eight.stdout)
    assert [d["input"] for d in a] == [d["input"] for d in b] and len(a) == 25
    same = sum(x == y for x, y in zip(a, b))
    wer_one = statistics.mean(wer(t, d["text"]) for t, d in zip(texts, a))
    wer_eight = statistics.mean(wer(t, d["text"]) for t, d in zip(texts, b))
    assert same >= 24, [(x["text"], y["text"]) for x, y in zip(a, b) if x != y]
    assert abs(wer_eight - wer_one) <= 0.01
    assert wer_one <= 0.1  # and the transcripts are right
    assert all(s["words"] for d in b for s in d["segments"])


def test_every_format_matches_one_at_a_time(cli, speech_dir: Path, media: Path,
                                            tmp_path: Path) -> None:
    outs = {}
    for size in ("1", "3"):
        out = tmp_path / size
        result = cli("transcribe", *sorted(map(str, speech_dir.glob("*.wav"))),
                     str(media / "newsreel.mp3"), "--format", "all", "--output-dir", str(out),
                     "--batch-size", size)
        assert result.exit_code == 0, result.stderr
        outs[size] = out
    names = sorted(p.name for p in outs["1"].iterdir() if not p.name.startswith("."))
    assert len(names) == 20
    assert names == sorted(p.name for p in outs["3"].iterdir() if not p.name.startswith("."))
    for name in names:
        one, three = (outs[s] / name for s in ("1", "3"))
        if name.endswith(".json"):
            a, b = json.loads(one.read_text()), json.loads(three.read_text())
            a.pop("timings"), b.pop("timings")
            assert a == b, name
        else:
            assert one.read_bytes() == three.read_bytes(), name


def test_a_bad_file_fails_only_itself_and_messages_keep_input_order(
        cli, speech_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.wav").write_bytes((speech_dir / "s0.wav").read_bytes())
    (folder / "b_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all" * 20)
    (folder / "c_empty.wav").write_bytes(b"")
    (folder / "d_silent.wav").write_bytes(wav(b"\x00\x00" * 16000))
    (folder / "e.wav").write_bytes((speech_dir / "s1.wav").read_bytes())
    (folder / "f_short.wav").write_bytes(wav(b"\x00\x00" * 800))
    runs = {size: cli("transcribe", str(folder), "-f", "jsonl", "--batch-size", size)
            for size in ("1", "4")}
    assert runs["1"].exit_code == runs["4"].exit_code == 1
    assert _records(runs["4"].stdout) == _records(runs["1"].stdout)
    docs = _records(runs["4"].stdout)
    assert [d["error"] is not None for d in docs] == [False, True, True, False, False, False]
    assert wer(speech_helpers.SENTENCES[1], docs[4]["text"]) <= 0.15

    def messages(stderr: str) -> list[str]:
        return [line for line in stderr.splitlines() if " done, " not in line]

    assert messages(runs["4"].stderr) == messages(runs["1"].stderr)
    names = sorted(p.name for p in folder.iterdir())
    assert [[n for n in names if f"/{n}: " in m] for m in messages(runs["4"].stderr)] == [
        ["b_corrupt.wav"], ["c_empty.wav"], ["d_silent.wav"], ["f_short.wav"]]


def test_a_resumed_batch_skips_what_another_batch_size_did(cli, speech_dir: Path,
                                                           tmp_path: Path) -> None:
    """--batch-size changes no output, so it is not in the journal key."""
    out = tmp_path / "out"
    first = cli("transcribe", str(speech_dir / "s0.wav"), "--output-dir", str(out),
                "--batch-size", "1")
    again = cli("transcribe", *sorted(map(str, speech_dir.glob("*.wav"))), "--output-dir",
                str(out), "--batch-size", "4")
    assert first.exit_code == again.exit_code == 0, again.stderr
    assert "2 done, 0 failed, 1 skipped" in again.stderr


def test_a_lone_input_is_not_batched(cli, speech_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One input has nothing to batch with: the sequential path (its text streams live)."""
    from mmcli.backends import whisper

    def refuse(*args: Any) -> Any:
        raise AssertionError("a lone input was batched")

    monkeypatch.setattr(whisper.WhisperEngine, "batch", refuse)
    result = cli("transcribe", str(speech_dir / "s0.wav"), "--batch-size", "8")
    assert result.exit_code == 0, result.stderr
    assert wer(speech_helpers.SENTENCES[0], result.stdout) <= 0.15


def test_close_after_an_interrupted_step_releases_every_input() -> None:
    """SIGTERM raises inside a step, after it took the waiting calls off the queue: ``close``
    must still answer those calls, or their threads wait forever and the run hangs instead
    of exiting 143 (seen: a kill during a batched generate)."""
    import time

    class Interrupted(BaseException):
        pass

    class Dying(FakeWhisper):
        def generate(self, features: Any, prompts: list[list[int]], **kw: Any) -> list[Any]:
            raise Interrupted()

    gatherer = _gather(Dying())
    proxy = gatherer.proxy()
    jobs = [gatherer.start(lambda v=v: proxy.generate(_features(v), [[1]]))
            for v in (1.0, 2.0)]
    with pytest.raises(Interrupted):
        while gatherer.step():
            pass
    started = time.perf_counter()
    gatherer.close()
    assert time.perf_counter() - started < 5
    assert all(job.done for job in jobs)
    assert all(type(job.error).__name__ == "Cancelled" for job in jobs)
