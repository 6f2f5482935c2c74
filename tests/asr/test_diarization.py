"""Pure diarization: online voice clusters, a change of voice inside a segment, roles by vote.

Synthetic embeddings: a unit "voice" direction plus a little noise per utterance."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.schema import TranscriptSegment
from server.asr.diarization import (
    ClusterParams,
    SpeakerClusters,
    Window,
    find_change,
    name_roles,
    split_segment,
)
from tests.asr.fakes import words

DIM = 32


def voice(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return v / np.linalg.norm(v)


def utterance(v: np.ndarray, rng: np.random.Generator, noise: float = 0.08) -> np.ndarray:
    u = v + rng.standard_normal(DIM) * noise / np.sqrt(DIM)
    return u / np.linalg.norm(u)


def blend(a: np.ndarray, b: np.ndarray, cos: float) -> np.ndarray:
    """A unit vector at cosine ``cos`` from ``a``, towards ``b``."""
    ortho = b - (b @ a) * a
    ortho /= np.linalg.norm(ortho)
    return cos * a + np.sqrt(1 - cos ** 2) * ortho


def test_two_well_separated_voices_make_two_clusters_in_any_order() -> None:
    rng = np.random.default_rng(1)
    doctor, patient = voice(1), voice(2)
    clusters = SpeakerClusters()
    who = [0, 1, 0, 0, 1, 1, 0, 1, 0, 1]
    got = [clusters.add(i, utterance((doctor, patient)[w], rng)) for i, w in enumerate(who)]
    assert got == who  # first voice heard is cluster 0
    assert clusters.n_speakers == 2
    clusters.refine()
    assert clusters.assignments(list(range(len(who)))) == who


def test_a_close_third_voice_merges_or_not_by_threshold() -> None:
    rng = np.random.default_rng(2)
    a, b = voice(3), voice(4)
    third = blend(a, b, cos=0.8)  # distance 0.2 from voice a
    seq = [(0, a), (1, b), (2, third), (3, a), (4, third)]

    loose = SpeakerClusters(ClusterParams(new_speaker=0.3, merge=0.1))
    assert [loose.add(i, utterance(v, rng, 0.0)) for i, v in seq] == [0, 1, 0, 0, 0]
    assert loose.n_speakers == 2

    strict = SpeakerClusters(ClusterParams(new_speaker=0.1, merge=0.05))
    assert [strict.add(i, utterance(v, rng, 0.0)) for i, v in seq] == [0, 1, 2, 0, 2]
    assert strict.n_speakers == 3


def test_converging_centroids_merge_and_keep_the_older_id() -> None:
    a = voice(5)
    b = blend(a, voice(6), cos=0.6)
    mid = blend(a, b, cos=float(np.cos(np.arccos(0.6) / 2)))  # halfway between them
    clusters = SpeakerClusters(ClusterParams(new_speaker=0.3, merge=0.15))
    assert clusters.add(0, a) == 0
    assert clusters.add(1, b) == 1  # 0.4 away: a second voice
    for i in range(2, 8):  # utterances between the two pull the centroids together
        clusters.add(i, mid, weight=3.0)
    assert clusters.n_speakers == 1
    assert set(clusters.assignments(list(range(8)))) == {0}


def test_at_most_max_speakers_then_the_nearest_cluster() -> None:
    clusters = SpeakerClusters(ClusterParams(max_speakers=2))
    v = [voice(s) for s in (7, 8, 9)]
    assert clusters.add(0, v[0]) == 0
    assert clusters.add(1, v[1]) == 1
    third = clusters.add(2, v[2])
    assert clusters.n_speakers == 2
    expected = 0 if v[2] @ v[0] > v[2] @ v[1] else 1
    assert third == expected


def test_no_embedding_no_cluster() -> None:
    clusters = SpeakerClusters()
    assert clusters.add(0, None) is None
    assert clusters.cluster_of(0) is None and clusters.n_speakers == 0


def test_refine_moves_an_early_segment_to_the_voice_it_belongs_to() -> None:
    a, b = voice(10), voice(11)
    early = blend(a, b, cos=0.75)  # nearer a, but first heard alone it makes cluster 0
    clusters = SpeakerClusters(ClusterParams(new_speaker=0.3, merge=0.1))
    clusters.add(0, blend(b, a, cos=0.9))  # cluster 0 starts near voice b
    clusters.add(1, early)
    for i in range(2, 6):
        clusters.add(i, a)
        clusters.add(i + 10, b)
    before = clusters.cluster_of(1)
    clusters.refine()
    after = clusters.cluster_of(1)
    assert after == clusters.cluster_of(2)  # with the a's
    assert before is not None and before != after  # it was with the b voice before


# --- a change of voice inside a segment

def windows_over(spans: list[tuple[float, float, np.ndarray]], start: float, end: float,
                 step: float = 0.5, width: float = 1.6) -> list[Window]:
    """Windows whose embedding mixes the voices by how much of the window each holds."""
    out = []
    t = start
    while t + width <= end + 1e-9:
        mix = np.zeros(DIM)
        for a, b, v in spans:
            mix += max(0.0, min(b, t + width) - max(a, t)) * v
        out.append(Window(t, t + width, mix / np.linalg.norm(mix)))
        t += step
    return out


def test_a_change_of_voice_is_found_and_words_stay_with_their_speaker() -> None:
    doctor, patient = voice(12), voice(13)
    # "any allergies" (doctor, 10.0-11.9) then "no none at all that I know of" (patient)
    first = words("so any allergies to medicines", 10.0, 12.4)
    second = words("no none at all that i know of", 12.7, 15.5)
    segment = TranscriptSegment(7, 10.0, 15.5, "so any allergies to medicines no none at all "
                                "that i know of", words=first + second)
    ws = windows_over([(10.0, 12.55, doctor), (12.55, 15.5, patient)], 10.0, 15.5)
    at = find_change(ws)
    assert at is not None and abs(at - 12.55) < 0.5
    halves = split_segment(segment, at)
    assert halves is not None
    left, right = halves
    assert left.text == "so any allergies to medicines"
    assert right.text == "no none at all that i know of"
    assert left.words == first and right.words == second
    assert left.start_s == 10.0 and right.end_s == 15.5
    assert left.end_s == right.start_s == pytest.approx(12.55)


def test_one_voice_throughout_is_not_split() -> None:
    doctor = voice(14)
    rng = np.random.default_rng(3)
    ws = [Window(w.start_s, w.end_s, utterance(doctor, rng, 0.1))
          for w in windows_over([(0, 6, doctor)], 0.0, 6.0)]
    assert find_change(ws) is None
    assert find_change(ws[:3]) is None  # too few windows to tell anyway


def test_a_split_needs_words_on_both_sides() -> None:
    segment = TranscriptSegment(0, 0.0, 3.0, "okay", words=words("okay", 0.0, 3.0))
    assert split_segment(segment, 1.5) is None
    no_words = TranscriptSegment(0, 0.0, 3.0, "okay then")
    assert split_segment(no_words, 1.5) is None


# --- roles by vote

def test_each_cluster_takes_its_voted_role() -> None:
    text = ["doctor", "patient", "patient", "doctor", "patient", "doctor"]
    clusters = [0, 1, 0, 0, 1, 1]
    # cluster 0: doctor 2 vs patient 1; cluster 1: patient 2 vs doctor 1
    assert name_roles(text, clusters) == ["doctor", "patient", "doctor", "doctor", "patient",
                                          "patient"]


def test_votes_are_weighted_and_both_main_roles_are_filled() -> None:
    # the text model calls most things "doctor"; the voices still split the roles
    text = ["doctor", "doctor", "doctor", "patient", "doctor"]
    clusters = [0, 1, 0, 1, 1]
    weights = [5.0, 1.0, 5.0, 4.0, 1.0]
    assert name_roles(text, clusters, weights) == ["doctor", "patient", "doctor", "patient",
                                                   "patient"]


def test_a_third_voice_keeps_its_own_majority_and_unclustered_segments_their_text() -> None:
    text = ["doctor", "patient", "other", "other", "doctor", "patient", "patient"]
    clusters: list[int | None] = [0, 1, 2, 2, 0, None, 1]
    assert name_roles(text, clusters) == ["doctor", "patient", "other", "other", "doctor",
                                          "patient", "patient"]


def test_one_cluster_or_no_audio_leaves_the_text_labels() -> None:
    text = ["doctor", "patient", "unknown", "doctor"]
    assert name_roles(text, [0, 0, 0, 0]) == text
    assert name_roles(text, [None] * 4) == text
    with pytest.raises(ValueError):
        name_roles(text, [0, 1])


def test_a_short_segment_joins_the_nearest_voice_without_starting_or_moving_one() -> None:
    a, b, c = voice(15), voice(16), voice(17)
    clusters = SpeakerClusters(ClusterParams(min_voice_s=1.0))
    assert clusters.add(0, c, weight=0.5) is None  # nothing heard yet to join
    assert clusters.add(1, a, weight=2.0) == 0
    assert clusters.add(2, b, weight=2.0) == 1
    before = clusters.centroids()
    assert clusters.add(3, blend(b, c, cos=0.6), weight=0.6) == 1  # a new voice? too short
    assert clusters.n_speakers == 2
    assert all(np.allclose(before[k], v) for k, v in clusters.centroids().items())
    clusters.refine()
    assert clusters.cluster_of(0) in (0, 1)  # placed once voices exist


def test_the_labeler_sees_cluster_tags_only_once_two_voices_are_heard() -> None:
    from server.asr.roles import tag_clusters

    segs = [TranscriptSegment(i, i, i + 1, "x") for i in range(3)]
    assert [s.speaker for s in tag_clusters(segs, [0, 0, None])] == ["unknown"] * 3
    assert [s.speaker for s in tag_clusters(segs, [0, 1, None])] == ["spk0", "spk1", "unknown"]
