"""Controlled substances: the US DEA schedule of a drug named in an order.

Source: the schedules of 21 CFR part 1308 — §1308.12 (Schedule II), §1308.13
(III), §1308.14 (IV) and §1308.15 (V), with §1308.11 (I) for marijuana — as
summarised in the DEA Diversion Control Division's "Controlled Substances —
Alphabetical Order" list (the "orange book",
https://www.deadiversion.usdoj.gov/schedules/orangebook/c_cs_alpha.pdf).

This is a **curated subset**: the generics a clinic commonly prescribes and
their common US brand names, not the whole list, and not state law (some
states schedule more, e.g. gabapentin). A name that is not here is "not known
to be controlled", never "certainly not controlled". No maintained offline
package of the schedules exists to use instead; ``nlp.drugs``' vocabulary has
none.

Simplifications, each on the cautious side for a reviewer's warning:

- **Codeine** is Schedule II alone; with acetaminophen ("Tylenol #3",
  "acetaminophen-codeine") Schedule III; in a cough preparation (with
  promethazine or guaifenesin, a syrup) Schedule V. Strength limits that
  decide the III/V line are not checked.
- **Hydrocodone** is Schedule II in every form (combinations too, since 2014).
- **Dronabinol** is Schedule III (capsules, Marinol); the oral solution
  (Syndros) is Schedule II.
- **Marijuana** is Schedule I (§1308.11(d)) at the time of writing: it cannot
  be prescribed. A 2024 proposed rule would move it to Schedule III; change
  this entry when a final rule takes effect.
- **Testosterone** and the anabolic steroids are Schedule III in every form.

Pure functions, standard library only.
"""

from __future__ import annotations

import re

__all__ = ["SCHEDULES", "controlled_schedule", "schedule_name"]

_I, _II, _III, _IV, _V = "CI", "CII", "CIII", "CIV", "CV"

#: Lower-case generic or brand name → schedule. Names may contain spaces and "#".
SCHEDULES: dict[str, str] = {
    # --- Schedule II: opioids (21 CFR 1308.12(b)(1), (c))
    "oxycodone": _II, "oxycontin": _II, "roxicodone": _II, "xtampza": _II,
    "percocet": _II, "endocet": _II, "roxicet": _II,
    "hydrocodone": _II, "norco": _II, "vicodin": _II, "lortab": _II, "hysingla": _II,
    "zohydro": _II,
    "morphine": _II, "ms contin": _II, "kadian": _II,
    "hydromorphone": _II, "dilaudid": _II, "exalgo": _II,
    "fentanyl": _II, "duragesic": _II, "actiq": _II, "fentora": _II,
    "methadone": _II, "dolophine": _II, "methadose": _II,
    "oxymorphone": _II, "opana": _II,
    "tapentadol": _II, "nucynta": _II,
    "meperidine": _II, "demerol": _II,
    "levorphanol": _II,
    "codeine": _II,
    # --- Schedule II: stimulants (1308.12(d))
    "amphetamine": _II, "adderall": _II, "evekeo": _II, "mydayis": _II, "adzenys": _II,
    "dextroamphetamine": _II, "dexedrine": _II, "zenzedi": _II,
    "lisdexamfetamine": _II, "vyvanse": _II,
    "methamphetamine": _II, "desoxyn": _II,
    "methylphenidate": _II, "ritalin": _II, "concerta": _II, "methylin": _II,
    "daytrana": _II, "quillichew": _II, "jornay": _II,
    "dexmethylphenidate": _II, "focalin": _II,
    "cocaine": _II,
    # --- Schedule II: others
    "nabilone": _II, "cesamet": _II, "syndros": _II,
    "pentobarbital": _II, "nembutal": _II, "secobarbital": _II,
    # --- Schedule III (1308.13)
    "buprenorphine": _III, "suboxone": _III, "subutex": _III, "zubsolv": _III,
    "sublocade": _III, "butrans": _III, "belbuca": _III,
    "ketamine": _III, "ketalar": _III, "esketamine": _III, "spravato": _III,
    "testosterone": _III, "androgel": _III, "testim": _III, "axiron": _III,
    "depo-testosterone": _III, "xyosted": _III, "jatenzo": _III,
    "nandrolone": _III, "oxandrolone": _III, "oxymetholone": _III, "stanozolol": _III,
    "methyltestosterone": _III, "trenbolone": _III, "anabolic steroid": _III,
    "anabolic steroids": _III,
    "dronabinol": _III, "marinol": _III,
    "sodium oxybate": _III, "xyrem": _III, "xywav": _III,
    "perampanel": _III, "fycompa": _III,
    "benzphetamine": _III, "phendimetrazine": _III,
    "tylenol #3": _III, "tylenol #4": _III, "tylenol 3": _III, "tylenol 4": _III,
    "tylenol with codeine": _III,
    # --- Schedule IV (1308.14)
    "tramadol": _IV, "ultram": _IV, "ultracet": _IV, "conzip": _IV,
    "butorphanol": _IV, "pentazocine": _IV, "eluxadoline": _IV, "viberzi": _IV,
    "alprazolam": _IV, "xanax": _IV,
    "lorazepam": _IV, "ativan": _IV,
    "diazepam": _IV, "valium": _IV,
    "clonazepam": _IV, "klonopin": _IV,
    "temazepam": _IV, "restoril": _IV,
    "midazolam": _IV, "versed": _IV,
    "chlordiazepoxide": _IV, "librium": _IV,
    "triazolam": _IV, "halcion": _IV, "oxazepam": _IV, "clorazepate": _IV,
    "tranxene": _IV, "estazolam": _IV, "flurazepam": _IV, "clobazam": _IV, "onfi": _IV,
    "zolpidem": _IV, "ambien": _IV, "edluar": _IV, "intermezzo": _IV,
    "eszopiclone": _IV, "lunesta": _IV,
    "zaleplon": _IV, "sonata": _IV,
    "suvorexant": _IV, "belsomra": _IV, "lemborexant": _IV, "dayvigo": _IV,
    "daridorexant": _IV, "quviviq": _IV,
    "phenobarbital": _IV, "carisoprodol": _IV, "soma": _IV, "meprobamate": _IV,
    "modafinil": _IV, "provigil": _IV, "armodafinil": _IV, "nuvigil": _IV,
    "solriamfetol": _IV, "sunosi": _IV,
    "phentermine": _IV, "adipex": _IV, "lomaira": _IV, "qsymia": _IV,
    # --- Schedule V (1308.15)
    "pregabalin": _V, "lyrica": _V,
    "lacosamide": _V, "vimpat": _V,
    "brivaracetam": _V, "briviact": _V,
    "cenobamate": _V, "xcopri": _V,
    "diphenoxylate": _V, "lomotil": _V,
    # --- Schedule I (1308.11): cannot be prescribed
    "marijuana": _I, "marihuana": _I, "cannabis": _I,
}

_ORDER = {_I: 0, _II: 1, _III: 2, _IV: 3, _V: 4}
_NAMES = {_I: "Schedule I", _II: "Schedule II", _III: "Schedule III", _IV: "Schedule IV",
          _V: "Schedule V"}
_PATTERN = re.compile(
    r"(?<![a-z0-9])(" + "|".join(re.escape(k) for k in sorted(SCHEDULES, key=len, reverse=True))
    + r")(?![a-z0-9])")
_WITH_ACETAMINOPHEN = re.compile(r"acetaminophen|paracetamol|apap|tylenol")
_COUGH = re.compile(r"promethazine|guaifenesin|cough|syrup|elixir")


def _schedule_of(text: str) -> str | None:
    text = " ".join(text.lower().split())
    schedules = []
    for match in _PATTERN.findall(text):
        schedule = SCHEDULES[match]
        if match == "codeine":  # alone II; in a combination lower (see the module docstring)
            if _COUGH.search(text):
                schedule = _V
            elif _WITH_ACETAMINOPHEN.search(text):
                schedule = _III
        schedules.append(schedule)
    return min(schedules, key=_ORDER.__getitem__) if schedules else None


def controlled_schedule(name: str, spoken: str = "") -> str | None:
    """``"CI"`` … ``"CV"`` for a controlled drug (by generic ``name`` or the ``spoken``
    brand), the stricter of the two if both match; ``None`` when not known to be."""
    found = [s for s in (_schedule_of(name), _schedule_of(spoken)) if s is not None]
    return min(found, key=_ORDER.__getitem__) if found else None


def schedule_name(schedule: str) -> str:
    """``"CII"`` → ``"Schedule II"``."""
    return _NAMES.get(schedule, schedule)
