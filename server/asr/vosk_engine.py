"""Vosk (Kaldi) behind the :mod:`server.asr.engine` interface.

The only module that imports vosk. A ``KaldiRecognizer`` per encounter with
word times; its own endpointer (the model's ``conf/model.conf`` silence rules)
ends utterances at pauses, and ``PartialResult`` gives the open utterance.

Phrase list: vosk can restrict decoding to a list of phrases (plus ``[unk]``),
which only models with a dynamic graph (``graph/HCLr.fst`` + ``Gr.fst``, the
"small" models) support. It *restricts*, it does not bias: use it for a
constrained vocabulary, not for open dictation (the medical vocabulary biases
Whisper instead).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlp.schema import Word
from server.asr.engine import SAMPLE_RATE, Final, Partial, RecognitionEvent
from server.asr.errors import EngineUnavailable, ModelNotInstalled

__all__ = ["VoskEngine", "VoskRecognizer"]

log = logging.getLogger(__name__)

#: Feed the decoder this much at a time so endpoints and partials stay timely
#: even when a room's backlog arrives in one call.
PIECE_BYTES = int(0.2 * SAMPLE_RATE) * 2


class VoskEngine:
    def __init__(self, model_dir: Path, *, name: str = "vosk", language: str = "en",
                 phrases: Sequence[str] = ()) -> None:
        try:
            import vosk
        except ImportError as err:
            raise EngineUnavailable("the vosk engine needs vosk: pip install "
                                    "'roomscribe[server]'") from err
        if not (model_dir / "am" / "final.mdl").is_file():
            raise ModelNotInstalled(f"no vosk model in {model_dir}")
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self.name = f"vosk:{name}"
        self.language = language
        self.model = vosk.Model(str(model_dir))
        self.grammar: str | None = None
        if phrases:
            if not (model_dir / "graph" / "HCLr.fst").is_file():
                raise ValueError(f"{model_dir}: this vosk model has a static graph; "
                                 "phrase lists need a model with graph/HCLr.fst")
            self.grammar = json.dumps([*phrases, "[unk]"], ensure_ascii=False)

    def recognizer(self) -> VoskRecognizer:
        return VoskRecognizer(self)


class VoskRecognizer:
    def __init__(self, engine: VoskEngine) -> None:
        vosk = engine._vosk
        if engine.grammar is not None:
            self.rec = vosk.KaldiRecognizer(engine.model, SAMPLE_RATE, engine.grammar)
        else:
            self.rec = vosk.KaldiRecognizer(engine.model, SAMPLE_RATE)
        self.rec.SetWords(True)
        self._last_partial = ""
        self._last_end = 0.0

    def _final(self, result: dict[str, Any]) -> Final | None:
        self._last_partial = ""
        words = tuple(Word(str(w["word"]), round(float(w["start"]), 3),
                           round(float(w["end"]), 3), round(float(w.get("conf", 1.0)), 3))
                      for w in result.get("result", ()) if w.get("word") != "[unk]")
        text = " ".join(w.text for w in words)
        if not words:
            return None
        self._last_end = words[-1].end_s
        return Final(words[0].start_s, words[-1].end_s, text, words)

    def accept(self, pcm: bytes) -> list[RecognitionEvent]:
        events: list[RecognitionEvent] = []
        for i in range(0, len(pcm), PIECE_BYTES):
            if self.rec.AcceptWaveform(pcm[i:i + PIECE_BYTES]):
                final = self._final(json.loads(self.rec.Result()))
                if final is not None:
                    events.append(final)
        partial = json.loads(self.rec.PartialResult()).get("partial", "")
        partial = " ".join(w for w in partial.split() if w != "[unk]")
        if partial and partial != self._last_partial:
            self._last_partial = partial
            events.append(Partial(self._last_end, partial))
        return events

    def finish(self) -> list[RecognitionEvent]:
        final = self._final(json.loads(self.rec.FinalResult()))
        return [final] if final is not None else []
