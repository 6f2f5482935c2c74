from __future__ import annotations

from nlp.drugs import drug_concept, find_drugs


def test_brand_names_link_to_the_generic_with_codes() -> None:
    lasix = drug_concept("Lasix")
    assert lasix is not None
    assert (lasix.generic, lasix.spoken, lasix.drugbank_id, lasix.is_brand) == (
        "furosemide", "lasix", "DB00695", True)
    generic = drug_concept("metformin")
    assert generic is not None and (generic.generic, generic.is_brand) == ("metformin", False)


def test_everyday_words_and_unknown_names_are_no_drugs() -> None:
    for word in ("ice", "water", "sugar", "today", "heart", "zorbaxol", ""):
        assert drug_concept(word) is None, word


def test_find_drugs_in_tokens() -> None:
    tokens = ["so", "stop", "the", "advil", "and", "take", "some", "cardura", ",", "4", "mg",
              "with", "water"]
    hits = [(s, e, c.generic) for s, e, c in find_drugs(tokens)]
    assert hits == [(3, 4, "ibuprofen"), (7, 8, "doxazosin")]
