"""Turn segmentation: a pure state machine over per-window speech probabilities.

It never reads a clock: time is the count of windows it was given. Feed it one
probability per window (Silero VAD: 512 samples = 32 ms) and it says where an
utterance starts and ends:

* speech starts when a window's probability reaches ``threshold``;
* it ends at the first window below ``neg_threshold`` once ``min_silence_s``
  of such windows follow (a pause ends the turn); the end time is where the
  silence began;
* once an utterance is ``soft_max_s`` long, a shorter pause (``soft_silence_s``)
  ends it too: long turns come out as several segments cut at their breaths,
  so no final waits for a long monologue to end;
* utterances shorter than ``min_speech_s`` are dropped (clicks, coughs);
* an utterance reaching ``max_segment_s`` is cut at its last short pause
  (≥ ``split_pause_s``) or, failing that, right there, and a new one begins.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TurnEnded", "TurnSegmenter", "TurnStarted"]


@dataclass(frozen=True, slots=True)
class TurnStarted:
    start_s: float


@dataclass(frozen=True, slots=True)
class TurnEnded:
    start_s: float
    end_s: float


TurnEvent = TurnStarted | TurnEnded


class TurnSegmenter:
    def __init__(self, *, window_s: float = 512 / 16_000, threshold: float = 0.5,
                 neg_threshold: float | None = None, min_silence_s: float = 0.5,
                 min_speech_s: float = 0.2, max_segment_s: float = 20.0,
                 split_pause_s: float = 0.1, soft_max_s: float | None = None,
                 soft_silence_s: float = 0.15) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if max_segment_s <= min_silence_s:
            raise ValueError("max_segment_s must exceed min_silence_s")
        self.window_s = window_s
        self.threshold = threshold
        self.neg_threshold = neg_threshold if neg_threshold is not None else max(
            threshold - 0.15, 0.01)
        self._min_silence = max(1, round(min_silence_s / window_s))
        self._min_speech = max(1, round(min_speech_s / window_s))
        self._max_segment = max(2, round(max_segment_s / window_s))
        self._split_pause = max(1, round(split_pause_s / window_s))
        self._soft_max = (round(soft_max_s / window_s) if soft_max_s is not None
                          else self._max_segment)
        self._soft_silence = max(1, round(soft_silence_s / window_s))
        self._index = 0  # windows seen
        self._start: int | None = None  # open utterance's first window
        self._silence_from: int | None = None  # first window of the current pause
        self._last_pause: tuple[int, int] | None = None  # (pause start, pause end) in the turn
        self._announced = False

    @property
    def in_speech(self) -> bool:
        return self._start is not None

    @property
    def position_s(self) -> float:
        return self._index * self.window_s

    def _t(self, index: int) -> float:
        return round(index * self.window_s, 3)

    def process(self, prob: float) -> list[TurnEvent]:
        """One window's speech probability → the events it causes."""
        i = self._index
        self._index += 1
        events: list[TurnEvent] = []
        if self._start is None:
            if prob >= self.threshold:
                self._start, self._silence_from, self._last_pause = i, None, None
                self._announced = False
            return events
        if prob >= self.threshold:
            if self._silence_from is not None and i - self._silence_from >= self._split_pause:
                self._last_pause = (self._silence_from, i)
            self._silence_from = None
        elif prob < self.neg_threshold and self._silence_from is None:
            self._silence_from = i
        speech_end = self._silence_from if self._silence_from is not None else i + 1
        if not self._announced and speech_end - self._start >= self._min_speech:
            self._announced = True
            events.append(TurnStarted(self._t(self._start)))
        pause = i + 1 - self._silence_from if self._silence_from is not None else 0
        long_turn = (self._silence_from or 0) - self._start >= self._soft_max
        if self._silence_from is not None and (
                pause >= self._min_silence or (long_turn and pause >= self._soft_silence)):
            events.extend(self._close(self._silence_from))
        elif i + 1 - self._start >= self._max_segment:
            events.extend(self._split(i + 1))
        return events

    def _close(self, end: int) -> list[TurnEvent]:
        start, announced = self._start, self._announced
        self._start, self._silence_from, self._last_pause = None, None, None
        self._announced = False
        assert start is not None
        if not announced or end - start < self._min_speech:
            return []
        return [TurnEnded(self._t(start), self._t(end))]

    def _split(self, now: int) -> list[TurnEvent]:
        start = self._start
        assert start is not None
        if self._last_pause is not None:
            cut, resume = self._last_pause
        else:
            cut = resume = now
        events: list[TurnEvent] = [TurnEnded(self._t(start), self._t(cut))]
        self._start, self._last_pause = resume, None
        self._silence_from = None
        self._announced = now - resume >= self._min_speech
        if self._announced:
            events.append(TurnStarted(self._t(resume)))
        return events

    def flush(self) -> list[TurnEvent]:
        """End of audio: close the open utterance (trailing silence excluded)."""
        if self._start is None:
            return []
        end = self._silence_from if self._silence_from is not None else self._index
        if not self._announced and end - self._start >= self._min_speech:
            self._announced = True
            return [TurnStarted(self._t(self._start)), *self._close(end)]
        return self._close(end)
