"""Two-pass: vosk streams the live partials, Whisper (with its VAD) writes the finals.

Vosk is cheap per call and gives a partial every chunk; Whisper decodes each
utterance once when it closes (its own partials are off). Vosk's finals are
not used: the transcript is Whisper's.
"""

from __future__ import annotations

from server.asr.engine import Final, Partial, RecognitionEvent
from server.asr.vosk_engine import VoskEngine, VoskRecognizer
from server.asr.whisper_engine import WhisperEngine, WhisperRecognizer

__all__ = ["TwoPassEngine", "TwoPassRecognizer"]


class TwoPassEngine:
    def __init__(self, live: VoskEngine, final: WhisperEngine) -> None:
        if final.options.partial_interval_s:
            raise ValueError("two-pass: the whisper engine must have partials off "
                             "(partial_interval_s=0)")
        self.live = live
        self.final = final
        self.name = f"two-pass:{live.name}+{final.name}"
        self.language = final.language

    def recognizer(self) -> TwoPassRecognizer:
        return TwoPassRecognizer(self.live.recognizer(), self.final.recognizer())


class TwoPassRecognizer:
    def __init__(self, live: VoskRecognizer, final: WhisperRecognizer) -> None:
        self.live = live
        self.final = final

    @staticmethod
    def _merge(live: list[RecognitionEvent],
               final: list[RecognitionEvent]) -> list[RecognitionEvent]:
        finals = [e for e in final if isinstance(e, Final)]
        partials = [e for e in live if isinstance(e, Partial)]
        if finals and partials:
            # A partial that began before the last final closed is vosk's view of audio the
            # final already covers; keep only the newest partial, re-anchored after it.
            last = partials[-1]
            partials = [Partial(max(last.start_s, finals[-1].end_s), last.text)]
        return [*finals, *partials]

    def accept(self, pcm: bytes) -> list[RecognitionEvent]:
        return self._merge(self.live.accept(pcm), self.final.accept(pcm))

    def finish(self) -> list[RecognitionEvent]:
        self.live.finish()
        return self.final.finish()
