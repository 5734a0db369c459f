"""Events to sinks: the writer streams task events (live text, audio) and stores records."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from mmcli import batch
from mmcli.errors import InputError, ModelUnavailableError, UsageError
from mmcli.events import AudioChunk, Done, SegmentDone, TextDelta
from mmcli.inputs import InputItem
from mmcli.outputs import Writer
from mmcli.records import ErrorInfo, Record
from mmcli.sinks import AudioSink, AudioTarget


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class BinaryTty(io.BytesIO):
    def isatty(self) -> bool:
        return True


class Said(Record):
    def text(self) -> str:
        return "whole text"


def item(name: str = "a.wav") -> InputItem:
    return InputItem(display=name, path=None, rel=Path(name), data=b"x")


def test_terminal_gets_segments_live_and_not_the_record_again() -> None:
    out = Tty()
    w = Writer("text", stdout=out)
    w.event(SegmentDone(0.0, 1.0, " first "), item())
    assert out.getvalue() == "first\n"  # shown the moment it is decoded
    w.event(SegmentDone(1.0, 2.0, "second"), item())
    w.write(Said(input="a.wav", task="t"), item())
    w.close()
    assert out.getvalue() == "first\nsecond\n"


def test_live_text_deltas_end_with_one_newline() -> None:
    out = Tty()
    w = Writer("text", stdout=out)
    for piece in ("A red", " bus."):
        w.event(TextDelta(piece), item())
    w.write(Said(input="a", task="t"), item())
    assert out.getvalue() == "A red bus.\n"


@pytest.mark.parametrize("fmt,many", [("text", True), ("jsonl", False)])
def test_pipes_and_batches_get_records_only(fmt: str, many: bool) -> None:
    for stream in (io.StringIO(), Tty()):
        w = Writer(fmt, stdout=stream, many=many)
        w.event(SegmentDone(0.0, 1.0, "piece"), item())
        w.write(Said(input="a.wav", task="t"), item())
        assert "piece" not in stream.getvalue()
        assert "whole text" in stream.getvalue() or '"input": "a.wav"' in stream.getvalue()


def pcm(n: int) -> bytes:
    return b"\x01\x00" * n


def test_audio_sidecar_is_one_wav_per_input() -> None:
    sink = AudioSink(AudioTarget("sidecar"))
    sink.chunk(AudioChunk(pcm(10), 16000))
    sink.chunk(AudioChunk(pcm(5), 16000))
    files, written = sink.finish()
    assert written == [] and [s for s, _ in files] == [".wav"]
    with wave.open(io.BytesIO(files[0][1]), "rb") as wav:  # type: ignore[arg-type]
        assert wav.getnframes() == 15 and wav.getframerate() == 16000


def test_audio_file_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    sink = AudioSink(AudioTarget("file", str(target)))
    sink.chunk(AudioChunk(pcm(100), 22050))
    assert not target.exists()  # streamed into a temp file beside it
    assert sink.finish() == ([], [target])
    with wave.open(str(target), "rb") as wav:
        assert wav.getnframes() == 100
    sink.chunk(AudioChunk(pcm(7), 22050))
    sink.abort()  # a failed input leaves the previous file as it was, and no temp
    with wave.open(str(target), "rb") as wav:
        assert wav.getnframes() == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_raw_pcm_goes_out_as_it_comes() -> None:
    out = io.BytesIO()
    sink = AudioSink(AudioTarget("raw"), out)
    sink.chunk(AudioChunk(pcm(3), 16000))
    assert out.getvalue() == pcm(3)
    assert sink.finish() == ([], [])


def test_wav_to_a_terminal_is_refused_before_anything_runs() -> None:
    with pytest.raises(UsageError, match="terminal"):
        AudioSink(AudioTarget("stdout"), BinaryTty())


def test_records_of_audio_tasks_do_not_print_in_text_format() -> None:
    out = io.BytesIO()
    text = io.TextIOWrapper(out, write_through=True)
    w = Writer("text", stdout=text, audio=AudioTarget("stdout"))
    w.event(AudioChunk(pcm(4), 8000), item())
    w.write(Said(input="t", task="speak"), item())
    assert out.getvalue().startswith(b"RIFF") and b"whole text" not in out.getvalue()


def errors(it: InputItem, info: ErrorInfo) -> Record:
    return Record(input=it.display, task="t", error=info)


def test_one_input_failing_ends_its_events_with_an_error_record() -> None:
    def process(it: InputItem):  # type: ignore[no-untyped-def]
        yield SegmentDone(0.0, 1.0, "partial")
        raise InputError("corrupt frame")

    events = list(batch.guarded(item(), process, errors))
    assert isinstance(events[0], SegmentDone)
    assert isinstance(events[-1], Done) and events[-1].record.error is not None
    assert events[-1].record.error.message == "corrupt frame"


def test_whole_run_failures_propagate() -> None:
    def process(it: InputItem):  # type: ignore[no-untyped-def]
        raise ModelUnavailableError("no model")
        yield  # pragma: no cover

    with pytest.raises(ModelUnavailableError):
        list(batch.guarded(item(), process, errors))


def test_an_input_that_failed_discovery_is_an_error_record() -> None:
    bad = InputItem(display="gone.wav", path=None, rel=Path("gone"), error="no such file")
    (event,) = batch.guarded(bad, lambda it: iter(()), errors)
    assert isinstance(event, Done) and event.record.error is not None
