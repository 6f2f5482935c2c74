"""The reason for an order, as the clinician said it, and the sentence it was said in.

Clinicians give the indication in two ways, and this module reads both:

* beside the order: "lasix *for your blood pressure*", "an x-ray *to rule out a
  fracture*", "metformin *to help with your diabetes*";
* as the problem the plan is going through: "so for your first problem, *your
  back pain*, …", "regarding your *hypertension*, …", "for your third problem of
  your *type i diabetes*" — the orders that follow, until the next problem, are
  for it;
* failing those, the diagnosis the clinician named ("what we call a *medial
  collateral ligament strain*", "i think you have *a neck strain*", twice as far
  back), and last the problem the visit is for ("here today for *left shoulder
  pain*").

``find_reason(sentences, k, after)`` looks in sentence ``k`` (words after
``after`` first, then the whole sentence) and then back through the clinician's
earlier sentences, up to ``LOOK_BACK`` of them or the previous problem heading.
It returns the reason's words (at most ``MAX_WORDS``) and the index of the
sentence they came from, which joins the order's evidence. Standard library
only. The patterns were written from SIMORD *train* (MEDIQA-OE 2025) and the
ACI-BENCH train dialogues; ``scripts/eval_orders.py`` scores them on SIMORD dev.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from nlp.dialogue import TranscriptSentence
from nlp.schema import Speaker

__all__ = ["LOOK_BACK", "MAX_WORDS", "find_reason"]

LOOK_BACK = 12
MAX_WORDS = 6


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_OWNER = r"(?:(?:your|the|his|her|their|this|that|those|these|a|an|some)\s+)?"
_ORDINAL = r"(?:(?:first|second|third|fourth|fifth|sixth|next|last|final|other|main)\s+)?"
#: "for your second problem of your coronary artery disease", "regarding your hypertension"
_HEADING = re.compile(
    r"\b(?:for|regarding|in regards? to|with regards? to|as far as|as for|in terms of|"
    r"moving on to|now for|and for|so for|onto|on to)\s+" + _OWNER + _ORDINAL +
    r"(?:(?:problem|issue|concern|complaint)\s*(?:of|with|,|is|was)?\s+)" + _OWNER + r"(.+)")
#: "from an atrial fibrillation standpoint", "from a diabetes perspective"
_STANDPOINT = re.compile(
    r"\b(?:from|in) an? ((?:\w+ ){1,5}?)(?:standpoint|perspective|point of view)\b")
_HEADING_PLAIN = re.compile(
    r"^(?:so\s+|and\s+|then\s+|now\s+|okay\s+|alright\s+|um\s+|uh\s+|,\s+)*"
    r"(?:for|regarding|in regards? to|with regards? to|as far as|as for|in terms of)\s+"
    + _OWNER + r"(.+)")
#: beside the order: "for your blood pressure", "to help with the pain"
_BESIDE = re.compile(
    r"\b(?:for|to help with|to help|to treat|to control|to manage|to rule out|to look for|"
    r"to evaluate|to check for|to check on|to assess|because of|due to)\s+" + _OWNER + r"(.+)")
#: what the clinician thinks the patient has: "i think what you have is medial epicondylitis"
_DIAGNOSIS = re.compile(
    r"\b(?:consistent with|suggestive of|diagnos\w* (?:you )?with|what you have is|"
    r"suffering from|what we call|we call this|"
    r"(?:my|the|your) (?:impression|assessment|diagnosis)(?: of you)?(?: at this time)?"
    r"(?: is| would be| of)?(?: that)?(?: you have)?(?: this)?(?: diagnosis of)?|"
    r"(?:i think|i believe|i suspect|i'm concerned|i am concerned)(?: that)? "
    r"(?:you (?:have|might have|probably have|likely have|may have)|you've got)|"
    r"i think (?:that )?(?:this is|it's|it is)|it looks like|"
    r"it sounds like|sounds like you have|looks like you have|signs of)[\s,]+"
    r"(?:(?:a|an|some|the|your|mild|moderate|severe|likely|probably|just)\s+)*(.+)")
#: the visit's presenting problem: "complaining of left shoulder pain"
_PRESENTING = re.compile(
    r"\b(?:complain\w* (?:of|about)|here (?:today )?(?:for|with|because of)|"
    r"present\w* (?:today )?(?:with|for)|in (?:today )?for|coming in (?:today )?for|"
    r"came in (?:today )?for|referred (?:to me )?for)\s+" + _OWNER +
    r"(.+)")
_STOP_WORDS = _words("""
and but so i we you it that which who to um uh then if because since just okay alright is
are was were will would can could should i'm we're you're it's let's there here now today
right as when with about like or also maybe probably see take start order get do put
continue prescribe give i'd i'll we'll we'd you'll
""")
#: never a reason: durations, amounts and other non-problems after "for"
_NOT_REASON = re.compile(
    r"^(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|couple|few|"
    r"several|next|another|now|today|tomorrow|me|us|you|now|right|at|the rest|some time|"
    r"any|some|number|procedure|minutes|more|little|bit|lot|good|fine|okay|follow-up|"
    r"sure|it|that|this|him|her|them|a while|how|what|when|why|example|instance|sure|"
    r"in|on|of|from|doing|going|aware|annual|physical|check|checkup|exam|visit)\b"
    r"|^(?:day|days|week|weeks|month|months|year|years|time|while|visit|appointment|"
    r"follow|pharmacy|prescription|refill|lab|labs|blood work|results?)\b")


def _clip(words_text: str) -> str:
    """The reason's words: up to punctuation or a function word, at most MAX_WORDS."""
    out: list[str] = []
    for w in re.findall(r"[a-z0-9][a-z0-9'/-]*|[,.;:?!]", words_text):
        if w in ("i", "ii", "one", "two", "1", "2") and out and out[-1] == "type":
            out.append(w)  # "type i diabetes"
            continue
        if w in ",.;:?!" or (w in _STOP_WORDS and out):
            break
        if w in _STOP_WORDS:
            return ""
        out.append(w)
        if len(out) >= MAX_WORDS:
            break
    while out and out[-1] in {"of", "in", "the", "a", "your", "on", "for", "with", "my"}:
        out.pop()
    return " ".join(out)


_PROBLEM_PREFIX = re.compile(
    r"^" + _ORDINAL + r"(?:problem|issue|concern)\s*(?:number\s+\w+\s*)?(?:of|with|is|,)?\s*"
    + _OWNER)


def _overlapping(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Every match of ``pattern``, one per start, so a later heading is not swallowed."""
    m = pattern.search(text)
    while m is not None:
        yield m
        m = pattern.search(text, m.start() + 1)


#: "no signs of fracture", "i don't think you have": not a finding
_NEGATED = re.compile(r"(?:\bno|\bnot|n't|\bwithout|\bnegative for|\brule out)(?:\s+\w+){0,2}\s*$")


def _reason_in(text: str, pattern: re.Pattern[str], last: bool = False) -> str:
    """The first (``last``: the last) reason ``pattern`` finds in ``text``."""
    found = ""
    for m in _overlapping(pattern, text):
        if _NEGATED.search(text[:m.start()]):
            continue
        candidate = _PROBLEM_PREFIX.sub("", m.group(1).strip()).strip()
        if _NOT_REASON.match(candidate):
            continue
        words = _clip(candidate)
        if words and not _NOT_REASON.match(words):
            if not last:
                return words
            found = words
    return found


def _heading(text: str, last: bool = False) -> str:
    """The problem heading in ``text`` (``last``: the one nearest its end)."""
    if last:  # the heading said nearest before the order wins in a long turn
        spans = [(m.start(), p) for p in (_HEADING, _STANDPOINT) for m in p.finditer(text)]
        for _, p in sorted(spans, key=lambda t: t[0], reverse=True):
            words = _reason_in(text, p, last=True)
            if words:
                return words
        return _reason_in(text, _HEADING_PLAIN)
    return (_reason_in(text, _HEADING) or _reason_in(text, _STANDPOINT)
            or _reason_in(text, _HEADING_PLAIN))


def find_reason(sentences: Sequence[TranscriptSentence], k: int, after: str = "",
                speakers: Sequence[str] | None = None,
                headings: bool = True) -> tuple[str, int] | None:
    """The reason for an order said in sentence ``k`` (``after``: its words after the
    order's name) and the index of the sentence that gives it. ``headings=False``
    reads only a reason said beside the order (follow-ups: the problem being
    discussed is rarely why the patient comes back)."""
    text = sentences[k].text.lower()
    words = _reason_in(after.lower(), _BESIDE) if after else ""
    if words:
        return words, k
    if not headings:
        return None
    cut = text.rfind(after.lower()[:40]) if after else -1
    words = _heading(text[:cut] if cut > 0 else text, last=True)
    if words:
        return words, k
    def clinician(j: int) -> bool:
        speaker = speakers[j] if speakers is not None else sentences[j].speaker
        return speaker in (Speaker.DOCTOR, Speaker.UNKNOWN)

    def before(n: int) -> list[int]:
        """The clinician's sentences among the ``n`` before ``k``, nearest first."""
        return [j for j in range(k - 1, max(-1, k - 1 - n), -1) if clinician(j)]

    for j in before(LOOK_BACK):
        words = _heading(sentences[j].text.lower())
        if words:
            return words, j
    for j in [k, *before(2 * LOOK_BACK)]:  # no problem heading: what the clinician thinks
        words = _reason_in(sentences[j].text.lower(), _DIAGNOSIS)
        if words:
            return words, j
    for j in range(k):  # else the problem the visit is for
        words = _reason_in(sentences[j].text.lower(), _PRESENTING) if clinician(j) else ""
        if words:
            return words, j
    return None
