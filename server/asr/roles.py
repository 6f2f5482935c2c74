"""Speaker roles: the hook the NLP speaker-role classifier plugs into.

A :data:`SpeakerLabeler` gets the encounter's final segments so far, in order,
and returns one label per segment (``doctor`` / ``patient`` / ``other`` /
``unknown``, see :class:`nlp.schema.Speaker`). The stage calls it after every
final (it keeps the label of the newest segment) and once more on the complete
transcript, whose labels are the ones stored. A plain function runs in the ASR
worker pool; a coroutine function (the drafting stage's, which labels in the
NLP worker) is awaited, so the speech workers never wait on the NLP models.

The default, :func:`unknown_speakers`, labels every segment ``unknown``: one
room microphone cannot tell voices apart by itself, and guessing by turn
alternation would put wrong words in the doctor's mouth as soon as one
utterance is split in two.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from nlp.schema import Speaker, TranscriptSegment

__all__ = ["SpeakerLabeler", "unknown_speakers"]

SpeakerLabeler = (Callable[[Sequence[TranscriptSegment]], list[str]]
                  | Callable[[Sequence[TranscriptSegment]], Awaitable[list[str]]])


def unknown_speakers(segments: Sequence[TranscriptSegment]) -> list[str]:
    return [Speaker.UNKNOWN.value] * len(segments)
