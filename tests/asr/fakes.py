"""A fake speech engine: scripted events at given amounts of audio fed; records what it got."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from nlp.schema import Word
from server.asr.engine import BYTES_PER_SECOND, Final, Partial, RecognitionEvent


@dataclass
class FakeRecognizer:
    script: list[tuple[float, RecognitionEvent]]
    at_finish: list[RecognitionEvent]
    fed: bytearray = field(default_factory=bytearray)
    calls: int = 0
    finished: bool = False
    gate: threading.Event | None = None  # when set, accept() waits for it
    fail_at_s: float | None = None

    def accept(self, pcm: bytes) -> list[RecognitionEvent]:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls += 1
        before = len(self.fed) / BYTES_PER_SECOND
        self.fed += pcm
        after = len(self.fed) / BYTES_PER_SECOND
        if self.fail_at_s is not None and after >= self.fail_at_s:
            raise RuntimeError("decoder exploded")
        return [ev for at, ev in self.script if before < at <= after]

    def finish(self) -> list[RecognitionEvent]:
        self.finished = True
        return list(self.at_finish)


class FakeEngine:
    name = "fake:scripted"
    language = "en"

    def __init__(self, script: list[tuple[float, RecognitionEvent]] | None = None,
                 at_finish: list[RecognitionEvent] | None = None) -> None:
        self.script = script if script is not None else DEFAULT_SCRIPT
        self.at_finish = at_finish if at_finish is not None else DEFAULT_FINISH
        self.recognizers: list[FakeRecognizer] = []
        self.gate: threading.Event | None = None
        self.fail_at_s: float | None = None

    def recognizer(self) -> FakeRecognizer:
        rec = FakeRecognizer(list(self.script), list(self.at_finish), gate=self.gate,
                             fail_at_s=self.fail_at_s)
        self.recognizers.append(rec)
        return rec


def words(text: str, start: float, end: float) -> tuple[Word, ...]:
    parts = text.split()
    step = (end - start) / len(parts)
    return tuple(Word(w, round(start + i * step, 3), round(start + (i + 1) * step, 3), 0.9)
                 for i, w in enumerate(parts))


DEFAULT_SCRIPT: list[tuple[float, RecognitionEvent]] = [
    (0.5, Partial(0.2, "good")),
    (1.0, Partial(0.2, "good morning")),
    (1.5, Final(0.2, 1.2, "good morning", words("good morning", 0.2, 1.2))),
    (2.0, Partial(1.6, "start lisinopril")),
    (2.5, Final(1.6, 2.4, "", ())),  # judged not speech: clears the partial
    (3.0, Partial(2.6, "ten milligrams")),
]
DEFAULT_FINISH: list[RecognitionEvent] = [
    Final(2.6, 3.2, "ten milligrams daily", words("ten milligrams daily", 2.6, 3.2)),
]
