"""Suggestions for the order editor: order names a reviewer may mean.

    GET /api/v1/review/suggest?kind=medication&q=ator   → ["atorvastatin", …]

Medications come from the drug vocabulary the order model uses (``nlp.drugs``:
DrugBank, MeSH, MedlinePlus and NHS names, brand and generic); the other kinds
from the order lexicon (``nlp.lexicon``). No patient data: not audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from nlp import drugs, lexicon
from server.review.deps import CurrentUser
from server.review.errors import InvalidInput

__all__ = ["ORDER_NAMES", "router", "suggestions"]

router = APIRouter(prefix="/api/v1/review", tags=["review"])
ORDER_NAMES = {"lab": lexicon.LABS, "imaging": lexicon.IMAGING, "referral": lexicon.SPECIALTIES,
            "procedure": lexicon.PROCEDURES, "other": lexicon.DEVICES,
            "medication": lexicon.MEDICATIONS, "follow_up": {}}


def suggestions(kind: str, prefix: str, limit: int = 10) -> list[str]:
    """Names of ``kind`` beginning with ``prefix`` (the lexicon's first, then the drug
    vocabulary's for medications)."""
    if kind not in ORDER_NAMES:
        raise InvalidInput(f"kind must be one of {', '.join(sorted(ORDER_NAMES))}")
    q = " ".join(prefix.lower().split())
    known = sorted({n for phrase, n in ORDER_NAMES[kind].items()
                    if q and (phrase.startswith(q) or n.startswith(q))}, key=lambda n: (len(n), n))
    if kind == "medication":
        known += [n for n in drugs.drug_names(q, limit) if n not in known]
    return known[:limit]


@router.get("/suggest", response_model=list[str])
def suggest(who: CurrentUser, kind: str,
            q: Annotated[str, Query(max_length=100)] = "") -> list[str]:
    """Order names for the editor's name field, as the reviewer types."""
    return suggestions(kind, q)
