"""Order intents: what the clinician ordered, started, changed or stopped in the visit.

Over the clinician's sentences, token by token (the drug vocabulary of
``nlp.drugs`` aside, standard library only). Step 1
finds the candidates (``sentence_candidates``); which of them are orders, and
their status, is decided by the order-intent model (``nlp.intents``, passed to
``extract_orders`` as ``classify``; the drafting pipeline always does) or,
without one, by the cue rules of steps 2 and 3, which the model also reads as
a feature:

1. Known names are found with the lexicons in ``nlp.lexicon`` (longest phrase
   first): medications (generic and brand), labs, imaging, procedures,
   referral specialties, devices; then any drug the vocabulary of ``nlp.drugs``
   knows (brand or generic); plus unknown drug-like words followed by a
   dose ("X 10 mg"), and follow-up phrases ("come back in two weeks").
2. A name becomes an order only inside the scope of an *order cue* spoken by
   the clinician ("let's", "I'm going to order", "we'll get", "I want you to
   see", "start", "prescribe", "refer", "schedule", …). A cue's scope runs to
   the end of the sentence, or until a *decline cue* ("we don't need",
   "hold off on", "no need for") or a *result cue* ("showed", "came back",
   "was normal", "I reviewed") closes it. Questions ("are you taking …?")
   and the patient's own words never make orders.
   Conditional, tentative and purpose clauses close the scope too ("if it's
   not better we'll get an MRI", "we could do the EGD", "a BMP to make sure
   your kidney function is stable").
3. The status comes from the nearest status word before the name: stop
   ("stop", "discontinue", "come off", "switch … from X"), change
   ("increase", "decrease", "bump up"), continue ("continue", "keep taking",
   "refill", "stay on"), else new. "switch you from X to Y" gives X stop and Y new.
4. Medication details (dose, unit, route, frequency, duration), imaging body
   site and laterality, referral specialty and follow-up interval are read from
   the words right after the name.

5. Each order keeps the name as said (``spoken``) and the clinician's words for it
   (``description``: the name with the dose and frequency said around it); a
   medication carries its generic name and DrugBank code from the vocabulary;
   ``nlp.reasons`` finds the reason as said. ``verify`` is set when a reviewer must
   check it against the audio: a drug name outside the vocabulary, a name the
   recogniser heard with word probability under ``HEARD_BELOW``, or an order the
   model gives less than ``VERIFY_BELOW``.

Each order carries the evidence of the sentences it rests on (where it was said,
where its reason was); the same order (kind and normalised name) said twice is
merged: evidence from both, the more specific status (stop > change > continue > new).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from nlp import drugs, lexicon, reasons
from nlp.dialogue import TranscriptSentence
from nlp.schema import Evidence, OrderIntent, OrderKind, OrderStatus, Speaker

__all__ = ["HEARD_BELOW", "VERIFY_BELOW", "Candidate", "Classify", "extract_orders",
           "normalise_name", "sentence_candidates", "sentence_evidence"]

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'/.][a-z0-9]+)*|[,;:?!]|\.")
_TABLE = lexicon.phrase_table()
_MAX_PHRASE = max(len(p.split()) for p in _TABLE)

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "couple": 2, "few": 3, "several": 3,
}
_UNITS = {"mg": "mg", "milligram": "mg", "milligrams": "mg", "mcg": "mcg", "microgram": "mcg",
          "micrograms": "mcg", "g": "g", "gram": "g", "grams": "g", "ml": "ml",
          "milliliters": "ml", "units": "units", "unit": "units", "percent": "%", "%": "%",
          "puffs": "puffs", "puff": "puffs", "tablets": "tablets", "tablet": "tablets",
          "pills": "tablets", "pill": "tablets", "capsules": "capsules", "capsule": "capsules",
          "drops": "drops", "iu": "units"}
_FREQUENCIES = [
    ("once a day", "once a day"), ("one time a day", "once a day"), ("daily", "once a day"),
    ("every day", "once a day"), ("once daily", "once a day"), ("a day", "once a day"),
    ("twice a day", "twice a day"), ("two times a day", "twice a day"),
    ("twice daily", "twice a day"), ("bid", "twice a day"),
    ("three times a day", "three times a day"), ("tid", "three times a day"),
    ("four times a day", "four times a day"), ("at night", "at night"),
    ("at bedtime", "at bedtime"), ("before bed", "at bedtime"),
    ("in the morning", "in the morning"), ("as needed", "as needed"), ("prn", "as needed"),
    ("once a week", "once a week"), ("weekly", "once a week"), ("every week", "once a week"),
    ("once a month", "once a month"), ("monthly", "once a month"),
]
_ROUTES = [("by mouth", "oral"), ("orally", "oral"), ("oral", "oral"), ("topical", "topical"),
           ("cream", "topical"), ("ointment", "topical"), ("inhaler", "inhaled"),
           ("inhaled", "inhaled"), ("nasal spray", "nasal"), ("injection", "injection"),
           ("shot", "injection"), ("patch", "transdermal"), ("iv", "intravenous"),
           ("intravenous", "intravenous"), ("eye drops", "ophthalmic")]

_ORDER_CUES = [
    "let's", "let us", "lets", "i'm going to", "i am going to", "i'm gonna", "we're going to",
    "we are going to", "we're gonna", "i'll", "i will", "we'll", "we will", "i want you to",
    "i want to", "i'd like you to", "i'd like to", "i would like to", "i would like you to",
    "we need to", "you need to", "you'll need", "i need you to", "we should", "you should",
    "go ahead and", "i'm ordering", "i'll order", "order", "ordering", "prescribe",
    "prescribing", "i'm prescribing", "start you", "put you on", "send you", "send in",
    "refer you", "referral", "referring", "schedule", "recommend", "switch", "increase",
    "decrease", "bump", "stop", "discontinue", "continue", "keep taking", "stay on",
    "refill", "get you", "give you", "i want", "we want", "set you up",
    "come back", "follow up", "plan is", "start", "starting", "keep you on", "put you in",
    "recommendation", "get you into", "recheck", "repeat", "send",
    # ACI-BENCH's transcripts split "gonna" / "wanna"
    "i'm gon na", "we're gon na", "i'm gonna", "we're gonna", "i wan na", "we wan na",
    "i wanna", "we wanna", "gon na", "wan na",
    # with an adverb in between: "i also want you to see cardiology"
    "want you to", "like you to", "need you to", "want to get", "like to get",
]
_DECLINE_CUES = [
    "don't need", "do not need", "doesn't need", "no need", "not going to", "won't",
    "will not", "hold off", "not necessary", "don't think we need", "don't have to",
    "not gonna", "no reason to", "wouldn't", "don't want to", "not need", "unnecessary",
    "not recommend", "don't recommend", "rather not", "not at this time", "no further",
    "don't think you need", "don't need to", "do not need to",
]
#: close the scope of an earlier cue: tentative ("we could do the egd") and purpose
#: ("a bmp to make sure your kidney function is stable")
_TENTATIVE_CUES = ["might", "may", "could", "consider", "in case", "whether", "make sure",
                   "to see if", "to see what", "to evaluate", "to check if"]
#: "if it's not better, we'll get an mri": nothing within reach after "if" is ordered
_CONDITIONAL_CUES = ["if", "unless"]
_CONDITIONAL_REACH = 15
_DECLINE_REACH = 8
_RESULT_CUES = [
    "showed", "shows", "show", "revealed", "reveals", "came back", "was normal",
    "were normal", "is normal", "looked at", "reviewed", "results", "result", "demonstrated",
    "demonstrates", "was negative", "was positive", "you had", "we did", "we got back",
    "indicated", "was elevated", "is elevated", "were elevated", "looks", "looked",
    "reading", "last time", "previous", "prior", "look at", "take a look", "review",
    "pictures", "go over",
]
_STOP_CUES = ["stop", "discontinue", "come off", "get off", "taper off", "hold the",
              "hold your", "switch you from", "switch from", "instead of", "stopping"]
_CHANGE_CUES = ["increase", "decrease", "bump up", "bump you up", "up the dose", "lower",
                "raise", "double", "change the dose", "adjust", "go up on", "go down on",
                "titrate", "reduce"]
_CONTINUE_CUES = ["continue", "keep taking", "keep you on", "stay on", "refill", "renew",
                  "keep on", "remain on"]
_FOLLOW_UP = re.compile(
    r"\b(?:come back|follow[- ]?up|follow up with me|see(?:ing)? you(?: again| back)?|see her back|"
    r"see him back|check back|return|recheck|check in|touch base)\b[^.?!]{0,40}?"
    r"\b(?:(?:in|after|for|about|another|maybe|like|around|within|the next)\s+)*"
    r"(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|couple(?: of)?|few)"
    r"\s*(?:(?:to|or)\s+\w+\s+)?(day|week|month|year)s?\b")
_COUNT = r"(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|couple(?: of)?|few)"
#: the interval said first: "in three weeks i'd like you to return"
_FOLLOW_UP_AFTER = re.compile(
    r"\b(?:in|after|within) (?:about |another |maybe |like |around |the next )?" + _COUNT
    + r"\s*(day|week|month|year)s?\b[^.?!]{0,30}?\b(?:come back|return|see you|"
    r"follow[- ]?up|check back|recheck)\b")
_REFERRAL_VERB = re.compile(r"\b(?:see|refer|referral|consult|send you|set you up with|"
                            r"appointment with|follow up with|get you in with|into|go to|"
                            r"start)\b")


def _phrases(text: str) -> list[tuple[str, int]]:
    """Tokens of a lower-cased sentence with their character offsets."""
    return [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]


@functools.cache
def _cue_index(cues: tuple[str, ...]) -> dict[str, list[list[str]]]:
    """The cue phrases split into words, by their first word."""
    index: dict[str, list[list[str]]] = {}
    for cue in cues:
        words = cue.split()
        if words:
            index.setdefault(words[0], []).append(words)
    return index


def _cue_positions(tokens: Sequence[str], cues: Sequence[str]) -> list[int]:
    """Token indices where one of ``cues`` (phrases of whole words) begins."""
    index = _cue_index(tuple(cues))
    return [i for i, token in enumerate(tokens)
            if any(list(tokens[i:i + len(words)]) == words for words in index.get(token, ()))]


@dataclass
class _Mention:
    start: int
    end: int  # token index after the phrase
    kind: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)


def _number(word: str) -> str:
    if word.isdigit():
        return word
    return str(_NUMBER_WORDS.get(word, word))


def _medication_details(tokens: Sequence[str], end: int, limit: int) -> dict[str, str]:
    window = tokens[end:min(end + 12, limit)]
    text = " ".join(window)
    details: dict[str, str] = {}
    # "increase the lisinopril from 10 mg to 20 mg": the new dose is the one after "to"
    change = re.match(r"from \d+(?:\.\d+)?(?: ?(?:mg|mcg|g|ml|\w+))? to (?=\d)", text)
    if change:
        window = text[change.end():].split(" ")
    for j, w in enumerate(window[:4]):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(mg|mcg|g|ml)?", w)
        if m:
            unit = m.group(2) or (window[j + 1] if j + 1 < len(window) else "")
            if m.group(2) or unit in _UNITS:
                details["dose"], details["unit"] = m.group(1), _UNITS.get(unit, unit)
            break
    for phrase, norm in sorted(_FREQUENCIES, key=lambda f: -len(f[0])):
        if re.search(rf"\b{re.escape(phrase)}\b", text):
            details["frequency"] = norm
            break
    for phrase, norm in _ROUTES:
        if re.search(rf"\b{re.escape(phrase)}\b", text):
            details["route"] = norm
            break
    m = re.search(r"\bfor (?:the next )?(\d+|one|two|three|four|five|six|seven|ten|fourteen|"
                  r"a|a couple of) (day|week|month)s?\b", text)
    if m:
        n = _number(m.group(1).replace("a couple of", "couple"))
        details["duration"] = f"{n} {m.group(2)}{'' if n == '1' else 's'}"
    return details


def _site_details(tokens: Sequence[str], start: int, end: int) -> dict[str, str]:
    before = " ".join(tokens[max(0, start - 3):start])
    after = " ".join(tokens[end:end + 5])
    details: dict[str, str] = {}
    for site in sorted(lexicon.BODY_SITES, key=len, reverse=True):
        pat = rf"\b{re.escape(site)}\b"
        if re.search(rf"\bof (?:the |your |her |his |both )?(?:left |right )?{re.escape(site)}\b",
                     after) or re.search(pat, before):
            details["body_site"] = site
            break
    window = f"{before} {after}"
    if re.search(r"\bboth\b|\bbilateral", window):
        details["laterality"] = "bilateral"
    elif re.search(r"\bleft\b", window):
        details["laterality"] = "left"
    elif re.search(r"\bright\b(?! now| away| here)", window):
        details["laterality"] = "right"
    return details


def _mentions(tokens: Sequence[str]) -> list[_Mention]:
    found: list[_Mention] = []
    vocabulary = {start: (end, concept) for start, end, concept in drugs.find_drugs(tokens)}
    i = 0
    while i < len(tokens):
        hit = None
        for n in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i:i + n])
            if phrase in _TABLE:
                hit = (n, *_TABLE[phrase])
                break
        if hit is None and i in vocabulary:  # a drug the hand lexicon does not know
            end, concept = vocabulary[i]
            hit = (end - i, OrderKind.MEDICATION.value, concept.generic)
        if hit is None:
            w = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if (len(w) > 5 and w.endswith(lexicon.DRUG_SUFFIXES) and re.fullmatch(r"[a-z]+", w)
                    and re.fullmatch(r"\d+(?:\.\d+)?(?:mg|mcg)?", nxt)):
                hit = (1, OrderKind.MEDICATION.value, w)
        if hit is None:
            i += 1
            continue
        n, kind, name = hit
        found.append(_Mention(i, i + n, kind, name))
        i += n
    return found


def _nearest(positions: Sequence[int], before: int) -> int:
    return max((p for p in positions if p < before), default=-1)


def _resolve_kind(m: _Mention, tokens: Sequence[str], found: Sequence[_Mention]) -> None:
    """A few phrases name a drug or a lab test ("vitamin d", "iron"): the verb decides."""
    phrase = " ".join(tokens[m.start:m.end])
    if phrase in lexicon.LABS and phrase in lexicon.MEDICATIONS:
        before = " ".join(tokens[max(0, m.start - 4):m.start])
        after = " ".join(tokens[m.end:m.end + 2])
        previous_lab = any(o.kind == OrderKind.LAB and o.end >= m.start - 2 for o in found)
        if previous_lab or re.search(r"\b(check|recheck|draw|test|measure|level|levels)\b",
                                     f"{before} {after}"):
            m.kind, m.name = OrderKind.LAB.value, lexicon.LABS[phrase]
        else:
            m.kind, m.name = OrderKind.MEDICATION.value, lexicon.MEDICATIONS[phrase]


@dataclass
class Candidate:
    """A name the clinician said that could be an order, in its sentence.

    ``rules_status`` is what the cue rules make of it (``None``: not an order);
    ``marked`` shows the sentence to the order-intent model with the name in brackets."""

    mention: _Mention
    tokens: list[str]
    rules_status: str | None
    previous: str = ""  # the sentence before, as context
    #: how sure the order-intent model is of its answer (1.0 under the cue rules)
    confidence: float = 1.0

    @property
    def marked(self) -> str:
        m = self.mention
        lo, hi = max(0, m.start - 24), min(len(self.tokens), m.end + 16)
        words = [*self.tokens[lo:m.start], "[", *self.tokens[m.start:m.end], "]",
                 *self.tokens[m.end:hi]]
        return f"{m.kind.replace('_', ' ')}: {' '.join(words)}"


def _rules_status(m: _Mention, tokens: Sequence[str], lowered: str, cues: dict[str, list[int]],
                  question: bool) -> str | None:
    """The cue-scope rules (see the module docstring) for one mention."""
    cue = _nearest(cues["order"], m.start)
    closed = max(_nearest(cues["decline"], m.start), _nearest(cues["result"], m.start),
                 _nearest(cues["tentative"], m.start))
    if cue < 0 or closed > cue or m.start - cue > 25:
        return None
    # a decline that governs the clause ("i don't think you need to follow up with …")
    if any(cue - _DECLINE_REACH <= d <= m.start + 1 for d in cues["decline"]):
        return None
    if any(m.start - _CONDITIONAL_REACH <= c < m.start for c in cues["conditional"]):
        return None
    if question and not re.search(r"\b(i'll|i will|let's|we'll|we will|i'm going to)\b",
                                  lowered):
        return None
    if m.kind == OrderKind.REFERRAL and not _REFERRAL_VERB.search(
            " ".join(tokens[max(0, m.start - 8):m.start])):
        return None
    status = OrderStatus.NEW.value
    nearest_status = max((_nearest(cues["stop"], m.start), OrderStatus.STOP.value),
                         (_nearest(cues["change"], m.start), OrderStatus.CHANGE.value),
                         (_nearest(cues["continue"], m.start), OrderStatus.CONTINUE.value))
    if nearest_status[0] >= 0 and m.start - nearest_status[0] <= 8:
        status = nearest_status[1]
    between = " ".join(tokens[max(0, m.start - 6):m.start])
    if re.search(r"\b(switch|change)\w* (?:you |her |him )?(?:from|off)(?: of)?$", between) \
            or re.search(r"\binstead of$", between):
        status = OrderStatus.STOP.value
    elif re.search(r"\b(?:from|off of|off) \S+(?: \S+)?(?: \d+ \w+)? (?:to|onto|over to)$",
                   between) and re.search(r"\bswitch|\bchange", lowered):
        status = OrderStatus.NEW.value
    return status


def _details(m: _Mention, tokens: Sequence[str], limit: int) -> None:
    if m.kind == OrderKind.MEDICATION:
        m.fields.update(_medication_details(tokens, m.end, limit))
    elif m.kind in (OrderKind.IMAGING, OrderKind.PROCEDURE):
        m.fields.update(_site_details(tokens, m.start, m.end))
        site = m.fields.get("body_site")
        if m.kind == OrderKind.IMAGING and site and m.name in ("x-ray", "mri", "ct",
                                                                 "ultrasound"):
            m.name = f"{site} {m.name}"
    elif m.kind == OrderKind.REFERRAL:
        m.fields["specialty"] = m.name


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: words that carry a medication's dose, frequency and duration after (or before) its name
_DETAIL_WORDS = _words("""
a an per once twice times time day days daily a.m. p.m. at night nightly bedtime in the
morning evening as needed every other for week weeks month months by mouth with meals food
of to from point zero half tablet tablets pill pills capsule capsules puff puffs drop drops
bid tid qid prn hours hour q twice-daily one two three four five six seven eight nine ten
eleven twelve fifteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand
and then up
""") | set(_UNITS)
_FILLERS = frozenset({",", "um", "uh", "like", "maybe", "just"})
_TRAILING = frozenset({"a", "an", "the", "for", "to", "of", "in", "at", "with", "and", "then",
                       "by", "from", "every", "as", "up", "other", ",", "um", "uh", "like",
                       "maybe", "just", "per"})


def _is_detail(word: str) -> bool:
    return word in _DETAIL_WORDS or bool(re.fullmatch(r"\d+(?:\.\d+)?(?:mg|mcg|g|ml|%)?", word))


def _description(m: _Mention, tokens: Sequence[str], limit: int) -> str:
    """The clinician's words for the order: the name as said, and for a medication the
    dose, frequency and duration said right around it ("lasix 40 milligrams a day")."""
    start, end = m.start, m.end
    if m.kind == OrderKind.MEDICATION:
        j = end
        while j < min(limit, m.end + 14) and (_is_detail(tokens[j]) or tokens[j] in _FILLERS):
            j += 1
        while j > end and tokens[j - 1] in _TRAILING:
            j -= 1
        has_number = any(_is_detail(t) and t not in _TRAILING and
                         (t[0].isdigit() or t in _NUMBER_WORDS) for t in tokens[end:j])
        end = j if has_number or j - end <= 3 else end
        # "600 milligrams of ibuprofen": a dose said before the name
        i = start
        if i >= 2 and tokens[i - 1] in ("of",) and tokens[i - 2] in _UNITS:
            i -= 1  # "of"; the unit and its number follow
        if i >= 2 and tokens[i - 1] in _UNITS and _is_detail(tokens[i - 2]):
            i -= 2
        start = i
    elif m.kind == OrderKind.IMAGING:
        if start and tokens[start - 1] in lexicon.BODY_SITES:
            start -= 1  # "chest x-ray"
        after = tokens[end:min(limit, end + 5)]
        if after[:1] == ["of"]:  # "x-ray of your right knee"
            j = 1 + (after[1:2] in (["your"], ["the"], ["her"], ["his"], ["both"]))
            j += after[j:j + 1] in (["left"], ["right"])
            if j < len(after) and after[j] in lexicon.BODY_SITES:
                end += j + 1
    words = [t for t in tokens[start:end] if t not in (",", "um", "uh")]
    return " ".join(words)


def sentence_candidates(text: str) -> list[Candidate]:
    """Every name in one sentence that could be an order, with the rules' verdict."""
    lowered = text.lower().replace("’", "'")
    spans = _phrases(lowered)
    tokens = [t for t, _ in spans]
    if not tokens:
        return []
    cues = {"order": _cue_positions(tokens, _ORDER_CUES),
            "decline": _cue_positions(tokens, _DECLINE_CUES),
            "tentative": _cue_positions(tokens, _TENTATIVE_CUES),
            "conditional": _cue_positions(tokens, _CONDITIONAL_CUES),
            "result": _cue_positions(tokens, _RESULT_CUES),
            "stop": [i for i in _cue_positions(tokens, _STOP_CUES)
                     if tokens[i + 1:i + 2] != ["by"]],  # "stop by the front desk"
            "change": _cue_positions(tokens, _CHANGE_CUES),
            "continue": _cue_positions(tokens, _CONTINUE_CUES)}
    question = tokens[-1] == "?"
    out: list[Candidate] = []
    mentions = _mentions(tokens)
    for k, m in enumerate(mentions):
        limit = mentions[k + 1].start if k + 1 < len(mentions) else len(tokens)
        _resolve_kind(m, tokens, mentions[:k])
        status = _rules_status(m, tokens, lowered, cues, question)
        _details(m, tokens, limit)
        m.fields["spoken"] = " ".join(tokens[m.start:m.end])
        m.fields["description"] = _description(m, tokens, limit)
        out.append(Candidate(m, tokens, status))
    out.extend(_follow_ups(lowered, spans, tokens))
    return out


def _follow_ups(lowered: str, spans: Sequence[tuple[str, int]],
                tokens: list[str]) -> list[Candidate]:
    """Follow-up candidates, the interval said after the verb or before it. (A follow-up
    said without an interval was tried as a candidate too: out-of-fold on SIMORD train it
    lost 0.9 points, and ACI-BENCH valid counts most of them as invented.)"""
    def token_span(lo: int, hi: int) -> tuple[int, int]:
        start = sum(1 for _, pos in spans if pos < lo)
        return start, max(sum(1 for _, pos in spans if pos < hi), start + 1)

    out: list[Candidate] = []
    for fm in [*_FOLLOW_UP.finditer(lowered), *_FOLLOW_UP_AFTER.finditer(lowered)]:
        if any(c.mention.start <= token_span(fm.start(), fm.end())[0] < c.mention.end
               for c in out):
            continue  # the same words found by both patterns
        declined = any(fm.start() > lowered.find(d) >= 0 for d in ("don't need to come back",))
        n = _number(fm.group(1).replace("couple of", "couple"))
        unit = fm.group(2)
        start, end = token_span(fm.start(), fm.end())
        said = " ".join(tokens[start:end])
        out.append(Candidate(
            _Mention(start, end, OrderKind.FOLLOW_UP.value, "follow-up",
                     {"interval": f"{n} {unit}{'' if n == '1' else 's'}",
                      "spoken": said, "description": said}),
            tokens, None if declined else OrderStatus.NEW.value))
    return out


def sentence_evidence(sentences: Sequence[TranscriptSentence]) -> Evidence:
    segs = sorted({s.segment.id for s in sentences})
    return Evidence(segment_ids=tuple(segs),
                    start_s=min(s.segment.start_s for s in sentences),
                    end_s=max(s.segment.end_s for s in sentences),
                    quote=" ".join(s.text for s in sentences))


def normalise_name(kind: str, name: str) -> str:
    """The name used to match orders in evaluation: lower case; imaging without site."""
    name = " ".join(name.lower().replace("-", " ").split())
    if kind == OrderKind.IMAGING:
        for modality in ("x ray", "mri", "ct", "ultrasound"):
            if name.endswith(modality):
                return modality
    return name


_STATUS_RANK: dict[str, int] = {
    OrderStatus.NEW: 0, OrderStatus.CONTINUE: 1, OrderStatus.CHANGE: 2, OrderStatus.STOP: 3}


#: ``classify(candidates)`` → a status or ``None`` (not an order) for each candidate:
#: the order-intent model (``nlp.intents``). Without one, the cue rules decide.
Classify = Callable[[Sequence[Candidate]], list[str | None]]


#: below this confidence of the order-intent model a medication is drafted for verification
VERIFY_BELOW = 0.6
_STOP_SAID = re.compile(r"\b(stop|discontinue|hold off(?: on)?|hold|come off|get off)\b")


#: a drug name the speech recogniser heard with less probability than this is verified
HEARD_BELOW = 0.6


def _heard(spoken: str, sentence: TranscriptSentence) -> float:
    """The recogniser's lowest word probability over the spoken name (1.0 for typed text)."""
    wanted = spoken.split()
    words = [(re.sub(r"[^a-z0-9'-]", "", w.text.lower()), w.confidence)
             for w in sentence.segment.words]
    for i in range(len(words) - len(wanted) + 1):
        if [w for w, _ in words[i:i + len(wanted)]] == wanted:
            return min(p for _, p in words[i:i + len(wanted)])
    return 1.0


def _verify(m: _Mention, confidence: float, concept: drugs.DrugConcept | None,
            heard: float) -> str:
    spoken = m.fields.get("spoken", m.name)
    if m.kind == OrderKind.MEDICATION and concept is None:
        return f"'{spoken}' is not in the drug vocabulary"
    if heard < HEARD_BELOW:
        return f"the recogniser was unsure it heard '{spoken}' (p={heard:.2f})"
    if confidence < VERIFY_BELOW:
        return "the order model is unsure this was ordered"
    return ""


#: how many sentences after a medication's own are read for its dose or frequency
_DOSE_AFTER = 3


def _dose_said_after(sentences: Sequence[TranscriptSentence], k: int,
                     speakers: Sequence[str] | None) -> list[int]:
    """The clinician's sentences right after a medication's that say how to take it and
    name nothing else ("you can take one to two tablets every six hours"): its evidence
    too. Reading stops at a sentence that names another drug, test or follow-up."""
    out: list[int] = []
    for j in range(k + 1, min(len(sentences), k + 1 + _DOSE_AFTER)):
        speaker = speakers[j] if speakers is not None else sentences[j].speaker
        if speaker not in (Speaker.DOCTOR, Speaker.UNKNOWN):
            continue
        text = sentences[j].text.lower().replace("’", "'")
        if sentence_candidates(text):
            break
        if _HOW_TO_TAKE.search(text):
            out.append(j)
    return out


def _detail_words(text: str) -> str:
    """The dose and frequency words of a sentence, in order ("600 milligrams every six
    hours")."""
    tokens = [t for t, _ in _phrases(text.lower().replace("’", "'"))]
    words = [t for t in tokens if _is_detail(t) or t in ("every", "hours", "hour")]
    while words and words[0] in _TRAILING:
        words.pop(0)
    while words and words[-1] in _TRAILING:
        words.pop()
    return " ".join(words)


#: a dose or a quantity of the drug, said without its name ("600 milligrams every six
#: hours", "one to two tablets", "take it twice a day", "dispense eight"); a frequency
#: alone is not enough ("ice your knee twice a day" is other advice)
_HOW_TO_TAKE = re.compile(
    r"\b(?:\d+(?:\.\d+)?|one|two|three|four|five|six|ten|twenty|half a?)\s*(?:mg|milligrams?|"
    r"mcg|micrograms?|tablets?|pills?|capsules?|puffs?|units?|tabs?)\b|"
    r"\b(?:take|use) (?:it|them|those|one|two)\b|\b(?:dispense|refills?)\b")


def _order(c: Candidate, status: str, k: int, sentences: Sequence[TranscriptSentence],
           speakers: Sequence[str] | None) -> OrderIntent:
    """One candidate the model calls an order, with its reason, codes and evidence."""
    m = c.mention
    fields = dict(m.fields)
    evidence = [sentence_evidence([sentences[k]])]
    after = " ".join(c.tokens[m.end:])
    found = reasons.find_reason(sentences, k, after, speakers,
                                headings=m.kind != OrderKind.FOLLOW_UP)
    if found is not None:
        fields["reason"], j = found
        if j != k:
            evidence.insert(0, sentence_evidence([sentences[j]]))
    concept = None
    if m.kind == OrderKind.MEDICATION:
        concept = drugs.drug_concept(fields.get("spoken", "")) or drugs.drug_concept(m.name)
        if concept is not None and concept.drugbank_id:
            # DrugBank names the drug itself; the package's MeSH ids are often a class
            fields["code_system"], fields["code"] = drugs.DRUGBANK_SYSTEM, concept.drugbank_id
        if status == OrderStatus.STOP:
            said = _STOP_SAID.search(" ".join(c.tokens[max(0, m.start - 6):m.start]))
            if said and not fields["description"].startswith(said.group(1)):
                fields["description"] = f"{said.group(1)} {fields['description']}"
    if m.kind == OrderKind.MEDICATION:
        for j in _dose_said_after(sentences, k, speakers):
            evidence.append(sentence_evidence([sentences[j]]))
            how = _detail_words(sentences[j].text)
            if how and not any(w[0].isdigit() for w in fields["description"].split()):
                fields["description"] = f"{fields['description']} {how}"
    fields["verify"] = _verify(m, c.confidence, concept,
                               _heard(fields.get("spoken", ""), sentences[k]))
    return OrderIntent(kind=m.kind, name=m.name, status=status, evidence=tuple(evidence),
                       **fields)


def extract_orders(sentences: Sequence[TranscriptSentence],
                   speakers: Sequence[str] | None = None,
                   classify: Classify | None = None) -> list[OrderIntent]:
    """Orders spoken by the clinician. ``speakers`` overrides each sentence's segment
    speaker (e.g. repaired roles, one per sentence)."""
    found: list[tuple[Candidate, int]] = []
    for k, s in enumerate(sentences):
        speaker = speakers[k] if speakers is not None else s.speaker
        if speaker not in (Speaker.DOCTOR, Speaker.UNKNOWN):
            continue
        for c in sentence_candidates(s.text):
            c.previous = sentences[k - 1].text if k else ""
            found.append((c, k))
    statuses = (classify([c for c, _ in found]) if classify is not None and found
                else [c.rules_status for c, _ in found])
    merged: dict[tuple[str, str], OrderIntent] = {}
    for (c, k), status in zip(found, statuses, strict=True):
        if status is None:
            continue
        m = c.mention
        key = (m.kind, normalise_name(m.kind, m.name))
        order = _order(c, status, k, sentences, speakers)
        if key in merged:  # said again ("hey dragon, order …"): one order, more evidence
            old = merged[key]
            filled = {f: getattr(order, f) for f in (*m.fields, "reason", "code_system",
                                                     "code")
                      if getattr(order, f) and not getattr(old, f)}
            if _STATUS_RANK[status] > _STATUS_RANK[old.status]:
                filled["status"] = status
            if not order.verify:
                filled["verify"] = ""  # said clearly once is enough
            evidence = (*old.evidence, *(e for e in order.evidence if e not in old.evidence))
            merged[key] = replace(old, evidence=evidence, **filled)
        else:
            merged[key] = order
    return list(merged.values())
