"""The drafting stage: transcript → draft note with orders, every line with evidence.

    writer = DraftWriter.load(Path("models"))        # once; loads from models/nlp only
    note = writer.draft(transcript)                    # blocking: run it in a worker thread

``draft`` is thread-safe (the classifiers serialise their forward passes), so
one writer may serve the whole server. Steps: repair speaker roles
(``roles.RoleLabeller``), split turns into sentences, classify each sentence's
section, extract orders from the clinician's sentences (candidates from the
lexicon, the order-intent model ``nlp.intents`` deciding which are orders and
their status), assemble the note in
the template's order (``assemble``).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from nlp.assemble import STYLES, RewriteCounts, assemble, load_template
from nlp.dialogue import TranscriptSentence, transcript_sentences
from nlp.errors import InputError, ModelsMissing
from nlp.features import position_features, section_input, section_position
from nlp.instructions import patient_instructions
from nlp.orders import Classify, extract_orders
from nlp.roles import ROLES, RoleLabeller
from nlp.schema import DraftNote, OrderIntent, SectionKey, Speaker, Transcript, TranscriptSegment

__all__ = ["NONE_BELOW", "ORDER_CLINICIAN_MIN", "DraftWriter", "label_speakers"]


#: A sentence enters the note when the section classifier gives ``none`` less than
#: this probability (then it takes its most likely section), per note style. Chosen
#: on ACI-BENCH train and valid (README, "NLP evaluation"): 0.7 for the extractive draft;
#: the rewritten concise note is best at 0.6 (ROUGE-1 +0.2 to +0.5, 8 % shorter).
NONE_BELOW = {"concise": 0.6, "detailed": 0.7, "verbatim": 0.7}
#: See DraftWriter._order_speakers.
ORDER_CLINICIAN_MIN = 0.5


class DraftWriter:
    """Loaded models plus the default template."""

    def __init__(self, sections: object, roles: RoleLabeller, template: str = "soap",
                 versions: dict[str, str] | None = None, none_below: float | None = None,
                 order_intents: Classify | None = None, style: str = "concise") -> None:
        load_template(template)  # fail fast on a bad template
        if style not in STYLES:
            raise InputError(f"unknown note style {style!r}: use one of {list(STYLES)}")
        self.style = style
        self._sections = sections
        self._roles = roles
        self._order_intents = order_intents
        self.template = template
        self.versions = dict(versions or {})
        #: ``None``: the style's threshold (``NONE_BELOW``)
        self.none_below = none_below

    @classmethod
    def load(cls, models_dir: Path, template: str = "soap") -> DraftWriter:
        from nlp.build import built_key
        from nlp.encoder import TextClassifier
        from nlp.intents import IntentModel

        root = models_dir / "nlp"
        needed = [root / name / "meta.json" for name in ("sections", "roles", "orders")]
        if not all(p.is_file() for p in needed):
            raise ModelsMissing(f"no NLP models in {root}: run `roomscribe models build`")
        key = built_key(root / "build.json") or ""
        order_key = built_key(root / "orders" / "build.json") or ""
        versions = {"sections": f"minilm-sections@{key}", "roles": f"minilm-roles@{key}",
                    "orders": f"minilm-orders@{order_key}"}
        from nlp.drugs import drug_concept

        drug_concept("aspirin")  # the drug vocabulary's index is built now, not in a visit
        return cls(TextClassifier.load(root / "sections"), RoleLabeller.load(root / "roles"),
                   template, versions, order_intents=IntentModel.load(root / "orders"))

    def with_cue_rules(self) -> DraftWriter:
        """The same writer with the cue rules deciding orders (the evaluation baseline)."""
        return DraftWriter(self._sections, self._roles, self.template,
                           {**self.versions, "orders": "cue rules"}, self.none_below,
                           style=self.style)

    def section_labels(self, sentences: list[TranscriptSentence], style: str | None = None
                       ) -> list[str]:
        if not sentences:
            return []
        n = len(sentences)
        inputs = [section_input(sentences, i) for i in range(n)]
        probs = self._sections.predict_proba(  # type: ignore[attr-defined]
            [t for t, _ in inputs], [p for _, p in inputs],
            [position_features(section_position(i, n)) for i in range(n)])
        names: list[str] = self._sections.labels  # type: ignore[attr-defined]
        none = names.index(SectionKey.NONE)
        threshold = self.none_below if self.none_below is not None else \
            NONE_BELOW[style or self.style]
        out = []
        for row in probs:
            if row[none] >= threshold:
                out.append(names[none])
            else:
                row = row.copy()
                row[none] = -1.0
                out.append(names[int(row.argmax())])
        return out

    def label_speakers(self, segments: tuple[TranscriptSegment, ...]) -> list[str]:
        return self._roles.label(segments)

    def _order_speakers(self, transcript: Transcript, sentences: list[TranscriptSentence],
                        speakers: list[str]) -> list[str]:
        """Who said each sentence, for order extraction only.

        ASR segments are utterances, not turns: a clinician often speaks several in a
        row, and the turn-taking prior can hand one of them to the patient. Losing a
        spoken order costs more than the opposite error (an order also needs a
        clinician's order cue, "I'm going to order", "let's start"), so an ASR segment
        the role classifier scores at least ``ORDER_CLINICIAN_MIN`` as the clinician's
        counts as the clinician's here. In a typed dialogue a sentence is the clinician's
        when its tag or its repaired role says so (the repair hands some of the
        clinician's sentences to the patient where a turn is split into sentences).
        """
        if not sentences:
            return speakers
        if transcript.engine == "text":
            tags = {seg.id: seg.speaker for seg in transcript.segments}
            return [Speaker.DOCTOR.value if tags[s.segment.id] == Speaker.DOCTOR else sp
                    for s, sp in zip(sentences, speakers, strict=True)]
        ids = sorted({s.segment.id for s in sentences})
        texts = {seg.id: seg.text for seg in transcript.segments}
        p_doctor = dict(zip(ids, self._roles.probabilities([texts[i] for i in ids])[:, 0],
                            strict=True))
        return [Speaker.DOCTOR.value if p_doctor[s.segment.id] >= ORDER_CLINICIAN_MIN else sp
                for s, sp in zip(sentences, speakers, strict=True)]

    def with_roles(self, transcript: Transcript) -> Transcript:
        """The transcript with every segment's speaker a role.

        A transcript from speech recognition whose segments all carry a role keeps
        them: the ASR stage named them with this role model, from the whole visit's
        words and, under diarization, from the voices (one voice, one role); relabelling
        from the words alone here would undo what the voices told apart. Typed
        dialogues, and transcripts with unlabelled segments, are labelled here, their
        tags as evidence (``nlp.roles``)."""
        if not transcript.segments:
            raise InputError("transcript has no segments")
        if transcript.engine != "text" and all(s.speaker in ROLES for s in transcript.segments):
            return transcript
        # plain-text dialogues are written one turn a line (a new line: a new speaker),
        # unless two lines in a row carry the same tag (sentence-split turns, as SIMORD's)
        tags = [s.speaker for s in transcript.segments]
        alternating = all(a != b for a, b in itertools.pairwise(tags))
        roles = self._roles.label(transcript.segments,
                                  turns=transcript.engine == "text" and alternating)
        return replace(transcript, segments=tuple(
            replace(s, speaker=r) for s, r in zip(transcript.segments, roles, strict=True)))

    def _orders(self, transcript: Transcript,
                sentences: list[TranscriptSentence]) -> list[OrderIntent]:
        speakers = [s.speaker for s in sentences]
        return extract_orders(sentences, self._order_speakers(transcript, sentences, speakers),
                              self._order_intents)

    def orders(self, transcript: Transcript) -> list[OrderIntent]:
        """Only the orders (no note sections): ``roomscribe nlp orders``, evaluation."""
        return self._orders(transcript, transcript_sentences(self.with_roles(transcript)))

    def draft(self, transcript: Transcript, template: str | None = None,
              style: str | None = None, counts: RewriteCounts | None = None) -> DraftNote:
        """``style``: ``concise`` / ``detailed`` / ``verbatim`` (``nlp.assemble.STYLES``;
        default: the writer's); ``counts`` collects what the rewriter did."""
        style = style or self.style
        if style not in STYLES:
            raise InputError(f"unknown note style {style!r}: use one of {list(STYLES)}")
        repaired = self.with_roles(transcript)
        sentences = transcript_sentences(repaired)
        labels = self.section_labels(sentences, style)
        speakers = [s.speaker for s in sentences]
        orders = self._orders(transcript, sentences)
        note = assemble(repaired, sentences, labels, speakers, orders,
                        template or self.template, self.versions,
                        style=style, counts=counts)
        return replace(note, instructions=patient_instructions(sentences, labels, speakers,
                                                               orders))


_default: dict[Path, RoleLabeller] = {}


def label_speakers(segments: tuple[TranscriptSegment, ...] | list[TranscriptSegment],
                   models_dir: Path = Path("models")) -> list[str]:
    """doctor / patient / other for each segment (for the ASR stage). Loads the role
    model from ``models_dir/nlp/roles`` on first use and keeps it."""
    key = models_dir.resolve()
    if key not in _default:
        path = models_dir / "nlp" / "roles"
        if not (path / "meta.json").is_file():
            raise ModelsMissing(f"no role model in {path}: run `roomscribe models build`")
        _default[key] = RoleLabeller.load(path)
    return _default[key].label(tuple(segments))
