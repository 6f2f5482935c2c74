"""Drug names from a maintained vocabulary: find them in speech, link brand to generic.

The vocabulary is the one shipped offline inside the PyPI package
``drug-named-entity-recognition`` (Fast Data Science, MIT; built from DrugBank,
MeSH, MedlinePlus and the NHS medicines list: about 107,000 names of 20,000
drugs, brand names linked to their generic). This module is the only one that
imports it, lazily (loading takes a few seconds, once per process; ``DraftWriter.load``
does it so no visit waits), and only exact matches are used.

    concept = drug_concept("lasix")   # DrugConcept(generic="furosemide", spoken="lasix",
                                      #   drugbank_id="DB00695", mesh_id="D049994", is_brand=True)
    for start, end, concept in find_drugs(tokens): ...

An order keeps the name as spoken; the concept gives the generic name and the
code a FHIR ``MedicationRequest`` carries. The package ships no RxNorm codes
offline (it asks a web API for OMOP ids, which this module never does): the code
is DrugBank's (its MeSH ids, kept on the concept, are often a drug class).
"""

from __future__ import annotations

import bisect
import functools
import gc
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DRUGBANK_SYSTEM", "DrugConcept", "drug_concept", "drug_names", "find_drugs"]

DRUGBANK_SYSTEM = "https://go.drugbank.com/drugs"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words the vocabulary lists as drug names that are everyday words in a visit
#: ("ice", "water", "sugar", "today" …): never a drug unless the lexicon says so.
_COMMON = _words("""
a an and at be by do go he i in is it me my no of ok on or so to up us we all any are bed
but can day did for get got had has her him his how its let may new not now off one our out
own per put see she the too two was way who why yes you also back been best both call came
care come does done down each even ever feel fine five four from gave give goes good have
help here high hold home just keep kind know last left like look lots made make many more
most much must need next nice once only over pain pass plan real rest same seen side some
sort stay sure take tell than that them then they this time told took very want well went
were what when will with work year your about after again being could doing every first
going great light little might never night other right shape since start still sugar think
three today water where which while would strong normal plain heart blood ice salt iron
oxygen fiber zinc vitamin caffeine alcohol nicotine tobacco coffee tea milk juice honey
cream gel spray patch drops drug drugs pill pills tablet tablets medicine medication
medications dose doses shot shots
""")


@dataclass(frozen=True, slots=True)
class DrugConcept:
    """A drug as the vocabulary knows it."""

    generic: str  # lower case: "furosemide"
    spoken: str  # the words that matched: "lasix"
    drugbank_id: str = ""
    mesh_id: str = ""
    is_brand: bool = False


@functools.cache
def _finder() -> Any:
    from drug_named_entity_recognition import drugs_finder

    # Its trigram index serves fuzzy matching, which a scribe must not do (a garbled
    # word is no drug): dropping it halves what the vocabulary holds in memory
    # (about 365 → 170 MB resident), as does the raw table the lookups were copied from.
    drugs_finder.ngram_to_variant.clear()
    drugs_finder.variant_to_ngrams.clear()
    drugs_finder.d.clear()
    gc.collect()
    return drugs_finder


def _concept(data: dict[str, Any], spoken: str, variant: str) -> DrugConcept:
    finder = _finder()
    generic = str(data.get("name") or variant).lower()
    is_brand = bool(finder.drug_variant_to_variant_data.get(variant, {}).get("is_brand"))
    if not is_brand:  # the package marks few brands: a variant that is not the name is one
        is_brand = variant != generic and " " not in variant and generic not in variant
    return DrugConcept(generic=generic, spoken=spoken,
                       drugbank_id=str(data.get("drugbank_id") or ""),
                       mesh_id=str(data.get("mesh_id") or ""), is_brand=is_brand)


@functools.lru_cache(maxsize=4096)
def drug_concept(name: str) -> DrugConcept | None:
    """The vocabulary's entry for a drug name (brand or generic), or ``None``."""
    variant = " ".join(name.lower().replace("’", "'").split())
    if not variant or variant in _COMMON:
        return None
    finder = _finder()
    canonicals = finder.drug_variant_to_canonical.get(variant)
    if not canonicals:
        return None
    data = finder.drug_canonical_to_data.get(canonicals[0], {"name": canonicals[0]})
    return _concept(data, variant, variant)


_WORD = re.compile(r"[a-z][a-z0-9-]*$")


def find_drugs(tokens: Sequence[str]) -> list[tuple[int, int, DrugConcept]]:
    """Drug names in lower-cased tokens: (start, end, concept), two-word names first,
    everyday words (``_COMMON``) and non-words left out. Exact matches only: a
    name the recogniser garbled is no drug here (the order model then never sees it)."""
    out: list[tuple[int, int, DrugConcept]] = []
    taken: set[int] = set()
    for n in (2, 1):
        for i in range(len(tokens) - n + 1):
            if any(j in taken for j in range(i, i + n)):
                continue
            words = tokens[i:i + n]
            if not all(_WORD.match(w) for w in words):
                continue
            concept = drug_concept(" ".join(words))
            if concept is not None:
                out.append((i, i + n, concept))
                taken.update(range(i, i + n))
    return sorted(out, key=lambda hit: hit[0])


@functools.cache
def _sorted_names() -> tuple[str, ...]:
    return tuple(sorted(n for n in _finder().drug_variant_to_canonical if _WORD.match(n)))


def drug_names(prefix: str, limit: int = 10) -> list[str]:
    """Drug names (brand and generic) that begin with ``prefix``, shortest first: the
    suggestions of an order editor. Empty for fewer than 2 letters."""
    prefix = " ".join(prefix.lower().split())
    if len(prefix) < 2:
        return []
    names = _sorted_names()
    hits: list[str] = []
    for name in names[bisect.bisect_left(names, prefix):]:
        if not name.startswith(prefix):
            break
        hits.append(name)
    return sorted(hits, key=lambda n: (len(n), n))[:limit]
