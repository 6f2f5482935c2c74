"""Silver section labels: which note section each transcript sentence fed.

ACI-BENCH gives a visit and the note written from it, not which words went
where. Each transcript sentence is compared with every note sentence by shared
content words (``features.content_words``); the sentence takes the section of
the note sentence it overlaps best when at least two content words and 40 % of
its own content words are shared (or one word of five letters or more that is
half of its content words), else ``none``. A short patient answer
("yes", "no, never") right after a labelled doctor question takes the
question's section. These labels train the section classifier and score it on
ACI-BENCH; they are noisy by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

from nlp.dialogue import TranscriptSentence
from nlp.features import content_words
from nlp.labels import NoteLine
from nlp.schema import SectionKey, Speaker

__all__ = ["align_sections"]

MIN_SHARED = 2
MIN_COVER = 0.4


def align_sections(sentences: Sequence[TranscriptSentence], note: Sequence[NoteLine]
                   ) -> list[str]:
    note_words = [(line.section, content_words(line.text)) for line in note]
    labels: list[str] = []
    for s in sentences:
        words = content_words(s.text)
        best, best_score = str(SectionKey.NONE), 0.0
        if words:
            for section, nw in note_words:
                common = words & nw
                shared = len(common)
                cover = shared / len(words)
                if shared < MIN_SHARED and not (
                        shared == 1 and cover >= 0.5 and max(len(w) for w in common) >= 5):
                    continue
                score = cover + 0.01 * shared
                if cover >= MIN_COVER and score > best_score:
                    best, best_score = section, score
        labels.append(best)
    for i in range(1, len(sentences)):
        s, prev = sentences[i], sentences[i - 1]
        if (labels[i] == SectionKey.NONE and s.speaker == Speaker.PATIENT
                and prev.speaker != Speaker.PATIENT and labels[i - 1] != SectionKey.NONE
                and prev.text.rstrip().endswith("?") and len(s.text.split()) <= 6):
            labels[i] = labels[i - 1]
    return labels
