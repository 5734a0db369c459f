"""Token bytes -> text pieces for streaming replies (no engine imports: plain Python)."""

from __future__ import annotations

import codecs


class TextStream:
    """Bytes from tokens -> text pieces: whole UTF-8 characters only, stop strings held back."""

    def __init__(self, stop: list[str]) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.stop = [s for s in stop if s]
        self.pending = ""
        self.stopped = False

    def feed(self, data: bytes) -> tuple[str, bool]:
        """Add a token's bytes; return (text safe to emit, whether a stop string was hit)."""
        self.pending += self.decoder.decode(data)
        if not self.stop:
            out, self.pending = self.pending, ""
            return out, False
        cut = min((i for i in (self.pending.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending, self.stopped = self.pending[:cut], "", True
            return out, True
        keep = max((k for s in self.stop for k in range(1, len(s))
                    if self.pending.endswith(s[:k])), default=0)
        out = self.pending[:len(self.pending) - keep]
        self.pending = self.pending[len(out):]
        return out, False

    def flush(self) -> str:
        """What is left at the end (a held-back partial stop string is real text after all)."""
        if self.stopped:
            return ""
        out = self.pending + self.decoder.decode(b"", final=True)
        self.pending = ""
        return out
