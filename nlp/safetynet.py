"""Safety-netting and self-care advice in a clinician's sentence, in plain form.

Pure functions over one cleaned sentence (``notestyle.clean``), standard library
only. Nothing is added that was not said: a rewrite only moves the condition
after the action and drops the filler around it ("please", "I want you to",
"just"), and it is refused when what it would drop could change the meaning
(a negation, a word outside the filler list).

* ``red_flag``: "if you notice any chest pain, please call us right away" →
  "Call us right away if you notice any chest pain."; "call me if your weight
  starts to go up, okay?" → "Call me if your weight starts to go up." A
  sentence that safety-nets but cannot be rewritten safely comes back cleaned
  and whole; one whose condition is only a courtesy ("if you have any
  questions", "if you can", "if you need anything") is no red flag (``None``).
* ``self_care``: "I want you to ice your knee twice a day" → "Ice your knee
  twice a day." — only for a few self-care verbs; medicines are the orders' job.
"""

from __future__ import annotations

import re

from nlp.notestyle import finish

__all__ = ["red_flag", "self_care", "spoken_line"]

_PLACE = (r"(?:the |a |an |your |your nearest |the nearest )?(?:er|e\.r\.|emergency(?: room| "
          r"department)?|a ?& ?e|hospital|urgent care|walk-in(?: centre| center| clinic)?)")
_ACTION = re.compile(
    r"\b(?:call (?:us|me|the (?:office|clinic|practice|surgery)|911|999|111|nine one one|"
    r"nine nine nine|an ambulance|your (?:gp|doctor))"
    r"|call(?=\s*(?:[,.!]|$|\bif\b|\bright away\b|\bimmediately\b|\bstraight away\b))"
    r"|give (?:us|me) a (?:call|ring|shout)(?: back)?"
    r"|come (?:back|in|and see (?:me|us)|see (?:me|us))"
    rf"|go (?:straight |right |directly )?(?:to|into) {_PLACE}"
    rf"|head (?:straight )?(?:to|into) {_PLACE}"
    r"|let (?:me|us) know"
    r"|seek (?:urgent |immediate )?(?:medical )?(?:help|attention|advice|care)"
    r"|contact (?:us|me|the (?:office|clinic|practice|surgery)|your (?:gp|doctor)|"
    r"a (?:doctor|medical professional))"
    r"|get (?:back )?in (?:touch|contact)"
    r"|reach out"
    r"|ring (?:us|me|111|999|the (?:surgery|practice))"
    r"|speak (?:to|with) (?:us|me|a doctor|your (?:gp|doctor)|one of us|111)"
    r"|(?:book|make) (?:an|another) appointment"
    r"|message (?:me|us)"
    r"|see (?:a|your) (?:doctor|gp))\b")
#: conditions that are courtesy, not danger: "if you have any questions", "if you can"
_COURTESY = re.compile(
    r"\bif (?:you |mum |dad |he |she |they |we )?(?:can|could|want|wish|like|prefer|"
    r"don't mind|do not mind|would like|are interested|decide)\b|\bif possible\b|"
    r"\bif (?:that's|it's|that is|it is) (?:ok|okay|alright|all right|fine) with you\b|"
    r"\bif you(?:'re| are) (?:ok|okay|alright|all right|happy|comfortable|fine) with\b|"
    r"\b(?:questions?|concerns?|interested|expensive|refills?|paperwork|prescriptions?|"
    r"anything else|available|cancel|want to (?:talk|chat|discuss))\b|"
    r"\bneed (?:anything|some|more|a)\b")


def _listed(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: words a rewrite may drop between the condition and the action
_FILLER = _listed("""
please just then definitely absolutely really do i i'd i'll we'd want you you'd you'll to
should need must make sure can could would like go ahead and so also um uh but obviously
certainly of course at least that's okay ok well now
""")
_HESITATE = re.compile(r"\b(?:don't|do not) hesitate to\b|\bfeel free to\b", re.I)
_NEGATION = re.compile(r"\b(?:not|no|never|don't|do not|won't|can't|cannot|shouldn't|"
                       r"didn't|doesn't)$")
#: where an action clause ends
_END = re.compile(r"[.;!?]|,?\s(?:okay|ok|alright|all right|right)\s*(?:[?.!,]|$)|"
                  r"\s(?:but|otherwise|because|'cause|cause|since|so that|which)\s|"
                  r",?\s(?:and|so)\s(?:we|we'll|we'd|i|i'll|i'd|then|that|if|they|you'll)\b|"
                  r"\s(?:do you|does that|is that|any other|any questions)\b")
#: a condition does not run across these: "…, okay i'm gonna have the nurse …"
_NEW_CLAUSE = re.compile(r"[.;!?]|\b(?:okay|alright|all right|but|because)\b|"
                         r"\b(?:i'm|we're|i'll|we'll|i am|we are)\b")
#: "see if", "check if": whether, not a condition
_WHETHER = re.compile(r"\b(?:see|check|know|ask|asking|wonder|wondering|tell|find out|sure|"
                      r"determine|even|as|what|decide|look)\s+$")
_TRAILING = re.compile(r"[\s,]+$")
#: a closing "…, okay?" asks for agreement, not an answer
_TAG = re.compile(r",?\s*\b(?:okay|ok|alright|all right|right|yeah)\s*[?.!]$", re.I)
_REACH = 30  # words between "if" and the action, at most
_ACTION_WORDS = 15  # words of the action clause, at most
_RESTART = 4
_CLAUSE_WORDS = _listed("and or so then but okay ok alright also")


def _clause_end(text: str, start: int, commas: bool) -> int:
    m = _END.search(text, start)
    end = m.start() if m else len(text)
    if commas:
        comma = text.find(",", start)
        if 0 <= comma < end:
            end = comma
    return end


def _all_filler(words: str) -> bool:
    return all(w.strip(",") in _FILLER for w in words.split())


def _finish(action: str, condition: str) -> str:
    if len(action.split()) > _ACTION_WORDS:
        return ""
    line = f"{_TRAILING.sub('', action.strip())} {_TRAILING.sub('', condition.strip())}"
    return finish(line.strip())


def _conditions(low: str, start: int, end: int) -> list[int]:
    """Where a conditional "if" (not "see if"; not one restarted within a few words,
    "if it's not, if the headache …") begins in ``low[start:end]``."""
    found = [m.start() for m in re.finditer(r"\bif\b", low[:end])
             if m.start() >= start and not _WHETHER.search(low[:m.start()])]
    return [i for k, i in enumerate(found)
            if k + 1 == len(found) or len(low[i:found[k + 1]].split()) > _RESTART]


def _forward(low: str, text: str, a: int) -> tuple[str, str] | None:
    """ "if X, (please) ACTION" → ("ACTION if X", "if X"); ``None``: no "if" before the
    action; an empty line: a rewrite would drop more than filler."""
    for start in _conditions(low, 0, a):  # the earliest "if" of this clause, within reach
        region = low[start:a]
        if not _NEW_CLAUSE.search(region) and len(region.split()) <= _REACH:
            break
    else:
        return None
    region = text[start:a]
    if "," in region:
        cut = region.rfind(",")
        condition, gap = region[:cut], region[cut + 1:]
    else:
        words = region.split()
        k = len(words)
        while k > 1 and words[k - 1].lower() in _FILLER:
            k -= 1
        condition, gap = " ".join(words[:k]), " ".join(words[k:])
    if not _all_filler(gap.lower()) or _NEGATION.search(condition.lower().rstrip(", ")):
        return "", region.lower()
    end = _clause_end(low, a, commas=True)
    condition = re.sub(r"^if\W+", "if ", condition, flags=re.I)  # "If, things …" → "if things …"
    condition = re.sub(r"(?:[\s,]+(?:then|so|and|um|uh))+[\s,]*$", "", condition, flags=re.I)
    return _finish(text[a:end], condition), region.lower()


def _reversed(low: str, text: str, a: int) -> tuple[str, str] | None:
    """ "(please) ACTION if X" → ("ACTION if X", "if X"); ``None``: no "if" after the action."""
    end = _clause_end(low, a, commas=False)
    ifs = _conditions(low, a, end)
    if not ifs:
        return None
    stop = re.search(r"[.;!?]", low[ifs[0]:])  # "…, any questions": still courtesy
    condition = low[ifs[0]:ifs[0] + stop.start() if stop else len(low)]
    prefix: list[str] = []  # the words of this clause before the action
    for word in reversed(re.split(r"(\s+|[,;:])", low[:a])):
        if word in (",", ";", ":") or word in _CLAUSE_WORDS:
            break
        prefix.append(word)
    if not _all_filler("".join(reversed(prefix))):
        return "", condition
    action = text[a:ifs[0]]
    return _finish(action, re.sub(r"^if\W+", "if ", text[ifs[0]:end], flags=re.I)), condition


def spoken_line(text: str) -> str:
    """A cleaned sentence as a line: its closing "…, okay?" and any "don't hesitate to"
    dropped, a capital first letter and a full stop."""
    return finish(_untagged(text))


def _untagged(text: str) -> str:
    return " ".join(_HESITATE.sub(" ", _TAG.sub("", text.strip())).split())


_NOT_A_SYMPTOM = _listed("if when you your you're have has had are is get got notice noticed any "
                         "feel start starts started do experience see develop the a an it that "
                         "this these those anything something any more")


def _said_what(condition: str) -> bool:
    """The condition names something ("if you have" cut off by the recogniser does not)."""
    return any(w not in _NOT_A_SYMPTOM for w in re.findall(r"[a-z']+", condition.lower()))


def red_flag(text: str) -> str | None:
    """The plain form of a safety-net sentence, the cleaned sentence when no safe
    rewrite exists, or ``None`` when the sentence is no red flag."""
    text = _untagged(text)
    low = text.lower()
    if text.endswith("?") or not _conditions(low, 0, len(low)):
        return None
    for m in _ACTION.finditer(low):
        for rewrite in (_reversed, _forward):
            found = rewrite(low, text, m.start())
            if found is None:
                continue
            line, condition = found
            if _COURTESY.search(condition) or not _said_what(condition):
                return None
            return line or finish(text)
    return None


_VERBS = (r"ice|rest|elevate|drink|avoid|stay|walk|exercise|stretch|wear|apply|limit|cut back|"
          r"cut down|eat|monitor|check|track|keep|write down|weigh|lose|watch|bring|continue "
          r"to (?:watch|walk|exercise|stretch|ice|rest|monitor|check|keep|avoid|work)|reduce|"
          r"increase your (?:fluids|water|fluid intake|activity)|elevate|hydrate|"
          r"get (?:plenty of )?(?:rest|sleep|fluids)|record|push fluids|strain|use|move|log|"
          r"measure|practice|quit smoking|stop smoking|take your (?:blood pressure|blood sugar|"
          r"temperature|weight)s?")
_ADVICE = re.compile(
    r"^(?:(?:and|so|also|then|now|but|okay|alright)\s+)*"
    r"(?:i (?:also |really |just |do )?(?:want|would like|'d like|need) you to|i'd like you to|"
    r"you (?:should|need to|will need to|'ll need to|must)|make sure (?:that )?you|be sure to|"
    r"try to|please|i (?:would |'d )?recommend (?:that )?you|i encourage you to)\s+"
    r"(?:(?:also|really|just|definitely|try to)\s+)*"
    rf"(?P<verb>(?:{_VERBS}))\b", re.I)
_ADVICE_WORDS = 20


def self_care(text: str) -> str | None:
    """ "I want you to ice your knee twice a day" → "Ice your knee twice a day." """
    text = _untagged(text)
    low = text.lower()
    # conditional advice is no plain instruction; "my template" is dictation to the scribe
    if "?" in text or re.search(r"\b(?:if|unless|my|me|dragon|template)\b", low):
        return None
    m = _ADVICE.match(low)
    if not m:
        return None
    start = m.start("verb")
    end = _clause_end(low, start, commas=True)
    advice = _TRAILING.sub("", text[start:end])
    if len(advice.split()) > _ADVICE_WORDS or len(advice.split()) < 2:
        return None
    return finish(advice)
