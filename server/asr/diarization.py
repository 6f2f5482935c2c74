"""Acoustic speaker diarization of one encounter: pure state machines, no clock, no I/O.

Voice embeddings (``server.asr.voiceprint``: 256-d, unit length) come in one per
final segment; this module decides who spoke and what role each voice has.

    SpeakerClusters.add(segment_id, embedding)   online clustering: join the most
                                                 similar centroid (cosine) or start a
                                                 new speaker; centroids that converge
                                                 merge (ids stay stable: the older wins)
    SpeakerClusters.refine()                     at the end of a visit: each segment
                                                 moves to its nearest centroid (k-means
                                                 passes), then converged centroids merge
    find_change(windows)                         a change of voice inside one segment,
                                                 from sliding-window embeddings
    split_segment(segment, at_s)                 cut it there on a word boundary, so
                                                 each word stays with its speaker
    name_roles(text_labels, clusters)            the text role model's labels vote per
                                                 cluster; every segment takes its
                                                 cluster's role (one cluster or no
                                                 audio: the text labels unchanged)

Segment ids are the transcript's; cluster ids are small integers from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from nlp.schema import Speaker, TranscriptSegment, Word

__all__ = [
    "ClusterParams",
    "SpeakerClusters",
    "VoiceEmbedder",
    "Window",
    "find_change",
    "name_roles",
    "split_segment",
]

_ROLES = (Speaker.DOCTOR.value, Speaker.PATIENT.value, Speaker.OTHER.value)


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """Thresholds are cosine distances (1 − cosine similarity) between unit embeddings.

    Chosen on synthesized ACI-BENCH train and PriMock57 day 1–4 visits
    (``scripts/eval_diarization.py``)."""

    #: farther than this from every centroid: a new speaker (while fewer than max_speakers)
    new_speaker: float = 0.3
    #: two centroids closer than this are one speaker: merged
    merge: float = 0.16
    max_speakers: int = 4
    #: a segment shorter than this (seconds, its weight) joins the nearest voice without
    #: moving it, and never starts one: short "yes"/"okay" embeddings are unreliable
    min_voice_s: float = 1.0
    #: a change of voice inside a segment: the two sides' mean windows this far apart
    change: float = 0.3
    #: windows needed on each side of a change
    change_min_windows: int = 2


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@dataclass
class _Cluster:
    total: np.ndarray  # weighted sum of member embeddings
    weight: float = 0.0

    @property
    def centroid(self) -> np.ndarray:
        return _unit(self.total)


@dataclass
class SpeakerClusters:
    """Online clustering of one encounter's segment embeddings."""

    params: ClusterParams = field(default_factory=ClusterParams)
    _clusters: dict[int, _Cluster] = field(default_factory=dict)
    _members: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    _assigned: dict[int, int] = field(default_factory=dict)
    _weak: dict[int, np.ndarray] = field(default_factory=dict)  # short segments
    _next_id: int = 0

    def add(self, segment_id: int, embedding: np.ndarray | None,
            weight: float = 1.0) -> int | None:
        """The cluster of a new segment (None: no embedding, e.g. too short to tell)."""
        if embedding is None:
            return None
        e = _unit(embedding)
        if weight < self.params.min_voice_s:
            self._weak[segment_id] = e
            return self._place_weak(segment_id)
        self._members[segment_id] = (e, weight)
        cid = self._nearest(e)
        if cid is None or (self._distance(e, cid) > self.params.new_speaker
                           and len(self._clusters) < self.params.max_speakers):
            cid = self._next_id
            self._next_id += 1
            self._clusters[cid] = _Cluster(np.zeros_like(e))
        self._join(segment_id, cid)
        self._merge_converged()
        return self._assigned[segment_id]

    def cluster_of(self, segment_id: int) -> int | None:
        return self._assigned.get(segment_id)

    def assignments(self, segment_ids: Sequence[int]) -> list[int | None]:
        return [self._assigned.get(i) for i in segment_ids]

    @property
    def n_speakers(self) -> int:
        return len(self._clusters)

    def centroids(self) -> dict[int, np.ndarray]:
        return {cid: c.centroid for cid, c in self._clusters.items()}

    def similarity(self, embedding: np.ndarray) -> dict[int, float]:
        """Cosine similarity of an embedding to each centroid."""
        e = _unit(embedding)
        return {cid: float(e @ c.centroid) for cid, c in self._clusters.items()}

    def refine(self, passes: int = 3) -> None:
        """Move every segment to its nearest centroid, its own taken without it (k-means
        passes over what was heard: early segments joined centroids made of little
        audio), then merge converged ones."""
        for _ in range(passes):
            moved = False
            for sid, (e, w) in self._members.items():
                best = self._nearest_without(sid, e, w)
                if best != self._assigned[sid]:
                    self._leave(sid)
                    self._join(sid, best)
                    moved = True
            self._merge_converged()
            if not moved:
                break
        for sid in self._weak:
            self._place_weak(sid)

    # --- internals
    def _place_weak(self, sid: int) -> int | None:
        best = self._nearest(self._weak[sid])
        if best is None:
            self._assigned.pop(sid, None)
        else:
            self._assigned[sid] = best
        return best

    def _distance(self, e: np.ndarray, cid: int) -> float:
        return 1.0 - float(e @ self._clusters[cid].centroid)

    def _nearest(self, e: np.ndarray) -> int | None:
        live = [cid for cid, c in self._clusters.items() if c.weight > 0]
        if not live:
            return None
        return min(live, key=lambda cid: (self._distance(e, cid), cid))

    def _nearest_without(self, sid: int, e: np.ndarray, w: float) -> int:
        """The nearest cluster to a member, its own centroid taken without it (a cluster
        of it alone keeps it)."""
        own = self._assigned[sid]

        def distance(cid: int) -> float:
            c = self._clusters[cid]
            if cid != own:
                return 1.0 - float(e @ c.centroid)
            if c.weight - w <= 1e-9:
                return -1.0
            return 1.0 - float(e @ _unit(c.total - e * w))

        return min(self._clusters, key=lambda cid: (distance(cid), cid))

    def _join(self, sid: int, cid: int) -> None:
        e, w = self._members[sid]
        c = self._clusters[cid]
        c.total = c.total + e * w
        c.weight += w
        self._assigned[sid] = cid

    def _leave(self, sid: int) -> None:
        e, w = self._members[sid]
        cid = self._assigned.pop(sid)
        c = self._clusters[cid]
        c.total = c.total - e * w
        c.weight -= w
        if c.weight <= 1e-9 or not any(self._assigned.get(m) == cid for m in self._members):
            del self._clusters[cid]
            for weak in self._weak:
                if self._assigned.get(weak) == cid:
                    self._place_weak(weak)

    def _merge_converged(self) -> None:
        while len(self._clusters) > 1:
            ids = sorted(self._clusters)
            pairs = [(1.0 - float(self._clusters[a].centroid @ self._clusters[b].centroid), a, b)
                     for i, a in enumerate(ids) for b in ids[i + 1:]]
            dist, keep, drop = min(pairs)
            if dist >= self.params.merge:
                return
            gone = self._clusters.pop(drop)
            kept = self._clusters[keep]
            kept.total = kept.total + gone.total
            kept.weight += gone.weight
            for sid, cid in self._assigned.items():
                if cid == drop:
                    self._assigned[sid] = keep


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding-window embedding inside a segment (times in encounter seconds)."""

    start_s: float
    end_s: float
    embedding: np.ndarray

    @property
    def center_s(self) -> float:
        return (self.start_s + self.end_s) / 2


class VoiceEmbedder(Protocol):
    """Speech → voice embeddings (blocking; ``server.asr.voiceprint.Resemblyzer``, or a
    fake in tests). Audio is 16 kHz mono s16le; ``start_s`` is its place in the visit."""

    def embed(self, pcm16k: bytes) -> np.ndarray | None: ...

    def windows(self, pcm16k: bytes, start_s: float) -> list[Window]: ...


def find_change(windows: Sequence[Window], params: ClusterParams | None = None) -> float | None:
    """Where the voice changes inside one segment, or None.

    Every boundary between consecutive windows is tried: the mean embedding of the
    windows before it against the mean of those after. The most distant split wins
    if it is farther than ``params.change`` with ``change_min_windows`` on each side;
    the change is placed halfway between the two windows' centres."""
    p = params or ClusterParams()
    n = len(windows)
    k_min = p.change_min_windows
    if n < 2 * k_min:
        return None
    embs = np.stack([_unit(w.embedding) for w in windows])
    best: tuple[float, int] | None = None
    for k in range(k_min, n - k_min + 1):
        left, right = _unit(embs[:k].sum(0)), _unit(embs[k:].sum(0))
        dist = 1.0 - float(left @ right)
        if best is None or dist > best[0]:
            best = (dist, k)
    if best is None or best[0] <= p.change:
        return None
    k = best[1]
    return (windows[k - 1].center_s + windows[k].center_s) / 2


def split_segment(segment: TranscriptSegment, at_s: float
                  ) -> tuple[TranscriptSegment, TranscriptSegment] | None:
    """The segment cut at the word boundary nearest ``at_s`` (a word goes with the side
    holding most of it), or None when that leaves a side without words. Both halves keep
    the segment's id and speaker: the caller numbers them."""
    words = segment.words
    if len(words) < 2:
        return None
    # boundary i: between words[i-1] and words[i]; its time is the gap's middle
    best_i = min(range(1, len(words)),
                 key=lambda i: abs((words[i - 1].end_s + words[i].start_s) / 2 - at_s))
    left, right = words[:best_i], words[best_i:]
    cut = (left[-1].end_s + right[0].start_s) / 2
    return (_from_words(segment, left, segment.start_s, max(segment.start_s, cut)),
            _from_words(segment, right, min(segment.end_s, cut), segment.end_s))


def _from_words(segment: TranscriptSegment, words: tuple[Word, ...], start_s: float,
                end_s: float) -> TranscriptSegment:
    text = " ".join(w.text.strip() for w in words if w.text.strip())
    return TranscriptSegment(segment.id, round(start_s, 3), round(end_s, 3), text,
                             segment.speaker, words)


def name_roles(text_labels: Sequence[str], clusters: Sequence[int | None],
               weights: Sequence[float] | None = None) -> list[str]:
    """One role per segment from the text model's labels and the voice clusters.

    Each cluster's segments vote with their text labels (weighted, e.g. by seconds).
    The two clusters that best fit doctor and patient together (the most doctor votes
    in one plus patient votes in the other) take those roles; any further cluster
    takes its own majority. Every clustered segment gets its cluster's role; a segment
    without a cluster, or a cluster that cast no vote, keeps its text label. Fewer
    than two clusters: the text labels unchanged."""
    if len(text_labels) != len(clusters):
        raise ValueError(f"{len(text_labels)} labels for {len(clusters)} cluster ids")
    w = list(weights) if weights is not None else [1.0] * len(text_labels)
    names = sorted({c for c in clusters if c is not None})
    if len(names) < 2:
        return list(text_labels)
    votes = {c: dict.fromkeys(_ROLES, 0.0) for c in names}
    for label, c, weight in zip(text_labels, clusters, w, strict=True):
        if c is not None and label in votes[c]:
            votes[c][label] += weight
    voted = [c for c in names if sum(votes[c].values()) > 0]
    role_of: dict[int, str] = {}
    if len(voted) >= 2:
        doctor, patient = max(
            ((a, b) for a in voted for b in voted if a != b),
            key=lambda ab: (votes[ab[0]][_ROLES[0]] + votes[ab[1]][_ROLES[1]],
                            -ab[0], -ab[1]))
        role_of = {doctor: _ROLES[0], patient: _ROLES[1]}
    for c in voted:
        if c not in role_of:
            role_of[c] = max(_ROLES, key=lambda r: (votes[c][r], -_ROLES.index(r)))
    return [role_of[c] if c is not None and c in role_of else label
            for label, c in zip(text_labels, clusters, strict=True)]
