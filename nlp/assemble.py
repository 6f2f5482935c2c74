"""Draft assembly: classified transcript sentences → ``DraftNote`` in a template's order.

Pure (no models): takes the sentences, one section label per sentence, and the
orders, and lays out the note.

* A sentence goes into its section when its label is not ``none`` and, after
  fillers are removed, it still has at least ``MIN_CONTENT_WORDS`` content words.
* A clinician's yes/no symptom question answered "no"/"yes" becomes
  "Denies X." / "Endorses X." in the question's section.
* A patient's first-person statement, or a clinician's "you have …"/"your …"
  sentence, is rewritten to note style when a safe rule fits
  (``notestyle.patient_statement`` / ``clinician_statement``), else kept as
  spoken. Dictation commands to the scribe software ("hey dragon, …") are dropped.
* Every sentence that produced an order is in the plan (even if the section
  classifier said otherwise).
* Each note sentence carries the evidence of the transcript sentence(s) it came
  from: segment ids, their times, and the spoken words as the quote.

Templates: ``soap`` and ``aci`` (headings as in ACI-BENCH notes), or a TOML file
with ``[[section]] key = "..." title = "..."`` tables (``load_template``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.dialogue import TranscriptSentence, tidy
from nlp.errors import InputError
from nlp.faithful import passes
from nlp.features import content_words
from nlp.notestyle import (
    ADDED_WORDS,
    clean,
    clinician_statement,
    finish,
    patient_statement,
    question_answer,
)
from nlp.orders import sentence_evidence
from nlp.rewrite import FIRST_PERSON, Person, patient_person, rewrite
from nlp.schema import (
    DraftNote,
    NoteSection,
    NoteSentence,
    OrderIntent,
    SectionKey,
    Speaker,
    Transcript,
)

__all__ = ["MIN_CONTENT_WORDS", "STYLES", "TEMPLATES", "RewriteCounts", "assemble",
           "load_template", "unsupported_sentences"]

#: ``concise``: note-style rewriting, hedges dropped, a sentence that repeats an earlier
#: one in its section left out; ``detailed``: the same rewriting, every sentence kept;
#: ``verbatim``: the spoken sentences, tidied (the extractive draft).
STYLES = ("concise", "detailed", "verbatim")

MIN_CONTENT_WORDS = 2
#: dictation commands to the scribe software ("hey dragon, show me the x-ray")
_VOICE_COMMAND = re.compile(r"\b(?:hey,? dragon|dragon,)|^(?:show me|pull up|"
                            r"let's (?:look at|pull up)|let me (?:see|look at|pull up))\b", re.I)
#: acknowledgements and courtesies that carry nothing for the note
_ACK = re.compile(
    r"^(?:that )?(?:sounds? (?:good|great|fine|like a plan)|thanks?(?: you)?(?: so much)?|"
    r"that's (?:fine|great|good)|(?:very )?good to (?:see|meet) you|you're welcome|"
    r"have a (?:good|great|nice) (?:day|one)|take care|no problem|of course|"
    r"nice to (?:see|meet) you|that makes sense|i understand|will do)[.!]?$", re.I)
S = SectionKey
TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "soap": [
        (S.CHIEF_COMPLAINT, "S: CHIEF COMPLAINT"), (S.HPI, "S: HISTORY OF PRESENT ILLNESS"),
        (S.ROS, "S: REVIEW OF SYSTEMS"), (S.PAST_MEDICAL_HISTORY, "S: PAST MEDICAL HISTORY"),
        (S.MEDICATIONS, "S: MEDICATIONS"), (S.ALLERGIES, "S: ALLERGIES"),
        (S.SOCIAL_HISTORY, "S: SOCIAL HISTORY"), (S.FAMILY_HISTORY, "S: FAMILY HISTORY"),
        (S.PHYSICAL_EXAM, "O: PHYSICAL EXAM"), (S.RESULTS, "O: RESULTS"),
        (S.ASSESSMENT, "A: ASSESSMENT"), (S.PLAN, "P: PLAN"),
    ],
    "aci": [
        (S.CHIEF_COMPLAINT, "CHIEF COMPLAINT"), (S.HPI, "HISTORY OF PRESENT ILLNESS"),
        (S.ROS, "REVIEW OF SYSTEMS"), (S.PAST_MEDICAL_HISTORY, "PAST HISTORY"),
        (S.MEDICATIONS, "CURRENT MEDICATIONS"), (S.ALLERGIES, "ALLERGIES"),
        (S.SOCIAL_HISTORY, "SOCIAL HISTORY"), (S.FAMILY_HISTORY, "FAMILY HISTORY"),
        (S.PHYSICAL_EXAM, "PHYSICAL EXAMINATION"), (S.RESULTS, "RESULTS"),
        (S.ASSESSMENT, "ASSESSMENT"), (S.PLAN, "PLAN"),
    ],
}


def load_template(name_or_path: str) -> tuple[str, list[tuple[str, str]]]:
    """A built-in template by name, or a TOML file of ``[[section]]`` key/title tables."""
    if name_or_path in TEMPLATES:
        return name_or_path, TEMPLATES[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"unknown template {name_or_path!r}: use {sorted(TEMPLATES)} or a "
                         "TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        sections = [(str(t["key"]), str(t["title"])) for t in data["section"]]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a template ([[section]] key = ..., title = ...): "
                         f"{err}") from err
    known = {k.value for k in SectionKey} - {S.NONE.value}
    bad = [k for k, _ in sections if k not in known]
    if bad:
        raise InputError(f"{path}: unknown section keys {bad}; known: {sorted(known)}")
    return path.stem, sections


def _evidence_sentence(text: str, sources: Sequence[TranscriptSentence]) -> NoteSentence:
    return NoteSentence(text=text, evidence=tuple(sentence_evidence([s]) for s in sources))


@dataclass
class RewriteCounts:
    """What happened to the note sentences of one or more drafts (for evaluation)."""

    rewritten: int = 0  # written in note style and passed the faithfulness check
    fell_back: int = 0  # a rewrite failed the check; the spoken form was kept
    as_spoken: int = 0  # no safe rewrite; kept as spoken (tidied)
    repeats: int = 0  # left out: repeats an earlier sentence of its section
    quoted: int = 0  # of those kept as spoken, the patient's first-person words in quotes

    @property
    def fallback_rate(self) -> float:
        tried = self.rewritten + self.fell_back
        return self.fell_back / tried if tried else 0.0


def _extractive(spoken: str, speaker: str) -> str:
    """The spoken sentence tidied into note style, or as said if tidying lost a fact."""
    text = clean(spoken)
    if speaker == Speaker.PATIENT:
        extractive = patient_statement(text) or finish(text)
    else:
        extractive = clinician_statement(text) or finish(text)
    return extractive if passes(extractive, spoken, ADDED_WORDS) else finish(tidy(spoken))


def _note_sentence(spoken: str, speaker: str, person: Person, style: str,
                   counts: RewriteCounts) -> str:
    written = None
    if style != "verbatim":
        written = rewrite(spoken, speaker, person)
        if written is not None and passes(written, spoken):
            counts.rewritten += 1
            return written
    if written is None:
        counts.as_spoken += 1
    else:
        counts.fell_back += 1
    extractive = _extractive(spoken, speaker)
    if style == "verbatim":
        return extractive
    if speaker == Speaker.PATIENT and FIRST_PERSON.search(extractive):
        counts.quoted += 1  # the patient's own words, marked as theirs
        return f'The patient states, "{extractive}"'
    return extractive


_REPEAT = 0.8


def _repeats(words: set[str], earlier: Sequence[set[str]]) -> bool:
    """Most of ``words`` were already said by one earlier sentence of the section."""
    return bool(words) and any(len(words & e) >= _REPEAT * len(words) for e in earlier)


def assemble(transcript: Transcript, sentences: Sequence[TranscriptSentence],
             labels: Sequence[str], speakers: Sequence[str], orders: Sequence[OrderIntent],
             template: str = "soap", model_versions: dict[str, str] | None = None,
             style: str = "concise", counts: RewriteCounts | None = None) -> DraftNote:
    """Lay out the draft. ``labels`` and ``speakers`` hold one value per sentence;
    ``style`` is one of ``STYLES``; ``counts``, when given, is added to."""
    if style not in STYLES:
        raise InputError(f"unknown note style {style!r}: use one of {list(STYLES)}")
    name, layout = load_template(template)
    counts = counts if counts is not None else RewriteCounts()
    person = patient_person(s.text for s, sp in zip(sentences, speakers, strict=True)
                            if sp == Speaker.DOCTOR)
    order_sources = {(e.segment_ids, e.quote) for o in orders for e in o.evidence}
    by_section: dict[str, list[NoteSentence]] = {k: [] for k, _ in layout}
    said: dict[str, list[set[str]]] = {k: [] for k, _ in layout}
    seen: set[str] = set()
    used_answer: set[int] = set()

    def put(section: str, sentence: NoteSentence) -> None:
        key = sentence.text.lower()
        if section not in by_section or key in seen:
            return
        words = content_words(sentence.text)
        if style == "concise" and _repeats(words, said[section]):
            counts.repeats += 1
            return
        seen.add(key)
        said[section].append(words)
        by_section[section].append(sentence)

    for i, s in enumerate(sentences):
        if i in used_answer:
            continue
        label, speaker = labels[i], speakers[i]
        is_order = ((s.segment.id,), s.text) in order_sources
        if is_order and label not in (S.PLAN, S.ASSESSMENT):
            label = S.PLAN
        if label == S.NONE:
            continue
        nxt = i + 1
        if (speaker == Speaker.DOCTOR and nxt < len(sentences)
                and speakers[nxt] == Speaker.PATIENT):
            qa = question_answer(clean(s.text), clean(sentences[nxt].text))
            if qa:
                used_answer.add(nxt)
                put(label, _evidence_sentence(qa, [s, sentences[nxt]]))
                continue
        text = clean(s.text)
        if text.endswith("?") or len(content_words(text)) < MIN_CONTENT_WORDS:
            continue
        if (_VOICE_COMMAND.search(text) and len(text.split()) < 12) or _ACK.match(text):
            continue
        put(label, _evidence_sentence(_note_sentence(s.text, speaker, person, style, counts),
                                      [s]))
    sections = tuple(NoteSection(key=k, title=t, sentences=tuple(by_section[k]))
                     for k, t in layout)
    return DraftNote(encounter_id=transcript.encounter_id, template=name, sections=sections,
                     orders=tuple(orders), model_versions=dict(model_versions or {}))


_WORD = re.compile(r"[a-z0-9]+")


def unsupported_sentences(draft: DraftNote, transcript: Transcript) -> int:
    """Draft sentences and orders not backed by the transcript: no evidence, evidence
    pointing at segments that do not exist or whose words it does not quote, or (for
    note sentences) a failed faithfulness check (``nlp.faithful.problems``: numbers,
    units, drug names, laterality, negation) or words that are neither spoken in the
    evidence (in some form) nor words a rewrite may add."""
    segments = {s.id: s for s in transcript.segments}

    def words(text: str) -> set[str]:
        return set(_WORD.findall(tidy(text).lower()))

    def grounded(evidence: Sequence[object]) -> str | None:
        if not evidence:
            return None
        quotes: list[str] = []
        for ev in evidence:
            ids = getattr(ev, "segment_ids", ())
            if not ids or any(i not in segments for i in ids):
                return None
            source = words(" ".join(segments[i].text for i in ids))
            quote = getattr(ev, "quote", "")
            if not words(quote) or not words(quote) <= source:
                return None
            quotes.append(quote)
        return " ".join(quotes)

    bad = 0
    for section in draft.sections:
        for sentence in section.sentences:
            spoken = grounded(sentence.evidence)
            if spoken is None or not passes(sentence.text, spoken, ADDED_WORDS):
                bad += 1
    for order in draft.orders:
        if grounded(order.evidence) is None:
            bad += 1
    return bad
