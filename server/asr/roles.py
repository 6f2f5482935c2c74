"""Speaker roles: the hook the NLP speaker-role classifier plugs into.

A :data:`SpeakerLabeler` gets the encounter's final segments so far, in order,
and returns one label per segment (``doctor`` / ``patient`` / ``other`` /
``unknown``, see :class:`nlp.schema.Speaker`). The stage calls it after every
final (it keeps the label of the newest segment) and once more on the complete
transcript, whose labels are the ones stored. A plain function runs in the ASR
worker pool; a coroutine function (the drafting stage's, which labels in the
NLP worker) is awaited, so the speech workers never wait on the NLP models.

With acoustic diarization on (``server.asr.diarization``; the stage has a
``voices`` embedder), the labeler sees the voice clusters: each segment's
``speaker`` is its cluster's tag (``spk0``, ``spk1``, … see :func:`tag_clusters`)
when two or more voices were heard, else ``unknown``. A labeler may name the
clusters itself (the NLP role model does: each cluster takes the role its
segments' summed role probabilities favour) or ignore the tags and label by
words; either way the stage then gives every segment of a cluster the role its
segments' labels vote for (``diarization.name_roles``), so one voice keeps one
role. One voice heard, or no audio: the labels stand as the labeler gave them.

The default, :func:`unknown_speakers`, labels every segment ``unknown``: one
room microphone cannot tell voices apart by itself, and guessing by turn
alternation would put wrong words in the doctor's mouth as soon as one
utterance is split in two.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from nlp.schema import Speaker, TranscriptSegment

__all__ = ["CLUSTER_TAG", "SpeakerLabeler", "tag_clusters", "unknown_speakers"]

#: The speaker tag of a segment in voice cluster ``n``: ``spk{n}``.
CLUSTER_TAG = "spk{}"

SpeakerLabeler = (Callable[[Sequence[TranscriptSegment]], list[str]]
                  | Callable[[Sequence[TranscriptSegment]], Awaitable[list[str]]])


def unknown_speakers(segments: Sequence[TranscriptSegment]) -> list[str]:
    return [Speaker.UNKNOWN.value] * len(segments)


def tag_clusters(segments: Sequence[TranscriptSegment],
                 clusters: Sequence[int | None]) -> list[TranscriptSegment]:
    """The segments as a labeler sees them under diarization: ``speaker`` = the cluster's
    tag when two or more voices were heard (a segment without a voice: ``unknown``),
    else ``unknown`` throughout."""
    voiced = {c for c in clusters if c is not None}
    return [replace(s, speaker=CLUSTER_TAG.format(c) if c is not None and len(voiced) > 1
                    else Speaker.UNKNOWN.value)
            for s, c in zip(segments, clusters, strict=True)]
