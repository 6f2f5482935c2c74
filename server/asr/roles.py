"""Speaker roles: the hook the NLP speaker-role classifier plugs into.

A :data:`SpeakerLabeler` gets the encounter's final segments so far, in order,
and returns one label per segment (``doctor`` / ``patient`` / ``other`` /
``unknown``, see :class:`nlp.schema.Speaker`). The stage calls it after every
final (it keeps the label of the newest segment) and once more on the complete
transcript, whose labels are the ones stored. A plain function runs in the ASR
worker pool; a coroutine function (the drafting stage's, which labels in the
NLP worker) is awaited, so the speech workers never wait on the NLP models.

With acoustic diarization on (``server.asr.diarization``; the stage has a
``voices`` embedder), the labeler labels the words alone (every segment's
``speaker`` ``unknown``, :func:`words_only`: the NLP role model then decodes the
turn-taking over the visit), and the stage gives every segment of a voice cluster
the role its segments' labels vote for (``diarization.name_roles``), so one voice
keeps one role. One voice heard, or no audio: the labels stand as the labeler
gave them. (Until 2026-12-03 the labeler saw the clusters' tags, ``spk0``, … see
:func:`tag_clusters`, and the role model named each cluster from its segments'
summed probabilities; where reverb split a voice in two that named a voice wrong:
91 % of words right against 97 % for the vote, ``scripts/eval_diarization.py``.)

The default, :func:`unknown_speakers`, labels every segment ``unknown``: one
room microphone cannot tell voices apart by itself, and guessing by turn
alternation would put wrong words in the doctor's mouth as soon as one
utterance is split in two.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from nlp.schema import Speaker, TranscriptSegment

__all__ = ["CLUSTER_TAG", "SpeakerLabeler", "tag_clusters", "unknown_speakers", "words_only"]

#: The speaker tag of a segment in voice cluster ``n``: ``spk{n}``.
CLUSTER_TAG = "spk{}"

SpeakerLabeler = (Callable[[Sequence[TranscriptSegment]], list[str]]
                  | Callable[[Sequence[TranscriptSegment]], Awaitable[list[str]]])


def unknown_speakers(segments: Sequence[TranscriptSegment]) -> list[str]:
    return [Speaker.UNKNOWN.value] * len(segments)


def words_only(segments: Sequence[TranscriptSegment]) -> list[TranscriptSegment]:
    """The segments with no speaker: what a labeler sees under diarization."""
    return [replace(s, speaker=Speaker.UNKNOWN.value) for s in segments]


def tag_clusters(segments: Sequence[TranscriptSegment],
                 clusters: Sequence[int | None]) -> list[TranscriptSegment]:
    """The segments as a labeler sees them under diarization: ``speaker`` = the cluster's
    tag when two or more voices were heard (a segment without a voice: ``unknown``),
    else ``unknown`` throughout."""
    voiced = {c for c in clusters if c is not None}
    return [replace(s, speaker=CLUSTER_TAG.format(c) if c is not None and len(voiced) > 1
                    else Speaker.UNKNOWN.value)
            for s, c in zip(segments, clusters, strict=True)]
