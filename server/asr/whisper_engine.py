"""faster-whisper (CTranslate2, int8 on CPU) behind the :mod:`server.asr.engine` interface.

The only module that imports faster_whisper/ctranslate2. Streaming works like this:

* Silero VAD (streaming, :mod:`server.asr.silero`) gives a speech probability per
  32 ms; :class:`~server.asr.turns.TurnSegmenter` turns them into utterances.
* When an utterance closes, its audio (plus a little padding) is decoded once,
  with word timestamps from cross-attention alignment → a :class:`Final`.
* While it is open, it is re-decoded greedily without word times every
  ``partial_interval_s`` of new audio (or half the utterance so far, if
  longer) → a :class:`Partial`; none when the room is behind (a call that
  brings more than 0.5 s of audio) or the workers are busy (all but one decoding,
  or more than half busy over the last 10 s). Partials are best effort; finals
  never are.

Each decode encodes only the utterance (padded to ``min_window_s``), not a full
30 s window: CTranslate2 accepts shorter inputs, and the encoder cost scales
with the length. Finals use beam search, partials greedy decoding.

Medical vocabulary: the leading terms that fit ``prompt_budget_tokens`` go in as
the decoder prompt. When a final's words look like a misheard term that was not
in that prompt (:class:`~server.asr.vocabulary.TermMatcher`, e.g. "lisidopril"), the same
encoder output is decoded once more with those terms first in the prompt. The
prompt only biases the decoder towards what the audio supports; no text is
substituted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.schema import Word
from server.asr.audio import pcm_to_float
from server.asr.engine import SAMPLE_RATE, Final, Partial, RecognitionEvent
from server.asr.errors import EngineUnavailable, ModelNotInstalled
from server.asr.silero import (
    WINDOW,
    SpeechDetector,
    UtteranceStats,
    load_vad_session,
    utterance_stats,
)
from server.asr.turns import TurnEnded, TurnSegmenter, TurnStarted
from server.asr.vocabulary import TermMatcher, prompt_terms

__all__ = ["STOCK_PHRASES", "WhisperEngine", "WhisperOptions", "WhisperRecognizer",
           "is_stock_phrase", "should_decode", "trim_trailing_loop"]

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # Whisper's mel frames
MAX_FRAMES = 3000  # 30 s: the longest input the encoder takes
#: A call bringing more audio than this means the room's queue is building up: no partial.
BEHIND_CALL_S = 0.5
#: Partials need the workers to have been less than half busy over this many seconds.
BUSY_WINDOW_S = 10.0
#: A final of at least RESPLIT_MIN_SPEECH_S of VAD speech with fewer words a second of
#: it than MIN_WORDS_PER_S (speech runs 2-3) lost its end to an early end-of-text:
#: decoded again in halves, and their halves, up to MAX_RESPLIT_DEPTH deep.
RESPLIT_MIN_SPEECH_S = 3.0
MIN_WORDS_PER_S = 2.0
MAX_RESPLIT_DEPTH = 2


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    workers: int = 1  # concurrent decodes (CTranslate2 replicas)
    threads: int = 1  # CPU threads per decode
    beam_size: int = 5  # finals (partials are always greedy)
    partial_interval_s: float = 1.5  # 0 = no partials
    min_silence_s: float = 0.5
    max_segment_s: float = 12.0  # see Settings.asr_max_segment_s
    soft_max_segment_s: float = 5.0  # past this, a 0.15 s pause ends the utterance too
    min_window_s: float = 10.0  # pad shorter utterances to this before encoding
    pad_s: float = 0.2  # audio kept either side of an utterance
    prompt_budget_tokens: int = 150  # room for the vocabulary in the decoder prompt
    second_pass: bool = True  # re-decode finals whose words look like misheard terms
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    # --- against text from silence and noise (Settings.asr_min_speech_ms, ...)
    vad_threshold: float = 0.5  # a window at or above this is speech
    min_speech_s: float = 0.3  # VAD-speech an utterance needs to be decoded
    min_speech_dbfs: float = -42.0  # quieter speech is background, not decoded; -120 = off
    stock_phrase_vad_prob: float = 0.85  # a stock phrase needs this mean VAD probability
    # --- where the model runs (Settings.asr_whisper_device, asr_whisper_compute_type)
    device: str = "cpu"  # cpu | cuda (a GPU worker: many rooms on one card)
    compute_type: str = ""  # "" = int8 on cpu, float16 on cuda; any CTranslate2 type
    device_index: int = 0  # which GPU

    @property
    def resolved_compute_type(self) -> str:
        return self.compute_type or ("float16" if self.device == "cuda" else "int8")


#: Whisper's training subtitles end in these; it writes them for silence and noise.
STOCK_PHRASES = frozenset({
    "thank you", "thank you very much", "thank you so much", "thanks", "thanks for watching",
    "thank you for watching", "thanks for watching and see you next time",
    "please subscribe", "subscribe", "bye", "bye bye", "goodbye", "you", "oh", "so",
    "okay", "ok", "hmm", "huh", "uh", "um", "ah", "the end", "music", "applause",
    "silence", "laughter", "subtitles by the amaraorg community", "i", "im sorry",
})


def _bare(text: str) -> str:
    text = re.sub(r"[\[\](){}♪*]", " ", text.lower())
    return " ".join(re.sub(r"[^a-z0-9 ]", "", text).split())


def is_stock_phrase(text: str) -> bool:
    """Is ``text`` nothing but Whisper's stock silence phrases ("Thank you. Thank you.",
    "[Music]", "Thanks for watching!")?"""
    bare = _bare(text)
    if not bare:
        return True
    if bare in STOCK_PHRASES:
        return True
    sentences = [_bare(s) for s in re.split(r"[.!?,]+", text)]
    sentences = [x for x in sentences if x]
    return bool(sentences) and all(x in STOCK_PHRASES for x in sentences)


def should_decode(stats: UtteranceStats, options: WhisperOptions) -> bool:
    """The VAD gate before decoding: enough speech, loud enough to be in the room."""
    return stats.speech_s >= options.min_speech_s and stats.level_dbfs >= options.min_speech_dbfs


#: a tail of this many tokens or more that already stood earlier is a decoder restart
RESTART_TOKENS = 6


def _restart_tail(ids: list[int]) -> int:
    """Length of the longest tail (>= RESTART_TOKENS) that repeats an earlier run."""
    for n in range(len(ids) // 2, RESTART_TOKENS - 1, -1):
        tail = ids[-n:]
        head = ids[:-n]
        if any(head[j:j + n] == tail for j in range(len(head) - n + 1)):
            return n
    return 0


def trim_trailing_loop(ids: list[int]) -> list[int]:
    """Cut a decoder loop off the end: the same token run repeated back to back at the
    end (a short run three times or more, a run of four tokens or more twice) is kept once,
    and a tail of ``RESTART_TOKENS`` or more that repeats an earlier run (the decoder
    starting the utterance over: "… three times a day. I am going to start your …") is
    dropped. Whisper loops like this when it decodes past the speech; people rarely do."""
    changed = True
    while changed:
        changed = False
        for n in range(1, len(ids) // 2 + 1):
            tail = ids[-n:]
            k = 1
            while len(ids) >= (k + 1) * n and ids[-(k + 1) * n:-k * n] == tail:
                k += 1
            if k >= (3 if n < 4 else 2):
                ids = ids[:len(ids) - (k - 1) * n]
                changed = True
                break
        restart = _restart_tail(ids)
        if restart:
            ids = ids[:-restart]
            changed = True
    return ids


class WhisperEngine:
    """A loaded Whisper model and VAD, shared by every room's recognizer."""

    def __init__(self, model_dir: Path, *, name: str = "whisper", vocabulary: Sequence[str] = (),
                 options: WhisperOptions | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError as err:
            raise EngineUnavailable("the whisper engine needs faster-whisper: "
                                    "pip install 'roomscribe[server]'") from err
        if not (model_dir / "model.bin").is_file():
            raise ModelNotInstalled(f"no CTranslate2 Whisper model in {model_dir}")
        self.options = options or WhisperOptions()
        if self.options.max_segment_s > 28:
            raise ValueError("whisper decodes at most 30 s at once: max_segment_s must be <= 28")
        self.name = f"whisper:{name}"
        self.language = "en"
        self.model = WhisperModel(str(model_dir), device=self.options.device,
                                  device_index=self.options.device_index,
                                  compute_type=self.options.resolved_compute_type,
                                  cpu_threads=self.options.threads,
                                  num_workers=self.options.workers)
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual,
                                   task="transcribe", language="en")
        self.vad_session = load_vad_session()
        self.terms = prompt_terms(vocabulary, lambda s: len(self.tokenizer.encode(s)),
                                  self.options.prompt_budget_tokens)
        self._prompt_prefix = self._prompt_for(self.terms)
        self._in_prompt = set(self.terms)
        self.matcher = TermMatcher(vocabulary, self._is_common) if (
            vocabulary and self.options.second_pass) else None
        self._lock = threading.Lock()  # only for the counters below
        self.decodes = 0
        self.second_passes = 0
        self._in_flight = 0
        self._recent: deque[tuple[float, float]] = deque()  # (end, seconds) of decodes

    def recognizer(self) -> WhisperRecognizer:
        return WhisperRecognizer(self)

    def _is_common(self, word: str) -> bool:
        return len(self.tokenizer.encode(" " + word)) == 1

    def _prompt_for(self, terms: Sequence[str]) -> list[int]:
        if not terms:
            return []
        # "Amoxicillin, lisinopril, metformin." reads as prior text with a sentence end;
        # measured here it biases better than bare lowercase words.
        prompt = ", ".join(terms)
        return [self.tokenizer.sot_prev,
                *self.tokenizer.encode(" " + prompt[:1].upper() + prompt[1:] + ".")]

    def _second_pass_prompt(self, candidates: Sequence[str]) -> list[int]:
        """The candidates first, then the usual terms, within the same token budget."""
        rest = [t for t in self.terms if t not in candidates]
        terms = prompt_terms([*candidates, *rest], lambda s: len(self.tokenizer.encode(s)),
                             self.options.prompt_budget_tokens)
        return self._prompt_for(terms)

    # ------------------------------------------------------------------ decoding

    def _generate(self, encoded: Any, prompt: list[int], max_new: int, *, beam_size: int,
                  no_repeat: bool = False) -> Any:
        kwargs: dict[str, Any] = {"beam_size": beam_size, "return_scores": True,
                                  "return_no_speech_prob": True, "suppress_blank": True,
                                  "suppress_tokens": [-1],
                                  "max_length": min(448, len(prompt) + max_new)}
        if no_repeat:
            kwargs.update(no_repeat_ngram_size=3, repetition_penalty=1.1)
        return self.model.model.generate(encoded, [prompt], **kwargs)[0]

    def decode(self, audio: np.ndarray, *, with_words: bool, min_window_s: float | None = None,
               stats: UtteranceStats | None = None) -> tuple[str, list[Word]]:
        """Text (and words, times relative to ``audio``) of one utterance; "" for non-speech.

        ``stats`` (the VAD's view of the utterance) lets a stock silence phrase through
        only when the VAD was confident it heard speech; without them it never does."""
        with self._lock:
            self._in_flight += 1
        started = time.monotonic()
        try:
            return self._decode(audio, with_words, min_window_s, stats)
        finally:
            now = time.monotonic()
            with self._lock:
                self._in_flight -= 1
                self._recent.append((now, now - started))

    def partial_allowed(self) -> bool:
        """Partials only from spare CPU: no more than all-but-one workers decoding now, and
        the workers less than half busy over the last ``BUSY_WINDOW_S``. Under load the
        CPU goes to finals; partials come back when it frees up."""
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0][0] < now - BUSY_WINDOW_S:
                self._recent.popleft()
            busy = sum(d for _, d in self._recent) / (BUSY_WINDOW_S * self.options.workers)
            return self._in_flight < max(1, self.options.workers - 1) and busy < 0.5

    def _decode(self, audio: np.ndarray, with_words: bool, min_window_s: float | None,
                stats: UtteranceStats | None) -> tuple[str, list[Word]]:
        from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

        features = self.model.feature_extractor(audio)
        content = min(features.shape[-1] - 1, MAX_FRAMES)
        min_window = self.options.min_window_s if min_window_s is None else min_window_s
        window = min(MAX_FRAMES, max(content, int(min_window * FRAMES_PER_SECOND)))
        features = features[:, :content]
        if window > content:
            features = np.pad(features, ((0, 0), (0, window - content)))
        encoded = self.model.encode(np.ascontiguousarray(features))
        prompt = [*self._prompt_prefix, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        # Speech runs at ~3 tokens a second; a longer output is a decoder loop.
        max_new = int(len(audio) / SAMPLE_RATE * 6) + 10
        beam = self.options.beam_size if with_words else 1  # finals: beam; partials: greedy
        result = self._generate(encoded, prompt, max_new, beam_size=beam)
        ids = trim_trailing_loop([t for t in result.sequences_ids[0] if t < self.tokenizer.eot])
        text = self.tokenizer.decode(ids).strip()
        if text and get_compression_ratio(text) > 2.4:  # a repetition loop: decode again
            result = self._generate(encoded, prompt, max_new, beam_size=beam, no_repeat=True)
            ids = trim_trailing_loop([t for t in result.sequences_ids[0]
                                      if t < self.tokenizer.eot])
            text = self.tokenizer.decode(ids).strip()
        if with_words and text and self.matcher is not None:
            # Second pass: a word that looks like a misheard vocabulary term (e.g.
            # "lisidopril") → decode the same audio again with those terms first in the
            # prompt. The encoder output is reused; only the decoder runs again.
            # Only terms the first prompt lacked: the others were already steering it.
            candidates = [c for c in self.matcher.candidates(text) if c not in self._in_prompt]
            if candidates:
                prompt2 = [*self._second_pass_prompt(candidates), *self.tokenizer.sot_sequence,
                           self.tokenizer.no_timestamps]
                second = self._generate(encoded, prompt2, max_new, beam_size=beam)
                ids2 = trim_trailing_loop([t for t in second.sequences_ids[0]
                                           if t < self.tokenizer.eot])
                text2 = self.tokenizer.decode(ids2).strip()
                if text2 and get_compression_ratio(text2) <= 2.4:
                    result, ids, text = second, ids2, text2
                with self._lock:
                    self.second_passes += 1
        with self._lock:
            self.decodes += 1
        avg_logprob = float(result.scores[0]) if result.scores else 0.0
        if (result.no_speech_prob > self.options.no_speech_threshold
                and avg_logprob < self.options.logprob_threshold) or not text:
            return "", []
        if is_stock_phrase(text) and (
                stats is None or stats.mean_prob < self.options.stock_phrase_vad_prob):
            log.debug("dropped stock phrase %r (%s)", text, stats)
            return "", []
        if not with_words:
            return text, []
        alignment = self.model.find_alignment(self.tokenizer, [ids], encoded, content)[0]
        merge_punctuations(alignment, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        limit = len(audio) / SAMPLE_RATE
        words = [Word(w["word"].strip(), round(min(float(w["start"]), limit), 3),
                      round(min(float(w["end"]), limit), 3), round(float(w["probability"]), 3))
                 for w in alignment if w["word"].strip()]
        return text, words


class WhisperRecognizer:
    """One encounter's stream: VAD → utterances → decodes."""

    def __init__(self, engine: WhisperEngine) -> None:
        self.engine = engine
        opts = engine.options
        self.vad = SpeechDetector(engine.vad_session)
        self.turns = TurnSegmenter(min_silence_s=opts.min_silence_s,
                                   max_segment_s=opts.max_segment_s,
                                   soft_max_s=opts.soft_max_segment_s)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._probs: list[float] = []  # VAD probability per window since _probs_start
        self._probs_start = 0  # window index of _probs[0]
        self._fed = 0  # samples accepted
        self.gated = 0  # utterances the VAD gate kept from the decoder
        self.resplit = 0  # utterances whose decode stopped early: decoded again in halves
        self._open_start: float | None = None
        self._partial_mark = 0.0  # VAD position of the last partial decode

    def _slice(self, start_s: float, end_s: float) -> tuple[np.ndarray, float]:
        a = max(int(start_s * SAMPLE_RATE), self._buffer_start)
        b = min(int(end_s * SAMPLE_RATE), self._fed)
        return self._buffer[a - self._buffer_start:b - self._buffer_start], a / SAMPLE_RATE

    def _stats(self, start_s: float, end_s: float) -> UtteranceStats:
        first = max(round(start_s * SAMPLE_RATE / WINDOW), self._probs_start)
        last = min(round(end_s * SAMPLE_RATE / WINDOW), self._probs_start + len(self._probs))
        probs = np.asarray(self._probs[first - self._probs_start:last - self._probs_start])
        audio, _ = self._slice(first * WINDOW / SAMPLE_RATE, last * WINDOW / SAMPLE_RATE)
        return utterance_stats(audio, probs, self.engine.options.vad_threshold)

    def _final(self, turn: TurnEnded) -> Final:
        opts = self.engine.options
        stats = self._stats(turn.start_s, turn.end_s)
        if not should_decode(stats, opts):
            self.gated += 1
            log.debug("not decoded: %.2f-%.2f s %s", turn.start_s, turn.end_s, stats)
            return Final(turn.start_s, turn.end_s, "", ())
        text, words = self._decode_whole(turn.start_s, turn.end_s, stats)
        return Final(turn.start_s, turn.end_s, text, words)

    def _decode_whole(self, start_s: float, end_s: float, stats: UtteranceStats,
                      depth: int = 0, *, pad_start: bool = True, pad_end: bool = True
                      ) -> tuple[str, tuple[Word, ...]]:
        """Decode a span; when Whisper wrote its end-of-text token too soon (fewer than
        ``MIN_WORDS_PER_S`` words a second of VAD speech: the rest was lost), decode its
        two halves, cut at the quietest moment of its middle, each the same way (up to
        ``MAX_RESPLIT_DEPTH`` times), and keep them if they say more."""
        text, words = self._decode_span(start_s, end_s, stats, pad_start=pad_start,
                                        pad_end=pad_end)
        if (depth >= MAX_RESPLIT_DEPTH or stats.speech_s < RESPLIT_MIN_SPEECH_S
                or len(words) >= MIN_WORDS_PER_S * stats.speech_s):
            return text, words
        cut = self._quietest(start_s, end_s)
        halves = [self._decode_whole(start_s, cut, self._stats(start_s, cut), depth + 1,
                                     pad_start=pad_start, pad_end=False),
                  self._decode_whole(cut, end_s, self._stats(cut, end_s), depth + 1,
                                     pad_start=False, pad_end=pad_end)]
        more = tuple(w for _, ws in halves for w in ws)
        if len(more) <= len(words):
            return text, words
        self.resplit += 1
        log.debug("%.2f-%.2f s decoded in two halves: %d words, not %d",
                  start_s, end_s, len(more), len(words))
        return " ".join(t for t, _ in halves if t), more

    def _decode_span(self, start_s: float, end_s: float, stats: UtteranceStats, *,
                     pad_start: bool = True, pad_end: bool = True
                     ) -> tuple[str, tuple[Word, ...]]:
        pad = self.engine.options.pad_s
        audio, offset = self._slice(start_s - pad * pad_start, end_s + pad * pad_end)
        text, words = self.engine.decode(audio, with_words=True, stats=stats)
        return text, tuple(Word(w.text, round(w.start_s + offset, 3),
                                round(w.end_s + offset, 3), w.confidence) for w in words)

    def _quietest(self, start_s: float, end_s: float) -> float:
        """The time of the lowest VAD probability in the middle half of an utterance."""
        first = max(round((start_s + 0.25 * (end_s - start_s)) * SAMPLE_RATE / WINDOW),
                    self._probs_start)
        last = min(round((start_s + 0.75 * (end_s - start_s)) * SAMPLE_RATE / WINDOW),
                   self._probs_start + len(self._probs))
        if last <= first:
            return (start_s + end_s) / 2
        probs = self._probs[first - self._probs_start:last - self._probs_start]
        return (first + int(np.argmin(probs)) + 0.5) * WINDOW / SAMPLE_RATE

    def _on_turns(self, events: list[TurnStarted | TurnEnded]) -> list[RecognitionEvent]:
        out: list[RecognitionEvent] = []
        for ev in events:
            if isinstance(ev, TurnStarted):
                self._open_start = ev.start_s
                self._partial_mark = ev.start_s
            else:
                self._open_start = None
                out.append(self._final(ev))
        return out

    def _trim(self) -> None:
        pad = self.engine.options.pad_s
        keep_from = self._open_start if self._open_start is not None else self.turns.position_s
        if self.turns.in_speech and self._open_start is None:
            keep_from = self.turns.position_s - self.engine.options.max_segment_s
        cut = max(0, int((keep_from - pad - 0.5) * SAMPLE_RATE) - self._buffer_start)
        if cut > 0:
            self._buffer = self._buffer[cut:]
            self._buffer_start += cut
        drop = self._buffer_start // WINDOW - self._probs_start
        if drop > 0:
            del self._probs[:drop]
            self._probs_start += drop

    def _partial_due(self, call_s: float) -> bool:
        """Partials are best effort, finals never are. The gap between partials grows with
        the utterance (each re-decodes it whole), and a call that brings more than
        ``BEHIND_CALL_S`` of audio means the room is behind: no partial then."""
        interval = self.engine.options.partial_interval_s
        if self._open_start is None or interval <= 0 or call_s > BEHIND_CALL_S:
            return False
        if not self.engine.partial_allowed():
            return False
        now = self.turns.position_s
        gap = max(interval, 0.5 * (now - self._open_start))
        return now - self._partial_mark >= gap

    def accept(self, pcm: bytes) -> list[RecognitionEvent]:
        samples = pcm_to_float(pcm)
        self._buffer = np.concatenate([self._buffer, samples])
        self._fed += len(samples)
        events: list[RecognitionEvent] = []
        for prob in self.vad.process(samples):
            self._probs.append(prob)
            events.extend(self._on_turns(self.turns.process(prob)))
        if self._partial_due(len(samples) / SAMPLE_RATE):
            now = self.turns.position_s
            assert self._open_start is not None
            self._partial_mark = now
            audio, _ = self._slice(self._open_start - self.engine.options.pad_s, now)
            stats = self._stats(self._open_start, now)
            text = ""
            if should_decode(stats, self.engine.options):
                text, _ = self.engine.decode(audio, with_words=False, min_window_s=0.0,
                                             stats=stats)
            if text:
                events.append(Partial(self._open_start, text))
        self._trim()
        return events

    def finish(self) -> list[RecognitionEvent]:
        tail = (-self._fed) % 512
        events: list[RecognitionEvent] = []
        if tail:
            for prob in self.vad.process(np.zeros(tail, dtype=np.float32)):
                self._probs.append(prob)
                events.extend(self._on_turns(self.turns.process(prob)))
        events.extend(self._on_turns(self.turns.flush()))
        return events
